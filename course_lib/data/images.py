"""Offline-first images and `tf.data` image pipelines (`course_lib.data`).

Every loader here works without a network connection, so each chapter runs anywhere:

    load_digits          1,797 real handwritten digits (scikit-learn), gray, labelled 0-9
    load_faces           100 real faces (scikit-image's LFW subset), gray, unlabelled
    load_photo_patches   RGB patches cut from six bundled photographs, unlabelled
    image_folder_dataset your own folder of images
    load_dataset         one entry point: a bundled set, your folder, or a TFDS set with a
                         fallback to the closest bundled set when TFDS is out of reach

Conventions (the same across the course):
    images are float32 in [-1, 1], channels-last: (N, image_size, image_size, C);
    labels are int32 (or None for unlabelled sets);
    the same `seed` always gives the same arrays and the same first batch.

The loaders return NumPy arrays (small enough to hold in memory); `make_dataset` turns them
into a `tf.data.Dataset` with the standard recipe: cache, shuffle, batch, prefetch.

For likelihood models of binary pixels (the VAE chapter), `binarize` draws a fixed binary
version of a set and `make_dataset(..., binarize=True)` a new one every epoch ("dynamic
binarisation", as in Burda et al. 2016).
"""

import functools
import socket
import threading
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

SPLITS = ("train", "test", "all")
BUNDLED = ("digits", "faces", "photos")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
# TFDS downloads most datasets from Google Cloud Storage; we probe it to decide "online".
TFDS_HOST = ("storage.googleapis.com", 443)

# Known TFDS names: the bundled set to use offline and the natural image size.
TFDS_FALLBACKS = {
    "mnist": ("digits", 28),
    "fashion_mnist": ("digits", 28),
    "kmnist": ("digits", 28),
    "emnist": ("digits", 28),
    "celeb_a": ("faces", 64),
    "celeb_a_hq": ("faces", 64),
    "lfw": ("faces", 64),
    "cifar10": ("photos", 32),
    "cifar100": ("photos", 32),
    "oxford_flowers102": ("photos", 64),
}
BUNDLED_IMAGE_SIZE = {"digits": 16, "faces": 32, "photos": 32}


# ---------------------------------------------------------------------------------------
# Value ranges
# ---------------------------------------------------------------------------------------


def to_model_range(images):
    """Maps images from [0, 1] (how they are displayed) to [-1, 1] (what models see).

    Args:
        images: NumPy array or tensor with values in [0, 1].

    Returns:
        The same kind of object, with values in [-1, 1].

    Example:
        >>> to_model_range(np.array([0.0, 0.5, 1.0]))
        array([-1.,  0.,  1.])
    """
    return images * 2.0 - 1.0


def to_display_range(images):
    """Maps images from [-1, 1] to [0, 1] for display, clipping what falls outside.

    Generated images often overshoot [-1, 1] a little; clipping keeps `imshow` happy.

    Args:
        images: NumPy array or tensor with values (roughly) in [-1, 1].

    Returns:
        The same kind of object, with values in [0, 1].

    Example:
        >>> to_display_range(np.array([-1.2, 0.0, 1.0]))
        array([0. , 0.5, 1. ])
    """
    images = (images + 1.0) / 2.0
    if tf.is_tensor(images):
        return tf.clip_by_value(images, 0.0, 1.0)
    return np.clip(images, 0.0, 1.0)


# ---------------------------------------------------------------------------------------
# Helpers shared by the loaders
# ---------------------------------------------------------------------------------------


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")


def _split_indices(num_examples, split, test_fraction, seed, stratify=None):
    """Returns the sorted example indices of `split` (a fixed, seeded train/test split).

    With `stratify` (the labels), each class keeps its share in both splits. The test
    indices are disjoint from the train indices, and together they cover every example.
    """
    _check_split(split)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}.")
    if split == "all":
        return np.arange(num_examples)
    rng = np.random.default_rng(seed)
    groups = [np.arange(num_examples)] if stratify is None else [
        np.flatnonzero(stratify == c) for c in np.unique(stratify)
    ]
    test = []
    for group in groups:
        shuffled = rng.permutation(group)
        test.append(shuffled[: int(round(test_fraction * len(group)))])
    is_test = np.zeros(num_examples, dtype=bool)
    is_test[np.concatenate(test)] = True
    return np.flatnonzero(is_test if split == "test" else ~is_test)


def _resize(images, image_size):
    """Resizes a batch (N, H, W, C) to (N, image_size, image_size, C), float32."""
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape[1:3] != (image_size, image_size):
        images = tf.image.resize(images, (image_size, image_size), "bilinear", antialias=True)
    return images.numpy()


def _to_images(images_01, image_size):
    """[0, 1] images (N, H, W, C) -> float32 (N, image_size, image_size, C) in [-1, 1]."""
    images = _resize(images_01, image_size)
    return np.clip(to_model_range(images), -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Bundled data sets (offline)
# ---------------------------------------------------------------------------------------


def load_digits(image_size=16, split="train", test_fraction=0.2, seed=0):
    """Loads scikit-learn's 1,797 real handwritten digits (8x8, values 0..16), upsampled.

    The train/test split is stratified by class and fixed by `seed`, so the test digits
    are never seen in training.

    Args:
        image_size: side of the returned images in pixels (at least 8; bilinear upsampling).
        split: "train", "test" or "all".
        test_fraction: share of each class held out as the test split.
        seed: seed of the split.

    Returns:
        (images, labels): float32 (N, image_size, image_size, 1) in [-1, 1], and int32 (N,)
        with values 0..9. N is 1,438 for "train" and 359 for "test" with the defaults.

    Example:
        >>> x_train, y_train = load_digits(image_size=16)
        >>> x_train.shape, y_train.shape
        ((1438, 16, 16, 1), (1438,))
    """
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 (the digits are 8x8), got {image_size}.")
    from sklearn import datasets

    digits = datasets.load_digits()
    labels = digits.target.astype(np.int32)
    index = _split_indices(len(labels), split, test_fraction, seed, stratify=labels)
    images = digits.images[index, :, :, None] / 16.0  # (N, 8, 8, 1) in [0, 1]
    return _to_images(images, image_size), labels[index]


def load_faces(image_size=32, split="train", test_fraction=0.2, seed=0):
    """Loads the 100 real faces (25x25 gray) bundled with scikit-image, resized.

    `skimage.data.lfw_subset()` holds 200 images: the first 100 are faces from Labeled
    Faces in the Wild and the last 100 are random non-face patches; only the faces are used.
    The set is small: use it to see a model work, not to train a good face generator.

    Args:
        image_size: side of the returned images in pixels.
        split: "train", "test" or "all".
        test_fraction: share of faces held out as the test split.
        seed: seed of the split.

    Returns:
        images: float32 (N, image_size, image_size, 1) in [-1, 1] (N = 80 for "train", 20 for
        "test" with the defaults). The set has no labels.

    Example:
        >>> load_faces(image_size=32).shape
        (80, 32, 32, 1)
    """
    from skimage import data

    faces = data.lfw_subset()[:100]  # (100, 25, 25) in [0, 1]; the rest are non-faces
    index = _split_indices(len(faces), split, test_fraction, seed)
    return _to_images(faces[index, :, :, None], image_size)


@functools.lru_cache(maxsize=1)
def _photos():
    """Decodes the bundled photographs once: a tuple of (name, uint8 (H, W, 3)) pairs."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    photos = [(Path(f).stem, image) for f, image in zip(sample.filenames, sample.images)]
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        photos.append((name, getattr(data, name)()))
    return tuple(photos)


def load_photo_patches(patch_size=32, num_patches=1000, split="train", seed=0,
                       test_fraction=0.2):
    """Cuts RGB patches at random positions from six bundled photographs.

    The photographs are scikit-learn's china and flower and scikit-image's astronaut,
    coffee, chelsea (a cat) and rocket. The test split is held out by region: the bottom
    `test_fraction` of the rows of every photograph is reserved for test patches, and train
    patches come only from the rows above, so no train patch overlaps a test patch.
    A photograph whose region is shorter than `patch_size` gives no patches to that split.

    Args:
        patch_size: side of the square patches in pixels (no resizing: real pixels).
        num_patches: number of patches to cut.
        split: "train" (top rows), "test" (bottom rows) or "all" (anywhere).
        seed: seed of the patch positions (train and test use different streams).
        test_fraction: share of each photograph's rows reserved for the test split.

    Returns:
        images: float32 (num_patches, patch_size, patch_size, 3) in [-1, 1], no labels.

    Example:
        >>> load_photo_patches(patch_size=32, num_patches=256).shape
        (256, 32, 32, 3)
    """
    _check_split(split)
    regions = []  # (photo, first row, last row + 1) of the region this split may use
    for _, photo in _photos():
        height = photo.shape[0]
        boundary = height - int(round(test_fraction * height))
        top, bottom = {"train": (0, boundary), "test": (boundary, height),
                       "all": (0, height)}[split]
        if bottom - top >= patch_size and photo.shape[1] >= patch_size:
            regions.append((photo, top, bottom))
    if not regions:
        raise ValueError(
            f"patch_size={patch_size} is too large for the {split!r} region of every photo; "
            "use a smaller patch_size or a larger test_fraction."
        )
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    patches = np.empty((num_patches, patch_size, patch_size, 3), np.uint8)
    for i, k in enumerate(rng.integers(len(regions), size=num_patches)):
        photo, top, bottom = regions[k]
        row = rng.integers(top, bottom - patch_size + 1)
        col = rng.integers(0, photo.shape[1] - patch_size + 1)
        patches[i] = photo[row : row + patch_size, col : col + patch_size]
    return to_model_range(patches.astype(np.float32) / 255.0)


# ---------------------------------------------------------------------------------------
# Binary images, for likelihoods of binary pixels
# ---------------------------------------------------------------------------------------


def binarize(images, seed=0):
    """Draws each pixel as -1 or 1, with probability (x + 1) / 2 of being 1 (seeded).

    A grey level is read as the probability of ink, so the binary image is a sample of
    independent Bernoulli pixels whose means are the grey image: its average over many
    draws is the original. This is the fixed ("stochastic, drawn once") binarisation used
    for the test sets of likelihood papers (Salakhutdinov & Murray 2008; Burda et al. 2016).

    Args:
        images: array (N, H, W, C) in [-1, 1].
        seed: NumPy seed; the same seed gives the same binary images.

    Returns:
        float32 array of the same shape, with values in {-1, 1}.

    Example:
        >>> x_test, _ = load_digits(split="test")
        >>> np.unique(binarize(x_test, seed=0))
        array([-1.,  1.], dtype=float32)
    """
    images = np.asarray(images, np.float32)
    ink = (images + 1.0) / 2.0
    draws = np.random.default_rng(seed).random(images.shape)
    return np.where(draws < ink, 1.0, -1.0).astype(np.float32)


def _random_binarize(dataset, seed):
    """Binarises the images of each (images[, labels]) batch anew in every epoch (seeded).

    Each pixel becomes 1 with probability (x + 1) / 2 and -1 otherwise, as in `binarize`;
    the seeds come from `Dataset.random(seed)`, so the draws are reproducible for a seed
    and different in every epoch.
    """
    seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(2)

    def draw(element, pair):
        images = element[0] if isinstance(element, tuple) else element
        pair = tf.cast(pair % (2**31 - 1), tf.int32)
        ink = (tf.cast(images, tf.float32) + 1.0) / 2.0
        binary = tf.where(tf.random.stateless_uniform(tf.shape(images), pair) < ink, 1.0, -1.0)
        binary = tf.cast(binary, images.dtype)
        return (binary, element[1]) if isinstance(element, tuple) else binary

    return tf.data.Dataset.zip(dataset, seeds).map(draw, num_parallel_calls=tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------
# tf.data pipelines
# ---------------------------------------------------------------------------------------


def _random_flip(dataset, seed):
    """Flips each image of each (images[, labels]) batch left-right with probability 1/2.

    The random seeds come from `Dataset.random(seed)`, so the flips are reproducible for a
    seed and different in every epoch.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def flip(element, pair):
        images = element[0] if isinstance(element, tuple) else element
        pair = tf.cast(pair % (2**31 - 1), tf.int32)
        keep = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], pair) < 0.5
        images = tf.where(keep, images, tf.reverse(images, axis=[2]))
        return (images, element[1]) if isinstance(element, tuple) else images

    return tf.data.Dataset.zip(dataset, seeds).map(flip, num_parallel_calls=tf.data.AUTOTUNE)


def make_dataset(images, labels=None, batch_size=64, shuffle=True, seed=0, cache=True,
                 drop_remainder=False, augment=None, binarize=False):
    """Builds the standard `tf.data` pipeline: from_tensor_slices, cache, shuffle, batch.

    Args:
        images: array (N, H, W, C) in [-1, 1].
        labels: optional array (N,); the dataset then yields (images, labels) batches.
        batch_size: examples per batch.
        shuffle: shuffle the whole set, seeded, in a new order every epoch.
        seed: seed of the shuffle (and of the augmentation); same seed, same batches.
        cache: keep the examples in memory after the first epoch.
        drop_remainder: drop the last, smaller batch (GANs often prefer equal batches).
        augment: None, "flip" (random left-right flips, seeded), or a function applied to
            each batch of images (for example `keras.layers.RandomFlip("horizontal")`).
        binarize: draw every pixel as -1 or 1 with probability (x + 1) / 2 of 1, anew in
            every epoch (dynamic binarisation; seeded by `seed`), after any augmentation.

    Returns:
        A `tf.data.Dataset` of image batches (batch, H, W, C), or of (images, labels).

    Example:
        >>> x_train, y_train = load_digits()
        >>> dataset = make_dataset(x_train, batch_size=64)
        >>> next(iter(dataset)).shape
        TensorShape([64, 16, 16, 1])
    """
    elements = images if labels is None else (images, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if augment == "flip":
        dataset = _random_flip(dataset, seed)
    elif callable(augment):
        if labels is None:
            dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            dataset = dataset.map(lambda x, y: (augment(x), y),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    elif augment is not None:
        raise ValueError(f'augment must be None, "flip" or a function, got {augment!r}.')
    if binarize:
        dataset = _random_binarize(dataset, seed)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _image_files(folder):
    """All image files under `folder` (recursively), sorted so the order is reproducible."""
    return sorted(
        str(p) for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _can_decode(path):
    try:
        tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        return True
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        return False


def _readable_image_files(path):
    """Lists the image files under `path` that decode, warning about any that do not.

    `keras.utils.image_dataset_from_directory` would stop in the middle of an epoch at the
    first corrupt file, so every file is decoded once here, up front.
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        raise FileNotFoundError(
            f"Image folder '{folder}' does not exist. Check the path (it is relative to "
            f"{Path.cwd()}), or create it and copy your images into it."
        )
    if not folder.is_dir():
        raise NotADirectoryError(f"'{folder}' is a file; pass the folder that holds images.")
    files = _image_files(folder)
    if not files:
        raise ValueError(
            f"No image files in '{folder}' (searched sub-folders too, for "
            f"{', '.join(IMAGE_EXTENSIONS)}). Copy your images there, or unzip your archive."
        )
    good = [f for f in files if _can_decode(f)]
    if not good:
        raise ValueError(
            f"None of the {len(files)} image files in '{folder}' could be decoded; "
            "they may be corrupt, or not images despite their extension."
        )
    if len(good) < len(files):
        bad = sorted(set(files) - set(good))
        warnings.warn(
            f"skipped {len(bad)} of {len(files)} files in '{folder}' that could not be "
            f"decoded (first: '{bad[0]}').",
            stacklevel=3,
        )
    return good


def image_folder_dataset(path, image_size=64, batch_size=64, color_mode="rgb", shuffle=True,
                         seed=0, cache=True, crop_to_aspect_ratio=False):
    """Streams your own folder of images (any sub-folders, any sizes) as a `tf.data` set.

    Files that cannot be decoded are skipped with one warning that counts them. Images are
    decoded, resized (bilinear) and cached as uint8, then scaled to [-1, 1] per batch.

    Args:
        path: folder that holds .png, .jpg, .jpeg, .gif, .bmp or .webp files.
        image_size: side of the square images the dataset yields.
        batch_size: images per batch.
        color_mode: "rgb" (3 channels), "grayscale" (1) or "rgba" (4).
        shuffle: shuffle the files, seeded, in a new order every epoch.
        seed: seed of the shuffle.
        cache: keep the decoded, resized images in memory (uint8: 64x64 RGB costs 12 KB
            per image) so later epochs skip decoding.
        crop_to_aspect_ratio: crop the central square before resizing instead of
            squashing the image.

    Returns:
        A `tf.data.Dataset` of float32 batches (batch, image_size, image_size, channels) in
        [-1, 1].

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: the folder holds no image files, or none that decode.

    Example:
        >>> dataset = image_folder_dataset("my_photos", image_size=64)
        >>> next(iter(dataset)).shape
        TensorShape([64, 64, 64, 3])
    """
    channels = {"rgb": 3, "grayscale": 1, "rgba": 4}.get(color_mode)
    if channels is None:
        raise ValueError(f'color_mode must be "rgb", "grayscale" or "rgba", got {color_mode!r}.')
    files = _readable_image_files(path)

    def load(file):
        image = tf.io.decode_image(tf.io.read_file(file), channels, expand_animations=False)
        image.set_shape([None, None, channels])
        if crop_to_aspect_ratio:
            side = tf.minimum(tf.shape(image)[0], tf.shape(image)[1])
            image = tf.image.resize_with_crop_or_pad(image, side, side)
        image = tf.image.resize(image, (image_size, image_size), "bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)

    dataset = tf.data.Dataset.from_tensor_slices(files)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(lambda x: to_model_range(tf.cast(x, tf.float32) / 255.0))
    return dataset.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------
# TFDS with an offline fallback
# ---------------------------------------------------------------------------------------


def _host_reachable(host, port, timeout):
    """True if a TCP connection to host:port opens within `timeout` seconds (DNS included).

    The connection runs in a daemon thread so that a slow DNS lookup, which the socket
    timeout does not bound, cannot hold us up.
    """
    result = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result)


def tfds_available(name, data_dir=None, timeout=3.0):
    """Tells, within about `timeout` seconds, whether `tfds.load(name)` can get its data.

    True if a prepared copy is already in `data_dir` (default ~/tensorflow_datasets), or
    if the TFDS download host answers. Offline, `tfds.load` itself retries for minutes
    before failing, so always ask this first.

    Args:
        name: TFDS name, such as "mnist" or "celeb_a" (a config or version may follow).
        data_dir: where TFDS keeps prepared data sets; None for its default.
        timeout: seconds to wait for the network probe.

    Returns:
        bool. Raises `tfds.core.DatasetNotFoundError` for a name TFDS does not know.

    Example:
        >>> tfds_available("mnist")  # offline, with no prepared copy
        False
    """
    import tensorflow_datasets as tfds

    # Building the builder reads only local metadata (measured: no network access).
    if tfds.builder(name, data_dir=data_dir).is_prepared():
        return True
    return _host_reachable(*TFDS_HOST, timeout=timeout)


def _base_name(name):
    """"celeb_a/align:2.1.0" -> "celeb_a" (TFDS names may carry a config and a version)."""
    return name.split(":")[0].split("/")[0]


def _image_feature(info):
    """The name of the first image feature of a TFDS set, and its number of channels."""
    import tensorflow_datasets as tfds

    for key, feature in info.features.items():
        if isinstance(feature, tfds.features.Image):
            return key, feature.shape[-1]
    raise ValueError(f"TFDS {info.name!r} has no image feature.")


def _fallback_for(name, data_dir):
    """The bundled set closest to TFDS `name`, its image size, and the channels of `name`."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise ValueError(
            f"Unknown data set {name!r}: use one of the bundled sets {BUNDLED}, \"folder\" "
            "with path=, or a TFDS name (see tfds.list_builders())."
        ) from None
    _, channels = _image_feature(builder.info)
    default = ("digits", 28) if channels == 1 else ("photos", 32)
    bundled, image_size = TFDS_FALLBACKS.get(_base_name(name), default)
    return bundled, image_size, channels


def _match_channels(images, channels):
    """Converts gray images to RGB (by repeating) or RGB to gray, to have `channels`."""
    if images.shape[-1] == channels:
        return images
    if channels == 1:
        return tf.image.rgb_to_grayscale(images).numpy()
    return np.repeat(images, channels, axis=-1)


def _load_tfds(name, split, image_size, data_dir, max_examples):
    """Reads a TFDS set into NumPy: images (N, s, s, C) in [-1, 1], labels or None."""
    import tensorflow_datasets as tfds

    info = tfds.builder(name, data_dir=data_dir).info
    supervised = info.supervised_keys is not None
    dataset = tfds.load(name, split=split, data_dir=data_dir, as_supervised=supervised)
    if not supervised:
        key, _ = _image_feature(info)
        dataset = dataset.map(lambda example: (example[key], -1))
    if max_examples is not None:
        dataset = dataset.take(max_examples)

    def prepare(image, label):
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, (image_size, image_size),
                                "bilinear", antialias=True)
        return tf.clip_by_value(to_model_range(image), -1.0, 1.0), tf.cast(label, tf.int32)

    batches = list(dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
                   .as_numpy_iterator())
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches]) if supervised else None
    return images, labels


def _load_bundled(name, split, image_size, test_fraction, seed, num_patches):
    if name == "digits":
        return load_digits(image_size, split, test_fraction, seed)
    if name == "faces":
        return load_faces(image_size, split, test_fraction, seed), None
    return load_photo_patches(image_size, num_patches, split, seed, test_fraction), None


def _load_folder(path, split, image_size, test_fraction, seed):
    dataset = image_folder_dataset(path, image_size, batch_size=256, shuffle=False)
    images = np.concatenate(list(dataset.as_numpy_iterator()))
    return images[_split_indices(len(images), split, test_fraction, seed)], None


def load_dataset(name, split="train", image_size=None, source="auto", data_dir=None,
                 max_examples=None, seed=0, test_fraction=0.2, path=None, num_patches=1000):
    """Loads any image set of the course as NumPy arrays, online or offline.

    Args:
        name: a bundled set ("digits", "faces", "photos"), "folder" (your images at `path`),
            or a TFDS name ("mnist", "fashion_mnist", "cifar10", "celeb_a", ...).
        split: "train", "test" or "all" (for TFDS, any TFDS split such as "train[:10%]").
        image_size: side of the images; None for the set's usual size (digits 16, faces 32,
            photos 32, folder 64, mnist 28, cifar10 32, celeb_a 64).
        source: for a TFDS name, "auto" (TFDS if reachable, else the closest bundled set,
            announced by one printed line), "tfds" (TFDS or a RuntimeError), or "bundled"
            (never touches the network).
        data_dir: where TFDS keeps prepared data sets; None for ~/tensorflow_datasets.
        max_examples: read at most this many TFDS examples (celeb_a has 162,770 train images).
        seed: seed of bundled splits and patch positions.
        test_fraction: share held out as the test split of bundled sets and folders.
        path: the image folder, for name="folder".
        num_patches: how many patches name="photos" gives.

    Returns:
        (images, labels): float32 (N, image_size, image_size, C) in [-1, 1], and int32 (N,)
        or None for unlabelled sets. A fallback keeps the channels of the requested set
        (gray faces are repeated to RGB for celeb_a), so the arrays are interchangeable.

    Raises:
        RuntimeError: source="tfds" and TFDS cannot get the data (offline, not prepared).

    Example:
        >>> x_train, y_train = load_dataset("mnist")  # offline: bundled digits at 28x28
    """
    if source not in ("auto", "tfds", "bundled"):
        raise ValueError(f'source must be "auto", "tfds" or "bundled", got {source!r}.')
    if name == "folder":
        if path is None:
            raise ValueError('name="folder" needs path=, the folder that holds your images.')
        return _load_folder(path, split, image_size or 64, test_fraction, seed)
    if name in BUNDLED:
        size = image_size or BUNDLED_IMAGE_SIZE[name]
        return _load_bundled(name, split, size, test_fraction, seed, num_patches)

    bundled, size, channels = _fallback_for(name, data_dir)  # also rejects unknown names
    size = image_size or size
    if source != "bundled":
        if tfds_available(name, data_dir):
            return _load_tfds(name, split, size, data_dir, max_examples)
        where = data_dir or "~/tensorflow_datasets"
        if source == "tfds":
            raise RuntimeError(
                f"TFDS {name!r} is not available: no prepared copy in {where} and no network. "
                f"Connect to the internet, or prepare it elsewhere with "
                f"tfds.load({name!r}, data_dir=...) and copy that folder to {where}, "
                f'or use source="bundled" (or "auto") for the bundled {bundled!r} set.'
            )
    if split not in SPLITS:
        split = "train"  # a TFDS slice such as "train[:10%]" has no bundled meaning
    images, labels = _load_bundled(bundled, split, size, test_fraction, seed, num_patches)
    if source == "auto":
        note = "" if images.shape[-1] == channels else f", converted to {channels} channel(s)"
        print(f"TFDS {name!r} is not available offline (no prepared copy in {where} and no "
              f"network): using the bundled {bundled!r} set instead{note}.")
    if max_examples is not None:
        images = images[:max_examples]
        labels = None if labels is None else labels[:max_examples]
    return _match_channels(images, channels), labels
