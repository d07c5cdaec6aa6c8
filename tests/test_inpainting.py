"""course_lib.inpainting: masks, naive fill, latent-search fill, masked PSNR and SSIM."""

import keras
import numpy as np
import pytest

from course_lib import inpainting, metrics
from course_lib.models.vae import VAE, build_decoder, build_encoder

SHAPE = (6, 8, 8, 1)


def _images(seed=0, shape=SHAPE):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


def test_block_mask_hides_one_square_per_image():
    mask = inpainting.block_mask(SHAPE, size=3, seed=0)
    assert mask.shape == SHAPE and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert np.all((1 - mask).sum(axis=(1, 2, 3)) == 9)
    rows = np.flatnonzero((1 - mask[0, :, :, 0]).any(axis=1))
    assert np.array_equal(rows, np.arange(rows[0], rows[0] + 3))  # contiguous


def test_random_mask_hides_the_requested_fraction_on_every_channel():
    mask = inpainting.random_mask((4, 8, 8, 3), fraction=0.5, seed=1)
    assert np.all((1 - mask[..., 0]).sum(axis=(1, 2)) == 32)
    assert np.array_equal(mask[..., 0], mask[..., 2])
    assert not np.array_equal(mask[0], mask[1])  # a different mask per image


@pytest.mark.parametrize("make", [lambda s: inpainting.block_mask(SHAPE, 4, seed=s),
                                  lambda s: inpainting.random_mask(SHAPE, 0.3, seed=s)])
def test_masks_are_deterministic_per_seed(make):
    assert np.array_equal(make(3), make(3))
    assert not np.array_equal(make(3), make(4))


@pytest.mark.parametrize("method", ["mean", "diffuse"])
def test_naive_fill_keeps_visible_pixels_exactly(method):
    images, mask = _images(), inpainting.block_mask(SHAPE, 4, seed=0)
    filled = inpainting.naive_fill(images, mask, method=method, iterations=5)
    assert np.array_equal(filled[mask == 1], images[mask == 1])
    if method == "mean":
        first = (mask[0] == 0)
        expected = images[0][mask[0] == 1].mean()
        assert np.allclose(filled[0][first], expected, atol=1e-6)


def test_masked_psnr_matches_numpy_and_ignores_visible_pixels():
    x, y = _images(0), _images(1)
    mask = inpainting.random_mask(SHAPE, 0.5, seed=0)
    missing = mask == 0
    expected = [10 * np.log10(4.0 / np.mean((x[i][missing[i]].astype(np.float64)
                                              - y[i][missing[i]]) ** 2))
                for i in range(len(x))]
    assert np.allclose(inpainting.masked_psnr(x, y, mask), expected)
    same_hole = mask * y + (1 - mask) * x  # differs from x only where visible
    assert np.all(np.isinf(inpainting.masked_psnr(x, same_hole, mask)))


def test_masked_ssim_averages_the_local_map_over_the_hole_only():
    shape = (3, 16, 16, 1)
    x = _images(0, shape)
    mask = inpainting.block_mask(shape, size=8, seed=1)
    np.testing.assert_allclose(inpainting.masked_ssim(x, x, mask), 1.0, atol=1e-9)
    # Filling the hole with noise lowers it (an inpainting keeps the visible pixels).
    noise = _images(5, shape)
    assert np.all(inpainting.masked_ssim(x, mask * x + (1 - mask) * noise, mask) < 0.5)
    # By hand: the mean of the 7x7-window map at the centres inside the hole (radius 3).
    maps = metrics.ssim(x, noise, sigma=0.8, return_map=True)
    assert maps.shape == (3, 10, 10)
    centres = 1 - mask[:, 3:13, 3:13, 0]
    expected = (maps * centres).sum(axis=(1, 2)) / centres.sum(axis=(1, 2))
    np.testing.assert_allclose(inpainting.masked_ssim(x, noise, mask), expected)
    np.testing.assert_allclose(maps.mean(axis=(1, 2)), metrics.ssim(x, noise, sigma=0.8))


@pytest.fixture(scope="module")
def tiny_vae():
    keras.utils.set_random_seed(0)
    encoder = build_encoder((8, 8, 1), latent_dim=2, filters=(4,), hidden_units=8)
    decoder = build_decoder((8, 8, 1), latent_dim=2, filters=(4,), hidden_units=8)
    return VAE(encoder, decoder, seed=0)


def test_latent_search_keeps_visible_pixels_and_lowers_the_masked_error(tiny_vae):
    images, mask = _images(2), inpainting.block_mask(SHAPE, 4, seed=1)

    def visible_error(decoded):
        return np.sum((mask * (images - decoded)) ** 2)

    _, start = inpainting.latent_search_fill(tiny_vae, images, mask, steps=0,
                                             return_decoded=True)
    composite, decoded = inpainting.latent_search_fill(tiny_vae, images, mask, steps=30,
                                                       learning_rate=0.1, return_decoded=True)
    assert composite.shape == SHAPE and composite.dtype == np.float32
    assert np.array_equal(composite[mask == 1], images[mask == 1])
    assert np.allclose(composite[mask == 0], decoded[mask == 0])
    assert visible_error(decoded) < visible_error(start)


def test_latent_search_objective_is_the_decoders_negative_log_posterior(tiny_vae):
    images, mask = _images(3), inpainting.block_mask(SHAPE, 4, seed=2)
    images, mask = images[:3], mask[:3]
    z = np.random.default_rng(5).normal(size=(3, 2)).astype(np.float32)
    got = keras.ops.convert_to_numpy(inpainting.latent_search_objective(
        tiny_vae, z, images, mask, prior_weight=1.0))
    logits = keras.ops.convert_to_numpy(tiny_vae.decode_logits(z)).astype(np.float64)
    t, p = (images + 1) / 2, 1 / (1 + np.exp(-logits))
    log_p = t * np.log(p) + (1 - t) * np.log(1 - p)  # the Bernoulli the VAE trains with
    expected = -(mask * log_p).sum(axis=(1, 2, 3)) + 0.5 * (z.astype(np.float64) ** 2).sum(axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    scrambled = mask * images + (1 - mask) * _images(9)[:3]  # change only the missing pixels
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inpainting.latent_search_objective(
        tiny_vae, z, scrambled, mask)), got, rtol=1e-5)
    doubled = keras.ops.convert_to_numpy(inpainting.latent_search_objective(
        tiny_vae, z, images, mask, prior_weight=2.0))
    np.testing.assert_allclose(doubled - got, 0.5 * (z**2).sum(axis=1), rtol=1e-4)


def test_latent_search_uses_the_likelihood_the_model_defines(tiny_vae):
    class Uninformative(VAE):
        """A decoder whose likelihood ignores the pixels: only the prior is left."""

        def pixel_log_likelihood(self, images, logits):
            return keras.ops.zeros_like(logits)

    model = Uninformative(tiny_vae.encoder, tiny_vae.decoder, seed=0)
    images, mask = _images(2), inpainting.block_mask(SHAPE, 4, seed=1)
    images, mask = images[:2], mask[:2]
    z = np.array([[1.0, -2.0], [0.5, 0.0]], np.float32)
    objective = keras.ops.convert_to_numpy(inpainting.latent_search_objective(model, z, images,
                                                                              mask))
    np.testing.assert_allclose(objective, [2.5, 0.125], rtol=1e-6)  # only ||z||^2 / 2 is left
    bernoulli = keras.ops.convert_to_numpy(inpainting.latent_search_objective(tiny_vae, z, images,
                                                                              mask))
    assert np.all(bernoulli > objective + 1.0)  # the Bernoulli term of the visible pixels
    _, decoded = inpainting.latent_search_fill(model, images, mask, steps=300,
                                               learning_rate=0.1, return_decoded=True)
    at_origin = keras.ops.convert_to_numpy(model.decode(np.zeros((2, 2), np.float32)))
    np.testing.assert_allclose(decoded, at_origin, atol=1e-3)  # the MAP of the prior: z = 0
