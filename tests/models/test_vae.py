import keras
import numpy as np
import pytest
from keras import ops

from course_lib.models.vae import (
    CVAE,
    VAE,
    Sampling,
    bernoulli_entropy,
    bernoulli_log_likelihood,
    bernoulli_pixel_log_likelihood,
    build_decoder,
    build_encoder,
    gaussian_kl,
)

SHAPE = (8, 8, 1)


def _tiny(model_class=VAE, num_classes=None, latent_dim=2, seed=0):
    keras.utils.set_random_seed(seed)
    encoder = build_encoder(SHAPE, latent_dim, num_classes, filters=(4,), hidden_units=8)
    decoder = build_decoder(SHAPE, latent_dim, num_classes, filters=(4,), hidden_units=8)
    return model_class(encoder, decoder, seed=seed)


def _images(n=32, seed=0):
    """Four binary prototypes with 5% of pixels flipped: structure a VAE can learn."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((4, *SHAPE)) < 0.4
    images = prototypes[np.arange(n) % 4] ^ (rng.random((n, *SHAPE)) < 0.05)
    return np.where(images, 1.0, -1.0).astype("float32")


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = np.zeros((3, 4), "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(gaussian_kl(zeros, zeros)), 0, atol=1e-7)
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(3, 4)).astype("float32")
    log_var = rng.normal(size=(3, 4)).astype("float32")
    assert np.all(ops.convert_to_numpy(gaussian_kl(mean, log_var)) > 0)


def test_kl_matches_a_monte_carlo_estimate():
    mean, log_var = np.array([[0.5, -1.0]]), np.array([[0.3, -0.7]])
    rng = np.random.default_rng(0)
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.normal(size=(200_000, 2))
    log_q = -0.5 * (np.log(2 * np.pi) + log_var + (z - mean) ** 2 / np.exp(log_var))
    log_p = -0.5 * (np.log(2 * np.pi) + z**2)
    monte_carlo = np.mean(np.sum(log_q - log_p, axis=1))
    closed_form = float(gaussian_kl(mean.astype("float32"), log_var.astype("float32"))[0])
    assert closed_form == pytest.approx(monte_carlo, abs=0.01)


def test_sampling_layer_moments_match_mean_and_variance():
    n = 50_000
    mean = np.tile(np.array([[1.5, -2.0]], "float32"), (n, 1))
    log_var = np.tile(np.log(np.array([[0.25, 4.0]], "float32")), (n, 1))
    z = ops.convert_to_numpy(Sampling(seed=0)([mean, log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [1.5, -2.0], atol=0.03)
    np.testing.assert_allclose(z.var(axis=0), [0.25, 4.0], rtol=0.03)


def test_sampling_is_deterministic_for_a_seed():
    inputs = [np.zeros((4, 2), "float32"), np.zeros((4, 2), "float32")]
    a = ops.convert_to_numpy(Sampling(seed=3)(inputs))
    b = ops.convert_to_numpy(Sampling(seed=3)(inputs))
    np.testing.assert_array_equal(a, b)


def test_bernoulli_log_likelihood_matches_binary_crossentropy():
    images = _images(4)
    logits = np.random.default_rng(1).normal(size=images.shape).astype("float32")
    targets = (images + 1) / 2
    p = 1 / (1 + np.exp(-logits))
    expected = np.sum(targets * np.log(p) + (1 - targets) * np.log(1 - p), axis=(1, 2, 3))
    got = ops.convert_to_numpy(bernoulli_log_likelihood(images, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_grey_cross_entropy_is_never_below_the_targets_entropy():
    grey = np.random.default_rng(2).uniform(-1, 1, size=(3, *SHAPE)).astype("float32")
    floor = bernoulli_entropy(grey)
    t = (grey + 1) / 2
    best_logits = np.log(t / (1 - t)).astype("float32")  # p = t reaches the floor exactly
    np.testing.assert_allclose(-ops.convert_to_numpy(bernoulli_log_likelihood(grey, best_logits)),
                               floor, rtol=1e-4)
    rng = np.random.default_rng(3)
    for _ in range(5):
        logits = best_logits + rng.normal(size=grey.shape).astype("float32")
        assert np.all(-ops.convert_to_numpy(bernoulli_log_likelihood(grey, logits)) > floor)
    np.testing.assert_allclose(bernoulli_entropy(_images(4)), 0.0, atol=1e-12)  # binary: 0
    assert floor[0] == pytest.approx(np.sum(-(t[0] * np.log(t[0]) + (1 - t[0]) * np.log(1 - t[0]))))


def test_pixel_log_likelihood_sums_to_the_image_log_likelihood():
    images = _images(3)
    logits = np.random.default_rng(4).normal(size=images.shape).astype("float32")
    per_pixel = ops.convert_to_numpy(bernoulli_pixel_log_likelihood(images, logits))
    assert per_pixel.shape == images.shape and np.all(per_pixel <= 0)
    np.testing.assert_allclose(per_pixel.sum(axis=(1, 2, 3)),
                               ops.convert_to_numpy(bernoulli_log_likelihood(images, logits)),
                               rtol=1e-5)
    vae = _tiny()
    np.testing.assert_allclose(ops.convert_to_numpy(vae.log_likelihood(images, logits)),
                               per_pixel.sum(axis=(1, 2, 3)), rtol=1e-5)


def test_evaluate_reports_per_example_means_not_means_of_batch_means():
    vae = _tiny()
    vae.compile(keras.optimizers.Adam(1e-2))
    x = _images(10)
    # The KL does not depend on the draw of z, so it can be compared exactly.
    _, rate = vae.distortion_and_rate(x)
    result = vae.evaluate(x, batch_size=8, verbose=0, return_dict=True)  # batches of 8 and 2
    assert result["kl"] == pytest.approx(rate.mean(), rel=1e-5)
    assert abs(np.mean([rate[:8].mean(), rate[8:].mean()]) - rate.mean()) > 1e-4
    distortion, _ = vae.distortion_and_rate(x, num_samples=200)
    elbo = vae.elbo(x, num_samples=200)
    np.testing.assert_allclose(-(distortion + rate), elbo, rtol=0.02)


def test_training_lowers_the_negative_elbo():
    vae = _tiny()
    vae.compile(keras.optimizers.Adam(1e-2))
    x = _images(64)
    history = vae.fit(x, batch_size=16, epochs=15, verbose=0).history
    assert set(history) == {"loss", "reconstruction", "kl"}
    assert history["loss"][-1] < 0.9 * history["loss"][0]
    reconstruction = vae(x[:4])
    assert reconstruction.shape == (4, *SHAPE)
    assert -1 <= float(ops.min(reconstruction)) and float(ops.max(reconstruction)) <= 1


def test_iwae_with_one_sample_estimates_the_elbo_and_tightens_with_k():
    vae = _tiny()
    vae.compile(keras.optimizers.Adam(1e-2))
    x = _images(64)
    vae.fit(x, batch_size=16, epochs=5, verbose=0)
    elbo = vae.elbo(x, num_samples=200).mean()
    iwae_1 = np.mean([vae.iwae_bound(x, num_samples=1).mean() for _ in range(50)])
    assert iwae_1 == pytest.approx(elbo, abs=0.02 * abs(elbo))
    iwae_20 = vae.iwae_bound(x, num_samples=20).mean()
    iwae_100 = vae.iwae_bound(x, num_samples=100).mean()
    assert elbo <= iwae_20 + 0.05 and iwae_20 <= iwae_100 + 0.05


def test_cvae_output_depends_on_the_label():
    cvae = _tiny(CVAE, num_classes=10)
    z = np.zeros((10, 2), "float32")
    images = ops.convert_to_numpy(cvae.decode(z, np.arange(10)))
    assert images.shape == (10, *SHAPE)
    assert not np.allclose(images[0], images[1])
    samples = cvae.sample(6, labels=3, seed=0)
    assert samples.shape == (6, *SHAPE)
    with pytest.raises(ValueError, match="needs labels"):
        cvae.sample(6)


def test_cvae_given_unlabelled_data_says_how_to_fix_it():
    cvae = _tiny(CVAE, num_classes=10)
    cvae.compile(keras.optimizers.Adam(1e-2))
    with pytest.raises(ValueError, match=r"\(images, labels\) pairs; make the dataset with"):
        cvae.fit(_images(16), batch_size=8, epochs=1, verbose=0)


def test_cvae_trains_on_labelled_batches():
    cvae = _tiny(CVAE, num_classes=10)
    cvae.compile(keras.optimizers.Adam(1e-2))
    x, y = _images(64), np.arange(64) % 10
    history = cvae.fit(x, y, batch_size=16, epochs=10, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize("model_class, num_classes", [(VAE, None), (CVAE, 10)])
def test_models_serialize_and_reload(tmp_path, model_class, num_classes):
    model = _tiny(model_class, num_classes)
    model.compile(keras.optimizers.Adam(1e-2))
    x, y = _images(16), np.arange(16) % 10
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    config = model.get_config()
    assert config["beta"] == 1.0 and config["seed"] == 0
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is model_class
    inputs = (x, y) if num_classes else x
    np.testing.assert_allclose(ops.convert_to_numpy(reloaded(inputs)),
                               ops.convert_to_numpy(model(inputs)), atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_trains_under_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        vae = _tiny()
        vae.compile(keras.optimizers.Adam(1e-2))
        history = vae.fit(_images(64), batch_size=16, epochs=4, verbose=0).history
        assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
        if policy == "mixed_float16":
            assert isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
        mean, log_var = vae.encode(_images(2))
        assert mean.dtype == "float32" and log_var.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_beta_can_change_during_training():
    vae = _tiny()
    vae.compile(keras.optimizers.Adam(1e-2))
    x = _images(32)

    class Warmup(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.beta = 0.0 if epoch == 0 else 10.0

    history = vae.fit(x, batch_size=32, epochs=2, verbose=0, callbacks=[Warmup()]).history
    # loss = reconstruction + beta * kl: beta 0 in epoch 1, 10 in epoch 2 (one step each).
    np.testing.assert_allclose(history["loss"][0], history["reconstruction"][0], rtol=1e-5)
    np.testing.assert_allclose(history["loss"][1],
                               history["reconstruction"][1] + 10 * history["kl"][1], rtol=1e-4)
    assert vae.get_config()["beta"] == 10.0
