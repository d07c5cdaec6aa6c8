"""Cheaper networks, measured: depthwise-separable convolutions, resize-convolutions, FLOPs.

A standard k x k convolution from C_in to C_out channels has k^2 C_in C_out weights and, on an
H x W output, k^2 C_in C_out H W multiply-adds. A **depthwise-separable** convolution (Sifre
2014; Chollet 2017, Xception; Howard et al. 2017, MobileNets) splits it in two: a depthwise
k x k convolution that filters each input channel on its own (k^2 C_in weights), then a 1 x 1
*pointwise* convolution that mixes the channels (C_in C_out weights). The ratio of the costs is
1 / C_out + 1 / k^2: about 8x fewer for k = 3 and 64 output channels, approaching 9x for more.
With one output channel the separable form costs *more* (1 + 1/9 of the full one).

`build_light_generator` applies it to the DCGAN generator of chapter 1, whose transposed
convolutions become nearest-neighbour upsampling followed by a (separable) 3 x 3 convolution, a
"resize-convolution" (Odena et al. 2016, which also avoids the checkerboard artefacts of
strided transposed convolutions). `count_flops` measures a model's floating-point operations
with TensorFlow's profiler.
"""

import keras
from keras import layers


def build_light_generator(latent_dim=64, image_shape=(16, 16, 1), filters=(128, 64),
                          separable=True, projection_channels=None, separable_output=None,
                          momentum=0.9, name="light_generator"):
    """A DCGAN-shaped generator made of resize-convolutions, separable or not.

    z -> Dense to an (H/f, W/f, C) grid -> [1 x 1 convolution to filters[0]] -> for each of
    filters[1:]: UpSampling2D(2) + 3 x 3 convolution + BatchNorm + ReLU -> UpSampling2D(2) +
    a 3 x 3 convolution to the image's channels, tanh (float32), with f = 2**len(filters).

    Args:
        latent_dim: size of z.
        image_shape: (height, width, channels), divisible by 2**len(filters).
        filters: channels of the projection and of each upsampling block, coarse to fine (the
            DCGAN generator's `filters`).
        separable: depthwise-separable 3 x 3 convolutions (`SeparableConv2D`) instead of
            full ones (`Conv2D`).
        separable_output: the same choice for the last layer alone (None: as `separable`).
            To one channel a separable layer has a few more weights than a full one, and
            the same functions (each channel's 3 x 3 filter times a mixing weight), but
            trains differently (measured in chapter 6, notebook 4).
        projection_channels: project z to this many channels (C) and widen them to
            `filters[0]` with a 1 x 1 convolution; None projects straight to `filters[0]`.
            The dense projection holds most of a small generator's weights.
        momentum: BatchNorm momentum, as in `models.gan.build_generator`.

    Returns:
        a `keras.Model` mapping z to images (float32, tanh): a drop-in for
        `models.gan.build_generator` in `models.gan.GAN`.
    """
    height, width, channels = image_shape
    if not filters:
        raise ValueError("filters must name at least one channel count, e.g. (128, 64).")
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise ValueError(f"image_shape {image_shape}: height and width must be divisible by "
                         f"2**len(filters) = {factor}; use fewer filters or another size.")
    if projection_channels is not None and projection_channels < 1:
        raise ValueError(f"projection_channels must be positive or None, got "
                         f"{projection_channels}.")
    conv = layers.SeparableConv2D if separable else layers.Conv2D
    z = keras.Input((latent_dim,), name="z")
    projected = projection_channels or filters[0]
    h = layers.Dense(height // factor * width // factor * projected, use_bias=False)(z)
    h = layers.BatchNormalization(momentum=momentum)(h)
    h = layers.ReLU()(h)
    h = layers.Reshape((height // factor, width // factor, projected))(h)
    if projection_channels is not None:
        h = layers.Conv2D(filters[0], 1, use_bias=False)(h)  # pointwise: widen the channels
        h = layers.BatchNormalization(momentum=momentum)(h)
        h = layers.ReLU()(h)
    for f in filters[1:]:
        h = layers.UpSampling2D(2)(h)
        h = conv(f, 3, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization(momentum=momentum)(h)
        h = layers.ReLU()(h)
    h = layers.UpSampling2D(2)(h)
    last = conv if separable_output is None else (
        layers.SeparableConv2D if separable_output else layers.Conv2D)
    images = last(channels, 3, padding="same", activation="tanh", dtype="float32",
                  name="images")(h)
    return keras.Model(z, images, name=name)


def count_flops(model, input_shape):
    """Floating-point operations of one forward pass (inference), counted by TensorFlow.

    The model's graph is traced for `input_shape` (batch size included: (1, ...) for one
    example), its variables frozen into constants, and TensorFlow's profiler adds up the
    statistics registered for each operation type, computed from the shapes (a multiply-add
    counts as 2; an operation type without a registered count adds 0). Returns
    `(total, {graph node name: flops})`.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    traced = tf.function(lambda x: model(x, training=False))
    concrete = traced.get_concrete_function(tf.TensorSpec(input_shape, tf.float32))
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return profile.total_float_ops, {child.name: child.total_float_ops
                                     for child in profile.children}


# The generators compared in chapter 6 (notebook 4), all for 16 x 16 digits with z of size 64
# and chapter 1's DCGAN filters (128, 64).
VARIANTS = {
    "transposed (DCGAN)": {"light": False},
    "resize-conv": {"separable": False},
    "separable": {"separable": True},
    "separable, full last layer": {"separable": True, "separable_output": False},
    "separable, narrow projection": {"separable": True, "projection_channels": 32},
}


def build_variant(name, latent_dim=64, image_shape=(16, 16, 1), filters=(128, 64)):
    """One of `VARIANTS`: chapter 1's DCGAN generator or a `build_light_generator`."""
    if name not in VARIANTS:
        raise ValueError(f"name must be one of {list(VARIANTS)}, got {name!r}.")
    options = dict(VARIANTS[name])
    if not options.pop("light", True):
        from course_lib.models.gan import build_generator

        return build_generator(latent_dim, image_shape, None, filters)
    return build_light_generator(latent_dim, image_shape, filters, **options)


def sampling_seconds(generator, num_samples=1000, repeats=5, batch_size=250):
    """Seconds `generator` takes to turn `num_samples` latent vectors into images, compiled.

    The call is a `tf.function` traced once before timing (eager execution would time
    Python's dispatch of every layer), in batches of `batch_size`; the best of `repeats`
    runs is returned (the least disturbed by other work on the machine).
    """
    import time

    import numpy as np
    import tensorflow as tf

    latent_dim = generator.input_shape[-1]
    z = tf.constant(np.random.default_rng(0).normal(size=(num_samples, latent_dim)), "float32")
    generate = tf.function(lambda batch: generator(batch, training=False))
    batches = [z[start:start + batch_size] for start in range(0, num_samples, batch_size)]
    for batch in batches:  # trace (one shape per distinct batch size)
        generate(batch)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            generate(batch).numpy()
        best = min(best, time.perf_counter() - start)
    return best


def train_variant(generator, x_train, num_epochs, seed=0, batch_size=64, learning_rate=2e-4):
    """A GAN with chapter 1's discriminator and recipe (Adam 2e-4, beta_1 0.5, batch 64),
    trained for `num_epochs`. Returns (gan, seconds of training).

    Args:
        generator: a name of `VARIANTS`, or a function returning a new generator (called
            after seeding, so that the seed fixes its initial weights).
    """
    import time

    from course_lib.data import make_dataset
    from course_lib.models.gan import GAN, build_discriminator

    keras.utils.set_random_seed(seed)
    if isinstance(generator, str):
        generator = build_variant(generator, image_shape=x_train.shape[1:])
    else:
        generator = generator()
    gan = GAN(generator, build_discriminator(x_train.shape[1:], None, (64, 128)), seed=seed)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5))
    start = time.perf_counter()
    gan.fit(make_dataset(x_train, batch_size=batch_size, seed=seed), epochs=num_epochs,
            verbose=0)
    return gan, time.perf_counter() - start
