import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from course_lib.callbacks import JudgeScore, SampleGrid
from course_lib.models.gan import (
    GAN,
    WGANGP,
    ConditionalGAN,
    build_discriminator,
    build_generator,
    build_mlp_discriminator,
    build_mlp_generator,
    critic_loss,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    minimax_generator_loss,
    slerp,
)

SHAPE = (8, 8, 1)
LATENT_DIM = 4


def _adam():
    return keras.optimizers.Adam(2e-4, beta_1=0.5)


def _tiny(model_class=GAN, num_classes=None, seed=0, normalization="batch", **kwargs):
    keras.utils.set_random_seed(seed)
    generator = build_generator(LATENT_DIM, SHAPE, num_classes, filters=(8, 4))
    discriminator = build_discriminator(SHAPE, num_classes, filters=(4, 8),
                                        normalization=normalization)
    model = model_class(generator, discriminator, seed=seed, **kwargs)
    model.compile(d_optimizer=_adam(), g_optimizer=_adam())
    return model


def _images(n=32, seed=0):
    """Two binary prototypes: structure a discriminator can learn to tell from noise."""
    rng = np.random.default_rng(seed)
    prototypes = np.where(rng.random((2, *SHAPE)) < 0.5, 1.0, -1.0)
    return prototypes[np.arange(n) % 2].astype("float32")


# -- losses ------------------------------------------------------------------------------


def _bce(probabilities, target):
    return -np.mean(target * np.log(probabilities) + (1 - target) * np.log(1 - probabilities))


def test_losses_match_the_cross_entropy_formulas():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(16, 1)), rng.normal(size=(16, 1))
    d_real, d_fake = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))
    assert float(discriminator_loss(real, fake)) == pytest.approx(
        _bce(d_real, 1) + _bce(d_fake, 0), rel=1e-5)
    assert float(generator_loss(fake)) == pytest.approx(-np.mean(np.log(d_fake)), rel=1e-5)
    assert float(minimax_generator_loss(fake)) == pytest.approx(np.mean(np.log(1 - d_fake)),
                                                                rel=1e-5)
    smoothed = float(discriminator_loss(real, fake, label_smoothing=0.1))
    assert smoothed == pytest.approx(_bce(d_real, 0.9) + _bce(d_fake, 0), rel=1e-5)


def test_losses_are_finite_for_confident_logits():
    big = np.array([[100.0], [-100.0]], "float32")
    for value in (discriminator_loss(big, -big), generator_loss(big), minimax_generator_loss(big)):
        assert np.isfinite(float(value))
    assert float(generator_loss(np.full((2, 1), -100.0))) == pytest.approx(100.0)


def test_minimax_gradient_vanishes_where_the_non_saturating_one_does_not():
    logits = tf.constant([[-6.0]])  # D(G(z)) ~ 0.0025: D confidently rejects the fake
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        minimax, non_saturating = minimax_generator_loss(logits), generator_loss(logits)
    assert abs(float(tape.gradient(minimax, logits)[0, 0])) < 0.01
    assert abs(float(tape.gradient(non_saturating, logits)[0, 0])) > 0.99


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic():
    w = np.random.default_rng(0).normal(size=(int(np.prod(SHAPE)), 1)).astype("float32")
    for norm, expected in ((1.0, 0.0), (3.0, 4.0)):
        critic = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                                   keras.layers.Dense(1, use_bias=False)])
        critic.layers[-1].set_weights([norm * w / np.linalg.norm(w)])
        rng = np.random.default_rng(1)
        real, fake = rng.normal(size=(6, *SHAPE)), rng.normal(size=(6, *SHAPE))
        gp = float(gradient_penalty(critic, real.astype("float32"), fake.astype("float32"),
                                    seed=0))
        assert gp == pytest.approx(expected, abs=1e-4)


def test_gradient_penalty_sees_each_example_separately():
    # f(x) = sum x^2 / 2 has gradient x: the penalty is the mean of (|x_hat| - 1)^2 over the
    # interpolates, which the linear-critic test cannot tell from a batch-level norm.
    critic = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(
        lambda x: 0.5 * ops.sum(x * x, axis=-1, keepdims=True))])
    real = np.array([[3.0, 4.0], [0.0, 2.0]], "float32")  # |x| = 5 and 2
    gp = float(gradient_penalty(critic, real, real, seed=0))  # interpolates equal real
    assert gp == pytest.approx(((5 - 1) ** 2 + (2 - 1) ** 2) / 2, rel=1e-5)
    assert float(critic_loss(np.ones((2, 1)), np.zeros((2, 1)))) == -1.0


# -- networks ----------------------------------------------------------------------------


def test_generator_and_discriminator_shapes():
    generator = build_generator(LATENT_DIM, (16, 16, 3), filters=(16, 8, 4))
    assert generator.output_shape == (None, 16, 16, 3)
    images = ops.convert_to_numpy(generator(np.zeros((2, LATENT_DIM), "float32")))
    assert images.dtype == np.float32 and np.all(np.abs(images) <= 1)
    assert build_discriminator((16, 16, 3), filters=(4, 8)).output_shape == (None, 1)
    with pytest.raises(ValueError, match="divisible"):
        build_generator(LATENT_DIM, (12, 12, 1), filters=(8, 8, 8))
    with pytest.raises(ValueError, match="normalization"):
        build_discriminator(SHAPE, normalization="group")


def test_conditional_networks_depend_on_the_label():
    generator = build_generator(LATENT_DIM, SHAPE, num_classes=3, filters=(8, 4))
    discriminator = build_discriminator(SHAPE, num_classes=3, filters=(4, 8))
    z = np.random.default_rng(0).normal(size=(1, LATENT_DIM)).astype("float32")
    zs, labels = np.repeat(z, 3, axis=0), np.arange(3)
    images = ops.convert_to_numpy(generator([zs, labels]))
    assert np.abs(images[0] - images[1]).max() > 1e-4 and np.abs(images[1] - images[2]).max() > 1e-4
    scores = ops.convert_to_numpy(discriminator([np.repeat(images[:1], 3, axis=0), labels]))
    assert np.ptp(scores) > 1e-6


def test_slerp_keeps_the_norm_of_equal_norm_endpoints():
    rng = np.random.default_rng(0)
    z0, z1 = rng.normal(size=16), rng.normal(size=16)
    z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)
    path = slerp(z0, z1, 7)
    np.testing.assert_allclose(path[0], z0, rtol=1e-5)
    np.testing.assert_allclose(path[-1], z1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-4)
    assert np.allclose(slerp(z0, z0, 3), z0, rtol=1e-5)  # identical endpoints: no NaN


# -- training ----------------------------------------------------------------------------


def test_discriminator_steps_reduce_its_loss_on_a_fixed_batch():
    gan = _tiny()
    gan.g_optimizer.learning_rate.assign(0.0)  # hold G fixed: D alone must learn
    gan.d_optimizer.learning_rate.assign(2e-3)
    real = tf.constant(_images())
    first = float(gan.train_step(real)["d_loss"])
    for _ in range(30):
        for metric in gan.metrics:
            metric.reset_state()  # logs of this step alone
        logs = gan.train_step(real)
    assert float(logs["d_loss"]) < 0.5 * first
    assert float(logs["d_real"]) > 0.8 > 0.2 > float(logs["d_fake"])


def test_generator_steps_reduce_its_loss_against_a_fixed_discriminator():
    gan = _tiny()
    gan.d_optimizer.learning_rate.assign(0.0)
    gan.g_optimizer.learning_rate.assign(2e-3)
    real = tf.constant(_images())
    before = float(gan.train_step(real)["g_loss"])
    for _ in range(30):
        for metric in gan.metrics:
            metric.reset_state()
        logs = gan.train_step(real)
    assert float(logs["g_loss"]) < before


def test_mlp_gan_fits_and_samples_points():
    keras.utils.set_random_seed(0)
    gan = GAN(build_mlp_generator(2, 2, units=8, depth=1),
              build_mlp_discriminator(2, units=8, depth=1), seed=0)
    gan.compile(d_optimizer=_adam(), g_optimizer=_adam())
    history = gan.fit(np.random.default_rng(0).normal(size=(64, 2)).astype("float32"),
                      batch_size=32, epochs=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert gan.sample(5, seed=0).shape == (5, 2)


def test_sample_is_reproducible_for_a_seed():
    gan = _tiny()
    np.testing.assert_array_equal(gan.sample(6, seed=3), gan.sample(6, seed=3))
    assert not np.array_equal(gan.sample(6, seed=3), gan.sample(6, seed=4))


def test_conditional_gan_trains_on_pairs_and_needs_labels():
    gan = _tiny(ConditionalGAN, num_classes=2)
    history = gan.fit(_images(), np.arange(32) % 2, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][0])
    samples = gan.sample(4, labels=[0, 1, 0, 1], seed=0)
    assert samples.shape == (4, *SHAPE)
    assert np.abs(samples[0] - samples[1]).max() > 1e-4
    with pytest.raises(ValueError, match="labels"):
        gan.sample(4)
    with pytest.raises(ValueError, match="pairs"):
        gan.fit(_images(), batch_size=16, epochs=1, verbose=0)


@pytest.mark.parametrize("model_class", [GAN, WGANGP])
def test_conditional_is_read_from_the_networks(model_class):
    plain = _tiny(model_class)
    assert not plain.conditional and plain.num_classes is None
    conditional = _tiny(model_class, num_classes=3)
    assert conditional.conditional and conditional.num_classes == 3
    assert conditional.sample(3, labels=[0, 1, 2], seed=0).shape == (3, *SHAPE)
    with pytest.raises(TypeError, match="reads `conditional` from its networks"):
        _tiny(model_class, conditional=True)
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        conditional.sample(2, labels=3)
    with pytest.raises(ValueError, match="unconditional"):
        plain.sample(2, labels=0)


def test_networks_must_agree_on_labels():
    generator = build_generator(LATENT_DIM, SHAPE, num_classes=2, filters=(8, 4))
    with pytest.raises(ValueError, match="one network takes labels"):
        GAN(generator, build_discriminator(SHAPE, filters=(4, 8)))
    with pytest.raises(ValueError, match="ConditionalGAN needs networks that take labels"):
        ConditionalGAN(build_generator(LATENT_DIM, SHAPE, filters=(8, 4)),
                       build_discriminator(SHAPE, filters=(4, 8)))


@pytest.mark.parametrize("num_classes", [1, 2.5, True])
def test_networks_check_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        build_generator(LATENT_DIM, SHAPE, num_classes=num_classes, filters=(8, 4))
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        build_discriminator(SHAPE, num_classes=num_classes, filters=(4, 8))


def test_wgan_gp_loads_a_config_that_still_names_conditional():
    gan = _tiny(WGANGP, num_classes=2, normalization="layer", critic_steps=2)
    config = {**gan.get_config(), "conditional": True}  # as saved by earlier versions
    assert WGANGP.from_config(config).conditional


def test_wgan_gp_trains_and_reports_its_penalty():
    gan = _tiny(WGANGP, num_classes=2, normalization="layer", critic_steps=2)
    assert gan.conditional and gan.num_classes == 2  # read from the networks
    history = gan.fit(_images(), np.arange(32) % 2, batch_size=16, epochs=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss", "gp", "wasserstein"}
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert history.history["gp"][-1] >= 0


def test_mixed_float16_wraps_the_optimizers_and_trains():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        gan = _tiny()
        assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
        logs = gan.train_step(tf.constant(_images()))
        assert np.isfinite(float(logs["d_loss"])) and gan.sample(2, seed=0).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


# -- saving and resuming -----------------------------------------------------------------


@pytest.mark.parametrize("model_class", [GAN, ConditionalGAN, WGANGP])
def test_models_serialize_and_reload(model_class, tmp_path):
    num_classes = None if model_class is GAN else 2  # WGANGP: a conditional one
    kwargs = {"critic_steps": 2} if model_class is WGANGP else {}
    gan = _tiny(model_class, num_classes=num_classes, **kwargs)
    labels = None if num_classes is None else [0, 1, 1]
    gan.fit(_images(16), None if num_classes is None else np.arange(16) % 2, batch_size=16,
            epochs=1, verbose=0)
    config_copy = model_class.from_config(gan.get_config())
    assert config_copy.latent_dim == LATENT_DIM and config_copy.seed == gan.seed
    path = tmp_path / "gan.keras"
    gan.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is model_class
    assert int(reloaded.d_optimizer.iterations) == int(gan.d_optimizer.iterations) > 0
    assert reloaded.conditional == (num_classes is not None)
    if model_class is WGANGP:
        assert reloaded.critic_steps == 2
    np.testing.assert_allclose(reloaded.sample(3, labels=labels, seed=1),
                               gan.sample(3, labels=labels, seed=1), atol=1e-6)


class _Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("simulated crash")


def test_backup_and_restore_resumes_from_the_saved_epoch(tmp_path):
    images = _images()
    gan = _tiny()
    with pytest.raises(RuntimeError, match="simulated crash"):
        gan.fit(images, batch_size=16, epochs=4, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(tmp_path), _Crash()])
    assert int(gan.d_optimizer.iterations) == 4  # 2 epochs of 2 steps

    resumed = _tiny(seed=1)  # a fresh process would start from other weights
    history = resumed.fit(images, batch_size=16, epochs=4, verbose=0,
                          callbacks=[keras.callbacks.BackupAndRestore(tmp_path)])
    assert history.epoch == [2, 3]  # it continued where the crash left off
    assert int(resumed.d_optimizer.iterations) == int(resumed.g_optimizer.iterations) == 8


# -- callbacks ---------------------------------------------------------------------------


def test_sample_grid_keeps_the_same_latents_every_time(tmp_path):
    gan = _tiny()
    grid = SampleGrid(num_samples=4, seed=0, every=2, directory=tmp_path)
    gan.fit(_images(), batch_size=16, epochs=3, verbose=0, callbacks=[grid])
    assert grid.epochs == [2, 3]  # every 2 epochs, and the last one
    assert not np.allclose(grid.frames[0], grid.frames[1])  # the generator moved...
    np.testing.assert_allclose(grid.frames[-1], gan.sample(4, seed=0), atol=1e-6)  # same z
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0002.png", "epoch_0003.png"]
    with pytest.raises(ValueError, match="every"):
        SampleGrid(every=0)


class _StubJudge:
    """Scores how far samples are from the real set's mean, in place of the digit judge."""

    def report(self, generated, real, labels=None):
        gap = float(np.abs(generated.mean() - real.mean()))
        report = {"fid": gap, "kid": gap / 2}
        if labels is not None:
            report["label_accuracy"] = 1.0
        return report


def test_judge_score_records_before_and_during_training():
    gan = _tiny()
    scores = JudgeScore(_StubJudge(), _images(), every=2, num_samples=8)
    history = gan.fit(_images(), batch_size=16, epochs=3, verbose=0, callbacks=[scores])
    assert scores.history["epoch"] == [0, 2, 3]
    assert len(scores.history["fid"]) == 3 and len(scores.history["kid"]) == 3
    fids = history.history["fid"]  # in the logs: scored epochs, NaN between them
    assert len(fids) == 3 and np.isnan(fids[0]) and fids[1:] == scores.history["fid"][1:]
