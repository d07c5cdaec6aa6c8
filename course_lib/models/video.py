"""Video predictors that chapter 5's notebooks build and reuse.

    residual_frame_predictor   past frames stacked as channels -> a convolutional network ->
                               a change added to the last frame (so that "nothing moves" is
                               the easiest thing to learn, as copy-last is the baseline)
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
