import keras
import numpy as np
import pytest
from keras import ops

from course_lib import sampling
from course_lib.models.diffusion import DiffusionModel
from course_lib.models.unet import build_unet
from course_lib.sampling import DDIMSampler, DDPMSampler, EulerSampler, Sampler
from course_lib.schedulers import DDIMScheduler, DDPMScheduler

SHAPE = (8, 8, 1)
NUM_TIMESTEPS = 100


def _model(objective="eps", num_classes=None):
    """A tiny model with small random weights everywhere (an untrained U-Net outputs 0)."""
    keras.utils.set_random_seed(0)
    network = build_unet(SHAPE, (8, 16), num_classes=num_classes, num_heads=2)
    rng = np.random.default_rng(1)
    for weight in network.weights:
        weight.assign(rng.normal(0.0, 0.1, weight.shape).astype("float32"))
    return DiffusionModel(network, num_timesteps=NUM_TIMESTEPS, objective=objective, seed=0)


@pytest.fixture(scope="module")
def eps_model():
    return _model()


@pytest.fixture(scope="module")
def conditional_v_model():
    return _model("v", num_classes=3)


def _images(n=3):
    return np.random.default_rng(2).uniform(-1, 1, (n, *SHAPE)).astype("float32")


# -- the samplers' plans ----------------------------------------------------------------


def test_ddim_sampler_plans_trailing_steps_to_the_clean_image():
    sampler = DDIMSampler(DDIMScheduler(1000))
    timesteps = sampler.set_timesteps(4)
    np.testing.assert_array_equal(timesteps, [999, 749, 499, 249])
    assert [sampler.next_timestep(t) for t in timesteps] == [749, 499, 249, -1]
    leading = DDIMSampler(DDIMScheduler(1000), spacing="leading").set_timesteps(4)
    np.testing.assert_array_equal(leading, [750, 500, 250, 0])
    np.testing.assert_array_equal(sampler.set_timesteps(3, start=500), [500, 250, 0])
    assert len(sampler.set_timesteps()) == sampling.DEFAULT_STEPS


def test_ddpm_and_euler_samplers_plan_their_grids():
    ddpm = DDPMSampler(DDPMScheduler(10, "cosine"))
    np.testing.assert_array_equal(ddpm.set_timesteps(), np.arange(10)[::-1])
    assert ddpm.next_timestep(0) == -1
    with pytest.raises(ValueError, match="all num_timesteps"):
        ddpm.set_timesteps(5)
    euler = EulerSampler()
    np.testing.assert_allclose(euler.set_timesteps(4), [1.0, 0.75, 0.5, 0.25])
    assert euler.next_timestep(np.float32(0.25)) == 0.0
    assert euler.prediction == "flow" and ddpm.prediction == "eps"


def test_make_sampler_checks_the_model_and_the_name(eps_model):
    assert isinstance(sampling.make_sampler(eps_model), DDIMSampler)
    assert isinstance(sampling.make_sampler(eps_model, "ddpm"), DDPMSampler)
    with pytest.raises(ValueError, match="Unknown sampler 'euler'"):
        sampling.make_sampler(eps_model, "euler")
    with pytest.raises(ValueError, match="EulerSampler steps with 'flow'"):
        sampling.make_sampler(eps_model, EulerSampler())


# -- the procedures: the model's methods are these functions ----------------------------


@pytest.mark.parametrize("kwargs", [{"sampler": "ddim", "num_steps": 5},
                                    {"sampler": "ddim", "num_steps": 5, "eta": 1.0},
                                    {"sampler": "ddpm"}])
def test_sample_is_what_the_model_returns_and_is_seeded(eps_model, kwargs):
    samples = sampling.sample(eps_model, 4, seed=3, **kwargs)
    assert samples.shape == (4, *SHAPE) and samples.dtype == np.float32
    assert np.abs(samples).max() <= 1
    np.testing.assert_array_equal(samples, eps_model.sample(4, seed=3, **kwargs))
    np.testing.assert_array_equal(samples, sampling.sample(eps_model, 4, seed=3, **kwargs))
    if kwargs.get("eta", 0.0) == 0.0 and kwargs["sampler"] == "ddim":  # x_T alone decides
        np.testing.assert_allclose(samples, sampling.sample(eps_model, 4, seed=3, batch_size=3,
                                                            **kwargs), atol=1e-5)
    assert not np.allclose(samples, sampling.sample(eps_model, 4, seed=4, **kwargs))


def test_trailing_and_leading_spacing_give_different_samples(eps_model):
    trailing, trajectory = sampling.sample(eps_model, 2, num_steps=4, seed=0,
                                           return_trajectory=True)
    assert trajectory.shape == (5, 2, *SHAPE)
    np.testing.assert_array_equal(trailing, np.clip(trajectory[-1], -1, 1))
    leading = sampling.sample(eps_model, 2, num_steps=4, seed=0, spacing="leading")
    assert not np.allclose(trailing, leading)


def test_guided_conditional_v_sampling_is_what_the_model_returns(conditional_v_model):
    model, labels = conditional_v_model, [0, 1, 2]
    samples = sampling.sample(model, 3, num_steps=4, labels=labels, guidance_scale=3.0, seed=1)
    np.testing.assert_array_equal(samples, model.sample(3, num_steps=4, labels=labels,
                                                        guidance_scale=3.0, seed=1))
    assert not np.allclose(samples, sampling.sample(model, 3, num_steps=4, labels=labels,
                                                    seed=1))


def test_a_negative_label_takes_the_place_of_the_null_label(conditional_v_model):
    model, x, labels = conditional_v_model, _images(), np.array([0, 1, 2], "int32")
    negative = np.array([1, 2, 0], "int32")
    toward = model.guided_prediction(x, 40, labels, 1.0)
    away = model.guided_prediction(x, 40, negative, 1.0)
    np.testing.assert_allclose(model.guided_prediction(x, 40, labels, 3.0,
                                                       negative_labels=negative),
                               away + 3.0 * (toward - away), atol=1e-5)
    np.testing.assert_allclose(model.guided_prediction(x, 40, labels, 0.0,
                                                       negative_labels=negative), away, atol=1e-6)
    steered = sampling.sample(model, 3, num_steps=4, labels=labels, guidance_scale=3.0, seed=1,
                              negative_labels=negative)
    np.testing.assert_array_equal(steered, model.sample(3, num_steps=4, labels=labels,
                                                        guidance_scale=3.0, seed=1,
                                                        negative_labels=negative))
    assert not np.allclose(steered, sampling.sample(model, 3, num_steps=4, labels=labels,
                                                    guidance_scale=3.0, seed=1))


def test_inpaint_and_edit_are_what_the_model_returns(conditional_v_model):
    model, images = conditional_v_model, _images()
    mask = np.zeros_like(images)
    mask[:, :4] = 1.0
    filled = sampling.inpaint(model, images, mask, num_steps=4, resample=2, labels=1, seed=0)
    assert filled.shape == images.shape
    np.testing.assert_array_equal(filled[mask > 0], images[mask > 0])
    np.testing.assert_array_equal(filled, model.inpaint(images, mask, num_steps=4, resample=2,
                                                        labels=1, seed=0))
    assert not np.allclose(filled, sampling.inpaint(model, images, mask, num_steps=4,
                                                    resample=2, labels=1, seed=1))
    edited = sampling.edit(model, images, strength=0.4, num_steps=4, labels=2, seed=0)
    assert edited.shape == images.shape and np.abs(edited).max() <= 1
    np.testing.assert_array_equal(edited, model.edit(images, strength=0.4, num_steps=4,
                                                     labels=2, seed=0))
    np.testing.assert_array_equal(edited, sampling.edit(model, images, strength=0.4,
                                                        num_steps=4, labels=2, seed=0))


def test_flow_sampling_is_what_the_model_returns():
    model = _model("flow")
    samples = sampling.sample(model, 3, num_steps=4, seed=2)
    np.testing.assert_array_equal(samples, model.sample(3, num_steps=4, seed=2))
    with pytest.raises(ValueError, match="needs objective='eps' or 'v'"):
        sampling.inpaint(model, _images(), np.ones(SHAPE))


# -- a new solver plugs into the same loop ----------------------------------------------


class _HeunSampler(Sampler):
    """Heun's method for the flow ODE (Karras et al. 2022, Algorithm 1), as a sampler:
    each step is two model calls, so each time but the last appears twice in `timesteps`
    (the predictor's call at t, then the corrector's at t_next, as diffusers plans it)."""

    prediction = "flow"

    def set_timesteps(self, num_steps):
        grid = np.linspace(1.0, 0.0, num_steps + 1, dtype=np.float32)
        self._plan = []  # (time of the call, the step's t, its t_next, predictor or not)
        for t, t_next in zip(grid[:-1], grid[1:]):
            self._plan.append((t, t, t_next, True))
            if t_next > 0:  # no correction at t = 0 (the velocity there is not needed)
                self._plan.append((t_next, t, t_next, False))
        self._index = 0
        self.timesteps = np.array([call for call, *_ in self._plan], np.float32)
        return self.timesteps

    def next_timestep(self, t):
        return self._plan[self._index][2]

    def step(self, model_output, t, x, seed=None):
        _, start, end, predictor = self._plan[self._index]
        self._index += 1
        if predictor:
            self._x, self._velocity = x, model_output
            return x + (end - start) * model_output  # Euler to t_next
        return self._x + (end - start) * 0.5 * (self._velocity + model_output)


class _OracleVelocity(keras.layers.Layer):
    """The exact flow velocity of a data set holding one image, `target`: v = (x_t - x0) / t."""

    def __init__(self, target, **kwargs):
        super().__init__(**kwargs)
        self.target = np.asarray(target, "float32")

    def call(self, x_t, time):
        t = ops.reshape(time / NUM_TIMESTEPS, (-1, 1, 1, 1))  # the network sees T * t
        return (x_t - self.target) / t

    def get_config(self):  # clone_model (the EMA copy) rebuilds the layer from it
        return {**super().get_config(), "target": self.target.tolist()}


def test_a_new_solver_runs_in_the_same_sampling_loop():
    target = _images(1)[0]
    x_t, t = keras.Input(SHAPE), keras.Input(())
    network = keras.Model([x_t, t], _OracleVelocity(target)(x_t, t))
    model = DiffusionModel(network, num_timesteps=NUM_TIMESTEPS, objective="flow")
    heun = _HeunSampler()
    samples = sampling.sample(model, 2, sampler=heun, num_steps=3, seed=0)
    assert len(heun.timesteps) == 5 and heun._index == 5  # 2 calls a step, 1 for the last
    np.testing.assert_allclose(samples, np.stack([np.clip(target, -1, 1)] * 2), atol=1e-4)
    # On a tiny random network, Heun and Euler disagree: it is a different solver.
    tiny = _model("flow")
    assert not np.allclose(sampling.sample(tiny, 2, sampler=_HeunSampler(), num_steps=3),
                           sampling.sample(tiny, 2, num_steps=3), atol=1e-4)
