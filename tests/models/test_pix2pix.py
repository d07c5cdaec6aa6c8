import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from course_lib.models.pix2pix import (
    Pix2Pix,
    build_patch_discriminator,
    build_unet_generator,
    degrade,
    downsample,
    mean_gradient,
    pix2pix_generator_loss,
)

SHAPE = (8, 8, 3)
FILTERS = (4, 8)


def _adam(learning_rate=2e-3):
    return keras.optimizers.Adam(learning_rate, beta_1=0.5)


def _tiny(gan=True, seed=0, g_learning_rate=2e-3, d_learning_rate=2e-3, normalization=None):
    keras.utils.set_random_seed(seed)
    generator = build_unet_generator(SHAPE, FILTERS)
    discriminator = build_patch_discriminator(SHAPE, FILTERS, normalization) if gan else None
    model = Pix2Pix(generator, discriminator, l1_weight=10.0)
    model.compile(g_optimizer=_adam(g_learning_rate),
                  d_optimizer=_adam(d_learning_rate) if gan else None)
    return model


def _pairs(n=16, seed=0):
    """Smooth random images (a few sinusoids) and their degraded versions."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 3))
    freq = rng.uniform(0.3, 1.5, (n, 1, 1, 3))
    clean = 0.8 * np.sin(freq * xx[None, :, :, None] + 0.7 * yy[None, :, :, None] + phase)
    clean = clean.astype("float32")
    return degrade(clean, scale=2, noise_std=0.1, seed=seed), clean


# -- the degradation ---------------------------------------------------------------------


def test_degrade_keeps_the_shape_and_the_range():
    images = np.random.default_rng(0).uniform(-1, 1, (3, *SHAPE)).astype("float32")
    out = degrade(images, scale=2, noise_std=0.5, seed=0)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= -1 and out.max() <= 1
    assert not np.allclose(out, images)  # it really degrades
    np.testing.assert_array_equal(out, degrade(images, scale=2, noise_std=0.5, seed=0))
    assert not np.array_equal(out, degrade(images, scale=2, noise_std=0.5, seed=1))


def test_degrade_is_bicubic_upsampling_of_the_noisy_camera_image():
    images = np.random.default_rng(0).uniform(-1, 1, (3, *SHAPE)).astype("float32")
    small = downsample(images, scale=2, noise_std=0.3, seed=4)
    assert small.shape == (3, 4, 4, 3)
    noise_free = downsample(images, scale=2)
    np.testing.assert_allclose(noise_free[:, 0, 0], images[:, :2, :2].mean(axis=(1, 2)),
                               atol=1e-6)  # area averaging
    assert 0.2 < np.std(small - noise_free) < 0.4
    upsampled = tf.image.resize(small, (8, 8), method="bicubic").numpy()
    np.testing.assert_allclose(degrade(images, scale=2, noise_std=0.3, seed=4),
                               np.clip(upsampled, -1, 1), atol=1e-6)


def test_degrade_without_noise_keeps_a_constant_image():
    images = np.full((2, *SHAPE), 0.3, "float32")
    np.testing.assert_allclose(degrade(images, scale=4), images, atol=1e-6)


def test_degrade_explains_bad_inputs():
    with pytest.raises(ValueError, match="not divisible by scale=3"):
        degrade(np.zeros((1, *SHAPE), "float32"), scale=3)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        degrade(np.zeros(SHAPE, "float32"))


def test_mean_gradient_measures_local_contrast():
    ramp = np.tile(np.arange(4, dtype="float32")[None, :, None], (4, 1, 1))[None]  # dx = 1
    assert mean_gradient(ramp) == pytest.approx([1.0])
    flat = np.zeros((1, 4, 4, 1), "float32")
    checker = np.indices((4, 4)).sum(axis=0)[None, :, :, None] % 2 * 2.0 - 1  # dx = dy = 2
    np.testing.assert_allclose(mean_gradient(np.concatenate([flat, checker])),
                               [0.0, np.sqrt(8.0)])
    source, clean = _pairs(8)
    assert mean_gradient(tf.image.resize(clean, (4, 4)).numpy()).shape == (8,)


# -- the networks and the loss -----------------------------------------------------------


def test_untrained_generator_returns_its_input():
    source, _ = _pairs(4)
    generator = build_unet_generator(SHAPE, FILTERS)
    np.testing.assert_array_equal(ops.convert_to_numpy(generator(source)), source)


def test_generator_explains_an_indivisible_size():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*len\\(filters\\) = 8"):
        build_unet_generator((12, 12, 3), (4, 8, 16))


def test_patch_discriminator_gives_a_grid_of_logits():
    discriminator = build_patch_discriminator(SHAPE, FILTERS)  # strides 2, 1
    source, clean = _pairs(2)
    assert tuple(discriminator([source, clean]).shape) == (2, 4, 4, 1)


def test_patch_discriminator_normalization():
    """No BatchNorm by default; "batch" adds one after every convolution but the first."""
    def batchnorms(model):
        return sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)

    assert batchnorms(build_patch_discriminator(SHAPE, FILTERS)) == 0
    assert batchnorms(build_patch_discriminator(SHAPE, FILTERS, "batch")) == len(FILTERS) - 1
    with pytest.raises(ValueError, match="normalization must be None or 'batch'"):
        build_patch_discriminator(SHAPE, FILTERS, "layer")


def test_generator_loss_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    target, restored = rng.uniform(-1, 1, (2, 2, *SHAPE)).astype("float32")
    expected = np.mean(np.log1p(np.exp(-logits))) + 7.0 * np.mean(np.abs(target - restored))
    assert float(pix2pix_generator_loss(logits, target, restored, 7.0)) == pytest.approx(
        expected, rel=1e-5)


# -- training ----------------------------------------------------------------------------


def test_l1_training_reduces_the_l1_loss():
    model = _tiny(gan=False, g_learning_rate=1e-2)
    source, clean = _pairs()
    evaluate = lambda: model.evaluate(source, clean, batch_size=16, verbose=0,  # noqa: E731
                                      return_dict=True)["reconstruction"]
    before = evaluate()
    history = model.fit(source, clean, batch_size=16, epochs=30, verbose=0)
    assert set(history.history) == {"g_loss", "reconstruction"}
    after = evaluate()
    assert after < 0.85 * before


def test_gan_training_logs_all_losses():
    model = _tiny()
    source, clean = _pairs()
    history = model.fit(source, clean, batch_size=8, epochs=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_gan", "g_loss", "reconstruction"}
    assert all(np.isfinite(values).all() for values in history.history.values())
    logs = history.history
    assert logs["g_loss"][-1] == pytest.approx(
        10.0 * logs["reconstruction"][-1] + logs["g_gan"][-1], rel=1e-4)
    assert int(model.g_optimizer.iterations) == int(model.d_optimizer.iterations) == 4


def test_discriminator_learns_to_tell_degraded_from_clean():
    """With the generator frozen at the identity, D sees (degraded, degraded) as fake and
    (degraded, clean) as real, in separate calls; its loss must fall far below chance,
    2 log 2. With BatchNorm, each call normalises its batch by its own statistics and hides
    the batch-wide difference: D learns much less (why the default PatchGAN has none)."""
    source, clean = _pairs(32)
    final = {}
    for normalization in (None, "batch"):
        model = _tiny(g_learning_rate=0.0, d_learning_rate=1e-2, normalization=normalization)
        history = model.fit(source, clean, batch_size=32, epochs=15, verbose=0)
        final[normalization] = history.history["d_loss"][-1]
    assert final[None] < 0.3 * 2 * np.log(2), final
    assert final["batch"] > 2 * final[None], final


class L2Pix2Pix(Pix2Pix):
    """Pix2Pix with the mean squared error as its reconstruction term."""

    def reconstruction_loss(self, target, restored):
        return ops.mean(ops.square(ops.cast(target, "float32") - ops.cast(restored, "float32")))


def test_default_reconstruction_loss_is_the_mean_absolute_error():
    source, clean = _pairs(4)
    model = _tiny(gan=False)
    assert float(model.reconstruction_loss(clean, source)) == pytest.approx(
        np.mean(np.abs(clean - source)), rel=1e-5)


@pytest.mark.parametrize("gan", [False, True], ids=["l1_only", "gan"])
def test_overriding_reconstruction_loss_changes_what_train_step_optimises(gan):
    """One SGD step of a subclass with the squared error moves the generator's weights by
    -lr * grad of its own loss (computed here by hand), not of the L1 loss."""
    source, clean = _pairs(8)
    keras.utils.set_random_seed(0)
    discriminator = build_patch_discriminator(SHAPE, FILTERS) if gan else None
    model = L2Pix2Pix(build_unet_generator(SHAPE, FILTERS), discriminator, l1_weight=10.0)
    model.compile(g_optimizer=keras.optimizers.SGD(0.1),
                  d_optimizer=keras.optimizers.SGD(0.1) if gan else None)
    generator_vars = model.generator.trainable_variables
    before = [ops.convert_to_numpy(v) for v in generator_vars]
    with tf.GradientTape() as tape:
        restored = model.generator(source, training=True)
        loss = 10.0 * ops.mean(ops.square(clean - restored))
        if gan:
            logits = model.discriminator([ops.concatenate([source, source]),
                                          ops.concatenate([clean, restored])], training=True)
            loss += ops.mean(ops.softplus(-ops.split(logits, 2)[1]))
    grads = tape.gradient(loss, generator_vars)
    with tf.GradientTape() as tape:  # what the default L1 term would have asked for
        l1_loss = 10.0 * ops.mean(ops.abs(clean - model.generator(source, training=True)))
    l1_grads = tape.gradient(l1_loss, generator_vars)
    history = model.fit(source, clean, batch_size=8, epochs=1, verbose=0, shuffle=False)
    logs = {key: values[-1] for key, values in history.history.items()}
    mse = float(np.mean((clean - source) ** 2))  # the untrained generator returns its input
    assert logs["reconstruction"] == pytest.approx(mse, rel=1e-5)
    assert logs["g_loss"] == pytest.approx(float(loss), rel=1e-5)
    moved = [w - ops.convert_to_numpy(v) for w, v in zip(before, generator_vars)]
    assert max(np.abs(m).max() for m in moved) > 1e-4  # the step did something
    for step, grad in zip(moved, grads):
        np.testing.assert_allclose(step, 0.1 * ops.convert_to_numpy(grad), atol=1e-6)
    kernel_step = moved[-2]  # the correction layer's kernel: zero at the start
    assert not np.allclose(kernel_step, 0.1 * ops.convert_to_numpy(l1_grads[-2]), atol=1e-4)


def test_evaluate_reports_the_overridden_reconstruction_loss():
    source, clean = _pairs(8)
    keras.utils.set_random_seed(0)
    model = L2Pix2Pix(build_unet_generator(SHAPE, FILTERS), None, l1_weight=10.0)
    model.compile(g_optimizer=_adam())
    result = model.evaluate(source, clean, batch_size=8, verbose=0, return_dict=True)
    assert result == {"reconstruction": pytest.approx(np.mean((clean - source) ** 2), rel=1e-5)}


def test_compile_wants_d_optimizer_exactly_with_a_discriminator():
    generator = build_unet_generator(SHAPE, FILTERS)
    with pytest.raises(ValueError, match="d_optimizer exactly when"):
        Pix2Pix(generator).compile(g_optimizer=_adam(), d_optimizer=_adam())
    with pytest.raises(ValueError, match="d_optimizer exactly when"):
        Pix2Pix(generator, build_patch_discriminator(SHAPE, FILTERS)).compile(
            g_optimizer=_adam())


def test_enhance_clips_and_batches():
    model = _tiny(gan=False)
    images = np.random.default_rng(0).uniform(-1.5, 1.5, (5, *SHAPE)).astype("float32")
    out = model.enhance(images, batch_size=2)  # untrained: the input, clipped
    np.testing.assert_array_equal(out, np.clip(images, -1, 1))


# -- saving ------------------------------------------------------------------------------


@pytest.mark.parametrize("gan", [False, True], ids=["l1_only", "gan"])
def test_models_serialize_and_reload(gan, tmp_path):
    model = _tiny(gan=gan)
    source, clean = _pairs()
    model.fit(source, clean, batch_size=8, epochs=1, verbose=0)
    config_copy = Pix2Pix.from_config(model.get_config())
    assert config_copy.l1_weight == 10.0 and (config_copy.discriminator is None) == (not gan)
    path = tmp_path / "pix2pix.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is Pix2Pix and reloaded.l1_weight == 10.0
    assert int(reloaded.g_optimizer.iterations) == int(model.g_optimizer.iterations) == 2
    if gan:
        assert int(reloaded.d_optimizer.iterations) == 2
    else:
        assert reloaded.discriminator is None and reloaded.d_optimizer is None
    np.testing.assert_allclose(reloaded.enhance(source), model.enhance(source), atol=1e-6)
    reloaded.fit(source, clean, batch_size=8, epochs=1, verbose=0)  # recompiled: trains on
    assert int(reloaded.g_optimizer.iterations) == 4
