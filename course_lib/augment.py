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

Images are (batch, height, width, channels) in [-1, 1] with -1 the background (the course's
digits); the paper's code fills gaps with 0 for images whose background is not known.
"""

import keras
import tensorflow as tf

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
            for few images.
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
