"""Sampling and editing with a trained `DiffusionModel`: loops driven by a sampler object.

Taught in notebooks/02_diffusion, where the loops are written by hand first. As in the
diffusers library, three things are kept apart:

- the **model** (`course_lib.models.diffusion.DiffusionModel`) trains and predicts: at a point
  (x_t, t) it returns the noise eps (objectives "eps" and "v") or the flow's velocity
  (objective "flow"), guided when labels are given (`DiffusionModel.guided_prediction`);
- the **schedule** (`course_lib.schedulers`) holds the tables and the update formulas;
- a **sampler** (this module) plans the times at which the model is asked and turns each
  answer into the next x. Every sampler has the same small interface:

      sampler.set_timesteps(num_steps)       # the plan: sampler.timesteps, noisiest first
      for t in sampler.timesteps:
          x = sampler.step(model.guided_prediction(x, t, ...), t, x, seed=generator)

  with `prediction` ("eps" or "flow": what `step` takes), `init_noise_sigma` (the scale of
  the starting noise) and `next_timestep(t)` (where `step` lands; -1 or 0.0 for the data).

The procedures that use a trained model are functions over that interface: `sample`,
`inpaint` (RePaint, Lugmayr et al. 2022) and `edit` (SDEdit, Meng et al. 2022). A new ODE
solver, e.g. DPM-Solver++(2M) (Lu et al. 2022; it keeps the previous step's x0 prediction
in the sampler) or the Heun sampler of Karras et al. 2022 (two model calls a step: its
`timesteps` list each time twice, as diffusers does), is a new sampler class with the same
`set_timesteps`/`step`, and `sample(model, n, sampler=MySampler(...))` runs it unchanged.

Example:

    samples = sample(model, 64, sampler="ddim", num_steps=50, seed=0)   # (64, H, W, C)
    same = model.sample(64, sampler="ddim", num_steps=50, seed=0)        # the same images
    sampler = DDIMSampler(model.ddim_scheduler, eta=1.0)                 # or an object
    noisy = sample(model, 64, sampler=sampler, num_steps=20, seed=0)
"""

import keras
import numpy as np
from keras import ops

from course_lib.schedulers import FlowMatchingScheduler

DEFAULT_STEPS = 50


# ---------------------------------------------------------------------------------------
# Samplers: a plan of timesteps and one update per model call
# ---------------------------------------------------------------------------------------


class Sampler:
    """The interface every sampler implements (see the module docstring).

    Attributes:
        prediction: what `step` takes: "eps" (the noise) or "flow" (the velocity z - x0).
        init_noise_sigma: the standard deviation of the starting noise x_T.
        timesteps: after `set_timesteps`, the times at which the model is called, in the
            model's time units (integer steps, or flow times in [0, 1]), noisiest first.
    """

    prediction = "eps"
    init_noise_sigma = 1.0

    def set_timesteps(self, num_steps):
        """Plans `num_steps` model calls; sets and returns `self.timesteps`."""
        raise NotImplementedError

    def step(self, model_output, t, x, seed=None):
        """x at `next_timestep(t)`, from x at t and the model's output there."""
        raise NotImplementedError

    def next_timestep(self, t):
        """The time that `step(..., t, ...)` moves x to."""
        index = int(np.flatnonzero(self.timesteps == t)[0])
        return self._ends[index]


class DDPMSampler(Sampler):
    """Ancestral sampling through all T steps (Ho et al. 2020, Algorithm 2).

    Args:
        scheduler: the `DDPMScheduler` of the model.
        clip_x0: clip the implied x0 to [-1, 1] in each step (see `DDPMScheduler.step`).
    """

    def __init__(self, scheduler, clip_x0=True):
        self.scheduler = scheduler
        self.clip_x0 = clip_x0

    def set_timesteps(self, num_steps=None):
        if num_steps not in (None, self.scheduler.num_timesteps):
            raise ValueError(f"The ddpm sampler takes all num_timesteps = "
                             f"{self.scheduler.num_timesteps} steps, got num_steps={num_steps}; "
                             "use sampler='ddim' for fewer steps.")
        self.timesteps = self.scheduler.timesteps.copy()  # T - 1, ..., 0
        self._ends = self.timesteps - 1
        return self.timesteps

    def step(self, model_output, t, x, seed=None):
        return self.scheduler.step(model_output, t, x, seed=seed, clip_x0=self.clip_x0)


class DDIMSampler(Sampler):
    """DDIM on a subsequence of the steps (Song et al. 2021, eq. 12); also the Gaussian
    building blocks that inpainting uses (`add_noise`, `renoise`).

    Args:
        scheduler: a `DDIMScheduler` with the model's schedule.
        eta: 0 for deterministic DDIM, 1 for DDPM-like noise.
        spacing: "trailing" (from t = T - 1, the default) or "leading" (from T - T/n);
            see `DDIMScheduler.set_timesteps`.
        clip_x0: clip x0_pred to [-1, 1] in each step.
    """

    def __init__(self, scheduler, eta=0.0, spacing="trailing", clip_x0=True):
        self.scheduler = scheduler
        self.eta = float(eta)
        self.spacing = spacing
        self.clip_x0 = clip_x0

    def set_timesteps(self, num_steps=None, start=None):
        """`num_steps` DDIM steps (default 50), from T - 1, or from `start` (SDEdit)."""
        num_steps = DEFAULT_STEPS if num_steps is None else num_steps
        self.timesteps = self.scheduler.set_timesteps(num_steps, start=start,
                                                      spacing=self.spacing)
        self._ends = np.append(self.timesteps[1:], -1)  # -1: the clean image
        return self.timesteps

    def step(self, model_output, t, x, seed=None):
        return self.scheduler.step(model_output, t, self.next_timestep(t), x, eta=self.eta,
                                   seed=seed, clip_x0=self.clip_x0)

    def add_noise(self, x0, noise, t):
        """x0 noised to step t (t = -1: x0 itself)."""
        return x0 if t < 0 else self.scheduler.renoise(x0, -1, t, noise)

    def renoise(self, x_s, s, t, noise):
        """A sample of q(x_t | x_s), t > s: back up the chain (`DDIMScheduler.renoise`)."""
        return self.scheduler.renoise(x_s, s, t, noise)


class EulerSampler(Sampler):
    """Euler steps of the flow-matching ODE dx/dt = v from t = 1 to t = 0 (Lipman et al.
    2023; Liu et al. 2023) on an even grid of `num_steps` steps.

    Args:
        scheduler: a `FlowMatchingScheduler` (one is made if None).
    """

    prediction = "flow"

    def __init__(self, scheduler=None):
        self.scheduler = scheduler or FlowMatchingScheduler()

    def set_timesteps(self, num_steps=None):
        grid = self.scheduler.set_timesteps(DEFAULT_STEPS if num_steps is None else num_steps)
        self.timesteps, self._ends = grid[:-1], grid[1:]  # 1, ..., 1/n and then 0
        return self.timesteps

    def step(self, model_output, t, x, seed=None):
        return self.scheduler.step(model_output, t, self.next_timestep(t), x)


SAMPLERS = {"ddpm": DDPMSampler, "ddim": DDIMSampler, "euler": EulerSampler}


def make_sampler(model, sampler=None, eta=0.0, spacing="trailing"):
    """A sampler object for `model`, from its name ("ddim", "ddpm", "euler") or as given.

    None picks the model's default: "ddim" for objectives "eps" and "v", "euler" for "flow".
    A `Sampler` object is checked (it must take what the model predicts) and returned as is.
    """
    allowed = ("euler",) if model.prediction == "flow" else ("ddim", "ddpm")
    if isinstance(sampler, Sampler):
        if sampler.prediction != model.prediction:
            raise ValueError(f"{type(sampler).__name__} steps with {sampler.prediction!r} "
                             f"predictions, but this model predicts {model.prediction!r}.")
        return sampler
    sampler = sampler or allowed[0]
    if sampler not in allowed:
        raise ValueError(f"Unknown sampler {sampler!r} for objective {model.objective!r}: "
                         f"use one of {allowed}.")
    if sampler == "ddim":
        return DDIMSampler(model.ddim_scheduler, eta=eta, spacing=spacing)
    if sampler == "ddpm":
        return DDPMSampler(model.scheduler)
    return EulerSampler(model.scheduler)


# ---------------------------------------------------------------------------------------
# The procedures
# ---------------------------------------------------------------------------------------


def denoise(model, x, sampler, labels=None, guidance_scale=1.0, use_ema=True, seed=None,
            known=None, mask=None, resample=1, frames=None, negative_labels=None):
    """Runs `sampler` over its planned timesteps from x; returns the last x (unclipped).

    With `known` and `mask` (1 = visible), the RePaint loop (Lugmayr et al. 2022): after
    each step the visible pixels are replaced by `known` noised to the step reached, and
    `resample` > 1 backs up to the step's start with q(x_t | x_t') and takes it again.
    `frames`, a list, collects x after every step. `negative_labels`: see
    `DiffusionModel.guided_prediction`.
    """
    for t in sampler.timesteps:
        t_next = sampler.next_timestep(t)
        for round_ in range(resample):
            output = model.guided_prediction(x, t, labels, guidance_scale, use_ema=use_ema,
                                             negative_labels=negative_labels)
            x_next = sampler.step(output, t, x, seed=seed)
            if known is not None:
                # The visible pixels: the real image, noised to the same step.
                noise = ops.convert_to_numpy(keras.random.normal(x.shape, seed=seed))
                x_next = mask * sampler.add_noise(known, noise, t_next) + (1.0 - mask) * x_next
            if round_ < resample - 1 and t_next >= 0:
                # RePaint's resampling: back up to step t, and take the step again.
                noise = ops.convert_to_numpy(keras.random.normal(x.shape, seed=seed))
                x = sampler.renoise(x_next, t_next, t, noise)
            else:
                x = x_next
        if frames is not None:
            frames.append(x)
    return x


def sample(model, num_samples, sampler=None, num_steps=None, eta=0.0, labels=None,
           guidance_scale=1.0, seed=0, use_ema=True, batch_size=256, return_trajectory=False,
           spacing="trailing", negative_labels=None):
    """Generates images from noise: (num_samples, *image_shape) NumPy, clipped to [-1, 1].

    Args:
        model: a trained `DiffusionModel`.
        num_samples: how many images.
        sampler: "ddim" (default for objectives "eps" and "v"), "ddpm", "euler" (the only
            one, and the default, for "flow"), or a `Sampler` object.
        num_steps: network evaluations per image (default 50; "ddpm" always takes
            num_timesteps).
        eta: DDIM's noise level (0: deterministic; 1: DDPM-like).
        labels: for a conditional network, the label of each sample (or one for all);
            None draws unconditional samples (the null label).
        guidance_scale: w of classifier-free guidance (1: conditional, 0: unconditional).
        seed: an int for a reproducible set, or None for a new one each call.
        use_ema: sample with the EMA weights (True) or the latest weights.
        batch_size: images denoised at once.
        return_trajectory: also return every intermediate x_t, as an array
            (num_steps + 1, num_samples, *image_shape) from noise to the result.
        spacing: DDIM's timesteps, "trailing" (from T - 1) or "leading".
        negative_labels: for guidance, labels to steer away from in place of the null
            label (a "negative prompt"; one for all, or one per sample).
    """
    sampler = make_sampler(model, sampler, eta=eta, spacing=spacing)
    sampler.set_timesteps(num_steps)
    labels = check_labels(model, labels, num_samples)
    negative = check_labels(model, negative_labels, num_samples)
    generator = keras.random.SeedGenerator(seed)
    x_start = sampler.init_noise_sigma * ops.convert_to_numpy(
        keras.random.normal((num_samples, *model.image_shape), seed=generator))
    images, trajectories = [], []
    for start in range(0, num_samples, batch_size):
        x = x_start[start:start + batch_size]
        y = None if labels is None else labels[start:start + batch_size]
        away = None if negative is None else negative[start:start + batch_size]
        frames = [x] if return_trajectory else None
        x = denoise(model, x, sampler, y, guidance_scale, use_ema, generator, frames=frames,
                    negative_labels=away)
        images.append(np.clip(x, -1.0, 1.0))
        if return_trajectory:
            trajectories.append(np.stack(frames))
    images = np.concatenate(images).astype(np.float32)
    if return_trajectory:
        return images, np.concatenate(trajectories, axis=1).astype(np.float32)
    return images


def inpaint(model, images, mask, num_steps=50, resample=5, eta=1.0, labels=None,
            guidance_scale=1.0, seed=0, use_ema=True, batch_size=256, spacing="trailing"):
    """Fills the missing pixels (mask == 0) of `images`: RePaint (Lugmayr et al. 2022).

    Sampling runs DDIM steps from pure noise, but after each step x_t -> x_t' the visible
    pixels are replaced by the real image noised to the same step:

        x_t' <- m * (sqrt(abar_t') x0 + sqrt(1 - abar_t') z) + (1 - m) * x_t'.

    The model only generates the hole, and sees the real surroundings at the right noise
    level. Replacement alone (`resample=1`, the imputation of Song et al. 2021, "Score-Based
    Generative Modeling through Stochastic Differential Equations") fits the two parts
    badly: the model's step was computed from the old visible pixels, not the new ones.
    RePaint harmonises them by resampling: after combining, it noises x_t' back to x_t
    (`DDIMScheduler.renoise`) and takes the step again, `resample` times in all per step
    (RePaint's jump length of one step).

    Args:
        model: a trained `DiffusionModel` with objective "eps" or "v".
        images: (N, H, W, C) in [-1, 1]; only the visible pixels are used.
        mask: the same shape (or broadcastable), 1 = visible, 0 = missing.
        num_steps: DDIM steps; the network runs num_steps * resample times per image.
        resample: steps taken at each noise level (1: plain replacement).
        eta: DDIM's noise (1, the default: DDPM-like random steps, as RePaint uses).
        labels, guidance_scale: for a conditional model, as in `sample`.
        seed, use_ema, batch_size, spacing: as in `sample`.

    Returns:
        float32 NumPy (N, H, W, C): the visible pixels exactly those of `images`, the
        missing ones generated.
    """
    _require_gaussian(model, "inpaint")
    images = check_images(model, images)
    mask = np.broadcast_to(np.asarray(mask, np.float32), images.shape)
    if not np.isin(mask, (0.0, 1.0)).all():
        raise ValueError("mask must hold only 0 (missing) and 1 (visible).")
    if int(resample) != resample or resample < 1:
        raise ValueError(f"resample must be a positive integer, got {resample!r}.")
    labels = check_labels(model, labels, len(images))
    generator = keras.random.SeedGenerator(seed)
    sampler = DDIMSampler(model.ddim_scheduler, eta=eta, spacing=spacing)
    sampler.set_timesteps(num_steps)

    def fill(known, visible, y):
        x = ops.convert_to_numpy(keras.random.normal(known.shape, seed=generator))
        x = denoise(model, x, sampler, y, guidance_scale, use_ema, generator, known=known,
                    mask=visible, resample=int(resample))
        return visible * known + (1.0 - visible) * np.clip(x, -1.0, 1.0)

    return _batched(fill, (images, mask, labels), batch_size)


def edit(model, images, strength=0.5, num_steps=25, eta=0.0, labels=None, guidance_scale=1.0,
         seed=0, use_ema=True, batch_size=256):
    """SDEdit (Meng et al. 2022): noise the images part of the way, then denoise them.

    x_t0 = sqrt(abar_t0) x + sqrt(1 - abar_t0) z with t0 = strength * (T - 1), then DDIM
    from t0 to 0. The noise washes out the details of the input but keeps its coarse
    layout, and the model redraws the details as it would for its own samples: a rough
    sketch becomes a plausible image. Low strength keeps the input (faithful), high
    strength ignores it (realistic, but unrelated); strength 1 is plain sampling.

    Args:
        model: a trained `DiffusionModel` with objective "eps" or "v".
        images: (N, H, W, C) in [-1, 1]: the guides (sketches, photos to change).
        strength: t0 / (T - 1), in (0, 1].
        num_steps: DDIM steps from t0 to 0 (at most t0 + 1).
        eta, labels, guidance_scale, seed, use_ema, batch_size: as in `sample`; with
            labels, the model redraws the input as that class.

    Returns:
        float32 NumPy (N, H, W, C), clipped to [-1, 1].
    """
    _require_gaussian(model, "edit")
    images = check_images(model, images)
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength!r}.")
    labels = check_labels(model, labels, len(images))
    generator = keras.random.SeedGenerator(seed)
    start = int(round(strength * (model.num_timesteps - 1)))
    sampler = DDIMSampler(model.ddim_scheduler, eta=eta)
    sampler.set_timesteps(min(num_steps, start + 1), start=start)

    def redraw(guide, y):
        noise = ops.convert_to_numpy(keras.random.normal(guide.shape, seed=generator))
        x = model.scheduler.add_noise(guide, noise, start)
        x = denoise(model, x, sampler, y, guidance_scale, use_ema, generator)
        return np.clip(x, -1.0, 1.0)

    return _batched(redraw, (images, labels), batch_size)


# ---------------------------------------------------------------------------------------
# Checks and batching
# ---------------------------------------------------------------------------------------


def check_labels(model, labels, num_samples):
    """labels as an int32 array (num_samples,), or None; a clear error if they cannot be."""
    if labels is None:
        return None
    if not model.conditional:
        raise ValueError("This DiffusionModel's network takes no labels: pass labels=None.")
    labels = np.broadcast_to(np.asarray(labels, np.int32), (num_samples,))
    if labels.min() < 0 or labels.max() > model.num_classes:
        raise ValueError(f"labels must be in 0..{model.num_classes} "
                         f"({model.num_classes} is the null label).")
    return labels


def check_images(model, images):
    """images as float32 (N, *model.image_shape), or a clear error."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != model.image_shape:
        raise ValueError(f"images must have shape (N, {', '.join(map(str, model.image_shape))})"
                         f" like the training images, got {images.shape}.")
    return images


def _require_gaussian(model, what):
    if model.prediction != "eps":
        raise ValueError(f"{what} runs DDIM steps and needs objective='eps' or 'v'; this model "
                         f"has objective={model.objective!r}.")


def _batched(function, arrays, batch_size):
    """Concatenates function(*batch) over batches of the arrays (None stays None)."""
    size = len(arrays[0])
    return np.concatenate([
        function(*(None if a is None else a[start:start + batch_size] for a in arrays))
        for start in range(0, size, batch_size)]).astype(np.float32)
