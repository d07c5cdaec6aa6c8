"""Classical video enhancement, the baselines a learned enhancer must beat, and how to score
enhancement over time.

    downscale, bicubic_upscale   2x super-resolution's input and its classical answer
    temporal_average             denoising by averaging each frame with its neighbours
    fade                         a faded, colour-cast copy of a clip (a degradation to undo)
    gray_world                   white balance: every channel given the same mean
    equalize                     contrast: histogram equalisation or CLAHE, frame by frame
    brightness_flicker           how much a clip's brightness jumps from frame to frame
    colour_cast                  how far a clip is from grey on average (no reference needed)
    clip_scores                  mean PSNR and SSIM of restored frames against the originals
    frame_windows_around         every frame with its neighbours, for a multi-frame enhancer
    paired_crops                 random crops of (degraded, original) pairs to train on

Clips are float arrays (T, H, W, C) with values in [0, 1].
"""

import numpy as np
import tensorflow as tf

from course_lib import metrics


def _check_clip(clip, name="clip"):
    clip = np.asarray(clip, np.float32)
    if clip.ndim != 4:
        raise ValueError(f"{name} must be (time, height, width, channels), got shape "
                         f"{clip.shape}.")
    return clip


def downscale(clip, factor=2):
    """Each frame shrunk by `factor` with area averaging (each output pixel the mean of a
    factor x factor block): the low-resolution input of super-resolution. Height and width
    must be divisible by `factor`."""
    clip = _check_clip(clip)
    height, width = clip.shape[1:3]
    if height % factor or width % factor:
        raise ValueError(f"frames of {height} x {width} are not divisible by {factor}: crop "
                         f"them first.")
    return tf.image.resize(clip, (height // factor, width // factor), "area").numpy()


def bicubic_upscale(clip, factor=2):
    """Each frame enlarged by `factor` with bicubic interpolation, clipped to [0, 1]: the
    classical super-resolution every learned model must beat."""
    clip = _check_clip(clip)
    size = (clip.shape[1] * factor, clip.shape[2] * factor)
    return np.clip(tf.image.resize(clip, size, "bicubic").numpy(), 0.0, 1.0)


def temporal_average(clip, radius=1):
    """Denoising by time alone: frame t becomes the mean of frames t - radius .. t + radius
    (fewer at the ends of the clip). Independent noise falls by a factor of about
    sqrt(2 radius + 1); whatever moves is blurred along its path."""
    clip = _check_clip(clip)
    if radius < 0:
        raise ValueError(f"radius must be at least 0, got {radius}.")
    num_frames = len(clip)
    return np.stack([clip[max(0, t - radius):t + radius + 1].mean(axis=0)
                     for t in range(num_frames)]).astype(np.float32)


def gray_world(clip):
    """Gray-world white balance (Buchsbaum 1980), frame by frame: the scene is assumed grey
    on average, so each colour channel is scaled to make its mean equal to the mean of all
    channels; values clipped to [0, 1]. A channel that is all zero is left at zero."""
    clip = _check_clip(clip)
    means = clip.mean(axis=(1, 2), keepdims=True)  # (T, 1, 1, C)
    gains = means.mean(axis=-1, keepdims=True) / np.maximum(means, 1e-6)
    return np.clip(clip * np.where(means > 0, gains, 0.0), 0.0, 1.0).astype(np.float32)


def equalize(clip, method="clahe", clip_limit=0.01):
    """Contrast enhancement with scikit-image, frame by frame: "histogram" (global histogram
    equalisation, `skimage.exposure.equalize_hist`, on each channel) or "clahe"
    (contrast-limited adaptive histogram equalisation, `skimage.exposure.equalize_adapthist`,
    on the brightness of colour frames). Each frame is mapped on its own, so a clip may
    flicker: see `brightness_flicker`."""
    from skimage import exposure

    clip = _check_clip(clip)
    if method == "histogram":
        frames = [np.stack([exposure.equalize_hist(frame[..., c])
                            for c in range(frame.shape[-1])], axis=-1) for frame in clip]
    elif method == "clahe":
        frames = [exposure.equalize_adapthist(frame if frame.shape[-1] == 3 else frame[..., 0],
                                              clip_limit=clip_limit) for frame in clip]
        frames = [f if f.ndim == 3 else f[..., None] for f in frames]
    else:
        raise ValueError(f'method must be "histogram" or "clahe", got {method!r}.')
    return np.clip(np.stack(frames), 0.0, 1.0).astype(np.float32)


def brightness_flicker(clip):
    """Temporal flicker: the mean absolute change of a frame's mean brightness (over pixels
    and channels) from one frame to the next. Compare an enhanced clip's value with its
    original's: an enhancement that maps each frame on its own adds flicker the original
    did not have."""
    clip = _check_clip(clip)
    if len(clip) < 2:
        raise ValueError("flicker needs at least 2 frames.")
    return float(np.abs(np.diff(clip.mean(axis=(1, 2, 3)))).mean())


def clip_scores(restored, original):
    """Mean PSNR (dB) and SSIM over the frames of a clip, values in [0, 1], as a dict
    {"psnr", "ssim"} of floats (`course_lib.metrics`, SSIM averaged over channels)."""
    restored, original = _check_clip(restored, "restored"), _check_clip(original, "original")
    if restored.shape != original.shape:
        raise ValueError(f"restored {restored.shape} and original {original.shape} differ.")
    return {"psnr": float(np.mean(metrics.psnr(restored, original, value_range=(0, 1)))),
            "ssim": float(np.mean(metrics.ssim(restored, original, value_range=(0, 1))))}


def frame_windows_around(clip, context):
    """Every frame t of a clip with its neighbours t - context .. t + context, as
    (T, 2 * context + 1, H, W, C); at the ends of the clip the nearest frame is repeated.
    The input of `course_lib.models.video.frame_enhancer`."""
    clip = _check_clip(clip)
    index = np.clip(np.arange(len(clip))[:, None] + np.arange(-context, context + 1), 0,
                    len(clip) - 1)
    return clip[index]


def colour_cast(clip):
    """A no-reference measure of a colour cast: the gap between the largest and the smallest
    channel mean, averaged over frames (0 for a scene that is grey on average, the
    gray-world assumption)."""
    clip = _check_clip(clip)
    means = clip.mean(axis=(1, 2))  # (T, C)
    return float((means.max(axis=1) - means.min(axis=1)).mean())


def paired_crops(inputs, targets, size, copies, seed=0):
    """Training pairs for an enhancer: `copies` random size x size crops of every example,
    the same window in the input and its target.

    Args:
        inputs: (N, ..., H, W, C), e.g. `frame_windows_around` output (N, k, H, W, C).
        targets: (N, H, W, C).

    Returns:
        (crops of inputs, crops of targets), each with `copies * N` examples.
    """
    inputs, targets = np.asarray(inputs, np.float32), np.asarray(targets, np.float32)
    if len(inputs) != len(targets) or inputs.shape[-3:-1] != targets.shape[-3:-1]:
        raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} must be the same "
                         f"number of examples of the same height and width.")
    height, width = targets.shape[-3:-1]
    if size > min(height, width):
        raise ValueError(f"crops of {size} do not fit frames of {height} x {width}.")
    rng = np.random.default_rng(seed)
    crops_in, crops_out = [], []
    for _ in range(copies):
        for x, y in zip(inputs, targets):
            top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
            crops_in.append(x[..., top:top + size, left:left + size, :])
            crops_out.append(y[top:top + size, left:left + size])
    return np.stack(crops_in), np.stack(crops_out)


def fade(clip, contrast=0.5, gains=(1.0, 0.85, 0.6)):
    """A faded, colour-cast copy of a clip (as old film or a badly set camera gives): each
    channel c becomes (1 - contrast) / 2 + contrast * gains[c] * x, so contrast shrinks
    around mid-grey and the channels are dimmed unevenly (the default: a warm cast).
    The same mapping for every frame: a faded clip does not flicker."""
    clip = _check_clip(clip)
    gains = np.asarray(gains, np.float32)
    if gains.shape != clip.shape[-1:]:
        raise ValueError(f"give one gain per channel: {clip.shape[-1]} channels, gains "
                         f"{tuple(gains)}.")
    return np.clip((1 - contrast) / 2 + contrast * clip * gains, 0.0, 1.0).astype(np.float32)
