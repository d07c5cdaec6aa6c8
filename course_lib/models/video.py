"""Video models that chapter 5's notebooks build and reuse.

    residual_frame_predictor   past frames stacked as channels -> a convolutional network ->
                               a change added to the last frame (so that "nothing moves" is
                               the easiest thing to learn, as copy-last is the baseline)
    causal_conv_predictor      a clip -> the next frame at every step, with 3-D convolutions
                               padded only in the past (or, to show the leak, on both sides)
    convlstm_predictor         a clip -> the next frame at every step, with ConvLSTM layers
    rollout_model              a sequence model trained on its own predictions, several steps
    frame_interpolator         the frames around a gap -> the missing frame (a change added to
                               the average of its two neighbours)
    video_inpainter            a clip and its mask -> the missing pixels, from space and time
    video_encoder, video_decoder   a video VAE's networks: one z per clip, factorised
                               space-time layers, an optional caption
    frame_enhancer             degraded frames around t -> frame t restored (a change added
                               to it), for restoration, super-resolution and denoising

The sequence models map (batch, T, H, W, C) to (batch, T, H, W, C): output t predicts frame
t + 1, so one pass over a clip trains every step; their next frame after a window is the
last output, and `course_lib.video.rollout` feeds predictions back for longer horizons.
"""

import keras
from keras import layers, ops


def residual_frame_predictor(past_frames=4, channels=1, filters=32, depth=4, name=None):
    """A Keras model from (batch, past_frames, H, W, channels) in [0, 1] to the next frame,
    (batch, 1, H, W, channels): the last frame plus a change that `depth` 3 x 3 convolutions
    (ReLU, `filters` each) and a zero-initialised output convolution compute from all past
    frames stacked as channels, so that training starts from copy-last. Any H and W.
    Its receptive field is 2 * depth + 3 pixels wide (the output convolution included): it
    can follow motion of up to about `depth` pixels per frame."""
    if past_frames < 1 or depth < 1:
        raise ValueError(f"past_frames and depth must be at least 1, got {past_frames}, "
                         f"{depth}.")
    frames = keras.Input((past_frames, None, None, channels), name="past_frames")
    # (B, T, H, W, C) -> (B, H, W, T * C): time becomes channels
    x = ops.concatenate([frames[:, t] for t in range(past_frames)], axis=-1)
    for i in range(depth):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
    # zero-initialised: the untrained model is exactly the copy-last baseline
    change = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros",
                           name="change", dtype="float32")(x)
    last = ops.cast(frames[:, -1], "float32")
    return keras.Model(frames, ops.expand_dims(last + change, 1),
                       name=name or "residual_frame_predictor")


def _residual_output(frames, features, channels):
    """The last layer of every predictor here: a zero-initialised convolution computes a
    change that is added to each input frame, so the untrained model is copy-last."""
    change = layers.Conv3D(channels, (1, 3, 3), padding="same", kernel_initializer="zeros",
                           name="change", dtype="float32")(features)
    return ops.cast(frames, "float32") + change


def _causal_pad(x, kernel_time):
    """Pads (batch, T, H, W, C) with kernel_time - 1 zero frames before the clip (none after)
    and one zero pixel around every frame: exactly `layers.ZeroPadding3D(((kernel_time - 1,
    0), (1, 1), (1, 1)))`. It is written with concatenations because, on CPU, TensorFlow's
    graph optimizer ("remapper") prints a spurious error for a Pad op whose gradient feeds a
    Conv3D's, every time a training step is compiled."""
    if kernel_time > 1:
        x = ops.concatenate([ops.zeros_like(x[:, :kernel_time - 1]), x], axis=1)
    rows = ops.zeros_like(x[:, :, :1])
    x = ops.concatenate([rows, x, rows], axis=2)
    columns = ops.zeros_like(x[:, :, :, :1])
    return ops.concatenate([columns, x, columns], axis=3)


def causal_conv_predictor(channels=1, filters=32, depth=4, kernel_time=3, causal=True,
                          name=None):
    """A sequence model from frames (batch, T, H, W, channels) in [0, 1] to (batch, T, H, W,
    channels), where output t predicts frame t + 1 from frames 0..t: `depth` 3-D convolutions
    of `kernel_time` x 3 x 3 (ReLU, `filters` each), then a zero-initialised change added to
    frame t. One pass trains every position of a clip at once (teacher forcing).

    With `causal=True` each convolution is padded with `kernel_time - 1` zero frames before
    the clip and none after (`_causal_pad`), so output t never sees a frame later than t;
    it sees the last depth * (kernel_time - 1) + 1 frames. With `causal=False` the
    convolutions use `padding="same"`, as most examples do, and output t sees depth *
    (kernel_time - 1) / 2 frames after t: the frame it should predict among them.
    Any T, H and W."""
    if depth < 1 or kernel_time < 1:
        raise ValueError(f"depth and kernel_time must be at least 1, got {depth}, "
                         f"{kernel_time}.")
    if not causal and kernel_time % 2 == 0:
        raise ValueError(f"padding='same' centres an odd kernel; got kernel_time "
                         f"{kernel_time}.")
    frames = keras.Input((None, None, None, channels), name="frames")
    x = frames
    for i in range(depth):
        if causal:
            x = _causal_pad(x, kernel_time)
        x = layers.Conv3D(filters, (kernel_time, 3, 3), activation="relu",
                          padding="valid" if causal else "same", name=f"conv{i + 1}")(x)
    default = "causal_conv_predictor" if causal else "same_padded_conv_predictor"
    return keras.Model(frames, _residual_output(frames, x, channels), name=name or default)


def convlstm_predictor(frame_size, channels=1, filters=32, depth=2, name=None):
    """A sequence model from frames (batch, T, H, W, channels) in [0, 1] to (batch, T, H, W,
    channels), where output t predicts frame t + 1 and (H, W) is `frame_size` (ConvLSTM2D
    needs it fixed): `depth` ConvLSTM layers
    (`keras.layers.ConvLSTM2D`, Shi et al. 2015; 3 x 3 kernels, `filters` each), whose state
    carries what was seen at frames 0..t, then a zero-initialised change added to frame t.
    Recurrence makes it causal: the change is computed from each step's state alone (a
    1 x 3 x 3 convolution), never from the next step's. Any T."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}.")
    frames = keras.Input((None, *frame_size, channels), name="frames")
    x = frames
    for i in range(depth):
        x = layers.ConvLSTM2D(filters, 3, padding="same", return_sequences=True,
                              name=f"convlstm{i + 1}")(x)
    return keras.Model(frames, _residual_output(frames, x, channels),
                       name=name or "convlstm_predictor")


def rollout_model(predictor, past_frames, steps, frame_shape=(None, None, 1), name=None):
    """A model that trains `predictor` on its own predictions: from a window of `past_frames`
    frames (batch, past_frames, H, W, C) it predicts the next frame (the sequence model's last
    output), clips it to [0, 1], appends it to the window and drops the oldest frame, `steps`
    times, and returns the (batch, steps, H, W, C) predictions. Compiled with the squared error
    and fitted on (past, future) windows, it teaches the predictor what to do with its own
    imperfect frames, which teacher forcing never shows it. The weights are the predictor's
    (shared, not copied). `frame_shape` is (H, W, C); H and W may be None where the predictor
    allows it."""
    if past_frames < 1 or steps < 1:
        raise ValueError(f"past_frames and steps must be at least 1, got {past_frames}, "
                         f"{steps}.")
    past = keras.Input((past_frames, *frame_shape), name="past_frames")
    window, predicted = past, []
    for _ in range(steps):
        frame = ops.clip(predictor(window)[:, -1:], 0.0, 1.0)
        predicted.append(frame)
        window = ops.concatenate([window[:, 1:], ops.cast(frame, window.dtype)], axis=1)
    return keras.Model(past, ops.concatenate(predicted, axis=1),
                       name=name or f"{predictor.name}_rollout")


def frame_interpolator(context=1, channels=1, filters=32, depth=4, name=None):
    """A Keras model that fills in a missing frame from `context` frames before it and
    `context` after it: input (batch, 2 * context, H, W, channels) in time order (the gap
    between frames context - 1 and context), output the missing frame (batch, 1, H, W,
    channels). It adds a change to the average of the two neighbours of the gap, computed by
    `depth` 3 x 3 convolutions of all the frames stacked as channels and a zero-initialised
    output convolution, so that training starts from the frame-average baseline. Any H, W."""
    if context < 1 or depth < 1:
        raise ValueError(f"context and depth must be at least 1, got {context}, {depth}.")
    frames = keras.Input((2 * context, None, None, channels), name="frames_around_gap")
    x = ops.concatenate([frames[:, t] for t in range(2 * context)], axis=-1)
    for i in range(depth):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
    change = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros",
                           name="change", dtype="float32")(x)
    average = ops.cast((frames[:, context - 1] + frames[:, context]) / 2, "float32")
    return keras.Model(frames, ops.expand_dims(average + change, 1),
                       name=name or "frame_interpolator")


def video_inpainter(channels=1, filters=32, depth=4, kernel_time=3, name=None):
    """A Keras model that improves a first guess of the missing pixels of a clip. Inputs: the
    clip (batch, T, H, W, channels) with its missing pixels already filled by a baseline
    (e.g. `inpainting.naive_fill`) and its mask (the same shape, 1 = visible, 0 = missing).
    Output: the clip with the visible pixels kept and a change added to the missing ones,
    clip + (1 - mask) * change. The change comes from `depth` 3-D convolutions of
    `kernel_time` x 3 x 3 (ReLU, `filters` each) of the clip and the mask and a
    zero-initialised output convolution, so training starts from the baseline. With
    `kernel_time` 1 each frame is completed from itself alone (space only); with 3 or more,
    from its neighbours in time too. Completion may look at later frames: the padding is
    "same", in time as in space. Trained with the squared error on whole clips, only the
    missing pixels carry a gradient. Any T, H, W."""
    if depth < 1 or kernel_time < 1 or kernel_time % 2 == 0:
        raise ValueError(f"depth must be at least 1 and kernel_time odd, got {depth}, "
                         f"{kernel_time}.")
    clip = keras.Input((None, None, None, channels), name="filled_clip")
    mask = keras.Input((None, None, None, channels), name="mask")
    x = ops.concatenate([clip, mask], axis=-1)
    for i in range(depth):
        x = layers.Conv3D(filters, (kernel_time, 3, 3), padding="same", activation="relu",
                          name=f"conv{i + 1}")(x)
    change = layers.Conv3D(channels, (1, 3, 3), padding="same", kernel_initializer="zeros",
                           name="change", dtype="float32")(x)
    output = ops.cast(clip, "float32") + (1 - ops.cast(mask, "float32")) * change
    return keras.Model([clip, mask], output,
                       name=name or ("video_inpainter" if kernel_time > 1 else "frame_inpainter"))


def _space_time(x, filters, stride, name, transpose=False):
    """A factorised (2+1)-D block (Tran et al. 2018, "A Closer Look at Spatiotemporal
    Convolutions"): a 1 x 3 x 3 convolution in space (strided, or transposed to upsample),
    then a 3 x 1 x 1 convolution in time, each with a ReLU. About half the multiplications of
    one 3 x 3 x 3 convolution, and a non-linearity between space and time."""
    conv = layers.Conv3DTranspose if transpose else layers.Conv3D
    x = conv(filters, (1, 3, 3), strides=(1, stride, stride), padding="same",
             activation="relu", name=f"{name}_space")(x)
    return layers.Conv3D(filters, (3, 1, 1), padding="same", activation="relu",
                         name=f"{name}_time")(x)


def _label_code(labels, num_classes, dtype):
    """One-hot codes of integer labels. `num_classes` an int: one code. A tuple (n1, n2, ...):
    each label packs one value per condition, label = (c1 * n2 + c2) * n3 + ..., and the
    code joins one one-hot vector per condition (so a network conditioned on a digit and a
    direction shares what it learns about a digit across directions)."""
    sizes = (num_classes,) if isinstance(num_classes, int) else tuple(num_classes)
    codes, rest = [], labels
    for size in reversed(sizes):
        codes.insert(0, ops.one_hot(rest % size, size))
        rest = rest // size
    return ops.cast(ops.concatenate(codes, axis=-1), dtype)


def _check_clip_shape(clip_shape, levels):
    if len(clip_shape) != 4:
        raise ValueError(f"clip_shape must be (frames, height, width, channels), got "
                         f"{clip_shape}.")
    if clip_shape[1] % 2 ** levels or clip_shape[2] % 2 ** levels:
        raise ValueError(f"height and width must be divisible by {2 ** levels} (one halving "
                         f"per entry of filters), got {clip_shape[1]} x {clip_shape[2]}.")


def video_encoder(clip_shape=(8, 32, 32, 1), latent_dim=16, num_classes=None,
                  filters=(16, 32, 64), hidden_units=256, name="video_encoder"):
    """A video VAE's encoder q(z | clip[, label]): factorised space-time blocks that halve
    height and width (`filters` channels each), then the Gaussian's mean and log-variance of
    one z for the whole clip. With `num_classes` it also takes integer labels, joined as a
    one-hot vector after the convolutions. The same contract as
    `course_lib.models.vae.build_encoder`, so `VAE` and `CVAE` train it unchanged."""
    _check_clip_shape(clip_shape, len(filters))
    clips = keras.Input(clip_shape, name="clips")
    x = clips
    for i, f in enumerate(filters):
        x = _space_time(x, f, 2, f"down{i + 1}")
    x = layers.Flatten()(x)
    inputs = [clips]
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        x = layers.Concatenate()([x, _label_code(labels, num_classes, x.dtype)])
    x = layers.Dense(hidden_units, activation="relu")(x)
    mean = layers.Dense(latent_dim, dtype="float32", name="z_mean")(x)
    log_var = layers.Dense(latent_dim, dtype="float32", name="z_log_var")(x)
    return keras.Model(inputs if num_classes else clips, [mean, log_var], name=name)


def video_decoder(clip_shape=(8, 32, 32, 1), latent_dim=16, num_classes=None,
                  filters=(64, 32, 16), hidden_units=256, name="video_decoder"):
    """A video VAE's decoder p(clip | z[, label]): dense layers from z (and the label's
    one-hot vector) to every frame at 1/2**len(filters) of the size, then factorised
    space-time blocks that double height and width, and per-pixel logits (float32) of the
    whole clip. The same contract as `course_lib.models.vae.build_decoder`."""
    _check_clip_shape(clip_shape, len(filters))
    frames, height, width, channels = clip_shape
    z = keras.Input((latent_dim,), name="z")
    inputs, h = [z], z
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        h = layers.Concatenate()([h, _label_code(labels, num_classes, z.dtype)])
    scale = 2 ** len(filters)
    start = (frames, height // scale, width // scale, filters[0])
    h = layers.Dense(hidden_units, activation="relu")(h)
    h = layers.Dense(start[0] * start[1] * start[2] * start[3], activation="relu")(h)
    h = layers.Reshape(start)(h)
    for i, f in enumerate(filters):
        h = _space_time(h, f, 2, f"up{i + 1}", transpose=True)
    logits = layers.Conv3D(channels, (1, 3, 3), padding="same", dtype="float32",
                           name="logits")(h)
    return keras.Model(inputs if num_classes else z, logits, name=name)


def frame_enhancer(context=0, channels=3, filters=32, depth=5, name=None):
    """A Keras model that restores a frame from itself and its neighbours: input the degraded
    frames t - context .. t + context, (batch, 2 * context + 1, H, W, channels); output frame
    t restored, (batch, H, W, channels), as the degraded frame t plus a change computed by
    `depth` 3 x 3 convolutions (ReLU) of all the frames stacked as channels and a
    zero-initialised output convolution: untrained, it returns its input (the "do nothing"
    baseline), and it learns only what the degradation took away. `context` 0 gives a
    single-frame model. For super-resolution, feed frames already upscaled with bicubic
    interpolation: it then learns what bicubic misses (the residual design of VDSR, Kim et
    al. 2016). Any H, W."""
    if context < 0 or depth < 1:
        raise ValueError(f"context must be at least 0 and depth at least 1, got {context}, "
                         f"{depth}.")
    frames = keras.Input((2 * context + 1, None, None, channels), name="degraded_frames")
    x = ops.concatenate([frames[:, t] for t in range(2 * context + 1)], axis=-1)
    for i in range(depth):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
    change = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros",
                           name="change", dtype="float32")(x)
    restored = ops.cast(frames[:, context], "float32") + change
    return keras.Model(frames, restored,
                       name=name or ("frame_enhancer" if context == 0 else "clip_enhancer"))
