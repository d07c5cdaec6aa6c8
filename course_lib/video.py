"""The baselines every video predictor must beat, and scores per horizon.

    copy_last              every future frame is the last frame seen
    linear_extrapolation   each pixel continues its last change: x_t + h (x_t - x_{t-1})
    frame_average          every future frame is the mean of the frames seen
    horizon_scores         PSNR and SSIM of predicted frames, one value per horizon

Frames are float arrays (..., time, height, width, channels) with values in [0, 1]; `past`
is (batch, past_frames, H, W, C) and predictions are (batch, horizon, H, W, C).
"""

import numpy as np
import tensorflow as tf

from course_lib import metrics

MAX_PSNR = 100.0  # dB given to a frame predicted exactly (the PSNR would be infinite)


def _check_past(past, needed, name):
    past = np.asarray(past, np.float32)
    if past.ndim != 5:
        raise ValueError(f"{name} needs past frames (batch, time, height, width, channels), "
                         f"got shape {past.shape}.")
    if past.shape[1] < needed:
        raise ValueError(f"{name} needs at least {needed} past frame(s), got {past.shape[1]}.")
    return past


def _check_horizon(horizon):
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}.")


def copy_last(past, horizon):
    """Predicts that nothing moves: the last frame, `horizon` times."""
    past = _check_past(past, 1, "copy_last")
    _check_horizon(horizon)
    return np.repeat(past[:, -1:], horizon, axis=1)


def linear_extrapolation(past, horizon):
    """Predicts that every pixel keeps changing as it just did: frame t + h is
    x_t + h (x_t - x_{t-1}), clipped to [0, 1]."""
    past = _check_past(past, 2, "linear_extrapolation")
    _check_horizon(horizon)
    last, change = past[:, -1:], past[:, -1:] - past[:, -2:-1]
    steps = np.arange(1, horizon + 1, dtype=np.float32).reshape(1, -1, 1, 1, 1)
    return np.clip(last + steps * change, 0.0, 1.0)


def frame_average(past, horizon):
    """Predicts the mean of the past frames, `horizon` times (what a blurry model does)."""
    past = _check_past(past, 1, "frame_average")
    _check_horizon(horizon)
    return np.repeat(past.mean(axis=1, keepdims=True), horizon, axis=1)


def horizon_scores(predicted, target):
    """Mean PSNR (dB) and SSIM of each predicted frame against the true one, per horizon.

    A frame's PSNR is computed on its own and then averaged over the batch (as video
    prediction papers report it); an exact prediction counts as `MAX_PSNR`.

    Returns:
        a dict with "psnr" and "ssim", each a float64 array (horizon,).
    """
    predicted, target = np.asarray(predicted, np.float32), np.asarray(target, np.float32)
    if predicted.shape != target.shape or predicted.ndim != 5:
        raise ValueError(f"predicted and target must both be (batch, horizon, height, width, "
                         f"channels), got {predicted.shape} and {target.shape}.")
    batch, horizon = predicted.shape[:2]
    flat_p = predicted.reshape(batch * horizon, *predicted.shape[2:])
    flat_t = target.reshape(batch * horizon, *target.shape[2:])
    psnr = np.minimum(np.asarray(metrics.psnr(flat_p, flat_t, value_range=(0, 1))), MAX_PSNR)
    # tf.image.ssim: the same Gaussian-window SSIM as `metrics.ssim` (equal within ~1e-7
    # here) in float32 kernels, about ten times faster on the thousands of frames scored
    ssim = tf.image.ssim(flat_p, flat_t, max_val=1.0).numpy().astype(np.float64)
    return {"psnr": psnr.reshape(batch, horizon).mean(axis=0),
            "ssim": ssim.reshape(batch, horizon).mean(axis=0)}
