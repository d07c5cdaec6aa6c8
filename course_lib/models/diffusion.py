"""`DiffusionModel`: trains a denoising network and samples with DDPM, DDIM or flow matching.

Taught in notebooks/02_diffusion. Training a diffusion model (Ho et al. 2020, "Denoising
Diffusion Probabilistic Models") is regression: pick an image x0, a timestep t ~ U{0..T-1}
and noise eps ~ N(0, I), make x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, and minimise

    L_simple = E_{x0, t, eps} || eps - eps_theta(x_t, t) ||^2        (Ho et al. eq. 14).

With `objective="velocity"` the same model trains flow matching instead (Lipman et al. 2023,
"Flow Matching for Generative Modeling"; Liu et al. 2023, "Flow Straight and Fast"):
t ~ U(0, 1), x_t = (1 - t) x0 + t eps, and the network regresses the velocity eps - x0.

Sampling starts from pure noise and applies a scheduler (`course_lib.schedulers`) step by step:
"ddpm" (ancestral, all T steps), "ddim" (any number of steps, deterministic with eta = 0) or,
for the velocity objective, "euler". The notebook writes these loops by hand; `sample` is the
same loop, batched.

Two more ingredients:

- **EMA.** Samples come from an exponential moving average of the weights,
  w_ema <- d w_ema + (1 - d) w after every optimizer step, which averages out the noise of
  the last steps (Ho et al. use d = 0.9999). Early in training d is capped at
  (1 + n) / (10 + n) after n steps, as in `tf.train.ExponentialMovingAverage`, so a short
  run's EMA is not dominated by the random initial weights. The EMA network's weights are
  part of the model's weights: they are saved, and restored by `BackupAndRestore`.
- **Classifier-free guidance** (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance").
  With a conditional network (`build_unet(num_classes=...)`), each training label is replaced
  by the null label with probability `cond_dropout`, so one network learns both
  eps(x_t, t, y) and eps(x_t, t). Sampling combines them,

      eps = eps(x_t, t) + w (eps(x_t, t, y) - eps(x_t, t)),

  where w = 1 is plain conditional sampling, w = 0 unconditional, and w > 1 trades variety for
  samples that look more like their class.

Example:

    network = build_unet((16, 16, 1), widths=(32, 64, 128))
    model = DiffusionModel(network, num_timesteps=1000, schedule="cosine")
    model.compile(keras.optimizers.Adam(2e-3))
    model.fit(make_dataset(x_train), epochs=num_epochs)
    samples = model.sample(64, sampler="ddim", num_steps=50, seed=0)  # (64, 16, 16, 1)
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib.schedulers import DDIMScheduler, DDPMScheduler, FlowMatchingScheduler
from course_lib.training import loss_to_differentiate, prepare_optimizer

PACKAGE = "course_lib"
OBJECTIVES = ("eps", "v", "velocity")
SAMPLERS = {"eps": ("ddim", "ddpm"), "v": ("ddim", "ddpm"), "velocity": ("euler",)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiffusionModel(keras.Model):
    """A diffusion (or flow-matching) model with its own `train_step`, EMA and samplers.

    Args:
        network: a model mapping [x_t, t] (or [x_t, t, labels]) to an image-shaped float32
            output, e.g. `build_unet`. t is a float32 timestep in [0, num_timesteps).
        num_timesteps: T, the number of noising steps (for the velocity objective, only the
            scale of the network's time input: t in [0, 1] is given to it as t * T).
        schedule: "linear" or "cosine" (see `course_lib.schedulers.beta_schedule`).
        objective: "eps" (predict the noise: DDPM/DDIM), "v" (predict
            v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0, Salimans & Ho 2022, then sample
            with DDPM/DDIM as from the noise it implies) or "velocity" (flow matching).
        ema_decay: d, the decay of the weights' moving average (0: the EMA network is a copy
            of the latest weights).
        cond_dropout: for a conditional network, the probability of training on the null
            label instead of the true one (classifier-free guidance; 0.1 in Ho & Salimans).
        num_classes: for a conditional network, the number of labels (the null label is
            `num_classes`); None: read from the network's "label_embedding" layer.
        seed: seed of the timesteps, noise and label dropout drawn in training.

    Call arguments:
        inputs: [x_t, t] or [x_t, t, labels]. Returns the network's output (float32).

    Metrics: `loss`, the mean squared error of the network's output against its target (the
    noise, or the velocity); `test_step` reports the same on held-out images.
    """

    def __init__(self, network, num_timesteps=1000, schedule="linear", objective="eps",
                 ema_decay=0.999, cond_dropout=0.1, num_classes=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        if objective not in OBJECTIVES:
            raise ValueError(f"Unknown objective {objective!r}: use 'eps' (noise prediction, "
                             "DDPM/DDIM), 'v' (v-prediction, DDPM/DDIM) or 'velocity' (flow "
                             "matching).")
        if not 0.0 <= ema_decay <= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1], got {ema_decay}.")
        if not 0.0 <= cond_dropout < 1.0:
            raise ValueError(f"cond_dropout must be in [0, 1), got {cond_dropout}.")
        self.network = network
        self.num_timesteps = int(num_timesteps)
        self.schedule = schedule
        self.objective = objective
        self.ema_decay = float(ema_decay)
        self.cond_dropout = float(cond_dropout)
        self.seed = seed
        self.conditional = len(network.inputs) == 3
        self.num_classes = self._find_num_classes(num_classes) if self.conditional else None
        self.image_shape = tuple(network.inputs[0].shape[1:])
        if objective in ("eps", "v"):
            self.scheduler = DDPMScheduler(self.num_timesteps, schedule)
            self.ddim_scheduler = DDIMScheduler.from_scheduler(self.scheduler)
        else:
            self.scheduler = FlowMatchingScheduler()

        # The EMA copy: same architecture, same starting weights, never trained directly.
        self.ema_network = keras.models.clone_model(network)
        self.ema_network.set_weights(network.get_weights())
        self.ema_network.trainable = False

        self.seed_generator = keras.random.SeedGenerator(seed)
        self._forward_functions = {}  # compiled forward passes for sampling, made on demand
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True  # the networks are functional models, built already

    def _find_num_classes(self, num_classes):
        if num_classes is not None:
            return int(num_classes)
        try:
            return self.network.get_layer("label_embedding").input_dim - 1
        except ValueError:
            raise ValueError("The network takes labels but has no 'label_embedding' layer: "
                             "pass num_classes= (the null label is num_classes).") from None

    @property
    def metrics(self):
        return [self.loss_tracker]

    def compile(self, optimizer="adam", **kwargs):
        """Sets the optimizer of the network's weights; call it inside `strategy.scope()`."""
        optimizer = prepare_optimizer(keras.optimizers.get(optimizer),
                                      self.network.trainable_variables)
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        return {"optimizer": keras.saving.serialize_keras_object(self.optimizer)}

    def compile_from_config(self, config):
        """Recompiles a reloaded model with its optimizer (its state is restored next)."""
        self.compile(optimizer=keras.saving.deserialize_keras_object(config["optimizer"]))

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    # -- training ---------------------------------------------------------------------
    def _unpack(self, data):
        """(images, labels or None) from what a dataset yields."""
        if isinstance(data, (tuple, list)):
            images, labels = data[0], (data[1] if len(data) > 1 else None)
        else:
            images, labels = data, None
        if self.conditional and labels is None:
            raise ValueError("This DiffusionModel's network takes labels: train on "
                             "(images, labels) pairs, e.g. make_dataset(images, labels).")
        return images, (labels if self.conditional else None)

    def _time_input(self, t):
        """What the network sees as time: the timestep, or T * t for flow matching."""
        t = ops.cast(t, "float32")
        return t * self.num_timesteps if self.objective == "velocity" else t

    def compute_loss_terms(self, x0, labels=None, training=False):
        """(prediction, target) for a random t and noise per image, both float32."""
        x0 = ops.cast(x0, "float32")
        batch_size = ops.shape(x0)[0]
        noise = keras.random.normal(ops.shape(x0), seed=self.seed_generator)
        if self.objective in ("eps", "v"):
            t = keras.random.randint((batch_size,), 0, self.num_timesteps,
                                     seed=self.seed_generator)
            target = noise if self.objective == "eps" else self.scheduler.v_target(x0, noise, t)
        else:
            t = keras.random.uniform((batch_size,), seed=self.seed_generator)
            target = self.scheduler.velocity_target(x0, noise)
        inputs = [self.scheduler.add_noise(x0, noise, t), self._time_input(t)]
        if self.conditional:
            labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
            if training and self.cond_dropout > 0:
                drop = keras.random.uniform((batch_size,), seed=self.seed_generator)
                labels = ops.where(drop < self.cond_dropout, self.num_classes, labels)
            inputs.append(labels)
        prediction = ops.cast(self.network(inputs, training=training), "float32")
        return prediction, target

    def train_step(self, data):
        x0, labels = self._unpack(data)
        variables = self.network.trainable_variables
        with tf.GradientTape() as tape:
            prediction, target = self.compute_loss_terms(x0, labels, training=True)
            loss = ops.mean(ops.square(prediction - target))
            scaled = loss_to_differentiate(loss, self.optimizer)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self._update_ema()
        self.loss_tracker.update_state(loss)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x0, labels = self._unpack(data)
        prediction, target = self.compute_loss_terms(x0, labels)
        self.loss_tracker.update_state(ops.mean(ops.square(prediction - target)))
        return {m.name: m.result() for m in self.metrics}

    def _update_ema(self):
        """w_ema <- d w_ema + (1 - d) w, with d = min(ema_decay, (1 + n) / (10 + n))."""
        steps = ops.cast(self.optimizer.iterations, "float32")
        decay = ops.minimum(self.ema_decay, (1.0 + steps) / (10.0 + steps))
        for ema_weight, weight in zip(self.ema_network.weights, self.network.weights):
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * ops.cast(weight,
                                                                            ema_weight.dtype))

    # -- sampling ---------------------------------------------------------------------
    def _forward(self, network):
        """network(inputs) as a compiled function, traced once per network and batch size.

        `predict_on_batch` would be the Keras way, but under `MirroredStrategy` it runs the
        whole batch on every replica and concatenates the results.
        """
        key = "ema" if network is self.ema_network else "raw"
        if key not in self._forward_functions:
            function = tf.function(lambda inputs: network(inputs, training=False),
                                   reduce_retracing=True)
            self._forward_functions[key] = function
        return lambda inputs: ops.convert_to_numpy(self._forward_functions[key](inputs))

    def _predict(self, network, x, t, labels, guidance_scale):
        """What a sampler steps with at (x, t): the network's output (the noise, or the flow's
        velocity), guided when labels are given and w != 1. For objective "v", the noise
        that the predicted v implies, so that the DDPM and DDIM steps apply unchanged."""
        output = self._guided_output(network, x, t, labels, guidance_scale)
        return self.scheduler.eps_from_v(output, x, t) if self.objective == "v" else output

    def _guided_output(self, network, x, t, labels, guidance_scale):
        n, forward = len(x), self._forward(network)
        time = np.full((n,), ops.convert_to_numpy(self._time_input(t)), np.float32)
        if not self.conditional:
            return forward([x, time])
        null = np.full((n,), self.num_classes, np.int32)
        if labels is None or guidance_scale == 0:
            return forward([x, time, null])
        if guidance_scale == 1:
            return forward([x, time, labels])
        # One batch of 2n: the conditional and the unconditional prediction together.
        both = forward([np.concatenate([x, x]), np.concatenate([time, time]),
                        np.concatenate([labels, null])])
        conditional, unconditional = both[:n], both[n:]
        return unconditional + guidance_scale * (conditional - unconditional)

    def _sampling_plan(self, sampler, num_steps):
        """[(t, t_next), ...] for the chosen sampler, from noise to data."""
        if sampler not in SAMPLERS[self.objective]:
            raise ValueError(f"Unknown sampler {sampler!r} for objective {self.objective!r}: "
                             f"use one of {SAMPLERS[self.objective]}.")
        if sampler == "ddpm":
            if num_steps not in (None, self.num_timesteps):
                raise ValueError(f"The ddpm sampler takes all num_timesteps = "
                                 f"{self.num_timesteps} steps, got num_steps={num_steps}; "
                                 "use sampler='ddim' for fewer steps.")
            return [(t, t - 1) for t in self.scheduler.timesteps]
        if sampler == "ddim":
            timesteps = self.ddim_scheduler.set_timesteps(50 if num_steps is None else num_steps)
            return list(zip(timesteps, [*timesteps[1:], -1]))
        times = self.scheduler.set_timesteps(50 if num_steps is None else num_steps)
        return list(zip(times[:-1], times[1:]))

    def sample(self, num_samples, sampler=None, num_steps=None, eta=0.0, labels=None,
               guidance_scale=1.0, seed=0, use_ema=True, batch_size=256,
               return_trajectory=False):
        """Generates images from noise: (num_samples, *image_shape) NumPy, clipped to [-1, 1].

        Args:
            num_samples: how many images.
            sampler: "ddim" (default for the eps objective), "ddpm", or "euler" (the only
                one, and the default, for the velocity objective).
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
        """
        sampler = sampler or SAMPLERS[self.objective][0]
        plan = self._sampling_plan(sampler, num_steps)
        labels = self._check_labels(labels, num_samples)
        network = self.ema_network if use_ema else self.network
        generator = keras.random.SeedGenerator(seed)
        x_start = ops.convert_to_numpy(
            keras.random.normal((num_samples, *self.image_shape), seed=generator))
        images, trajectories = [], []
        for start in range(0, num_samples, batch_size):
            x = x_start[start:start + batch_size]
            y = None if labels is None else labels[start:start + batch_size]
            frames = [x]
            for t, t_next in plan:
                output = self._predict(network, x, t, y, guidance_scale)
                if sampler == "ddim":
                    x = self.ddim_scheduler.step(output, t, t_next, x, eta=eta, seed=generator)
                elif sampler == "ddpm":
                    x = self.scheduler.step(output, t, x, seed=generator, clip_x0=True)
                else:
                    x = self.scheduler.step(output, t, t_next, x)
                if return_trajectory:
                    frames.append(x)
            images.append(np.clip(x, -1.0, 1.0))
            if return_trajectory:
                trajectories.append(np.stack(frames))
        images = np.concatenate(images).astype(np.float32)
        if return_trajectory:
            return images, np.concatenate(trajectories, axis=1).astype(np.float32)
        return images

    def _check_labels(self, labels, num_samples):
        """labels as an int32 array (num_samples,), or None; a clear error if they cannot be."""
        if labels is None:
            return None
        if not self.conditional:
            raise ValueError("This DiffusionModel's network takes no labels: pass labels=None.")
        labels = np.broadcast_to(np.asarray(labels, np.int32), (num_samples,))
        if labels.min() < 0 or labels.max() > self.num_classes:
            raise ValueError(f"labels must be in 0..{self.num_classes} "
                             f"({self.num_classes} is the null label).")
        return labels

    def _check_images(self, images):
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != self.image_shape:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.image_shape))})"
                             f" like the training images, got {images.shape}.")
        return images

    def _ddim_loop(self, x, timesteps, network, labels, guidance_scale, eta, generator,
                   known=None, mask=None, resample=1):
        """DDIM steps through `timesteps` (descending, then -1), optionally RePaint-style."""
        scheduler = self.ddim_scheduler
        steps = list(zip(timesteps, [*timesteps[1:], -1]))
        for t, t_prev in steps:
            for round_ in range(resample):
                output = self._predict(network, x, t, labels, guidance_scale)
                x_prev = scheduler.step(output, t, t_prev, x, eta=eta, seed=generator)
                if known is not None:
                    # The visible pixels: the real image, noised to the same step.
                    noise = ops.convert_to_numpy(keras.random.normal(x.shape, seed=generator))
                    seen = known if t_prev < 0 else scheduler.renoise(known, -1, t_prev, noise)
                    x_prev = mask * seen + (1.0 - mask) * x_prev
                if round_ < resample - 1 and t_prev >= 0:
                    # RePaint's resampling: back up to step t, and take the step again.
                    noise = ops.convert_to_numpy(keras.random.normal(x.shape, seed=generator))
                    x = scheduler.renoise(x_prev, t_prev, t, noise)
                else:
                    x = x_prev
        return x

    def _batched(self, function, arrays, batch_size):
        """Concatenates function(*batch) over batches of the arrays (None stays None)."""
        size = len(arrays[0])
        return np.concatenate([
            function(*(None if a is None else a[start:start + batch_size] for a in arrays))
            for start in range(0, size, batch_size)]).astype(np.float32)

    def _require_ddim(self, what):
        if self.objective == "velocity":
            raise ValueError(f"{what} runs DDIM steps and needs objective='eps' or 'v'; this model "
                             f"has objective={self.objective!r}.")

    def inpaint(self, images, mask, num_steps=50, resample=5, eta=1.0, labels=None,
                guidance_scale=1.0, seed=0, use_ema=True, batch_size=256):
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
            images: (N, H, W, C) in [-1, 1]; only the visible pixels are used.
            mask: the same shape (or broadcastable), 1 = visible, 0 = missing.
            num_steps: DDIM steps; the network runs num_steps * resample times per image.
            resample: steps taken at each noise level (1: plain replacement).
            eta: DDIM's noise (1, the default: DDPM-like random steps, as RePaint uses).
            labels, guidance_scale: for a conditional model, as in `sample`.
            seed, use_ema, batch_size: as in `sample`.

        Returns:
            float32 NumPy (N, H, W, C): the visible pixels exactly those of `images`, the
            missing ones generated.
        """
        self._require_ddim("inpaint")
        images = self._check_images(images)
        mask = np.broadcast_to(np.asarray(mask, np.float32), images.shape)
        if not np.isin(mask, (0.0, 1.0)).all():
            raise ValueError("mask must hold only 0 (missing) and 1 (visible).")
        if int(resample) != resample or resample < 1:
            raise ValueError(f"resample must be a positive integer, got {resample!r}.")
        labels = self._check_labels(labels, len(images))
        network = self.ema_network if use_ema else self.network
        generator = keras.random.SeedGenerator(seed)
        timesteps = self.ddim_scheduler.set_timesteps(num_steps)

        def fill(known, visible, y):
            x = ops.convert_to_numpy(keras.random.normal(known.shape, seed=generator))
            x = self._ddim_loop(x, timesteps, network, y, guidance_scale, eta, generator,
                                known=known, mask=visible, resample=int(resample))
            return visible * known + (1.0 - visible) * np.clip(x, -1.0, 1.0)

        return self._batched(fill, (images, mask, labels), batch_size)

    def edit(self, images, strength=0.5, num_steps=25, eta=0.0, labels=None,
             guidance_scale=1.0, seed=0, use_ema=True, batch_size=256):
        """SDEdit (Meng et al. 2022): noise the images part of the way, then denoise them.

        x_t0 = sqrt(abar_t0) x + sqrt(1 - abar_t0) z with t0 = strength * (T - 1), then DDIM
        from t0 to 0. The noise washes out the details of the input but keeps its coarse
        layout, and the model redraws the details as it would for its own samples: a rough
        sketch becomes a plausible image. Low strength keeps the input (faithful), high
        strength ignores it (realistic, but unrelated); strength 1 is plain sampling.

        Args:
            images: (N, H, W, C) in [-1, 1]: the guides (sketches, photos to change).
            strength: t0 / (T - 1), in (0, 1].
            num_steps: DDIM steps from t0 to 0 (at most t0 + 1).
            eta, labels, guidance_scale, seed, use_ema, batch_size: as in `sample`; with
                labels, the model redraws the input as that class.

        Returns:
            float32 NumPy (N, H, W, C), clipped to [-1, 1].
        """
        self._require_ddim("edit")
        images = self._check_images(images)
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength!r}.")
        labels = self._check_labels(labels, len(images))
        network = self.ema_network if use_ema else self.network
        generator = keras.random.SeedGenerator(seed)
        start = int(round(strength * (self.num_timesteps - 1)))
        timesteps = self.ddim_scheduler.set_timesteps(min(num_steps, start + 1), start=start)

        def redraw(guide, y):
            noise = ops.convert_to_numpy(keras.random.normal(guide.shape, seed=generator))
            x = self.scheduler.add_noise(guide, noise, start)
            x = self._ddim_loop(x, timesteps, network, y, guidance_scale, eta, generator)
            return np.clip(x, -1.0, 1.0)

        return self._batched(redraw, (images, labels), batch_size)

    # -- serialization ----------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "num_timesteps": self.num_timesteps,
            "schedule": self.schedule,
            "objective": self.objective,
            "ema_decay": self.ema_decay,
            "cond_dropout": self.cond_dropout,
            "num_classes": self.num_classes,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
