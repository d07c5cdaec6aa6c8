"""Differentiable augmentation for GANs trained on little data (DiffAugment).

Zhao et al. (2020), "Differentiable Augmentation for Data-Efficient GAN Training": with a
few hundred images the discriminator memorises the real set and its feedback to the
generator becomes useless. Augmenting only the real images does not help: the generator
learns to draw the augmented images (shifted, cut-out digits). DiffAugment applies the same
random transformation T to *every* image the discriminator sees, real and generated, in both
the discriminator's and the generator's steps; T is differentiable, so the generator's
gradient passes through it, and the generator is still asked for clean images.

    translate        shift each image by a random whole number of pixels (gaps: background)
    cutout           blank a random square of each image
    brightness       add a random constant to each image
    contrast         scale each image about its mean by a random factor
    DiffAugment      a layer applying a policy (a sequence of the above) with fresh draws
                     on every call: give it to `course_lib.models.gan.GAN(augment=...)`
    RealsOnlyGAN     the naive way, for comparison: augments the real images only
    few_per_class    a small training set with every class
    MODES, train_few_shot_gan   chapter 1's DCGAN on a few images, with no augmentation,
                     reals-only augmentation or DiffAugment
    discriminator_belief   the discriminator's mean D(x): memorisation shows as a gap between
                     training and held-out images
    ink_centroids, centroid_spread   where the ink sits: leaked shifts show as a wider spread

Images are (batch, height, width, channels) in [-1, 1] with -1 the background (the course's
digits); the paper's code fills gaps with 0 for images whose background is not known.
"""

import keras
import numpy as np
import tensorflow as tf

from course_lib.models.gan import GAN

POLICIES = ("translation", "cutout", "brightness", "contrast")


def translate(images, max_shift, seed=None, fill=-1.0):
    """Shifts each image by its own (dy, dx), each drawn uniformly from -max_shift..max_shift.

    A pixel moves from (i, j) to (i + dy, j + dx); what enters at the edges is `fill`. The
    result is a gather of input pixels, so its gradient with respect to `images` is exact.
    """
    images = tf.convert_to_tensor(images)
    max_shift = int(max_shift)
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}.")
    if max_shift == 0:
        return images
    height, width = images.shape[1], images.shape[2]
    shifts = keras.random.randint((tf.shape(images)[0], 2), -max_shift, max_shift + 1,
                                  seed=seed)
    padding = [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]]
    padded = tf.pad(images, padding, constant_values=tf.cast(fill, images.dtype))
    rows = tf.range(height)[None, :] + max_shift - shifts[:, :1]  # (batch, height)
    cols = tf.range(width)[None, :] + max_shift - shifts[:, 1:]  # (batch, width)
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def cutout(images, size, seed=None, fill=-1.0):
    """Sets a `size` x `size` square of each image, centred at a random pixel, to `fill`
    (the square is clipped where it leaves the image)."""
    images = tf.convert_to_tensor(images)
    height, width = images.shape[1], images.shape[2]
    centres = keras.random.uniform((tf.shape(images)[0], 2), seed=seed)
    centre_y = tf.cast(centres[:, :1] * height, tf.int32)  # (batch, 1)
    centre_x = tf.cast(centres[:, 1:] * width, tf.int32)
    low = size // 2
    inside_y = (tf.range(height)[None, :] >= centre_y - low) & (
        tf.range(height)[None, :] < centre_y - low + size)
    inside_x = (tf.range(width)[None, :] >= centre_x - low) & (
        tf.range(width)[None, :] < centre_x - low + size)
    mask = tf.cast(inside_y[:, :, None] & inside_x[:, None, :], images.dtype)[..., None]
    return images * (1 - mask) + tf.cast(fill, images.dtype) * mask


def brightness(images, strength=0.5, seed=None):
    """Adds to each image one number drawn uniformly from [-strength, strength]."""
    images = tf.convert_to_tensor(images)
    shift = keras.random.uniform((tf.shape(images)[0], 1, 1, 1), -strength, strength,
                                 seed=seed)
    return images + tf.cast(shift, images.dtype)


def contrast(images, low=0.5, high=1.5, seed=None):
    """Scales each image about its own mean by a factor drawn uniformly from [low, high]."""
    images = tf.convert_to_tensor(images)
    factor = keras.random.uniform((tf.shape(images)[0], 1, 1, 1), low, high, seed=seed)
    mean = tf.reduce_mean(images, axis=(1, 2, 3), keepdims=True)
    return mean + (images - mean) * tf.cast(factor, images.dtype)


@keras.saving.register_keras_serializable(package="course_lib")
class DiffAugment(keras.layers.Layer):
    """Applies the transformations of `policy`, in order, with fresh random draws each call.

    Args:
        policy: names from `POLICIES`, e.g. ("translation", "cutout"), the paper's choice
            for BigGAN on CIFAR-10 with little data (its StyleGAN2 few-shot runs add colour).
        translation: the largest shift, as a fraction of the image side (the paper's 1/8).
        cutout: the side of the blanked square, as a fraction of the image side (the
            paper's 1/2).
        fill: the value of the pixels that translation and cutout leave empty.
        seed: seed of the draws (the same seed gives the same sequence of calls).
    """

    def __init__(self, policy=("translation", "cutout"), translation=0.125, cutout=0.5,
                 fill=-1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        unknown = [name for name in policy if name not in POLICIES]
        if unknown:
            raise ValueError(f"unknown DiffAugment transformation(s) {unknown}: choose from "
                             f"{POLICIES}.")
        self.policy, self.translation, self.cutout = tuple(policy), translation, cutout
        self.fill, self.seed = fill, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images):
        side = images.shape[1]
        for name in self.policy:
            if name == "translation":
                images = translate(images, round(side * self.translation), self.seed_generator,
                                   self.fill)
            elif name == "cutout":
                images = cutout(images, round(side * self.cutout), self.seed_generator,
                                self.fill)
            elif name == "brightness":
                images = brightness(images, seed=self.seed_generator)
            else:
                images = contrast(images, seed=self.seed_generator)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "policy": list(self.policy),
                "translation": self.translation, "cutout": self.cutout, "fill": self.fill,
                "seed": self.seed}


# -- few-shot GAN training (chapter 6, notebook 3) ---------------------------------------
MODES = ("none", "reals only", "DiffAugment")


def few_per_class(images, labels, per_class):
    """The first `per_class` images of every label, grouped by label: a small training set
    that still has every class (e.g. 5 per class = 50 digits)."""
    labels = np.asarray(labels)
    if int(per_class) != per_class or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class}.")
    chosen = []
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        if len(where) < per_class:
            raise ValueError(f"label {label} has only {len(where)} images, fewer than "
                             f"per_class={per_class}.")
        chosen.append(where[:per_class])
    chosen = np.concatenate(chosen)
    return np.asarray(images)[chosen], labels[chosen]


class RealsOnlyGAN(GAN):
    """The naive way, for comparison: `augment` transforms only the real images, as an
    augmenting data pipeline would, and the generated ones reach the discriminator as they
    are. The discriminator then learns the distribution of T(x), and so does the generator
    (its samples are shifted and cut: the augmentation leaks). Unconditional only."""

    def __init__(self, generator, discriminator, reals_augment, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        if self.conditional:
            raise ValueError("RealsOnlyGAN is unconditional: build the networks without "
                             "num_classes.")
        self.reals_augment = reals_augment

    def train_step(self, data):
        return super().train_step(self.reals_augment(data))


def train_few_shot_gan(images, mode="DiffAugment", num_epochs=1200, seed=0,
                       policy=("translation", "cutout"), batch_size=32, learning_rate=2e-4,
                       callbacks=(), transform=None):
    """Chapter 1's DCGAN (its generator and discriminator, Adam 2e-4 with beta_1 0.5) trained
    on a few `images` with `mode`:

        "none"         no augmentation
        "reals only"   `policy` applied to the real images only (`RealsOnlyGAN`): leaks
        "DiffAugment"  `policy` applied to everything the discriminator sees (`GAN(augment=)`)

    `transform` (a layer or function of an image batch) replaces `DiffAugment(policy)`, e.g.
    `keras.layers.RandomFlip("horizontal")`. Returns the trained GAN; `callbacks` (e.g.
    `course_lib.callbacks.JudgeScore`) go to `fit`.
    """
    from course_lib.data import make_dataset
    from course_lib.models.gan import build_discriminator, build_generator

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    keras.utils.set_random_seed(seed)
    shape = tuple(np.shape(images)[1:])
    generator = build_generator(64, shape, None, (128, 64))
    discriminator = build_discriminator(shape, None, (64, 128))
    if transform is None:
        transform = DiffAugment(policy, seed=seed)
    if mode == "reals only":
        gan = RealsOnlyGAN(generator, discriminator, transform, seed=seed)
    else:
        gan = GAN(generator, discriminator, seed=seed,
                  augment=transform if mode == "DiffAugment" else None)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5))
    gan.fit(make_dataset(images, batch_size=batch_size, seed=seed), epochs=num_epochs,
            verbose=0, callbacks=list(callbacks))
    return gan


def discriminator_belief(gan, images, batch_size=256):
    """The mean probability, D(x), that the discriminator gives `images` of being real
    (unaugmented, inference mode). Near 1 on its training images and near 0 on held-out real
    ones: it has memorised the training set."""
    scores = [keras.ops.sigmoid(gan.discriminate(images[start:start + batch_size]))
              for start in range(0, len(images), batch_size)]
    return float(np.mean(np.concatenate([keras.ops.convert_to_numpy(s) for s in scores])))


def ink_centroids(images):
    """Each image's centre of ink (row, column) in pixels: the mean position weighted by
    (x + 1) / 2, the ink of a [-1, 1] image with background -1. Shape (batch, 2)."""
    images = np.asarray(images, np.float64)
    if images.ndim != 4:
        raise ValueError(f"images must be (batch, height, width, channels), got "
                         f"{images.shape}.")
    ink = (images.mean(axis=-1) + 1) / 2  # (batch, height, width)
    total = ink.sum(axis=(1, 2))
    if np.any(total <= 0):
        raise ValueError("an image has no ink (all background): its centre is undefined.")
    rows = (ink.sum(axis=2) * np.arange(ink.shape[1])).sum(axis=1) / total
    cols = (ink.sum(axis=1) * np.arange(ink.shape[2])).sum(axis=1) / total
    return np.stack([rows, cols], axis=1)


def centroid_spread(images):
    """The root-mean-square distance, in pixels, of the images' centres of ink from their
    mean: how far the digits wander about the frame. Samples that spread more than the real
    digits were drawn shifted."""
    centroids = ink_centroids(images)
    return float(np.sqrt(np.mean(np.sum((centroids - centroids.mean(0)) ** 2, axis=1))))
