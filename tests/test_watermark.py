import math

import keras
import numpy as np
import pytest
from scipy.stats import binom

from course_lib import privacy, watermark
from course_lib.data.images import load_photo_patches
from course_lib.models.char_rnn import CharRNN
from course_lib.models.diffusion import DiffusionModel
from course_lib.models.unet import build_unet


def photos(num, size=128, seed=0):
    patches = load_photo_patches(size, num, split="all", seed=seed)
    return np.round((patches + 1) * 127.5).astype(np.uint8)


def test_haar_transform_is_orthonormal_and_inverts():
    x = np.random.default_rng(0).normal(size=(8, 12))
    bands = watermark.haar_dwt2(x)
    assert np.allclose(watermark.haar_idwt2(*bands), x)
    assert math.isclose(sum(np.sum(b ** 2) for b in bands), np.sum(x ** 2))  # energy kept
    assert np.allclose(bands[0], 2 * x.reshape(4, 2, 6, 2).mean(axis=(1, 3)))


def test_image_watermark_reads_back_and_survives_jpeg_75():
    images = photos(12)
    for key, image in enumerate(images):
        marked = watermark.embed_image_watermark(image, key)
        assert marked.dtype == np.uint8 and marked.shape == image.shape
        assert np.max(np.abs(marked.astype(int) - image)) <= 20  # invisible: a few levels
        assert watermark.bit_matches(marked, key) == 32
        assert watermark.bit_matches(watermark.jpeg(marked, 75), key) >= 31
        # a grid-aligned crop keeps the bits; the wrong key reads coin flips
        assert watermark.bit_matches(watermark.crop(marked, 0.75), key) >= 30
    grey = images[0].mean(axis=-1).astype(np.uint8)
    assert watermark.bit_matches(watermark.embed_image_watermark(grey, 7), 7) == 32


def test_image_watermark_false_positives_match_the_binomial_null():
    threshold = watermark.detection_threshold(32, 1e-3)
    assert binom.sf(threshold - 1, 32, 0.5) <= 1e-3 < binom.sf(threshold - 2, 32, 0.5)
    unmarked = photos(150, size=64, seed=1)
    matches = np.array([watermark.bit_matches(image, 1000) for image in unmarked])  # one key
    assert np.sum(matches >= threshold) <= 1  # at most 1% of 150 (expected 0.15)
    assert abs(matches.mean() - 16) < 1.0  # each bit a fair coin: 16 of 32 on average


def test_without_the_key_the_lattices_do_not_show():
    image = photos(1, size=256)[0]
    marked = watermark.embed_image_watermark(image, 3)
    y = marked.astype(float) @ [0.299, 0.587, 0.114]
    c = watermark._coefficients(y, 32, 32)[0][:, :, 0, 1]
    # undithered QIM would put every coefficient on a multiple of 12; dithered, they spread
    distance = np.abs(c / 12 - np.round(c / 12))
    assert 0.2 < distance.mean() < 0.3  # uniform in [0, 1/2] has mean 0.25


def test_image_watermark_refuses_bad_images():
    with pytest.raises(ValueError, match="uint8"):
        watermark.embed_image_watermark(np.zeros((64, 64), np.float32), 0)
    with pytest.raises(ValueError, match="too few"):
        watermark.embed_image_watermark(np.zeros((16, 16), np.uint8), 0)
    with pytest.raises(ValueError, match="fall in no block"):
        watermark.embed_image_watermark(np.zeros((64, 64), np.uint8), 0, num_bits=64)


def test_tree_ring_noise_is_gaussian_and_carries_its_key():
    mask, key = watermark.tree_ring_key((16, 16, 1), radius=3, seed=0)
    assert mask.sum() == 29 and mask[0, 0]
    marked = watermark.tree_ring_noise(500, (16, 16, 1), mask, key, seed=1)
    plain = np.random.default_rng(2).standard_normal((500, 16, 16, 1))
    assert abs(marked.std() - 1) < 0.15 and abs(marked.mean()) < 0.1
    spectrum = np.fft.fft2(marked[..., 0])
    assert np.allclose(spectrum[:, mask], key[mask])  # the key survives taking the real part
    report = privacy.attack_report(watermark.tree_ring_score(marked, mask, key),
                                   watermark.tree_ring_score(plain, mask, key))
    assert report["auc"] == 1.0
    ring, ring_key = watermark.tree_ring_key((16, 16, 1), radius=5, inner=3, seed=0)
    assert not ring[0, 0] and ring[0, 3] and ring[4, 3] and not ring[0, 6]
    assert np.all(ring_key[ring] != 0) and np.all(ring_key[~ring] == 0)
    noise = watermark.tree_ring_noise(2, (16, 16, 1), ring, ring_key, seed=0)
    assert np.allclose(np.fft.fft2(noise[..., 0])[:, ring], ring_key[ring], atol=1e-4)


def test_ddim_inversion_recovers_the_starting_noise():
    keras.utils.set_random_seed(0)
    model = DiffusionModel(build_unet((8, 8, 1), (8, 16), attention_at=()), num_timesteps=100,
                           objective="v", seed=0)
    noise = np.random.default_rng(0).standard_normal((4, 8, 8, 1)).astype(np.float32)
    from course_lib.sampling import denoise, make_sampler

    sampler = make_sampler(model, "ddim")
    sampler.set_timesteps(20)
    images = denoise(model, noise, sampler)
    recovered = watermark.ddim_invert(model, images, 20)
    assert recovered.shape == noise.shape
    assert np.corrcoef(recovered.ravel(), noise.ravel())[0, 1] > 0.9


def test_green_z_score_counts_and_scores_each_pair_once():
    green = np.zeros((3, 3), bool)
    green[:, 0] = True  # token 0 is green after anything; gamma 1/3
    ids = np.array([1, 0, 2, 0, 2, 0])  # pairs 10 02 20 02 20: green 10 20 20
    z_all = watermark.green_z_score(ids, green, unique=False)
    assert math.isclose(z_all, (3 - 5 / 3) / math.sqrt(5 * (1 / 3) * (2 / 3)))
    z_once = watermark.green_z_score(ids, green)  # distinct pairs 10 02 20: green 10 20
    assert math.isclose(z_once, (2 - 1) / math.sqrt(3 * (1 / 3) * (2 / 3)))
    rng = np.random.default_rng(0)
    text = rng.integers(0, 50, (400, 200))
    z = np.array([watermark.green_z_score(row, watermark.green_lists(50, 0.5, key=k))
                  for k, row in enumerate(text)])
    assert abs(z.mean()) < 0.2 and abs(z.std() - 1) < 0.15  # standard normal without the key
    with pytest.raises(ValueError, match="gamma"):
        watermark.green_lists(10, 1.5)


def test_generated_text_carries_the_watermark_at_a_measured_cost():
    keras.utils.set_random_seed(0)
    model = CharRNN(30, units=16)
    green = watermark.green_lists(30, 0.5, key=1)
    plain, kl_plain = watermark.generate_text(model, [1, 2], 100, 8, seed=0)
    again, _ = watermark.generate_text(model, [1, 2], 100, 8, seed=0)
    marked, kl_marked = watermark.generate_text(model, [1, 2], 100, 8, green=green, delta=4.0,
                                                seed=0)
    assert np.array_equal(plain, again) and np.all(kl_plain == 0)
    assert np.all(kl_marked > 0)
    z_plain, z_marked = (watermark.green_z_score(x, green) for x in (plain, marked))
    assert z_marked.min() > 4 and z_plain.mean() < 2
    with pytest.raises(ValueError, match="green"):
        watermark.generate_text(model, [1], 5, 1, delta=1.0)


def test_ddim_inversion_refuses_a_flow_model():
    model = DiffusionModel(build_unet((8, 8, 1), (8, 16), attention_at=()), num_timesteps=100,
                           objective="flow", seed=0)
    with pytest.raises(ValueError, match="objective 'eps' or 'v'"):
        watermark.ddim_invert(model, np.zeros((1, 8, 8, 1), np.float32), 5)
