"""Noise schedules and samplers for diffusion and flow matching, separate from any network.

Taught in notebooks/02_diffusion. A diffusion model (Ho et al. 2020, "Denoising Diffusion
Probabilistic Models") destroys an image x0 in T small Gaussian steps

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),

and because Gaussians compose, any step can be reached in one jump (Ho et al. eq. 4):

    q(x_t | x0) = N(sqrt(abar_t) x0, (1 - abar_t) I),   alpha_t = 1 - beta_t,
    abar_t = alpha_1 * ... * alpha_t,   so  x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise.

A network eps(x_t, t) learns to predict the noise; a *scheduler* turns its predictions into
a way back from pure noise to an image. As in the diffusers library, a scheduler is a small
object that knows the schedule's tables and the update rules, and nothing about networks:

- `DDPMScheduler`: ancestral sampling, one random step per t (Ho et al. 2020, Algorithm 2).
- `DDIMScheduler`: the same trained network, any subset of the steps, deterministic with
  eta = 0 (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12).
- `FlowMatchingScheduler`: the straight path x_t = (1 - t) x0 + t * noise, t in [0, 1], a
  network that predicts the velocity noise - x0, and Euler steps (Lipman et al. 2023, "Flow
  Matching for Generative Modeling"; Liu et al. 2023, "Flow Straight and Fast").

Conventions: timesteps are 0-based, t = 0 .. num_timesteps - 1, where t = 0 is the first
noising step (the paper's t = 1). The tables are computed once in NumPy float64 and kept as
float32 arrays. Every method works on NumPy arrays (it then returns NumPy) and on tensors
inside a `train_step` (it then gathers from the tables with Keras ops); `t` is an int, or an
int array of shape (batch,) with one timestep per example.

Example:

    scheduler = DDIMScheduler(num_timesteps=1000, schedule="cosine")
    x_t = scheduler.add_noise(x0, noise, t)                 # training: corrupt a batch
    x = np.random.default_rng(0).standard_normal((16, 16, 16, 1))  # sampling: from noise
    timesteps = scheduler.set_timesteps(50)
    for t, t_prev in zip(timesteps, [*timesteps[1:], -1]):
        noise_pred = ops.convert_to_numpy(network([x, np.full(16, t)]))
        x = scheduler.step(noise_pred, t, t_prev, x)
"""

import numbers

import keras
import numpy as np
from keras import ops

SCHEDULES = ("linear", "cosine")
SPACINGS = ("trailing", "leading")  # of DDIM's timesteps


# ---------------------------------------------------------------------------------------
# Beta schedules
# ---------------------------------------------------------------------------------------


def linear_betas(num_timesteps, beta_start=1e-4, beta_end=0.02):
    """beta_t rising linearly from `beta_start` to `beta_end` (Ho et al. 2020), float64.

    The paper's values are for T = 1000 steps. With fewer steps each step must add more
    noise to reach the same end point, so both ends are scaled by 1000 / num_timesteps, as
    the improved-DDPM code does (abar at the last step then stays close to zero).

    Args:
        num_timesteps: T, the number of noising steps.
        beta_start, beta_end: the first and last beta for T = 1000.

    Returns:
        (num_timesteps,) float64.
    """
    _check_num_timesteps(num_timesteps)
    scale = 1000.0 / num_timesteps
    return np.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=np.float64)


def cosine_alphas_cumprod(num_timesteps, s=0.008):
    """abar_t from the cosine schedule of Nichol & Dhariwal 2021 ("Improved DDPM", eq. 17).

        abar_t = f(t) / f(0),   f(t) = cos(((t / T + s) / (1 + s)) * pi / 2)^2.

    abar falls slowly at both ends and roughly linearly in the middle, so fewer steps are
    wasted on nearly pure noise than with the linear schedule. The small offset s keeps
    beta_1 from being vanishingly small; the betas 1 - abar_t / abar_{t-1} are clipped at
    0.999 to avoid a singularity at t = T, and abar is recomputed from the clipped betas.

    Args:
        num_timesteps: T.
        s: the offset (0.008 in the paper).

    Returns:
        (num_timesteps,) float64: abar for t = 0 .. T - 1 (the paper's t = 1 .. T).
    """
    _check_num_timesteps(num_timesteps)
    steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
    f = np.cos((steps + s) / (1 + s) * np.pi / 2) ** 2
    betas = np.clip(1.0 - f[1:] / f[:-1], 0.0, 0.999)
    return np.cumprod(1.0 - betas)


def beta_schedule(name, num_timesteps):
    """The betas of the named schedule, "linear" or "cosine": (num_timesteps,) float64."""
    if name == "linear":
        return linear_betas(num_timesteps)
    if name == "cosine":
        alphas_cumprod = cosine_alphas_cumprod(num_timesteps)
        return 1.0 - alphas_cumprod / np.concatenate([[1.0], alphas_cumprod[:-1]])
    raise ValueError(f"Unknown schedule {name!r}: use one of {', '.join(map(repr, SCHEDULES))}.")


def _check_num_timesteps(num_timesteps):
    if not isinstance(num_timesteps, numbers.Integral) or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive integer, got {num_timesteps!r}.")


# ---------------------------------------------------------------------------------------
# NumPy or tensors: the same formulas for both
# ---------------------------------------------------------------------------------------


def _is_numpy(*values):
    """Whether all values are NumPy arrays or Python numbers (not tensors or variables)."""
    return all(isinstance(v, (np.ndarray, np.generic, numbers.Number, list, tuple))
               for v in values)


def _gather(table, t, x):
    """table[t], shaped to broadcast against x: (batch, 1, ..., 1), or a scalar if t is.

    NumPy in, NumPy out; otherwise a tensor of x's dtype (gathered with `ops.take` from a
    constant, so it works inside a compiled `train_step`).
    """
    if _is_numpy(t, x):
        values = np.take(table, np.asarray(t, dtype=np.int64))
        if values.ndim:
            values = values.reshape((-1,) + (1,) * (np.ndim(x) - 1))
        return values
    values = ops.take(ops.convert_to_tensor(table), ops.cast(t, "int32"))
    if len(values.shape):
        values = ops.reshape(values, (-1,) + (1,) * (len(x.shape) - 1))
    return ops.cast(values, keras.backend.standardize_dtype(x.dtype))


def _normal_like(x, seed):
    """Standard normal noise of x's shape, from `seed` (an int or a SeedGenerator)."""
    if _is_numpy(x):
        return ops.convert_to_numpy(keras.random.normal(np.shape(x), seed=seed))
    return keras.random.normal(ops.shape(x), dtype=keras.backend.standardize_dtype(x.dtype),
                               seed=seed)


def _clip(x, low, high):
    return np.clip(x, low, high) if _is_numpy(x) else ops.clip(x, low, high)


# ---------------------------------------------------------------------------------------
# Gaussian diffusion: DDPM and DDIM
# ---------------------------------------------------------------------------------------


class DDPMScheduler:
    """The DDPM noise schedule, the forward process and ancestral sampling (Ho et al. 2020).

    Args:
        num_timesteps: T, the number of noising steps (1000 in the paper).
        schedule: "linear" (Ho et al. 2020) or "cosine" (Nichol & Dhariwal 2021).
        variance: the sampling variance sigma_t^2: "posterior" (beta~_t, the variance of
            q(x_{t-1} | x_t, x0)) or "beta" (beta_t). Ho et al. found both give similar
            samples: they are the lower and upper bounds for a data set of one point and of
            Gaussian data.

    Attributes:
        betas, alphas, alphas_cumprod: (num_timesteps,) float32 tables, indexed by t.
        alphas_cumprod_prev: abar_{t-1}, with abar_{-1} = 1 (no noise before the first step).
        posterior_variance: beta~_t = (1 - abar_{t-1}) / (1 - abar_t) * beta_t.
        timesteps: the sampling order, T - 1 down to 0 (int64).

    Example:
        >>> scheduler = DDPMScheduler(1000, "linear")
        >>> x_t = scheduler.add_noise(x0, noise, t)         # t: (batch,) ints in [0, 1000)
        >>> x = scheduler.step(eps_pred, t=999, x_t=x, seed=0)  # one step back: x_998
    """

    def __init__(self, num_timesteps=1000, schedule="linear", variance="posterior"):
        if variance not in ("posterior", "beta"):
            raise ValueError(f'variance must be "posterior" or "beta", got {variance!r}.')
        self.num_timesteps = int(num_timesteps)
        self.schedule = schedule
        self.variance = variance
        betas = beta_schedule(schedule, num_timesteps)  # float64 while computing the tables
        alphas = 1.0 - betas
        alphas_cumprod = np.cumprod(alphas)
        alphas_cumprod_prev = np.concatenate([[1.0], alphas_cumprod[:-1]])
        posterior_variance = (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod) * betas
        sigmas = np.sqrt(posterior_variance if variance == "posterior" else betas)
        sigmas[0] = 0.0  # the last sampling step adds no noise

        def table(values):
            return np.asarray(values, dtype=np.float32)

        self.betas = table(betas)
        self.alphas = table(alphas)
        self.alphas_cumprod = table(alphas_cumprod)
        self.alphas_cumprod_prev = table(alphas_cumprod_prev)
        self.posterior_variance = table(posterior_variance)
        self.sqrt_alphas_cumprod = table(np.sqrt(alphas_cumprod))
        self.sqrt_one_minus_alphas_cumprod = table(np.sqrt(1.0 - alphas_cumprod))
        self.sqrt_recip_alphas_cumprod = table(1.0 / np.sqrt(alphas_cumprod))
        self.sqrt_recipm1_alphas_cumprod = table(np.sqrt(1.0 / alphas_cumprod - 1.0))
        self.sqrt_recip_alphas = table(1.0 / np.sqrt(alphas))
        self.eps_coef = table(betas / np.sqrt(1.0 - alphas_cumprod))
        self.posterior_mean_coef1 = table(
            np.sqrt(alphas_cumprod_prev) * betas / (1.0 - alphas_cumprod))
        self.posterior_mean_coef2 = table(
            np.sqrt(alphas) * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod))
        self.sigmas = table(sigmas)
        self.timesteps = np.arange(self.num_timesteps)[::-1].copy()

    @property
    def config(self):
        """The constructor's arguments: `type(s)(**s.config)` rebuilds the scheduler."""
        return {"num_timesteps": self.num_timesteps, "schedule": self.schedule,
                "variance": self.variance}

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.config.items())
        return f"{type(self).__name__}({arguments})"

    def snr(self, t):
        """The signal-to-noise ratio abar_t / (1 - abar_t) of x_t (falls with t)."""
        alphas_cumprod = np.take(self.alphas_cumprod.astype(np.float64), np.asarray(t))
        return alphas_cumprod / (1.0 - alphas_cumprod)

    # -- the forward process --------------------------------------------------------------
    def add_noise(self, x0, noise, t):
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise: a sample of q(x_t | x0) (eq. 4).

        Args:
            x0: clean images (batch, H, W, C).
            noise: standard normal noise of the same shape.
            t: an int, or ints of shape (batch,), in [0, num_timesteps).
        """
        return (_gather(self.sqrt_alphas_cumprod, t, x0) * x0
                + _gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise)

    def predict_x0(self, x_t, noise, t):
        """The clean image implied by a noise prediction: add_noise solved for x0,

            x0 = (x_t - sqrt(1 - abar_t) noise) / sqrt(abar_t)    (Ho et al. eq. 15).
        """
        return (_gather(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
                - _gather(self.sqrt_recipm1_alphas_cumprod, t, x_t) * noise)

    def v_target(self, x0, noise, t):
        """v = sqrt(abar_t) noise - sqrt(1 - abar_t) x0: the target of v-prediction
        (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of Diffusion Models").

        A v error is a noise error divided by sqrt(abar_t), so its squared loss weights the
        noisy steps (small abar_t) far more than L_simple does.
        """
        return (_gather(self.sqrt_alphas_cumprod, t, x0) * noise
                - _gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * x0)

    def eps_from_v(self, v, x_t, t):
        """The noise implied by a v prediction: eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t."""
        return (_gather(self.sqrt_alphas_cumprod, t, x_t) * v
                + _gather(self.sqrt_one_minus_alphas_cumprod, t, x_t) * x_t)

    def posterior_mean_variance(self, x0, x_t, t):
        """Mean and variance of q(x_{t-1} | x_t, x0) (Ho et al. eq. 6-7).

            mu~ = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0
                  + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
            beta~ = (1 - abar_{t-1}) / (1 - abar_t) beta_t.

        Returns:
            (mean, variance): mean has x_t's shape; variance broadcasts against it.
        """
        mean = (_gather(self.posterior_mean_coef1, t, x_t) * x0
                + _gather(self.posterior_mean_coef2, t, x_t) * x_t)
        return mean, _gather(self.posterior_variance, t, x_t)

    # -- sampling -------------------------------------------------------------------------
    def step(self, noise_pred, t, x_t, noise=None, seed=None, clip_x0=False):
        """One ancestral step x_t -> x_{t-1} (Ho et al. 2020, Algorithm 2, line 4):

            x_{t-1} = 1 / sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sigma_t z,

        with z ~ N(0, I), except at t = 0, where sigma_0 = 0 and the mean is returned.

        Args:
            noise_pred: the network's noise prediction eps(x_t, t).
            t: the current timestep (an int, or ints of shape (batch,)).
            x_t: the current sample.
            noise: z; drawn from `seed` if None (pass zeros for the mean).
            seed: an int or a `keras.random.SeedGenerator` for z.
            clip_x0: clip the implied x0 to [-1, 1] and take the posterior mean
                mu~(x0, x_t) instead (the same mean when nothing is clipped); the reference
                code samples this way, which keeps early, poor predictions in range.
        """
        if clip_x0:
            x0 = _clip(self.predict_x0(x_t, noise_pred, t), -1.0, 1.0)
            mean, _ = self.posterior_mean_variance(x0, x_t, t)
        else:
            mean = _gather(self.sqrt_recip_alphas, t, x_t) * (
                x_t - _gather(self.eps_coef, t, x_t) * noise_pred)
        if noise is None:
            noise = _normal_like(x_t, seed)
        return mean + _gather(self.sigmas, t, x_t) * noise


class DDIMScheduler(DDPMScheduler):
    """DDIM sampling (Song et al. 2021) with the tables of a trained DDPM.

    DDIM keeps the training objective and the marginals q(x_t | x0) of DDPM but uses a
    non-Markovian reverse process, which can skip steps: it samples along a subsequence
    tau_1 > ... > tau_S of the T timesteps. eta = 0 gives a deterministic map from noise to
    images (an ODE solver), eta = 1 the variance of DDPM's ancestral steps.

    Args:
        num_timesteps, schedule: as for `DDPMScheduler` (use those of the training).

    Example:
        >>> scheduler = DDIMScheduler.from_scheduler(ddpm_scheduler)  # or DDIMScheduler(1000)
        >>> timesteps = scheduler.set_timesteps(50)                   # 999, 979, ..., 19
        >>> x = scheduler.step(eps_pred, 999, 979, x)                 # x_999 -> x_979
    """

    def __init__(self, num_timesteps=1000, schedule="linear"):
        super().__init__(num_timesteps, schedule)

    @property
    def config(self):
        return {"num_timesteps": self.num_timesteps, "schedule": self.schedule}

    @classmethod
    def from_scheduler(cls, scheduler):
        """A DDIM scheduler with the same schedule as `scheduler` (e.g. a `DDPMScheduler`)."""
        return cls(scheduler.num_timesteps, scheduler.schedule)

    def set_timesteps(self, num_inference_steps, start=None, spacing="trailing"):
        """Evenly spaced timesteps for sampling, descending (int64 array).

        `spacing` says where the grid sits (Lin et al. 2024, "Common Diffusion Noise Schedules
        and Sample Steps Are Flawed", Table 2). With T = 1000 and 50 steps:

        - "trailing" (the default): 999, 979, ..., 19, i.e. round(arange(T, 0, -T/n)) - 1.
          The first step starts at t = T - 1, the noisiest step, where x_t is pure noise
          as the sampler assumes. The step from the last one goes to "before step 0" (t_prev = -1).
        - "leading": 980, 960, ..., 20, 0 (Song et al. 2021's "linear" spacing, the DDIM
          code's). The first step starts at T - T/n and treats pure noise as an image with
          sqrt(abar) > 0 of signal: with the cosine schedule and 3 steps, sqrt(abar) = 0.50.

        With `start` (SDEdit, which begins from a partly noised image x_start), the steps
        run from `start` down to 0 instead: np.linspace(start, 0, n) rounded, so that
        start = 500 and 5 steps give 500, 375, 250, 125, 0 (`spacing` is then unused).
        """
        if (not isinstance(num_inference_steps, numbers.Integral)
                or not 1 <= num_inference_steps <= self.num_timesteps):
            raise ValueError(f"num_inference_steps must be an integer from 1 to num_timesteps "
                             f"= {self.num_timesteps}, got {num_inference_steps!r}.")
        if spacing not in SPACINGS:
            raise ValueError(f"Unknown spacing {spacing!r}: use one of "
                             f"{', '.join(map(repr, SPACINGS))}.")
        if start is None:
            if spacing == "leading":
                stride = self.num_timesteps // num_inference_steps
                return (np.arange(num_inference_steps) * stride)[::-1].copy()
            stride = self.num_timesteps / num_inference_steps  # T - k * stride, less 1
            grid = self.num_timesteps - np.arange(num_inference_steps) * stride
            return np.round(grid).astype(np.int64) - 1
        if not (isinstance(start, numbers.Integral) and 0 <= start < self.num_timesteps):
            raise ValueError(f"start must be an integer timestep in [0, {self.num_timesteps}),"
                             f" got {start!r}.")
        if num_inference_steps > start + 1:
            raise ValueError(f"{num_inference_steps} steps do not fit between start = {start} "
                             f"and 0; use at most {start + 1}.")
        return np.round(np.linspace(start, 0, num_inference_steps)).astype(np.int64)

    def renoise(self, x_s, s, t, noise):
        """A sample of q(x_t | x_s) for t > s: the forward process from step s on, in one jump,

            x_t = sqrt(abar_t / abar_s) x_s + sqrt(1 - abar_t / abar_s) noise,

        since abar_t / abar_s = alpha_{s+1} ... alpha_t. With s = -1 (abar = 1), x_s is the
        clean image and this is `add_noise`. RePaint (Lugmayr et al. 2022) uses it to step
        back up the chain and resample.

        Args:
            x_s: samples at step s.
            s, t: timesteps with -1 <= s < t < num_timesteps (ints or (batch,) arrays).
            noise: standard normal noise of x_s's shape.
        """
        ratio = self._alphas_cumprod_at(t, x_s) / self._alphas_cumprod_at(s, x_s)
        sqrt = np.sqrt if _is_numpy(ratio) else ops.sqrt
        return sqrt(ratio) * x_s + sqrt(1.0 - ratio) * noise

    def _alphas_cumprod_at(self, t, x):
        """abar_t with abar_{-1} = 1, so that t = -1 means "the clean image"."""
        table = np.concatenate([[1.0], self.alphas_cumprod]).astype(np.float32)
        return _gather(table, (np.asarray(t) if _is_numpy(t) else t) + 1, x)

    def step(self, noise_pred, t, t_prev, x_t, eta=0.0, noise=None, seed=None, clip_x0=True):
        """One DDIM step x_t -> x_{t_prev} (Song et al. 2021, eq. 12):

            x0_pred = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)          "predicted x0"
            sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)
            x_prev = sqrt(abar_prev) x0_pred                                "direction to x_t"
                     + sqrt(1 - abar_prev - sigma^2) eps + sigma z          "random noise"

        Args:
            noise_pred: the network's noise prediction eps(x_t, t).
            t: the current timestep.
            t_prev: the next, smaller timestep; -1 for the last step, where abar_prev = 1
                and the step returns x0_pred.
            x_t: the current sample.
            eta: 0 for deterministic DDIM, 1 for DDPM-like noise (eq. 16).
            noise: z; drawn from `seed` if None and eta > 0.
            seed: an int or a `keras.random.SeedGenerator` for z.
            clip_x0: clip x0_pred to [-1, 1], the range of the course's images. The noise
                prediction is then recomputed from the clipped x0_pred so that the step
                stays on the forward process's marginal.
        """
        alphas_cumprod = self._alphas_cumprod_at(t, x_t)
        alphas_cumprod_prev = self._alphas_cumprod_at(t_prev, x_t)
        sqrt = np.sqrt if _is_numpy(alphas_cumprod) else ops.sqrt
        x0_pred = (x_t - sqrt(1.0 - alphas_cumprod) * noise_pred) / sqrt(alphas_cumprod)
        if clip_x0:
            x0_pred = _clip(x0_pred, -1.0, 1.0)
            noise_pred = (x_t - sqrt(alphas_cumprod) * x0_pred) / sqrt(1.0 - alphas_cumprod)
        sigma = eta * sqrt((1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
                           * (1.0 - alphas_cumprod / alphas_cumprod_prev))
        direction = sqrt(_clip(1.0 - alphas_cumprod_prev - sigma**2, 0.0, 1.0)) * noise_pred
        x_prev = sqrt(alphas_cumprod_prev) * x0_pred + direction
        if eta > 0:
            x_prev = x_prev + sigma * (_normal_like(x_t, seed) if noise is None else noise)
        return x_prev


# ---------------------------------------------------------------------------------------
# Flow matching / rectified flow
# ---------------------------------------------------------------------------------------


def _broadcast_time(t, x):
    """t as a scalar, or (batch,) reshaped to (batch, 1, ..., 1), in x's dtype."""
    if _is_numpy(t, x):
        t = np.asarray(t, dtype=np.float32)
        return t.reshape((-1,) + (1,) * (np.ndim(x) - 1)) if t.ndim else t
    t = ops.cast(t, keras.backend.standardize_dtype(x.dtype))
    return ops.reshape(t, (-1,) + (1,) * (len(x.shape) - 1)) if len(t.shape) else t


class FlowMatchingScheduler:
    """The straight-line path of flow matching / rectified flow and its Euler sampler.

    The conditional path (Lipman et al. 2023 with sigma_min = 0; Liu et al. 2023) moves each
    image x0 in a straight line to its own noise sample z as t goes from 0 to 1:

        x_t = (1 - t) x0 + t z,     dx_t / dt = z - x0 = v.

    A network v(x_t, t) trained with the mean squared error to z - x0 learns the average
    velocity E[z - x0 | x_t], whose ODE carries the noise distribution (t = 1) to the data
    (t = 0). Sampling integrates it backwards with Euler steps. Time is continuous, so there
    are no tables.

    Example:
        >>> scheduler = FlowMatchingScheduler()
        >>> x_t = scheduler.add_noise(x0, noise, t)          # t ~ U(0, 1), shape (batch,)
        >>> target = scheduler.velocity_target(x0, noise)    # what the network regresses
        >>> times = scheduler.set_timesteps(20)              # 1.0, 0.95, ..., 0.0
        >>> x = scheduler.step(v_pred, times[0], times[1], x)
    """

    @property
    def config(self):
        return {}

    def __repr__(self):
        return "FlowMatchingScheduler()"

    def add_noise(self, x0, noise, t):
        """x_t = (1 - t) x0 + t noise, for t in [0, 1] (a float or floats of shape (batch,))."""
        t = _broadcast_time(t, x0)
        return (1.0 - t) * x0 + t * noise

    def velocity_target(self, x0, noise):
        """The velocity of the path, v = noise - x0 (the regression target)."""
        return noise - x0

    def predict_x0(self, x_t, velocity, t):
        """The clean image implied by a velocity: follow it from t back to 0, x0 = x_t - t v."""
        return x_t - _broadcast_time(t, x_t) * velocity

    def set_timesteps(self, num_steps):
        """num_steps + 1 times from 1 (noise) to 0 (data), evenly spaced (float32)."""
        if not isinstance(num_steps, numbers.Integral) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}.")
        return np.linspace(1.0, 0.0, num_steps + 1, dtype=np.float32)

    def step(self, velocity, t, t_next, x_t):
        """One Euler step of dx/dt = v from t to t_next < t: x_next = x_t + (t_next - t) v."""
        return x_t + (_broadcast_time(t_next, x_t) - _broadcast_time(t, x_t)) * velocity
