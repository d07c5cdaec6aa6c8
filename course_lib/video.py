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
    digit_positions        where a digit is in each frame (the brightest window)
    digit_crops            the window around the digit of each frame, for the digit judge
    motion_direction       which way each clip's digit moves (right, left, down, up)
    frame_change           mean absolute change between consecutive frames, per clip
    window_change          the same after following the digit (motion compensated)
    label_agreement        share of a clip's frames that get its most common label
    score_digit_clips      judge accuracy, FID, direction and temporal consistency of clips
    independent_frames     clips whose frames come from different clips (a control)

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


def digit_positions(frames, digit_size=16):
    """Where the digit is in each frame: the top-left (row, column) of the
    `digit_size` x `digit_size` window that holds the most brightness (the first such window
    in reading order on a tie).

    Args:
        frames: (..., height, width, 1) in [0, 1], e.g. clips (N, T, H, W, 1).

    Returns:
        int (..., 2).
    """
    frames = np.asarray(frames, np.float32)
    if frames.ndim < 3 or frames.shape[-1] != 1:
        raise ValueError(f"frames must be (..., height, width, 1), got shape {frames.shape}.")
    if min(frames.shape[-3:-1]) < digit_size:
        raise ValueError(f"a {digit_size} x {digit_size} window does not fit frames of "
                         f"{frames.shape[-3]} x {frames.shape[-2]}.")
    flat = frames.reshape(-1, *frames.shape[-3:])
    sums = tf.nn.avg_pool2d(flat, digit_size, 1, "VALID").numpy()[..., 0]
    rows, cols = np.unravel_index(sums.reshape(len(flat), -1).argmax(axis=1), sums.shape[1:])
    return np.stack([rows, cols], axis=-1).reshape(*frames.shape[:-3], 2)


def digit_crops(frames, digit_size=16):
    """The `digit_size` x `digit_size` window around the digit of each frame (see
    `digit_positions`): (..., digit_size, digit_size, 1), e.g. for the digit judge."""
    frames = np.asarray(frames, np.float32)
    positions = digit_positions(frames, digit_size).reshape(-1, 2)
    flat = frames.reshape(-1, *frames.shape[-3:])
    crops = np.stack([image[r:r + digit_size, c:c + digit_size]
                      for image, (r, c) in zip(flat, positions)])
    return crops.reshape(*frames.shape[:-3], digit_size, digit_size, frames.shape[-1])


def motion_direction(clips, digit_size=16, num_frames=None):
    """The direction each clip's digit moves, as an index into
    `course_lib.data.video.DIRECTIONS` (right, left, down, up): the larger component of the
    displacement of its window (`digit_positions`) from the first frame to frame
    `num_frames - 1` (default: half the clip, before `directed_digits` lets it bounce).

    Args:
        clips: (N, T, H, W, 1).

    Returns:
        int (N,); a digit that does not move counts as moving right.
    """
    clips = np.asarray(clips, np.float32)
    if clips.ndim != 5:
        raise ValueError(f"clips must be (clips, time, height, width, 1), got {clips.shape}.")
    num_frames = num_frames or max(2, clips.shape[1] // 2 + 1)
    positions = digit_positions(clips[:, [0, num_frames - 1]], digit_size)
    down, right = (positions[:, 1] - positions[:, 0]).T
    return np.where(np.abs(right) >= np.abs(down), np.where(right >= 0, 0, 1),
                    np.where(down > 0, 2, 3))


def frame_change(clips):
    """A temporal-consistency score: the mean absolute difference between consecutive
    frames of each clip, over every pixel and every pair of frames. Compare a generator's
    value with real clips': far higher means flicker or jumps, far lower a frozen or blurred
    clip.

    Args:
        clips: (N, T, H, W, C), T >= 2.

    Returns:
        float64 (N,).
    """
    clips = np.asarray(clips, np.float64)
    if clips.ndim != 5 or clips.shape[1] < 2:
        raise ValueError(f"clips must be (clips, time, height, width, channels) with at least "
                         f"2 frames, got {clips.shape}.")
    return np.abs(np.diff(clips, axis=1)).mean(axis=(1, 2, 3, 4))


def window_change(clips, digit_size=16):
    """A motion-compensated temporal-consistency score for clips of one moving digit: the
    mean absolute difference between the digit's windows (`digit_crops`) in consecutive
    frames. Following the digit takes its motion out, so what is left is how much the digit
    itself changes: 0 for a rigid digit that only moves (every real clip of
    `course_lib.data.video`), more for a digit that changes shape or style from frame to
    frame. (The warping error of Lai et al. 2018 is the same idea with optical flow.)

    Args:
        clips: (N, T, H, W, 1) in [0, 1], T >= 2.

    Returns:
        float64 (N,).
    """
    return frame_change(digit_crops(clips, digit_size))


def label_agreement(frame_labels):
    """A temporal-consistency score: for each clip, the share of its frames given the label
    most of its frames get (e.g. the judge's digit for each frame). 1: every frame shows the
    same thing; lower: the content changes identity from frame to frame.

    Args:
        frame_labels: int (N, T).

    Returns:
        float64 (N,) in [1/T, 1].
    """
    frame_labels = np.asarray(frame_labels)
    if frame_labels.ndim != 2 or not np.issubdtype(frame_labels.dtype, np.integer):
        raise ValueError(f"frame_labels must be integers (clips, time), got "
                         f"{frame_labels.dtype} {frame_labels.shape}.")
    counts = np.stack([np.bincount(row, minlength=frame_labels.max() + 1)
                       for row in frame_labels])
    return counts.max(axis=1) / frame_labels.shape[1]


def score_digit_clips(judge, clips, digits, directions, real_clips, digit_size=16):
    """How good clips of moving digits are, frame by frame and over time, for a generator
    asked for a digit and a direction (`course_lib.data.video.directed_digits`).

    Args:
        judge: the digit judge (`course_lib.judge.load_judge()`).
        clips: (N, T, H, W, 1) in [0, 1], generated (or real, for reference).
        digits, directions: int (N,): what each clip was asked to show.
        real_clips: real clips (M, T, H, W, 1) in [0, 1]: the reference of the FID.

    Returns:
        a dict of floats: "accuracy" (share of frames whose digit window the judge reads as
        the requested digit), "fid" (judge FID of the digit windows against the real clips'),
        "direction_accuracy" (share of clips moving the requested way, `motion_direction`),
        "frame_change" (mean `frame_change`), "window_change" (mean `window_change`) and
        "label_agreement" (mean `label_agreement` of the judge's reading of each frame).
    """
    clips, digits = np.asarray(clips, np.float32), np.asarray(digits)
    num_clips, num_frames = clips.shape[:2]
    crops = digit_crops(clips, digit_size).reshape(-1, digit_size, digit_size, 1) * 2 - 1
    real = digit_crops(real_clips, digit_size).reshape(-1, digit_size, digit_size, 1) * 2 - 1
    read = judge.predict(crops).argmax(axis=1)
    return {
        "accuracy": float(np.mean(read == np.repeat(digits, num_frames))),
        "fid": float(judge.fid(crops, real)),
        "direction_accuracy": float(np.mean(motion_direction(clips, digit_size) == directions)),
        "frame_change": float(frame_change(clips).mean()),
        "window_change": float(window_change(clips, digit_size).mean()),
        "label_agreement": float(label_agreement(read.reshape(num_clips, num_frames)).mean()),
    }


def independent_frames(clips, groups, seed=0):
    """A control for temporal-consistency scores: frame t of each clip replaced by frame t of
    a random clip of the same group (e.g. the same caption), drawn separately for every
    frame. Each frame is as good as before, so per-frame scores (judge accuracy, FID) do not
    change; what ties one frame to the next (the same digit, drawn the same way, one path)
    is gone, as in a generator that draws every frame on its own.

    Args:
        clips: (N, T, H, W, C).
        groups: (N,) any labels; frames are only exchanged within a group.

    Returns:
        an array of the clips' shape and dtype.
    """
    clips, groups = np.asarray(clips), np.asarray(groups)
    if clips.ndim != 5 or groups.shape != clips.shape[:1]:
        raise ValueError(f"clips must be (clips, time, height, width, channels) and groups "
                         f"one label per clip, got {clips.shape} and {groups.shape}.")
    rng = np.random.default_rng(seed)
    mixed = np.empty_like(clips)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        for t in range(clips.shape[1]):
            mixed[members, t] = clips[rng.permutation(members), t]
    return mixed
