"""Figures for the course: image grids, training curves, side-by-side comparisons and
inline animations. Every figure has a title; every plot with axes has axis labels.

Images follow the course convention (float32 in [-1, 1], channels-last); pass
`value_range=(0, 1)` for images already in display range. NumPy arrays and tensors both work.
"""

import math
import re
from html import escape

import matplotlib.pyplot as plt
import numpy as np


def _to_numpy(images):
    """NumPy float32 copy of an array, tensor or list of images."""
    if hasattr(images, "numpy"):
        images = images.numpy()
    return np.asarray(images, dtype=np.float32)


def _to_unit_range(images, value_range):
    """Maps values from `value_range` to [0, 1], clipping what falls outside."""
    low, high = value_range
    return np.clip((_to_numpy(images) - low) / (high - low), 0.0, 1.0)


def _as_batch(images):
    """(N, H, W), (N, H, W, 1) or (N, H, W, 3) -> (N, H, W, C) with C = 1 or 3."""
    images = _to_numpy(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected images (N, H, W), (N, H, W, 1) or (N, H, W, 3), got "
                         f"shape {images.shape}.")
    return images


def image_grid(images, ncols=8, value_range=(-1, 1), border=1, border_value=1.0):
    """Tiles a batch of images into one image, with a border around every tile.

    Args:
        images: (N, H, W), (N, H, W, 1) or (N, H, W, 3), array or tensor.
        ncols: tiles per row (fewer if there are fewer images).
        value_range: the range the values are in, (-1, 1) or (0, 1); mapped to [0, 1].
        border: border width in pixels, between tiles and around the grid.
        border_value: brightness of the border (and of empty tiles), in [0, 1].

    Returns:
        float32 array in [0, 1]: (rows * (H + border) + border, ncols * (W + border) + border)
        for gray images, with a trailing 3 for RGB; rows = ceil(N / ncols).

    Example:
        >>> image_grid(np.zeros((10, 16, 16, 1)), ncols=4).shape
        (52, 69)
    """
    images = _to_unit_range(_as_batch(images), value_range)
    num, height, width, channels = images.shape
    ncols = max(1, min(ncols, num))
    nrows = math.ceil(num / ncols)
    grid = np.full((nrows * (height + border) + border, ncols * (width + border) + border,
                    channels), border_value, np.float32)
    for i, image in enumerate(images):
        top = border + (i // ncols) * (height + border)
        left = border + (i % ncols) * (width + border)
        grid[top : top + height, left : left + width] = image
    return grid[..., 0] if channels == 1 else grid


def _imshow(ax, image):
    """Shows a [0, 1] image (gray 2-D or RGB) without interpolation or ticks."""
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def show_images(images, title, ncols=8, labels=None, value_range=(-1, 1), ax=None, size=1.0):
    """Shows a batch of images as a grid, with a title and optional per-image captions.

    Args:
        images: (N, H, W), (N, H, W, 1) or (N, H, W, 3), array or tensor.
        title: figure title (required: every figure of the course says what it shows).
        ncols: images per row.
        labels: optional N captions (class names, scores, ...), one above each image.
        value_range: the range the values are in, (-1, 1) or (0, 1).
        ax: draw into this matplotlib Axes instead of a new figure (not with labels).
        size: inches per image in a new figure.

    Returns:
        The matplotlib Figure.

    Example:
        >>> x_train, y_train = load_digits()
        >>> show_images(x_train[:16], "Training digits", labels=y_train[:16])
    """
    images = _as_batch(images)
    num = len(images)
    ncols = max(1, min(ncols, num))
    nrows = math.ceil(num / ncols)
    if labels is None:
        if ax is None:
            _, ax = plt.subplots(figsize=(size * ncols, size * nrows + 0.4), layout="constrained")
        _imshow(ax, image_grid(images, ncols, value_range))
        ax.set_title(title)
        return ax.figure
    if ax is not None:
        raise ValueError("labels need a figure of their own: pass ax=None.")
    if len(labels) != num:
        raise ValueError(f"got {len(labels)} labels for {num} images.")
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.25) * nrows + 0.4),
                             squeeze=False, layout="constrained")
    images = _to_unit_range(images, value_range)
    for i, cell in enumerate(axes.ravel()):
        if i < num:
            _imshow(cell, images[i, ..., 0] if images.shape[-1] == 1 else images[i])
            cell.set_title(str(labels[i]), fontsize=8)
        else:
            cell.axis("off")
    fig.suptitle(title)
    return fig


def compare_images(rows, title, ncols=8, value_range=(-1, 1), size=1.0):
    """Shows rows of images one above another, such as degraded / restored / original.

    Args:
        rows: dict {row name: images}; the first `ncols` images of each row are shown, so
            image i of every row sits in the same column.
        title: figure title.
        ncols: images per row.
        value_range: the range the values are in, (-1, 1) or (0, 1).
        size: inches per image.

    Returns:
        The matplotlib Figure, one Axes per row, the row name as its y label.

    Example:
        >>> compare_images({"noisy": x + noise, "denoised": model(x + noise), "original": x},
        ...                "Denoising on test digits")
    """
    if not rows:
        raise ValueError("rows is empty: pass {name: images, ...}.")
    label_width = 0.1 * max(len(str(name)) for name in rows)  # inches for the row names
    fig, axes = plt.subplots(len(rows), 1,
                             figsize=(size * ncols + label_width, size * len(rows) + 0.4),
                             squeeze=False, layout="constrained")
    for ax, (name, images) in zip(axes[:, 0], rows.items()):
        batch = _as_batch(images)[:ncols]
        _imshow(ax, image_grid(batch, ncols, value_range))
        # Horizontal row names, right-aligned beside the row: long names do not overlap.
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
    fig.suptitle(title)
    return fig


def plot_history(history, title, keys=None, logy=False, ax=None, ylabel="value"):
    """Plots training curves: one line per metric, validation curves dashed.

    Args:
        history: the `keras.callbacks.History` that `fit` returns, or a dict of lists.
        title: plot title.
        keys: metrics to plot; None for all of them.
        logy: log-scale the y axis (for losses that fall over orders of magnitude).
        ax: draw into this Axes instead of a new figure.
        ylabel: the y axis's label (what the values are, and their unit).

    Returns:
        The matplotlib Figure.

    Example:
        >>> history = model.fit(dataset, epochs=num_epochs)
        >>> plot_history(history, "DCGAN losses", keys=["d_loss", "g_loss"])
    """
    logs = getattr(history, "history", history)
    keys = list(logs) if keys is None else list(keys)
    missing = [k for k in keys if k not in logs]
    if missing:
        raise KeyError(f"no {missing} in the history; it has {list(logs)}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    colors = {}
    for key in keys:
        base = key.removeprefix("val_")
        color = colors.setdefault(base, f"C{len(colors)}")
        values = np.asarray(logs[key], dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, label=key, color=color,
                linestyle="--" if key.startswith("val_") else "-")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax.figure


def _clip_frames(frames, value_range, ncols):
    """Frames as animate_frames and save_clip take them -> (T, H, W) or (T, H, W, 3) in
    [0, 1], each batch of a (T, N, H, W, C) clip tiled into a grid."""
    frames = _to_numpy(frames)
    if frames.ndim == 5 or (frames.ndim == 4 and frames.shape[-1] not in (1, 3)):
        return np.stack([image_grid(f, ncols, value_range) for f in frames])
    frames = _to_unit_range(frames, value_range)
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if frames.ndim not in (3, 4):
        raise ValueError(f"expected frames (T, H, W), (T, H, W, C) or (T, N, H, W, C), got "
                         f"shape {frames.shape}.")
    return frames


def save_clip(frames, path, fps=10, value_range=(-1, 1), ncols=8, scale=1):
    """Writes frames to a video file that plays anywhere: a looping GIF or an H.264 MP4.

    Args:
        frames: as for `animate_frames`: (T, H, W), (T, H, W, C), or (T, N, H, W, C) with each
            frame's batch tiled into a grid (clips side by side).
        path: the file to write; its suffix, ".gif" or ".mp4", picks the format.
        fps: frames per second.
        value_range: the range the values are in, (-1, 1) or (0, 1).
        ncols: images per row when each frame is a batch.
        scale: an integer factor to enlarge small frames by (each pixel repeated).

    Returns:
        the `pathlib.Path` written.
    """
    from pathlib import Path

    import imageio.v3 as iio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"save_clip writes .gif or .mp4 files, got {path.name!r}: choose "
                         "one of those suffixes.")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a whole number of at least 1, got {scale}.")
    frames = _clip_frames(frames, value_range, ncols)
    frames = np.round(frames * 255).astype(np.uint8)
    frames = frames.repeat(int(scale), axis=1).repeat(int(scale), axis=2)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        iio.imwrite(path, frames, plugin="pillow", duration=1000 / fps, loop=0)
    else:  # H.264 with yuv420p needs even sides: pad with the last row or column
        height, width = frames.shape[1:3]
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        iio.imwrite(path, frames, plugin="pyav", codec="libx264", fps=fps)
    return path


def animate_frames(frames, title, interval=100, value_range=(-1, 1), ncols=8, size=4.0):
    """Makes an inline animation for a notebook (such as a sampler turning noise into digits).

    The frames are embedded as PNGs in JavaScript HTML: it works offline, without ffmpeg.

    Args:
        frames: (T, H, W), (T, H, W, C) or a list of such images; or (T, N, H, W, C), a
            batch per frame, each shown as a grid.
        title: animation title; the frame number is added to it.
        interval: milliseconds between frames.
        value_range: the range the values are in, (-1, 1) or (0, 1).
        ncols: images per row when each frame is a batch.
        size: figure width in inches.

    Returns:
        `IPython.display.HTML`; the last expression of a cell shows it.

    Example:
        >>> animate_frames(x_t_per_step[::50], "DDPM sampling, every 50th step")
    """
    from IPython.display import HTML
    from matplotlib import animation

    frames = _clip_frames(frames, value_range, ncols)
    fig, ax = plt.subplots(figsize=(size, size * frames.shape[1] / frames.shape[2] + 0.6),
                           layout="constrained")
    _imshow(ax, frames[0])
    image = ax.images[0]

    def draw(t):  # the frame counter on a line of its own: a long title still fits
        image.set_data(frames[t])
        ax.set_title(f"{title}\nframe {t + 1}/{len(frames)}", fontsize=9)
        return (image,)

    draw(0)
    anim = animation.FuncAnimation(fig, draw, frames=len(frames), interval=interval, blit=False)
    html = anim.to_jshtml()
    plt.close(fig)  # otherwise the notebook also shows the last frame as a still figure
    return HTML(offline_animation_html(html, title))


# Icons for matplotlib's animation buttons, drawn as inline SVG (16 x 16 grid). Matplotlib's
# own page takes them from Font Awesome on a CDN: offline its buttons are blank.
_BUTTON_ICONS = {
    "minus": "M3 7h10v2H3z",
    "plus": "M7 3h2v4h4v2H9v4H7V9H3V7h4z",
    "play": "M4 2l10 6-10 6z",
    "pause": "M3 2h4v12H3zM9 2h4v12H9z",
    "step-forward": "M2 2l9 6-9 6zM11 2h3v12h-3z",
    "step-backward": "M14 2L5 8l9 6zM2 2h3v12H2z",
    "fast-forward": "M0 2l8 6-8 6zM7 2l8 6-8 6z",
    "fast-backward": "M16 2L8 8l8 6zM9 2L1 8l8 6z",
}
_ICON = re.compile(r'<i class="fa fa-([a-z-]+)( fa-flip-horizontal)?"></i>')
_FONT_AWESOME = re.compile(r'<link rel="stylesheet"\s+href="[^"]*font-awesome[^"]*">')


def offline_animation_html(html, title):
    """Makes matplotlib's `to_jshtml()` page work offline and degrade gracefully.

    The buttons' icons become inline SVG (no icon font from a CDN); the image shows the first
    frame before any script runs and has `title` as alternative text; a note, removed by the
    animation's own script, tells the reader of a notebook whose scripts are blocked (an
    untrusted notebook in JupyterLab) how to make the controls work.
    """
    def icon(match):
        name, flip = match.groups()
        if name not in _BUTTON_ICONS:
            raise ValueError(f"no icon for matplotlib's fa-{name} button: add it to _BUTTON_ICONS")
        mirror = ' transform="scale(-1 1)"' if flip else ""
        return (f'<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"{mirror}>'
                f'<path fill="currentColor" d="{_BUTTON_ICONS[name]}"/></svg>')

    html = _ICON.sub(icon, _FONT_AWESOME.sub("", html))
    first = re.search(r'frames\[0\] = "(data:image/[^"]+)"', html, re.DOTALL)
    anim_id = re.search(r'<img id="_anim_img(\w+)">', html)
    if first is None or anim_id is None:
        raise ValueError("matplotlib's animation page changed: no first frame or image id found")
    frame0 = first.group(1).replace("\\\n", "")
    key = anim_id.group(1)
    alt = escape(title, quote=True)
    note = (f'<p id="_anim_note{key}" style="font-size: 0.85em; color: #555">This animation '
            "plays in a trusted notebook: run its cell, or choose File &gt; Trust Notebook.</p>"
            f'<script>document.getElementById("_anim_note{key}").remove();</script>')
    return html.replace(anim_id.group(0),
                        f'<img id="_anim_img{key}" src="{frame0}" alt="{alt}">{note}')
