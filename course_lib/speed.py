"""Measuring speed: training steps with tracing left out, and `tf.data` pipelines on their own.

    StepTimer         a callback keeping the wall time of every training batch
    training_speed    steps per second of a model built under a precision policy, with or
                      without XLA, the first (tracing, compiling) steps reported apart
    compare_speeds    several settings timed in turns, the fastest round of each
    call_seconds      the first call of a function and the median of the next ones
    iterate_seconds   the time to read a dataset through, epoch by epoch
    write_png_files   images saved as PNG files, for an input pipeline that reads from disk
    png_pipeline      the `tf.data` pipeline that reads them, with or without a parallel
                      map, a cache and a prefetch
    build_dcgan       chapter 1's DCGAN, compiled (optionally with XLA): the model timed
    gelu_chain        a chain of elementwise operations, the case XLA's fusion is made for

Time on a shared machine is noisy: compare settings measured in the same run, take the median
of many steps, and repeat a comparison before trusting a small difference.
"""

import os
import time

import keras
import numpy as np


class StepTimer(keras.callbacks.Callback):
    """Keeps the seconds each training batch took (`durations`), from the start of the batch
    (or the end of the previous one) to its end, so that waiting for input is included."""

    def __init__(self):
        super().__init__()
        self.durations = []
        self._last = None

    def on_train_batch_begin(self, batch, logs=None):
        if self._last is None:
            self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.durations.append(now - self._last)
        self._last = now


def training_speed(build, dataset, num_steps=20, warmup=3, policy=None, jit_compile=False):
    """Trains a fresh model for `warmup + num_steps` batches and times them.

    Args:
        build: a function `build(jit_compile)` returning a compiled model; it is called after
            the dtype policy is set, so the model's layers take it.
        dataset: a `tf.data.Dataset` of training batches (repeated as needed).
        num_steps: the steps timed after the warm-up.
        warmup: first steps left out of the timing (tracing, XLA compiling, the first batch).
        policy: a dtype policy name ("float32", "mixed_bfloat16", "mixed_float16") for the
            model, or None for the current one; the previous global policy is restored.
        jit_compile: passed to `build`.

    Returns:
        {"seconds_per_step": the median of the timed steps, "warmup_seconds": the warm-up
        steps' total, "final_loss": the last logged value of the first metric (a NaN shows
        that training broke), "model": the trained model}.
    """
    if num_steps < 1 or warmup < 0:
        raise ValueError(f"need num_steps >= 1 and warmup >= 0, got {num_steps}, {warmup}.")
    previous = keras.mixed_precision.global_policy()
    try:
        if policy is not None:
            keras.mixed_precision.set_dtype_policy(policy)
        model = build(jit_compile)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    timer = StepTimer()
    history = model.fit(dataset.repeat(), epochs=1, steps_per_epoch=warmup + num_steps,
                        verbose=0, callbacks=[timer])
    first_metric = next(iter(history.history.values()))
    return {"seconds_per_step": float(np.median(timer.durations[warmup:])),
            "warmup_seconds": float(np.sum(timer.durations[:warmup])),
            "final_loss": float(first_metric[-1]), "model": model}


def compare_speeds(build, dataset, settings, num_steps=20, warmup=3, rounds=3):
    """Times several settings of `training_speed` in turns, `rounds` times each, and keeps
    each setting's fastest round: a slow moment of a shared machine only ever adds time
    (`timeit` takes the minimum for the same reason).

    Args:
        settings: {name: keyword arguments of `training_speed`}, e.g.
            {"float32": {}, "XLA": {"jit_compile": True}}; a "dataset" among them replaces
            `dataset` for that setting.

    Returns:
        {name: {"seconds_per_step": the fastest round's, "spread": (slowest - fastest)
        / fastest over the rounds, "rounds": [seconds per step of each round],
        "warmup_seconds": the median warm-up, "final_loss": the last round's}}.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}.")
    times = {name: [] for name in settings}
    warmups = {name: [] for name in settings}
    losses = {}
    for _ in range(rounds):
        for name, kwargs in settings.items():
            kwargs = dict(kwargs)
            data = kwargs.pop("dataset", dataset)
            result = training_speed(build, data, num_steps, warmup, **kwargs)
            times[name].append(result["seconds_per_step"])
            warmups[name].append(result["warmup_seconds"])
            losses[name] = result["final_loss"]
    return {name: {"seconds_per_step": float(min(seconds)),
                   "spread": float((max(seconds) - min(seconds)) / min(seconds)),
                   "rounds": seconds, "warmup_seconds": float(np.median(warmups[name])),
                   "final_loss": losses[name]}
            for name, seconds in times.items()}


def call_seconds(function, *args, repeats=20):
    """(seconds of the first call, median seconds of `repeats` later calls) of `function`,
    waiting each time for the result (`.numpy()`): the first call includes tracing and, with
    `jit_compile=True`, XLA's compilation."""
    start = time.perf_counter()
    keras.ops.convert_to_numpy(function(*args))
    first = time.perf_counter() - start
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(function(*args))
        seconds.append(time.perf_counter() - start)
    return first, float(np.median(seconds))


def iterate_seconds(dataset, num_epochs=2):
    """Seconds to read `dataset` through, once per epoch (a list): the first epoch fills any
    cache, the later ones read from it."""
    seconds = []
    for _ in range(num_epochs):
        start = time.perf_counter()
        for _ in dataset:
            pass
        seconds.append(time.perf_counter() - start)
    return seconds


def write_png_files(images, folder, value_range=(-1, 1)):
    """Saves each image of (N, H, W, C) as `folder/00000.png`, ... (8-bit); returns the
    sorted paths. Images in [-1, 1] by default (the course's range)."""
    import tensorflow as tf

    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, height, width, channels), got {images.shape}.")
    low, high = value_range
    pixels = np.clip(np.round((images - low) / (high - low) * 255), 0, 255).astype(np.uint8)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for index, image in enumerate(pixels):
        path = os.path.join(str(folder), f"{index:05d}.png")
        tf.io.write_file(path, tf.io.encode_png(image))
        paths.append(path)
    return paths


def decode_png(path):
    """One PNG file -> a float32 image in [-1, 1]."""
    import tensorflow as tf

    image = tf.io.decode_png(tf.io.read_file(path), channels=1)
    return tf.cast(image, tf.float32) / 127.5 - 1.0


# The pipelines compared in chapter 6's notebook 5: keyword arguments of `png_pipeline`.
PIPELINES = {"plain": {}, "parallel map": {"parallel": True}, "cache": {"cache": True},
             "prefetch": {"prefetch": True},
             "all three": {"parallel": True, "cache": True, "prefetch": True}}


def png_pipeline(paths, batch_size=64, parallel=False, cache=False, prefetch=False, seed=0):
    """Batches of images read from PNG files, shuffled every epoch.

    Args:
        parallel: decode files on several threads (`num_parallel_calls=AUTOTUNE`).
        cache: keep the decoded images in memory after the first epoch.
        prefetch: prepare the next batches while the model trains on this one.

    tf.data rewrites pipelines by itself: it runs a stateless `map` in parallel
    (`map_parallelization`) and adds a prefetch at the end (`inject_prefetch`) unless told
    not to. Both are switched off here where the switch is off, so that the comparison shows
    what each does.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(list(paths))
    dataset = dataset.map(decode_png, num_parallel_calls=tf.data.AUTOTUNE if parallel else None)
    if cache:
        dataset = dataset.cache()
    dataset = dataset.shuffle(len(paths), seed=seed).batch(batch_size)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = parallel
    options.experimental_optimization.inject_prefetch = prefetch
    return dataset.with_options(options)


def build_dcgan(jit_compile=False, image_shape=(16, 16, 1), seed=0):
    """Chapter 1's DCGAN (latent 64, Adam 2e-4 with beta_1 0.5), compiled; with
    `jit_compile=True` Keras compiles its training step with XLA."""
    from course_lib.models.gan import GAN, build_discriminator, build_generator

    keras.utils.set_random_seed(seed)
    gan = GAN(build_generator(64, image_shape, None, (128, 64)),
              build_discriminator(image_shape, None, (64, 128)), seed=seed)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), jit_compile=jit_compile)
    return gan


def gelu_chain(x, depth=8):
    """`depth` rounds of the tanh approximation of GELU (Hendrycks & Gimpel 2016), each
    about 9 elementwise operations: unfused, every one reads and writes the whole tensor."""
    for _ in range(depth):
        x = 0.5 * x * (1.0 + keras.ops.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))
    return x
