import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from course_lib.models.diffusion import DiffusionModel
from course_lib.models.unet import build_unet

SHAPE = (8, 8, 1)
WIDTHS = (8, 16)
NUM_TIMESTEPS = 100


def _images(n=64, seed=0):
    """Four binary prototypes, repeated: structure a tiny network can learn quickly."""
    prototypes = np.random.default_rng(seed).random((4, *SHAPE)) < 0.4
    return np.where(prototypes[np.arange(n) % 4], 1.0, -1.0).astype("float32")


def _labels(n=64):
    return (np.arange(n) % 4 % 3).astype("int32")  # 3 classes; prototypes 0 and 3 share one


def _tiny(num_classes=None, seed=0, run_eagerly=False, **kwargs):
    keras.utils.set_random_seed(seed)
    network = build_unet(SHAPE, WIDTHS, num_classes=num_classes, num_heads=2)
    model = DiffusionModel(network, num_timesteps=NUM_TIMESTEPS, seed=seed,
                           **{"ema_decay": 0.9, **kwargs})
    model.compile(keras.optimizers.Adam(1e-2), run_eagerly=run_eagerly)
    return model


def _evaluate(model, images):
    """The loss on `images` for one draw of t and noise per image (no compiled function)."""
    model.loss_tracker.reset_state()
    return float(model.test_step(tf.constant(images))["loss"])


@pytest.fixture(scope="module")
def trained():
    """An unconditional model, its loss before and after training, and its history."""
    model = _tiny()
    images = _images(256)
    loss_before = _evaluate(model, images)
    history = model.fit(_images(), batch_size=32, epochs=25, verbose=0).history
    return model, loss_before, _evaluate(model, images), history


@pytest.fixture(scope="module")
def conditional():
    """A conditional model after three steps: enough for the label to change its output."""
    model = _tiny(num_classes=3, run_eagerly=True)
    model.fit(_images(), _labels(), batch_size=32, epochs=1, steps_per_epoch=2, verbose=0)
    return model


def _weights(network):
    return [ops.convert_to_numpy(w) for w in network.weights]


# -- training ----------------------------------------------------------------------------


def test_training_lowers_the_loss(trained):
    _, loss_before, loss_after, history = trained
    # The output layer starts at zero, so the first loss is E[noise^2] = 1.
    assert loss_before == pytest.approx(1.0, abs=0.05)
    assert set(history) == {"loss"}
    assert np.mean(history["loss"][-5:]) < 0.5 * loss_before
    assert loss_after < 0.5 * loss_before


def test_ema_lags_the_weights_and_equals_them_at_decay_zero(trained):
    model = trained[0]
    assert not model.ema_network.trainable_weights  # never trained directly
    assert any(not np.allclose(a, b) for a, b in zip(_weights(model.ema_network),
                                                     _weights(model.network)))
    assert len(model.weights) == 2 * len(model.network.weights)  # the EMA is saved too
    copy = _tiny(ema_decay=0.0, run_eagerly=True)
    copy.fit(_images(16), batch_size=16, epochs=1, verbose=0)
    for a, b in zip(_weights(copy.ema_network), _weights(copy.network)):
        np.testing.assert_array_equal(a, b)


def test_flow_objective_trains_and_samples_with_euler():
    model = _tiny(objective="flow", run_eagerly=True)
    history = model.fit(_images(16), batch_size=16, epochs=1, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    samples = model.sample(3, num_steps=4, seed=0)
    assert samples.shape == (3, *SHAPE) and np.abs(samples).max() <= 1
    with pytest.raises(ValueError, match="'euler'"):
        model.sample(3, sampler="ddim")
    with pytest.raises(ValueError, match="objective"):
        DiffusionModel(model.network, objective="x0")


def test_the_old_name_velocity_means_flow_and_says_so():
    keras.utils.set_random_seed(0)
    network = build_unet(SHAPE, WIDTHS, num_heads=2)
    with pytest.warns(FutureWarning, match='objective="flow"'):
        model = DiffusionModel(network, num_timesteps=NUM_TIMESTEPS, objective="velocity")
    assert model.objective == "flow" and model.get_config()["objective"] == "flow"
    assert model.prediction == "flow"
    assert DiffusionModel(network, objective="v").prediction == "eps"  # v samples through eps


def test_conditional_model_needs_labels_to_train(conditional):
    with pytest.raises(ValueError, match="pairs"):
        conditional.train_step(tf.constant(_images(4)))
    assert conditional.num_classes == 3


def test_trains_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _tiny(run_eagerly=True)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        logs = model.train_step(tf.constant(_images(8)))
        assert np.isfinite(float(logs["loss"]))
        assert model(list(_network_inputs(2))).dtype == "float32"
        assert model.sample(2, num_steps=2).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _network_inputs(n):
    return _images(n), np.full((n,), 10.0, "float32")


# -- sampling ----------------------------------------------------------------------------


def test_ddim_is_deterministic_at_eta_zero_and_seeded_otherwise(trained):
    model = trained[0]
    a = model.sample(6, num_steps=5, seed=3)
    np.testing.assert_array_equal(a, model.sample(6, num_steps=5, seed=3))
    np.testing.assert_allclose(a, model.sample(6, num_steps=5, seed=3, batch_size=4), atol=1e-5)
    assert a.shape == (6, *SHAPE) and a.dtype == np.float32
    assert -1 <= a.min() and a.max() <= 1
    noisy = model.sample(6, num_steps=5, eta=1.0, seed=3)
    np.testing.assert_array_equal(noisy, model.sample(6, num_steps=5, eta=1.0, seed=3))
    assert not np.allclose(noisy, model.sample(6, num_steps=5, eta=1.0, seed=4))
    assert not np.allclose(noisy, a)
    assert not np.allclose(a, model.sample(6, num_steps=5, seed=3, use_ema=False))


def test_ddpm_sampler_and_trajectory(trained):
    model = trained[0]
    images, trajectory = model.sample(4, sampler="ddpm", seed=0, return_trajectory=True)
    assert trajectory.shape == (NUM_TIMESTEPS + 1, 4, *SHAPE)
    assert np.std(trajectory[0]) == pytest.approx(1.0, abs=0.2)  # starts from noise
    np.testing.assert_array_equal(images, np.clip(trajectory[-1], -1, 1))
    with pytest.raises(ValueError, match="all num_timesteps"):
        model.sample(4, sampler="ddpm", num_steps=10)
    with pytest.raises(ValueError, match="Unknown sampler"):
        model.sample(4, sampler="heun")
    with pytest.raises(ValueError, match="no labels"):
        model.sample(4, labels=1)


def test_guidance_scale_zero_is_unconditional_sampling(conditional):
    labels = [0, 1, 2, 0, 1, 2]
    unconditional = conditional.sample(6, num_steps=8, seed=1)
    np.testing.assert_allclose(conditional.sample(6, num_steps=8, labels=labels,
                                                  guidance_scale=0.0, seed=1),
                               unconditional, atol=1e-6)
    assert not np.allclose(conditional.sample(6, num_steps=8, labels=labels, seed=1),
                           unconditional, atol=1e-3)
    with pytest.raises(ValueError, match=r"0\.\.3"):
        conditional.sample(2, labels=4)


def test_guided_prediction_extrapolates_from_unconditional_to_conditional(conditional):
    x, labels = _images(4), np.array([0, 1, 2, 0], "int32")
    conditional_eps = conditional.guided_prediction(x, 50, labels, 1.0)
    unconditional_eps = conditional.guided_prediction(x, 50, labels, 0.0)
    guided = conditional.guided_prediction(x, 50, labels, 3.0)
    np.testing.assert_allclose(guided, unconditional_eps + 3 * (conditional_eps -
                                                                 unconditional_eps), atol=1e-5)
    np.testing.assert_allclose(conditional.guided_prediction(x, 50, None, 3.0),
                               unconditional_eps, atol=1e-6)  # no labels: the null label
    assert not np.allclose(conditional.guided_prediction(x, 50, labels, 1.0, use_ema=False),
                           conditional_eps)


# -- editing: inpainting and SDEdit ------------------------------------------------------


class _OracleNoise(keras.layers.Layer):
    """The exact noise prediction of a data set holding one image, `target`:
    eps(x_t, t) = (x_t - sqrt(abar_t) target) / sqrt(1 - abar_t)."""

    def __init__(self, target, alphas_cumprod, predicts="eps", **kwargs):
        super().__init__(**kwargs)
        self.predicts = predicts
        self.target = np.asarray(target, "float32")
        self.alphas_cumprod = np.asarray(alphas_cumprod, "float32")

    def call(self, x_t, t):
        abar = ops.take(ops.convert_to_tensor(self.alphas_cumprod), ops.cast(t, "int32"))
        abar = ops.reshape(abar, (-1, 1, 1, 1))
        eps = (x_t - ops.sqrt(abar) * self.target) / ops.sqrt(1.0 - abar)
        if self.predicts == "v":  # v = sqrt(abar) eps - sqrt(1 - abar) x0
            return ops.sqrt(abar) * eps - ops.sqrt(1.0 - abar) * self.target
        return eps

    def get_config(self):
        return {**super().get_config(), "target": self.target.tolist(),
                "alphas_cumprod": self.alphas_cumprod.tolist(), "predicts": self.predicts}


def _oracle_model(target, objective="eps"):
    """A DiffusionModel whose network knows the one image of its 'data set'."""
    from course_lib.schedulers import DDPMScheduler

    x_t, t = keras.Input(SHAPE), keras.Input(())
    output = _OracleNoise(target, DDPMScheduler(NUM_TIMESTEPS).alphas_cumprod,
                          predicts=objective)(x_t, t)
    return DiffusionModel(keras.Model([x_t, t], output), num_timesteps=NUM_TIMESTEPS,
                          objective=objective)


def test_v_prediction_samples_through_the_noise_it_implies():
    target = _images(1)[0]
    model = _oracle_model(target, objective="v")
    for sampler in ("ddim", "ddpm"):
        np.testing.assert_allclose(model.sample(2, sampler=sampler, num_steps=None, seed=0),
                                   np.stack([target] * 2), atol=1e-3)
    # Training regresses v: a tiny network learns the prototypes' v.
    tiny, images = _tiny(objective="v"), _images(256)
    loss_before = _evaluate(tiny, images)
    tiny.fit(_images(), batch_size=32, epochs=25, verbose=0)
    assert _evaluate(tiny, images) < 0.7 * loss_before


@pytest.mark.parametrize("resample", [1, 3])
def test_inpainting_with_an_oracle_restores_the_hidden_pixels(resample):
    target = _images(1)[0]
    model = _oracle_model(target)
    # The visible half is the target's; the hidden half starts as something else.
    mask = np.zeros((2, *SHAPE), "float32")
    mask[:, :, :4] = 1.0
    images = np.where(mask > 0, target, -target)
    filled = model.inpaint(images, mask, num_steps=10, resample=resample, seed=0)
    np.testing.assert_array_equal(filled[mask > 0], images[mask > 0])  # kept exactly
    np.testing.assert_allclose(filled, np.broadcast_to(target, filled.shape), atol=1e-3)


def test_sdedit_with_an_oracle_lands_on_its_image_and_keeps_inputs_at_low_strength():
    target = _images(1)[0]
    model = _oracle_model(target)
    guide = np.stack([-target, 0 * target])
    np.testing.assert_allclose(model.edit(guide, strength=0.6, num_steps=6), np.stack([target] * 2),
                               atol=1e-3)
    # A trained model at a small strength: the output stays close to the input.
    trained_model, guide = _tiny(), _images(4)
    close = trained_model.edit(guide, strength=0.05, num_steps=3)
    far = trained_model.edit(guide, strength=1.0, num_steps=3)
    assert np.abs(close - guide).mean() < 0.5 * np.abs(far - guide).mean()


def test_editing_rejects_bad_inputs_clearly(trained):
    model, images = trained[0], _images(2)
    with pytest.raises(ValueError, match="mask must hold only 0"):
        model.inpaint(images, np.full(images.shape, 0.5))
    with pytest.raises(ValueError, match=r"images must have shape \(N, 8, 8, 1\)"):
        model.inpaint(images[..., 0], np.ones(images.shape))
    with pytest.raises(ValueError, match="resample must be a positive integer"):
        model.inpaint(images, np.ones(images.shape), resample=0)
    with pytest.raises(ValueError, match=r"strength must be in \(0, 1\]"):
        model.edit(images, strength=0.0)
    flow = _tiny(objective="flow")
    with pytest.raises(ValueError, match="needs objective='eps'"):
        flow.edit(images)


# -- saving and resuming -----------------------------------------------------------------


def test_serializes_and_reloads(conditional, tmp_path):
    model, labels = conditional, [0, 1, 2]
    config = DiffusionModel.from_config(model.get_config()).get_config()
    assert {key: config[key] for key in ("num_timesteps", "ema_decay", "num_classes")} == {
        "num_timesteps": NUM_TIMESTEPS, "ema_decay": 0.9, "num_classes": model.num_classes}
    path = tmp_path / "diffusion.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is DiffusionModel
    assert int(reloaded.optimizer.iterations) == int(model.optimizer.iterations) > 0
    for a, b in zip(_weights(reloaded.ema_network), _weights(model.ema_network)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(reloaded.sample(3, num_steps=3, labels=labels, seed=2),
                               model.sample(3, num_steps=3, labels=labels, seed=2), atol=1e-6)


class _Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.ema_weights = _weights(self.model.ema_network)
            raise RuntimeError("simulated crash")


class _RecordStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ema_weights = _weights(self.model.ema_network)


def test_backup_and_restore_resumes_from_the_saved_epoch(tmp_path):
    images = _images(16)
    model, crash = _tiny(run_eagerly=True), _Crash()
    with pytest.raises(RuntimeError, match="simulated crash"):
        model.fit(images, batch_size=16, epochs=3, verbose=0,
                  callbacks=[keras.callbacks.BackupAndRestore(tmp_path), crash])
    assert int(model.optimizer.iterations) == 2  # 2 epochs of 1 step

    resumed, start = _tiny(seed=1, run_eagerly=True), _RecordStart()  # other initial weights
    history = resumed.fit(images, batch_size=16, epochs=3, verbose=0,
                          callbacks=[keras.callbacks.BackupAndRestore(tmp_path), start])
    assert history.epoch == [2]  # it continued where the crash left off
    assert int(resumed.optimizer.iterations) == 3
    for a, b in zip(start.ema_weights, crash.ema_weights):  # the EMA came back too
        np.testing.assert_array_equal(a, b)


def test_sample_grid_passes_sampler_arguments(trained):
    """`SampleGrid(sample_kwargs=...)` draws with the sampler and steps asked for."""
    from course_lib.callbacks import SampleGrid

    model = trained[0]
    grid = SampleGrid(num_samples=4, seed=3, every=1, sample_kwargs={"num_steps": 5})
    grid.set_model(model)
    grid.on_train_begin()
    grid.on_epoch_end(0)
    np.testing.assert_array_equal(grid.frames[0], model.sample(4, num_steps=5, seed=3))
    assert not np.array_equal(grid.frames[0], model.sample(4, num_steps=10, seed=3))
