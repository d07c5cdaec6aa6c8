import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import augment
from course_lib.models.gan import GAN, build_discriminator, build_generator


def dots(batch, side=8):
    """Background -1 with one lit pixel at (3, 4) in every image."""
    images = -np.ones((batch, side, side, 1), np.float32)
    images[:, 3, 4, 0] = 1.0
    return images


def test_translate_moves_each_image_by_a_whole_shift_within_the_bound():
    images = dots(64)
    out = augment.translate(images, 2, seed=0).numpy()
    moved = set()
    for image in out:
        lit = np.argwhere(image[..., 0] == 1.0)
        assert len(lit) == 1 and np.sum(image == -1.0) == image.size - 1  # no blur, no loss
        dy, dx = lit[0] - (3, 4)
        assert abs(dy) <= 2 and abs(dx) <= 2
        moved.add((int(dy), int(dx)))
    assert len(moved) > 10  # every image draws its own shift
    assert np.array_equal(augment.translate(images, 0, seed=0), images)


def test_translate_fills_what_enters_with_the_background_and_passes_gradients():
    images = tf.constant(np.ones((16, 8, 8, 1), np.float32))
    out = augment.translate(images, 3, seed=1, fill=-1.0).numpy()
    assert np.all(np.isin(out, (-1.0, 1.0))) and np.any(out == -1.0)
    x = tf.Variable(dots(4))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(augment.translate(x, 1, seed=2) * 2.0)
    gradient = tape.gradient(y, x).numpy()
    assert set(np.unique(gradient)) <= {0.0, 2.0} and np.sum(gradient) > 0  # a gather: exact


def test_cutout_blanks_one_square_per_image():
    images = np.ones((32, 16, 16, 1), np.float32)
    out = augment.cutout(images, 8, seed=0, fill=-1.0).numpy()
    for image in out:
        blank = np.argwhere(image[..., 0] == -1.0)
        height, width = np.ptp(blank, axis=0) + 1
        assert height <= 8 and width <= 8 and len(blank) == height * width  # a clipped square
    assert np.mean(out == -1.0) > 0.12  # most squares lie inside: about a quarter of the pixels


def test_brightness_and_contrast_transform_each_image_as_a_whole():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (8, 4, 4, 1)).astype(np.float32)
    shifted = augment.brightness(images, 0.5, seed=0).numpy()
    offsets = (shifted - images).reshape(8, -1)
    assert np.allclose(offsets, offsets[:, :1], atol=1e-6) and np.all(np.abs(offsets) <= 0.5)
    scaled = augment.contrast(images, seed=0).numpy()
    means = images.mean(axis=(1, 2, 3), keepdims=True)
    factors = ((scaled - means) / (images - means)).reshape(8, -1)
    assert np.allclose(factors, factors[:, :1], rtol=1e-4) and np.all(
        (factors >= 0.5 - 1e-5) & (factors <= 1.5 + 1e-5))


def test_diffaugment_layer_is_seeded_serialisable_and_rejects_unknown_policies():
    images = dots(8, 16)
    first = augment.DiffAugment(seed=3)(images).numpy()
    again = augment.DiffAugment(seed=3)(images).numpy()
    assert np.array_equal(first, again) and not np.array_equal(first, images)
    layer = augment.DiffAugment(("translation", "brightness"), seed=1)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert copy.policy == ("translation", "brightness") and copy.seed == 1
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        augment.DiffAugment(("translation", "rotation"))


def test_gan_augments_what_the_discriminator_sees_only_in_training():
    keras.utils.set_random_seed(0)
    seen = []

    def spy(images):
        seen.append(images.shape)
        return augment.translate(images, 2, seed=0)

    gan = GAN(build_generator(8, (16, 16, 1), filters=(16, 8)),
              build_discriminator((16, 16, 1), filters=(8, 16)), seed=0, augment=spy)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    real = tf.constant(dots(4, 16))
    gan.discriminate(real)  # not training: no augmentation
    assert not seen
    gan.train_step(real)
    assert len(seen) == 3  # real and fake in D's step, fake in G's step
    config = GAN(gan.generator, gan.discriminator, augment=augment.DiffAugment(seed=5)).get_config()
    assert GAN.from_config(config).augment.seed == 5


def test_few_per_class_keeps_the_first_images_of_every_label():
    images = np.arange(12, dtype="float32").reshape(12, 1, 1, 1)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    small, small_labels = augment.few_per_class(images, labels, 2)
    assert small_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert small[:, 0, 0, 0].tolist() == [0, 3, 1, 4, 2, 5]
    with pytest.raises(ValueError, match="only 4 images"):
        augment.few_per_class(images, labels, 5)
    with pytest.raises(ValueError, match="positive integer"):
        augment.few_per_class(images, labels, 0)


def test_reals_only_gan_augments_the_real_batch_and_nothing_else():
    keras.utils.set_random_seed(0)
    seen = []

    def spy(images):
        seen.append(images)
        return images + 0.0

    gan = augment.RealsOnlyGAN(build_generator(8, (16, 16, 1), filters=(16, 8)),
                               build_discriminator((16, 16, 1), filters=(8, 16)), spy, seed=0)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    real = tf.constant(dots(4, 16))
    gan.train_step(real)
    assert len(seen) == 1 and np.array_equal(np.asarray(seen[0]), np.asarray(real))
    with pytest.raises(ValueError, match="unconditional"):
        augment.RealsOnlyGAN(build_generator(8, (16, 16, 1), num_classes=3, filters=(16, 8)),
                             build_discriminator((16, 16, 1), num_classes=3, filters=(8, 16)),
                             spy)


def test_train_few_shot_gan_builds_each_mode_and_rejects_unknown_ones():
    images = dots(8, 16)
    kinds = {}
    for mode in augment.MODES:
        gan = augment.train_few_shot_gan(images, mode, num_epochs=1, seed=0, batch_size=4)
        kinds[mode] = (type(gan).__name__, type(gan.augment).__name__)
        belief = augment.discriminator_belief(gan, images)
        assert 0.0 < belief < 1.0
    assert kinds == {"none": ("GAN", "NoneType"), "reals only": ("RealsOnlyGAN", "NoneType"),
                     "DiffAugment": ("GAN", "DiffAugment")}
    with pytest.raises(ValueError, match="mode must be one of"):
        augment.train_few_shot_gan(images, "naive", num_epochs=1)
    flip = keras.layers.RandomFlip("horizontal")
    gan = augment.train_few_shot_gan(images, "reals only", num_epochs=1, batch_size=4,
                                     transform=flip)
    assert gan.reals_augment is flip


def test_ink_centroids_and_their_spread():
    image = -np.ones((1, 8, 8, 1))
    image[0, 3, 5] = 1.0
    assert augment.ink_centroids(image).tolist() == [[3.0, 5.0]]
    assert augment.centroid_spread(np.repeat(image, 3, axis=0)) == 0.0
    pair = np.concatenate([np.roll(image, 1, axis=1), np.roll(image, -1, axis=1)])
    assert augment.centroid_spread(pair) == pytest.approx(1.0)  # each 1 px from the mean
    with pytest.raises(ValueError, match="no ink"):
        augment.ink_centroids(-np.ones((2, 4, 4, 1)))
    with pytest.raises(ValueError, match="batch, height, width, channels"):
        augment.ink_centroids(image[0])
