import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from course_lib.schedulers import (
    DDIMScheduler,
    DDPMScheduler,
    FlowMatchingScheduler,
    beta_schedule,
    cosine_alphas_cumprod,
    linear_betas,
)

SHAPE = (8, 8, 1)


def _images(n=4, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *SHAPE)).astype("float32")


def _noise(n=4, seed=1):
    return np.random.default_rng(seed).standard_normal((n, *SHAPE)).astype("float32")


def _float32_tolerance(scheduler, t):
    """Undoing x_t = sqrt(abar) x0 + ... divides float32 rounding errors by sqrt(abar_t)."""
    abar = np.take(scheduler.alphas_cumprod, t)
    return 1e-5 / np.sqrt(np.reshape(abar, (-1,) + (1,) * len(SHAPE)) if np.ndim(t) else abar)


# -- schedules ---------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("num_timesteps", [1000, 50])
def test_alphas_cumprod_falls_strictly_inside_the_unit_interval(schedule, num_timesteps):
    scheduler = DDPMScheduler(num_timesteps, schedule)
    alphas_cumprod = scheduler.alphas_cumprod
    assert alphas_cumprod.shape == (num_timesteps,) and alphas_cumprod.dtype == np.float32
    assert np.all(np.diff(alphas_cumprod) < 0)
    assert np.all((alphas_cumprod > 0) & (alphas_cumprod < 1))
    # The tables agree with each other.
    np.testing.assert_allclose(scheduler.alphas, 1 - scheduler.betas, atol=1e-7)
    np.testing.assert_allclose(np.cumprod(scheduler.alphas.astype(np.float64)), alphas_cumprod,
                               rtol=1e-4)
    np.testing.assert_allclose(scheduler.snr(np.arange(num_timesteps)),
                               alphas_cumprod / (1 - alphas_cumprod.astype(np.float64)),
                               rtol=1e-6)
    # Both end near pure noise, whatever the number of steps.
    assert alphas_cumprod[-1] < 1e-3


def test_scaled_linear_betas_keep_the_end_point_for_fewer_steps():
    # log abar_T ~ -sum(beta) = -(T / 2)(beta_start + beta_end) * 1000 / T: the same for any T.
    assert np.sum(linear_betas(100)) == pytest.approx(np.sum(linear_betas(1000)))
    assert np.prod(1 - linear_betas(100)) < 1e-4 and np.prod(1 - linear_betas(1000)) < 1e-4
    np.testing.assert_allclose(linear_betas(100)[[0, -1]], [1e-3, 0.2])


def test_cosine_schedule_follows_its_formula_and_clips_betas():
    num_timesteps, s = 1000, 0.008
    t = np.arange(1, num_timesteps + 1) / num_timesteps
    f = np.cos((t + s) / (1 + s) * np.pi / 2) ** 2 / np.cos(s / (1 + s) * np.pi / 2) ** 2
    alphas_cumprod = cosine_alphas_cumprod(num_timesteps, s)
    np.testing.assert_allclose(alphas_cumprod[:-1], f[:-1], rtol=1e-9)  # unclipped part
    betas = beta_schedule("cosine", num_timesteps)
    assert betas.max() == pytest.approx(0.999)


def test_unknown_schedule_and_bad_sizes_are_rejected_clearly():
    with pytest.raises(ValueError, match="'linear', 'cosine'"):
        DDPMScheduler(100, "quadratic")
    with pytest.raises(ValueError, match="num_timesteps"):
        linear_betas(0)
    with pytest.raises(ValueError, match="variance"):
        DDPMScheduler(100, variance="learned")


# -- the forward process -----------------------------------------------------------------


def test_add_noise_at_the_first_step_is_almost_x0():
    scheduler = DDPMScheduler(1000)
    x0, noise = _images(256), _noise(256)
    x_t = scheduler.add_noise(x0, noise, np.zeros(256, int))
    noise_std = np.sqrt(1 - scheduler.alphas_cumprod[0])  # sqrt(beta_0) = 0.01
    assert np.std(x_t - x0) == pytest.approx(noise_std, rel=0.05)
    np.testing.assert_allclose(x_t, x0, atol=6 * noise_std)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_add_noise_at_the_last_step_forgets_x0(schedule):
    scheduler = DDPMScheduler(1000, schedule)
    n = 4096
    x0 = np.repeat(_images(4), n // 4, axis=0)  # (n, 8, 8, 1): the same 4 images many times
    x_t = scheduler.add_noise(x0, _noise(n), np.full(n, 999))
    assert np.mean(x_t) == pytest.approx(0.0, abs=0.01)
    assert np.var(x_t) == pytest.approx(1.0, abs=0.02)
    assert abs(np.corrcoef(x0.ravel(), x_t.ravel())[0, 1]) < 0.02


def test_add_noise_works_on_tensors_inside_a_compiled_function():
    scheduler = DDPMScheduler(100, "cosine")
    x0, noise, t = _images(), _noise(), np.array([0, 5, 50, 99])

    @tf.function
    def noised(x0, noise, t):
        return scheduler.add_noise(x0, noise, t)

    expected = (np.sqrt(scheduler.alphas_cumprod[t])[:, None, None, None] * x0
                + np.sqrt(1 - scheduler.alphas_cumprod[t])[:, None, None, None] * noise)
    got = noised(tf.constant(x0), tf.constant(noise), tf.constant(t, tf.int32))
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, atol=1e-6)
    np.testing.assert_allclose(scheduler.add_noise(x0, noise, t), expected, atol=1e-6)
    # predict_x0 undoes add_noise given the true noise (float32 rounding grows as 1/sqrt(abar)).
    error = np.abs(scheduler.predict_x0(expected, noise, t) - x0)
    assert np.all(error <= _float32_tolerance(scheduler, t))


# -- DDPM --------------------------------------------------------------------------------


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_ddpm_step_mean_is_the_posterior_mean(variance):
    scheduler = DDPMScheduler(100, "linear", variance=variance)
    x_t, eps = _noise(4, seed=2), _noise(4, seed=3)
    t = np.array([1, 10, 50, 99])
    mean = scheduler.step(eps, t, x_t, noise=np.zeros_like(x_t))
    x0_pred = scheduler.predict_x0(x_t, eps, t)
    posterior_mean, posterior_variance = scheduler.posterior_mean_variance(x0_pred, x_t, t)
    np.testing.assert_allclose(mean, posterior_mean, rtol=1e-4, atol=1e-4)
    # Eq. 7 by hand, for one of them.
    abar, abar_prev = scheduler.alphas_cumprod[10], scheduler.alphas_cumprod[9]
    beta = scheduler.betas[10]
    expected = (np.sqrt(abar_prev) * beta / (1 - abar) * x0_pred[1]
                + np.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar) * x_t[1])
    np.testing.assert_allclose(posterior_mean[1], expected, rtol=1e-4, atol=1e-5)
    assert posterior_variance[1].item() == pytest.approx((1 - abar_prev) / (1 - abar) * beta)


def test_ddpm_step_noise_has_the_chosen_scale_and_none_at_t0():
    x_t, eps, ones = _noise(2), _noise(2, seed=4), np.ones((2, *SHAPE), "float32")
    for variance in ("posterior", "beta"):
        scheduler = DDPMScheduler(100, variance=variance)
        for t in (0, 40):
            added = scheduler.step(eps, t, x_t, noise=ones) - scheduler.step(eps, t, x_t,
                                                                              noise=0 * ones)
            expected = 0.0 if t == 0 else np.sqrt(
                scheduler.posterior_variance[t] if variance == "posterior" else scheduler.betas[t])
            np.testing.assert_allclose(added, expected, atol=1e-6)


def test_ddpm_step_is_seeded_and_clips_x0_only_when_asked():
    scheduler = DDPMScheduler(100)
    x_t, eps = _noise(2), _noise(2, seed=4)
    np.testing.assert_array_equal(scheduler.step(eps, 50, x_t, seed=1),
                                  scheduler.step(eps, 50, x_t, seed=1))
    assert not np.allclose(scheduler.step(eps, 50, x_t, seed=1),
                           scheduler.step(eps, 50, x_t, seed=2))
    np.testing.assert_array_equal(scheduler.timesteps, np.arange(100)[::-1])
    # A wild noise prediction implies an x0 far outside [-1, 1]; clipping pulls it back.
    wild = 50 * eps
    zeros = np.zeros_like(x_t)
    clipped = scheduler.step(wild, 1, x_t, noise=zeros, clip_x0=True)
    x0 = np.clip(scheduler.predict_x0(x_t, wild, 1), -1, 1)
    np.testing.assert_allclose(clipped, scheduler.posterior_mean_variance(x0, x_t, 1)[0],
                               atol=1e-5)
    assert not np.allclose(clipped, scheduler.step(wild, 1, x_t, noise=zeros))


@pytest.mark.parametrize("t", [0, 300, 999])
def test_v_prediction_implies_the_true_noise(t):
    scheduler = DDPMScheduler(1000, "cosine")
    x0, eps = _images(), _noise()
    x_t = scheduler.add_noise(x0, eps, t)
    v = scheduler.v_target(x0, eps, t)
    np.testing.assert_allclose(scheduler.eps_from_v(v, x_t, t), eps, atol=1e-4)
    # v is a rotation of (eps, x0) by the angle phi_t with cos phi = sqrt(abar_t).
    np.testing.assert_allclose(v**2 + x_t**2, eps**2 + x0**2, atol=1e-4)


# -- DDIM --------------------------------------------------------------------------------


def test_ddim_timesteps_trail_from_the_last_step_by_default():
    scheduler = DDIMScheduler(1000)
    timesteps = scheduler.set_timesteps(50)
    assert len(timesteps) == 50 and timesteps[0] == 999 and timesteps[-1] == 19
    assert np.all(np.diff(timesteps) == -20)
    np.testing.assert_array_equal(scheduler.set_timesteps(1000), np.arange(1000)[::-1])
    # Lin et al. 2024, Table 2: trailing 10 of 1000 steps
    np.testing.assert_array_equal(scheduler.set_timesteps(10),
                                  [999, 899, 799, 699, 599, 499, 399, 299, 199, 99])
    with pytest.raises(ValueError, match="num_inference_steps .* 1000, got 1001"):
        scheduler.set_timesteps(1001)
    with pytest.raises(ValueError, match="num_inference_steps"):
        scheduler.set_timesteps(0)
    with pytest.raises(ValueError, match="Unknown spacing 'linear'"):
        scheduler.set_timesteps(10, spacing="linear")


@pytest.mark.parametrize("num_timesteps", [10, 200, 1000])
def test_trailing_timesteps_start_at_pure_noise_and_fall_strictly(num_timesteps):
    scheduler = DDIMScheduler(num_timesteps, "cosine")
    for num_steps in range(1, num_timesteps + 1):
        timesteps = scheduler.set_timesteps(num_steps)
        assert len(timesteps) == num_steps and timesteps.dtype == np.int64
        assert timesteps[0] == num_timesteps - 1  # the step whose x_t is (nearly) pure noise
        assert np.all(np.diff(timesteps) < 0) and 0 <= timesteps[-1] < num_timesteps / num_steps
        # evenly spaced: every gap is T / n, rounded
        gaps = -np.diff(timesteps)
        assert np.all(np.abs(gaps - num_timesteps / num_steps) < 1)


def test_leading_timesteps_are_the_ddim_paper_grid_and_start_half_noised():
    scheduler = DDIMScheduler(1000, "cosine")
    timesteps = scheduler.set_timesteps(50, spacing="leading")
    assert timesteps[0] == 980 and timesteps[-1] == 0 and np.all(np.diff(timesteps) == -20)
    # With 3 steps, leading spacing starts at t = 666, where sqrt(abar) is 0.50: it treats
    # pure noise as a half-noised image. Trailing starts where almost no signal is left.
    first_leading = scheduler.set_timesteps(3, spacing="leading")[0]
    first_trailing = scheduler.set_timesteps(3)[0]
    assert first_leading == 666 and first_trailing == 999
    assert np.sqrt(scheduler.alphas_cumprod[first_leading]) == pytest.approx(0.50, abs=0.01)
    assert np.sqrt(scheduler.alphas_cumprod[first_trailing]) < 0.01


@pytest.mark.parametrize("t", [0, 10, 500, 999])
def test_ddim_with_the_true_noise_lands_on_the_forward_process(t):
    scheduler = DDIMScheduler.from_scheduler(DDPMScheduler(1000, "cosine"))
    x0, eps = _images(), _noise()
    x_t = scheduler.add_noise(x0, eps, t)
    # To the end (t_prev = -1): exactly x0, clipped or not (x0 is inside [-1, 1]).
    tolerance = _float32_tolerance(scheduler, t)
    assert np.all(np.abs(scheduler.step(eps, t, -1, x_t, clip_x0=False) - x0) <= tolerance)
    assert np.all(np.abs(scheduler.step(eps, t, -1, x_t) - x0) <= tolerance)
    # To any earlier step: x_{t_prev} = add_noise(x0, eps, t_prev), the same noise.
    for t_prev in {0, t // 2, max(t - 1, 0)} - {t}:
        x_prev = scheduler.step(eps, t, t_prev, x_t)
        assert np.all(np.abs(x_prev - scheduler.add_noise(x0, eps, t_prev)) <= tolerance)


def test_ddim_with_eta_one_has_the_ddpm_posterior_variance():
    scheduler = DDIMScheduler(100)
    x_t, eps, ones = _noise(2), _noise(2, seed=5), np.ones((2, *SHAPE), "float32")
    t = 60
    added = (scheduler.step(eps, t, t - 1, x_t, eta=1.0, noise=ones, clip_x0=False)
             - scheduler.step(eps, t, t - 1, x_t, eta=1.0, noise=0 * ones, clip_x0=False))
    np.testing.assert_allclose(added, np.sqrt(scheduler.posterior_variance[t]), rtol=1e-4)
    # ... and its mean is then DDPM's posterior mean (Song et al. eq. 16).
    ddpm = DDPMScheduler(100)
    np.testing.assert_allclose(
        scheduler.step(eps, t, t - 1, x_t, eta=1.0, noise=0 * ones, clip_x0=False),
        ddpm.step(eps, t, x_t, noise=0 * ones), atol=1e-4)


def test_ddim_step_is_deterministic_at_eta_zero_and_seeded_otherwise():
    scheduler = DDIMScheduler(100)
    x_t, eps = _noise(2), _noise(2, seed=6)
    np.testing.assert_array_equal(scheduler.step(eps, 50, 30, x_t, seed=1),
                                  scheduler.step(eps, 50, 30, x_t, seed=2))
    a = scheduler.step(eps, 50, 30, x_t, eta=0.5, seed=1)
    np.testing.assert_array_equal(a, scheduler.step(eps, 50, 30, x_t, eta=0.5, seed=1))
    assert not np.allclose(a, scheduler.step(eps, 50, 30, x_t, eta=0.5, seed=2))


def test_ddim_step_works_on_tensors():
    scheduler = DDIMScheduler(100)
    x0, eps = _images(), _noise()
    x_t = scheduler.add_noise(x0, eps, 70)
    got = scheduler.step(tf.constant(eps), tf.constant(70), tf.constant(20), tf.constant(x_t))
    np.testing.assert_allclose(ops.convert_to_numpy(got), scheduler.add_noise(x0, eps, 20),
                               atol=1e-4)


def test_ddim_timesteps_from_a_start_step_for_sdedit():
    scheduler = DDIMScheduler(1000)
    np.testing.assert_array_equal(scheduler.set_timesteps(5, start=500), [500, 375, 250, 125, 0])
    timesteps = scheduler.set_timesteps(30, start=299)
    assert len(timesteps) == 30 and timesteps[0] == 299 and timesteps[-1] == 0
    assert np.all(np.diff(timesteps) < 0)
    np.testing.assert_array_equal(scheduler.set_timesteps(1, start=0), [0])
    with pytest.raises(ValueError, match="12 steps do not fit .* use at most 11"):
        scheduler.set_timesteps(12, start=10)
    with pytest.raises(ValueError, match="start must be an integer timestep in"):
        scheduler.set_timesteps(5, start=1000)


def test_renoise_from_the_clean_image_is_add_noise():
    scheduler = DDIMScheduler(100)
    x0, eps = _images(), _noise()
    for t in (0, 40, 99):
        np.testing.assert_allclose(scheduler.renoise(x0, -1, t, eps),
                                   scheduler.add_noise(x0, eps, t), atol=1e-6)


def test_renoise_after_add_noise_has_the_marginal_of_the_later_step():
    # q(x_t | x_s) after q(x_s | x0) must give q(x_t | x0): mean sqrt(abar_t) x0,
    # variance 1 - abar_t. Monte Carlo over 200,000 draws per pixel value.
    scheduler = DDIMScheduler(100, "cosine")
    rng = np.random.default_rng(0)
    x0 = np.full((200_000, 1), 0.8)
    s, t = 30, 70
    x_s = scheduler.add_noise(x0, rng.standard_normal(x0.shape), s)
    x_t = scheduler.renoise(x_s, s, t, rng.standard_normal(x0.shape))
    abar = scheduler.alphas_cumprod[t]
    assert abs(x_t.mean() - np.sqrt(abar) * 0.8) < 0.01
    assert abs(x_t.var() - (1 - abar)) < 0.01


# -- flow matching -----------------------------------------------------------------------


def test_flow_matching_path_goes_from_data_to_noise():
    scheduler = FlowMatchingScheduler()
    x0, noise = _images(), _noise()
    np.testing.assert_allclose(scheduler.add_noise(x0, noise, 0.0), x0)
    np.testing.assert_allclose(scheduler.add_noise(x0, noise, 1.0), noise)
    t = np.array([0.0, 0.25, 0.5, 1.0], "float32")
    expected = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * noise
    np.testing.assert_allclose(scheduler.add_noise(x0, noise, t), expected, atol=1e-6)
    got = scheduler.add_noise(tf.constant(x0), tf.constant(noise), tf.constant(t))
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, atol=1e-6)
    times = scheduler.set_timesteps(4)
    np.testing.assert_allclose(times, [1.0, 0.75, 0.5, 0.25, 0.0])
    with pytest.raises(ValueError, match="num_steps"):
        scheduler.set_timesteps(0)


def test_euler_with_the_exact_velocity_maps_noise_to_x0_in_one_step():
    scheduler = FlowMatchingScheduler()
    x0, noise = _images(), _noise()
    velocity = scheduler.velocity_target(x0, noise)
    np.testing.assert_allclose(scheduler.step(velocity, 1.0, 0.0, noise), x0, atol=1e-6)
    # The path is straight: every Euler step lands on it exactly.
    x = noise
    times = scheduler.set_timesteps(5)
    for t, t_next in zip(times[:-1], times[1:]):
        x = scheduler.step(velocity, t, t_next, x)
        np.testing.assert_allclose(x, scheduler.add_noise(x0, noise, t_next), atol=1e-5)
    np.testing.assert_allclose(scheduler.predict_x0(scheduler.add_noise(x0, noise, 0.3),
                                                    velocity, 0.3), x0, atol=1e-6)
