"""Video predictors that chapter 5's notebooks build and reuse.

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
