"""`DiffusionModel`: trains a denoising network (diffusion or flow matching) and predicts.

Taught in notebooks/02_diffusion. Training a diffusion model (Ho et al. 2020, "Denoising
Diffusion Probabilistic Models") is regression: pick an image x0, a timestep t ~ U{0..T-1}
and noise eps ~ N(0, I), make x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, and minimise

    L_simple = E_{x0, t, eps} || eps - eps_theta(x_t, t) ||^2        (Ho et al. eq. 14).

With `objective="v"` it regresses v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 instead
(v-prediction, Salimans & Ho 2022), and samples with the noise that v implies. With
`objective="flow"` the same model trains flow matching (Lipman et al. 2023, "Flow Matching for
Generative Modeling"; Liu et al. 2023, "Flow Straight and Fast"): t ~ U(0, 1),
x_t = (1 - t) x0 + t eps, and the network regresses the flow's velocity eps - x0 (a different
target from v: no schedule, no sqrt(abar_t)).

The model trains and predicts: `guided_prediction(x, t, labels, guidance_scale)` is what a
sampler steps with (the noise, or the flow's velocity). Sampling and editing are procedures
over a trained model in `course_lib.sampling` ("ddpm": ancestral, all T steps; "ddim": any
number of steps, deterministic with eta = 0; "euler" for flow matching; RePaint inpainting;
SDEdit); `sample`, `inpaint` and `edit` here call them. The notebooks write these loops by
hand; `sample` is the same loop, batched.

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

import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.schedulers import DDIMScheduler, DDPMScheduler, FlowMatchingScheduler
from course_lib.training import loss_to_differentiate, prepare_optimizer, with_penalties

PACKAGE = "course_lib"
OBJECTIVES = ("eps", "v", "flow")


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiffusionModel(keras.Model):
    """A diffusion (or flow-matching) model with its own `train_step`, EMA and predictions.

    Args:
        network: a model mapping [x_t, t] (or [x_t, t, labels]) to an image-shaped float32
            output, e.g. `build_unet`. t is a float32 timestep in [0, num_timesteps).
        num_timesteps: T, the number of noising steps (for the flow objective, only the
            scale of the network's time input: t in [0, 1] is given to it as t * T).
        schedule: "linear" or "cosine" (see `course_lib.schedulers.beta_schedule`).
        objective: "eps" (predict the noise: DDPM/DDIM), "v" (predict
            v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0, Salimans & Ho 2022, then sample
            with DDPM/DDIM as from the noise it implies) or "flow" (flow matching: predict
            the velocity noise - x0 of the straight path). "velocity", the old name of
            "flow", still works, with a warning.
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
    noise, v, or the flow's velocity); `test_step` reports the same on held-out images.
    """

    def __init__(self, network, num_timesteps=1000, schedule="linear", objective="eps",
                 ema_decay=0.999, cond_dropout=0.1, num_classes=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        if objective == "velocity":
            warnings.warn('objective="velocity" is now called "flow" (flow matching\'s velocity '
                          'noise - x0, not the v of v-prediction): use objective="flow".',
                          FutureWarning, stacklevel=2)
            objective = "flow"
        if objective not in OBJECTIVES:
            raise ValueError(f"Unknown objective {objective!r}: use 'eps' (noise prediction, "
                             "DDPM/DDIM), 'v' (v-prediction, DDPM/DDIM) or 'flow' (flow "
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
        return t * self.num_timesteps if self.objective == "flow" else t

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
            scaled = loss_to_differentiate(with_penalties(loss, self.network), self.optimizer)
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

    # -- predicting -------------------------------------------------------------------
    @property
    def prediction(self):
        """What `guided_prediction` returns: "eps" (objectives "eps", "v") or "flow"."""
        return "flow" if self.objective == "flow" else "eps"

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

    def guided_prediction(self, x, t, labels=None, guidance_scale=1.0, use_ema=True,
                          negative_labels=None):
        """What a sampler steps with at (x, t), as NumPy of x's shape.

        The network's output, guided when `labels` are given and w != 1 (classifier-free
        guidance, in one batch of 2n: out(y) and out(null) together),

            out = out(x_t, t, null) + w (out(x_t, t, y) - out(x_t, t, null)),

        then, for objective "v", turned into the noise it implies (`eps_from_v`; the mix
        commutes with it, since eps is linear in v), so that the DDPM and DDIM steps apply
        unchanged. For "flow" the output is the velocity. With `negative_labels` y', the
        prediction for y' takes the place of the unconditional one (a "negative prompt"):
        out(y') + w (out(y) - out(y')) steers towards y and away from y'.

        Args:
            x: (n, *image_shape) NumPy, the current samples.
            t: one time for the batch: an integer step, or a flow time in [0, 1].
            labels: None (the null label, for a conditional network) or (n,) int labels.
            guidance_scale: w (1: conditional; 0: unconditional, or the negative label's).
            use_ema: use the EMA network (True) or the latest weights.
            negative_labels: None (the null label) or (n,) int labels to steer away from.
        """
        network = self.ema_network if use_ema else self.network
        n, forward = len(x), self._forward(network)
        time = np.full((n,), ops.convert_to_numpy(self._time_input(t)), np.float32)
        if self.conditional:
            null = np.full((n,), self.num_classes, np.int32)
            away = null if negative_labels is None else np.asarray(negative_labels, np.int32)
        if not self.conditional:
            output = forward([x, time])
        elif labels is None:
            output = forward([x, time, null])
        elif guidance_scale == 0:
            output = forward([x, time, away])
        elif guidance_scale == 1:
            output = forward([x, time, labels])
        else:
            both = forward([np.concatenate([x, x]), np.concatenate([time, time]),
                            np.concatenate([labels, away])])
            conditional, unconditional = both[:n], both[n:]
            output = unconditional + guidance_scale * (conditional - unconditional)
        return self.scheduler.eps_from_v(output, x, t) if self.objective == "v" else output

    # -- sampling and editing: thin delegates to course_lib.sampling ------------------------
    def sample(self, num_samples, sampler=None, num_steps=None, eta=0.0, labels=None,
               guidance_scale=1.0, seed=0, use_ema=True, batch_size=256,
               return_trajectory=False, spacing="trailing", negative_labels=None):
        """Generates images from noise; `course_lib.sampling.sample` (its arguments)."""
        return sampling.sample(self, num_samples, sampler=sampler, num_steps=num_steps,
                               eta=eta, labels=labels, guidance_scale=guidance_scale,
                               seed=seed, use_ema=use_ema, batch_size=batch_size,
                               return_trajectory=return_trajectory, spacing=spacing,
                               negative_labels=negative_labels)

    def inpaint(self, images, mask, num_steps=50, resample=5, eta=1.0, labels=None,
                guidance_scale=1.0, seed=0, use_ema=True, batch_size=256, spacing="trailing"):
        """Fills the pixels where mask == 0 (RePaint); `course_lib.sampling.inpaint`."""
        return sampling.inpaint(self, images, mask, num_steps=num_steps, resample=resample,
                                eta=eta, labels=labels, guidance_scale=guidance_scale,
                                seed=seed, use_ema=use_ema, batch_size=batch_size,
                                spacing=spacing)

    def edit(self, images, strength=0.5, num_steps=25, eta=0.0, labels=None,
             guidance_scale=1.0, seed=0, use_ema=True, batch_size=256):
        """Noises the images to `strength`, then denoises (SDEdit); `course_lib.sampling.edit`."""
        return sampling.edit(self, images, strength=strength, num_steps=num_steps, eta=eta,
                             labels=labels, guidance_scale=guidance_scale, seed=seed,
                             use_ema=use_ema, batch_size=batch_size)

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


def fit_digit_diffusion(images, num_epochs, num_timesteps=1000, objective="v",
                        widths=(32, 64, 128), batch_size=64, learning_rate=2e-3,
                        ema_decay=0.995, seed=0, callbacks=()):
    """A `DiffusionModel` trained with the recipe of notebooks/02_diffusion/02_ddpm_and_ddim:
    chapter 2's U-Net without attention, Adam with the learning rate cosine-decayed to 0,
    EMA weights for sampling. For later chapters that need the chapter's model. Returns it."""
    from course_lib.data import make_dataset
    from course_lib.models.unet import build_unet

    dataset = make_dataset(images, batch_size=batch_size, seed=seed)
    keras.utils.set_random_seed(seed)
    network = build_unet(tuple(images.shape[1:]), widths, attention_at=())
    model = DiffusionModel(network, num_timesteps=num_timesteps, objective=objective,
                           ema_decay=ema_decay, seed=seed)
    decay = keras.optimizers.schedules.CosineDecay(learning_rate,
                                                   num_epochs * int(dataset.cardinality()))
    model.compile(keras.optimizers.Adam(decay))
    model.fit(dataset, epochs=num_epochs, verbose=0, callbacks=list(callbacks))
    return model
