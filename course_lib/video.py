"""The baselines every video predictor must beat, and scores per horizon.

    copy_last              every future frame is the last frame seen
    linear_extrapolation   each pixel continues its last change: x_t + h (x_t - x_{t-1})
    frame_average          every future frame is the mean of the frames seen
    horizon_scores         PSNR and SSIM of predicted frames, one value per horizon
    rollout                many frames from a one-step predictor, each prediction fed back
    blend_missing_frames   missing frames as a blend of the known frames around them
    moving_box_mask        a square occluder moving across clips (1 visible, 0 missing)
    temporal_fill          each missing pixel from the nearest frame where it is visible
    masked_clip_psnr       PSNR of each clip over its missing pixels only

Frames are float arrays (..., time, height, width, channels) with values in [0, 1]; `past`
is (batch, past_frames, H, W, C) and predictions are (batch, horizon, H, W, C).
"""

import numpy as np
import tensorflow as tf

from course_lib import inpainting, metrics
from course_lib.data.video import bounce

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


def rollout(predict_next, past, steps):
    """Predicts `steps` frames by feeding each prediction back as the newest past frame.

    Args:
        predict_next: a function from a window (batch, P, H, W, C) to the next frame, (batch,
            1, H, W, C) or (batch, H, W, C): e.g. `lambda w: model.predict_on_batch(w)` for a
            model that outputs one frame, or `lambda w: model.predict_on_batch(w)[:, -1:]` for
            a sequence model.
        past: (batch, P, H, W, C), the frames seen.
        steps: how many frames to predict.

    Returns:
        float32 (batch, steps, H, W, C), each prediction clipped to [0, 1]; the window keeps
        its length P, dropping its oldest frame as each prediction joins it.
    """
    window = _check_past(past, 1, "rollout")
    _check_horizon(steps)
    predicted = []
    for _ in range(steps):
        frame = np.asarray(predict_next(window), np.float32)
        frame = np.clip(frame.reshape(window[:, -1:].shape), 0.0, 1.0)
        predicted.append(frame)
        window = np.concatenate([window[:, 1:], frame], axis=1)
    return np.concatenate(predicted, axis=1)


# -- completion: frames or regions missing from a clip -------------------------------------
def moving_box_mask(shape, size, max_speed=3, seed=0):
    """Masks of a square occluder that moves in a straight line and bounces off the edges, as
    a hand or a caption crossing a clip would: 1 where a pixel is visible, 0 where missing.

    Args:
        shape: (N, T, H, W, C) of the clips; all channels of a pixel share its mask value.
        size: the square's side in pixels (at most H and W).
        max_speed: its velocity has integer components in [-max_speed, max_speed].
        seed: the random seed (start positions and velocities).

    Returns:
        float32 array of `shape`.
    """
    if len(shape) != 5:
        raise ValueError(f"shape must be (clips, time, height, width, channels), got {shape}.")
    num, frames, height, width = shape[:4]
    if not 0 < size <= min(height, width):
        raise ValueError(f"size must be in 1..{min(height, width)}, got {size}.")
    rng = np.random.default_rng(seed)
    room = np.array([height - size, width - size])
    missing = np.zeros((num, frames, height, width), bool)
    for n in range(num):
        position = rng.integers(0, room + 1)
        velocity = rng.integers(-max_speed, max_speed + 1, 2)
        for t in range(frames):
            y, x = position
            missing[n, t, y:y + size, x:x + size] = True
            position = position + velocity
            bounce(position, velocity, room)  # as moving digits do
    mask = (~missing).astype(np.float32)[..., None]
    return np.broadcast_to(mask, tuple(shape)).copy()


def temporal_fill(frames, mask):
    """Fills each missing pixel with its value in the nearest frame (in time) where it is
    visible, the earlier frame on a tie; a pixel missing in every frame gets the mean of its
    frame's visible pixels. The classical fill for a static scene behind a moving occluder.

    Args:
        frames: (N, T, H, W, C); mask: the same shape, 1 = visible, 0 = missing.

    Returns:
        float32 (N, T, H, W, C); the visible pixels unchanged.
    """
    frames, mask = np.asarray(frames, np.float32), np.asarray(mask, np.float32)
    if frames.shape != mask.shape or frames.ndim != 5:
        raise ValueError(f"frames and mask must both be (clips, time, height, width, "
                         f"channels), got {frames.shape} and {mask.shape}.")
    visible = mask > 0.5
    filled = np.where(visible, frames, 0.0)
    done = visible.copy()
    for gap in range(1, frames.shape[1]):
        for shift in (-gap, gap):  # the earlier frame first: it wins a tie
            source = np.roll(frames, -shift, axis=1)
            source_visible = np.roll(visible, -shift, axis=1)
            t = np.arange(frames.shape[1]) + shift
            in_clip = ((t >= 0) & (t < frames.shape[1])).reshape(1, -1, 1, 1, 1)
            take = ~done & source_visible & in_clip
            filled = np.where(take, source, filled)
            done |= take
    seen = (frames * visible).sum(axis=(2, 3), keepdims=True)
    mean = seen / np.maximum(visible.sum(axis=(2, 3), keepdims=True), 1)
    return np.where(done, filled, mean).astype(np.float32)


def masked_clip_psnr(predicted, target, mask):
    """PSNR (dB) of each clip over its missing pixels only (mask == 0): the MSE over every
    missing pixel of the clip, all frames together, then 10 log10(1 / MSE), values in [0, 1].

    Returns:
        float64 (N,); a clip with no missing pixel gives nan, an exact fill `MAX_PSNR`.
    """
    predicted, target, mask = (np.asarray(a, np.float64) for a in (predicted, target, mask))
    if not predicted.shape == target.shape == mask.shape or predicted.ndim != 5:
        raise ValueError(f"predicted, target and mask must all be (clips, time, height, width, "
                         f"channels), got {predicted.shape}, {target.shape}, {mask.shape}.")
    # a clip's frames stacked into one tall image: chapter 3's masked PSNR over all of them
    tall = (len(predicted), -1, *predicted.shape[3:])
    psnr = inpainting.masked_psnr(target.reshape(tall), predicted.reshape(tall),
                                  mask.reshape(tall), value_range=(0, 1))
    return np.minimum(psnr, MAX_PSNR)


def blend_missing_frames(clip, known):
    """The interpolation baseline: each unknown frame t of a clip becomes a blend of the
    nearest known frames a < t < b, (1 - w) x_a + w x_b with w = (t - a) / (b - a): the frame
    average for one missing frame, a cross-fade for several.

    Args:
        clip: (T, H, W, C); the unknown frames' values are ignored.
        known: T booleans; the first and the last must be True.

    Returns:
        float32 (T, H, W, C); the known frames unchanged.
    """
    clip, known = np.asarray(clip, np.float32), np.asarray(known, bool)
    if clip.ndim != 4 or known.shape != clip.shape[:1]:
        raise ValueError(f"clip must be (time, height, width, channels) and known one boolean "
                         f"per frame, got {clip.shape} and {known.shape}.")
    if not (known[0] and known[-1]):
        raise ValueError("the first and last frames must be known: a blend needs a known "
                         "frame on each side of every gap (extrapolation is not interpolation).")
    frames = np.flatnonzero(known)
    filled = clip.copy()
    for t in np.flatnonzero(~known):
        b = frames[np.searchsorted(frames, t)]
        a = frames[np.searchsorted(frames, t) - 1]
        w = (t - a) / (b - a)
        filled[t] = (1 - w) * clip[a] + w * clip[b]
    return filled
