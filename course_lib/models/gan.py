"""Generative adversarial networks: the losses, DCGAN networks, `GAN`, `ConditionalGAN`, `WGANGP`.

Taught in notebooks/01_gan. A GAN (Goodfellow et al. 2014, "Generative Adversarial Nets")
trains a generator G(z) against a discriminator D(x) = sigmoid(logit(x)), the probability
that x is real. The discriminator minimises the cross-entropy of telling real from fake,

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))],

and the generator, instead of minimising E_z[log(1 - D(G(z)))] (the minimax game, whose
gradient vanishes while D easily rejects the fakes), minimises the non-saturating loss

    L_G = -E_z[log D(G(z))],

i.e. it is trained with the label "real" for its fakes. All losses here take logits and are
written with softplus(u) = log(1 + e^u): -log sigmoid(l) = softplus(-l) and
-log(1 - sigmoid(l)) = softplus(l), which is exact and never takes log(0).

WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs") replaces D by a
critic f(x) with unbounded scores, minimises E[f(G(z))] - E[f(x)] + lambda * GP, where
GP = E_xhat[(||grad f(xhat)||_2 - 1)^2] on random interpolates xhat of real and fake, and
trains the generator with L_G = -E[f(G(z))].

The networks follow DCGAN (Radford et al. 2016): transposed convolutions with BatchNorm and
ReLU in the generator, tanh output; strided convolutions with LeakyReLU(0.2) in the
discriminator; Adam(2e-4, beta_1=0.5).

Example:

    generator = build_generator(latent_dim=64, image_shape=(16, 16, 1))
    discriminator = build_discriminator(image_shape=(16, 16, 1))
    gan = GAN(generator, discriminator, seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    gan.fit(make_dataset(x_train), epochs=num_epochs)
    samples = gan.sample(64, seed=0)        # (64, 16, 16, 1) in [-1, 1]
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from course_lib.training import loss_to_differentiate, prepare_optimizer, with_penalties

PACKAGE = "course_lib"


# ---------------------------------------------------------------------------------------
# The losses, as functions of the discriminator's logits
# ---------------------------------------------------------------------------------------


def _float32(x):
    return ops.cast(x, "float32")


def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    """L_D = -mean log D(x) - mean log(1 - D(G(z))), from logits (a scalar).

    Args:
        real_logits: the discriminator's logits on real images, any shape.
        fake_logits: its logits on generated images, any shape.
        label_smoothing: one-sided label smoothing s (Salimans et al. 2016): the target of
            real images is 1 - s instead of 1, which keeps D from becoming over-confident.
    """
    real, fake = _float32(real_logits), _float32(fake_logits)
    real_loss = (1.0 - label_smoothing) * ops.softplus(-real) + label_smoothing * ops.softplus(real)
    return ops.mean(real_loss) + ops.mean(ops.softplus(fake))


def generator_loss(fake_logits):
    """The non-saturating generator loss L_G = -mean log D(G(z)), from logits (a scalar)."""
    return ops.mean(ops.softplus(-_float32(fake_logits)))


def minimax_generator_loss(fake_logits):
    """The generator's side of the minimax game, mean log(1 - D(G(z))), to be minimised.

    Its gradient with respect to the logit is -D(G(z)): close to zero exactly when the
    discriminator confidently rejects the fakes, i.e. at the start of training. Taught for
    comparison; train with `generator_loss`.
    """
    return -ops.mean(ops.softplus(_float32(fake_logits)))


def critic_loss(real_scores, fake_scores):
    """The WGAN critic loss mean f(G(z)) - mean f(x) (without the gradient penalty)."""
    return ops.mean(_float32(fake_scores)) - ops.mean(_float32(real_scores))


def wasserstein_generator_loss(fake_scores):
    """The WGAN generator loss -mean f(G(z))."""
    return -ops.mean(_float32(fake_scores))


def gradient_penalty(critic, real, fake, labels=None, seed=None):
    """GP = mean over interpolates of (||grad_xhat f(xhat)||_2 - 1)^2 (Gulrajani et al. 2017).

    xhat = eps * x + (1 - eps) * G(z) with eps ~ U(0, 1) drawn once per example, so the
    penalty pushes the critic's gradient norm towards 1 on the lines between real and fake
    samples, a soft version of the 1-Lipschitz constraint of the Wasserstein dual.

    Args:
        critic: a model mapping images (and labels) to scores.
        real, fake: batches of the same shape (batch, ...).
        labels: the labels to give a conditional critic, or None.
        seed: an int or a `keras.random.SeedGenerator` for eps.

    Returns:
        a float32 scalar; differentiable with respect to the critic's weights.
    """
    real, fake = _float32(real), ops.cast(fake, "float32")
    shape = [ops.shape(real)[0]] + [1] * (len(real.shape) - 1)  # one eps per example
    eps = keras.random.uniform(shape, seed=seed)
    interpolates = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        inputs = interpolates if labels is None else [interpolates, labels]
        scores = _float32(critic(inputs, training=True))
    grads = _float32(tape.gradient(scores, interpolates))
    norms = ops.sqrt(ops.sum(ops.square(ops.reshape(grads, (ops.shape(grads)[0], -1))), axis=-1)
                     + 1e-12)
    return ops.mean(ops.square(norms - 1.0))


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------


def _label_input(num_classes):
    """The integer label input of a conditional network; checks `num_classes` first."""
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 (None for an unconditional "
                         f"network), got {num_classes!r}")
    return keras.Input((), dtype="int32", name="labels")


def _takes_labels(network):
    """Whether a network takes labels: a second input, after z or the images."""
    return len(network.inputs) > 1


def _num_classes(network):
    """The number of labels of a conditional network (its first Embedding), None if unknown."""
    return next((layer.input_dim for layer in network.layers
                 if isinstance(layer, layers.Embedding)), None)


def build_generator(latent_dim=64, image_shape=(16, 16, 1), num_classes=None,
                    filters=(128, 64), momentum=0.9, name="generator"):
    """The DCGAN generator: z (and a label) -> a dense projection -> transposed convolutions.

    Each stride-2 `Conv2DTranspose` doubles height and width, so the projection starts at
    image_size / 2**len(filters) (4x4 for 16x16 images and two filters). BatchNorm + ReLU
    after every layer but the last, which is a tanh in float32 (images in [-1, 1]).

    Args:
        latent_dim: size of z.
        image_shape: (height, width, channels); height and width divisible by 2**len(filters).
        num_classes: for a conditional generator, the number of labels; the label's learned
            embedding (size latent_dim) is concatenated with z, as in Mirza & Osindero (2014).
        filters: channels of the projection and of each upsampling block, coarse to fine.
        momentum: BatchNorm momentum (0.9: the moving statistics follow a generator that
            changes quickly; they are what `sample` uses).

    Returns:
        a `keras.Model` mapping z (and labels) to images (float32, tanh).
    """
    height, width, channels = image_shape
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise ValueError(f"image_shape {image_shape}: height and width must be divisible by "
                         f"2**len(filters) = {factor}; use fewer filters or another size.")
    z = keras.Input((latent_dim,), name="z")
    inputs, h = [z], z
    if num_classes:
        labels = _label_input(num_classes)
        inputs.append(labels)
        h = layers.Concatenate()([z, layers.Embedding(int(num_classes), latent_dim)(labels)])
    h = layers.Dense(height // factor * width // factor * filters[0], use_bias=False)(h)
    h = layers.BatchNormalization(momentum=momentum)(h)
    h = layers.ReLU()(h)
    h = layers.Reshape((height // factor, width // factor, filters[0]))(h)
    for f in filters[1:]:
        h = layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False)(h)  # x2
        h = layers.BatchNormalization(momentum=momentum)(h)
        h = layers.ReLU()(h)
    images = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh",
                                    dtype="float32", name="images")(h)
    return keras.Model(inputs if num_classes else z, images, name=name)


def build_discriminator(image_shape=(16, 16, 1), num_classes=None, filters=(64, 128),
                        normalization="batch", dropout=0.3, name="discriminator"):
    """The DCGAN discriminator: strided convolutions with LeakyReLU(0.2) -> one logit.

    Args:
        image_shape: (height, width, channels).
        num_classes: for a conditional discriminator, the number of labels. The label enters
            through a projection (Miyato & Koyama 2018): logit = w . phi(x) + embed(y) . phi(x),
            so the discriminator scores "is this a real image *of this class*".
        filters: channels of the stride-2 convolutions (each halves height and width).
        normalization: "batch" (DCGAN), "layer" (for WGAN-GP, whose penalty is per example
            and must not mix examples through batch statistics), or None. Never on the
            first layer, as in DCGAN.
        dropout: dropout rate before the output (0 to disable).

    Returns:
        a `keras.Model` mapping images (and labels) to logits (batch, 1), float32.
    """
    if normalization not in ("batch", "layer", None):
        raise ValueError(f'normalization must be "batch", "layer" or None, got {normalization!r}')
    images = keras.Input(image_shape, name="images")
    h = images
    for i, f in enumerate(filters):
        h = layers.Conv2D(f, 4, strides=2, padding="same")(h)  # /2
        if i > 0 and normalization == "batch":
            h = layers.BatchNormalization()(h)
        elif i > 0 and normalization == "layer":
            h = layers.LayerNormalization(axis=[1, 2, 3])(h)
        h = layers.LeakyReLU(0.2)(h)
    features = layers.Flatten()(h)
    if dropout:
        features = layers.Dropout(dropout)(features)
    logits = layers.Dense(1, dtype="float32", name="logits")(features)
    if not num_classes:
        return keras.Model(images, logits, name=name)
    labels = _label_input(num_classes)
    embedded = layers.Embedding(int(num_classes), features.shape[-1], dtype="float32")(labels)
    projection = ops.sum(embedded * ops.cast(features, "float32"), axis=-1, keepdims=True)
    return keras.Model([images, labels], layers.Add(dtype="float32")([logits, projection]),
                       name=name)


def build_mlp_generator(latent_dim=2, data_dim=2, units=128, depth=3, name="generator"):
    """A small MLP generator for 2-D toy data: z -> `depth` ReLU layers -> a point in R^data_dim."""
    z = keras.Input((latent_dim,), name="z")
    h = z
    for _ in range(depth):
        h = layers.Dense(units, activation="relu")(h)
    return keras.Model(z, layers.Dense(data_dim, dtype="float32", name="points")(h), name=name)


def build_mlp_discriminator(data_dim=2, units=128, depth=3, name="discriminator"):
    """A small MLP discriminator for 2-D toy data: a point -> LeakyReLU layers -> one logit."""
    x = keras.Input((data_dim,), name="points")
    h = x
    for _ in range(depth):
        h = layers.LeakyReLU(0.2)(layers.Dense(units)(h))
    return keras.Model(x, layers.Dense(1, dtype="float32", name="logits")(h), name=name)


def slerp(z0, z1, num_steps):
    """Spherical interpolation from z0 to z1 in `num_steps` points (White 2016).

    Gaussian latent vectors live near a sphere of radius sqrt(latent_dim); a straight line
    between two of them passes through its inside, where the generator rarely saw a z.

    Args:
        z0, z1: (latent_dim,) vectors.

    Returns:
        (num_steps, latent_dim) float32.
    """
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    t = np.linspace(0.0, 1.0, num_steps)[:, None]
    if omega < 1e-6:  # (anti)parallel: the sphere's arc is the line
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    return ((np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)).astype(
        np.float32)


# ---------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class GAN(keras.Model):
    """A GAN with its own `train_step`: one discriminator step, then one generator step.

    Conditional or not is read from the networks, as for `DiffusionModel`: the model is
    conditional (`conditional` is True and `num_classes` the number of labels) exactly when
    its networks take labels, i.e. were built with `num_classes=...`. A conditional model trains on
    `(images, labels)` pairs and samples with `labels=`. The same holds for `ConditionalGAN`
    (which insists on conditional networks) and `WGANGP`.

    Args:
        generator: a model mapping z (batch, latent_dim) to samples, e.g. `build_generator`.
        discriminator: a model mapping samples to logits, e.g. `build_discriminator`.
        label_smoothing: one-sided label smoothing of the discriminator's real targets.
        seed: seed of the latent vectors drawn in training and by `sample`.
        augment: None, or a differentiable function (e.g. `course_lib.augment.DiffAugment`)
            applied in training to every batch the discriminator sees, real and generated,
            in both networks' steps (DiffAugment, Zhao et al. 2020).

    Call arguments:
        inputs: latent vectors z (batch, latent_dim). Returns the generator's samples.

    `compile(d_optimizer=..., g_optimizer=...)` takes one optimizer per network. Metrics:
    `d_loss`, `g_loss` (the non-saturating loss), `d_real` and `d_fake` (the mean probability
    D gives real and generated samples: both near 0.5 when D cannot tell them apart, d_real
    near 1 and d_fake near 0 when D wins).
    """

    def __init__(self, generator, discriminator, label_smoothing=0.0, seed=None, augment=None,
                 **kwargs):
        if "conditional" in kwargs:
            raise TypeError(f"{type(self).__name__} reads `conditional` from its networks: "
                            "build both with num_classes=... (or neither) instead of passing it")
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        if _takes_labels(generator) != _takes_labels(discriminator):
            raise ValueError("one network takes labels and the other does not: build both with "
                             "num_classes=... (a conditional GAN) or neither")
        self.conditional = _takes_labels(generator)
        self.num_classes = _num_classes(generator) if self.conditional else None
        self.label_smoothing = float(label_smoothing)
        self.seed = seed
        self.augment = augment
        self.latent_dim = int(generator.inputs[0].shape[-1])  # z is the generator's first input
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.built = True  # both networks are functional models, built already

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker,
                self.d_fake_tracker]

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        """Sets one optimizer per network; call it inside `strategy.scope()`."""
        self.d_optimizer = prepare_optimizer(d_optimizer, self.discriminator.trainable_variables)
        self.g_optimizer = prepare_optimizer(g_optimizer, self.generator.trainable_variables)
        # Keras's own `optimizer` slot gets the generator's (already built), so that it does
        # not create, build and checkpoint an unused default RMSprop for all the variables.
        super().compile(optimizer=self.g_optimizer, **kwargs)

    def get_compile_config(self):
        return {"d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
                "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer)}

    def compile_from_config(self, config):
        """Recompiles a reloaded model with its optimizers (their state is restored next)."""
        self.compile(**{key: keras.saving.deserialize_keras_object(value)
                        for key, value in config.items()})

    # -- the pieces -------------------------------------------------------------------
    def _unpack(self, data):
        """(real samples, labels or None) from what a dataset yields."""
        if isinstance(data, (tuple, list)):
            if self.conditional and len(data) < 2:
                raise ValueError(f"{type(self).__name__} trains on (images, labels) pairs")
            return data[0], (data[1] if self.conditional else None)
        if self.conditional:
            raise ValueError(f"{type(self).__name__} trains on (images, labels) pairs; "
                             "make the dataset with make_dataset(images, labels)")
        return data, None

    def _with_labels(self, tensor, labels):
        if not self.conditional:
            return tensor
        if labels is None:
            raise ValueError(f"{type(self).__name__} needs labels: pass labels=...")
        return [tensor, ops.convert_to_tensor(labels, "int32")]

    def latents(self, batch_size, seed=None):
        """z ~ N(0, I) of shape (batch_size, latent_dim)."""
        return keras.random.normal((batch_size, self.latent_dim),
                                   seed=self.seed_generator if seed is None else seed)

    def generate(self, z, labels=None, training=False):
        """G(z[, y]): the generator's samples for given latent vectors."""
        return self.generator(self._with_labels(ops.convert_to_tensor(z), labels),
                              training=training)

    def discriminate(self, samples, labels=None, training=False):
        """The discriminator's logits (batch, 1); in training, of the augmented samples when
        the model has `augment`."""
        if training and self.augment is not None:
            samples = self.augment(samples)
        return self.discriminator(self._with_labels(samples, labels), training=training)

    def call(self, inputs, training=False):
        if self.conditional:
            z, labels = inputs
            return self.generate(z, labels, training=training)
        return self.generate(inputs, training=training)

    def sample(self, num_samples, labels=None, seed=None, batch_size=256):
        """Draws z ~ N(0, I) and generates: (num_samples, ...) NumPy, in [-1, 1] for images.

        Args:
            num_samples: how many samples.
            labels: for a conditional model, the label of each sample (or one for all).
            seed: an int for a reproducible set (the same seed gives the same z), or None
                to continue the model's own random stream.
        """
        if self.conditional:
            if labels is None:
                raise ValueError(f"{type(self).__name__}.sample needs labels=, one per sample")
            labels = np.broadcast_to(np.asarray(labels, np.int32), (num_samples,))
            if self.num_classes and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"labels must lie in 0..{self.num_classes - 1}, got "
                                 f"{labels.min()}..{labels.max()}")
        elif labels is not None:
            raise ValueError(f"this {type(self).__name__} is unconditional (its networks take "
                             "no labels): sample without labels=")
        z = self.latents(num_samples, seed)
        out = []
        for start in range(0, num_samples, batch_size):
            y = None if labels is None else labels[start:start + batch_size]
            out.append(ops.convert_to_numpy(self.generate(z[start:start + batch_size], y)))
        return np.concatenate(out)

    # -- training ---------------------------------------------------------------------
    @staticmethod
    def _apply(optimizer, scaled_loss, tape, variables):
        grads = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(grads, variables))

    def _fake_labels(self, labels, batch_size):
        return labels  # a conditional GAN generates the classes of the real batch

    def train_step(self, data):
        real, labels = self._unpack(data)
        batch_size = ops.shape(real)[0]
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables

        # 1. Discriminator: real -> 1, fake -> 0, the generator held fixed. Real and fake
        # batches in separate calls (as DCGAN's reference code): BatchNorm normalises each by
        # its own statistics. One joint call lets D win outright on digits and the samples
        # get worse (`python benchmarks/gan.py --only discriminator_batches`; notebook 02).
        fake = self.generate(self.latents(batch_size), self._fake_labels(labels, batch_size),
                             training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminate(real, labels, training=True)
            fake_logits = self.discriminate(fake, labels, training=True)
            d_loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing)
            scaled = loss_to_differentiate(with_penalties(d_loss, self.discriminator),
                                           self.d_optimizer)
        self._apply(self.d_optimizer, scaled, tape, d_vars)

        # 2. Generator: fresh z, trained so that D calls its samples real (non-saturating).
        fake_labels = self._fake_labels(labels, batch_size)
        with tf.GradientTape() as tape:
            fake = self.generate(self.latents(batch_size), fake_labels, training=True)
            g_loss = generator_loss(self.discriminate(fake, fake_labels, training=True))
            scaled = loss_to_differentiate(with_penalties(g_loss, self.generator),
                                           self.g_optimizer)
        self._apply(self.g_optimizer, scaled, tape, g_vars)

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(ops.mean(ops.sigmoid(_float32(real_logits))))
        self.d_fake_tracker.update_state(ops.mean(ops.sigmoid(_float32(fake_logits))))
        return {m.name: m.result() for m in self.metrics}

    # -- serialization ----------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "label_smoothing": self.label_smoothing,
            "seed": self.seed,
            "augment": (None if self.augment is None
                        else keras.saving.serialize_keras_object(self.augment)),
        }

    @classmethod
    def from_config(cls, config):
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        if config.get("augment") is not None:
            config["augment"] = keras.saving.deserialize_keras_object(config["augment"])
        return cls(**config)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConditionalGAN(GAN):
    """A class-conditional GAN (Mirza & Osindero 2014): both networks see the label.

    Build the networks with `num_classes=...`, train on a dataset of `(images, labels)`, and
    `sample(n, labels=...)` draws the requested classes. In training, the fakes get the labels
    of the real batch, so the generator learns every class as often as the data shows it (and
    p_G(y) = p_data(y), which the projection discriminator assumes). It is a `GAN` that
    refuses unconditional networks.

    Call arguments:
        inputs: a pair `(z, labels)`. Returns the generator's samples.
    """

    def __init__(self, generator, discriminator, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        if not self.conditional:
            raise ValueError("ConditionalGAN needs networks that take labels: build them with "
                             "build_generator(..., num_classes=...) and "
                             "build_discriminator(..., num_classes=...)")


@keras.saving.register_keras_serializable(package=PACKAGE)
class WGANGP(GAN):
    """A Wasserstein GAN with gradient penalty (Gulrajani et al. 2017); conditional exactly
    when its networks take labels (as for `GAN`).

    Each `train_step` makes `critic_steps` critic updates on the batch (fresh z each time),
    then one generator update. The critic should have no BatchNorm and no dropout, which
    would make its scores random (`build_discriminator(normalization="layer", dropout=0)`);
    the paper's optimiser is
    Adam(1e-4, beta_1=0.0, beta_2=0.9) for both networks.

    Args:
        generator, discriminator: as for `GAN`; the discriminator is the critic (its "logit"
            is an unbounded score).
        critic_steps: critic updates per generator update (5 in the paper).
        gp_weight: lambda, the weight of the gradient penalty (10 in the paper).
        seed: seed of z and of the interpolation weights.

    Metrics: `d_loss` (critic loss with penalty), `g_loss`, `gp`, and `wasserstein`, the
    critic's estimate mean f(x) - mean f(G(z)) of the Wasserstein-1 distance (it falls as
    the generator improves, unlike the losses of the standard GAN).
    """

    def __init__(self, generator, discriminator, critic_steps=5, gp_weight=10.0, seed=None,
                 **kwargs):
        kwargs.pop("label_smoothing", None)
        super().__init__(generator, discriminator, seed=seed, **kwargs)
        self.critic_steps = int(critic_steps)
        self.gp_weight = float(gp_weight)
        self.gp_tracker = keras.metrics.Mean(name="gp")
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein")

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.gp_tracker,
                self.wasserstein_tracker]

    def train_step(self, data):
        real, labels = self._unpack(data)
        batch_size = ops.shape(real)[0]
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables

        for _ in range(self.critic_steps):  # unrolled: a few critic steps per generator step
            fake = self.generate(self.latents(batch_size), labels, training=True)
            with tf.GradientTape() as tape:
                real_scores = self.discriminate(real, labels, training=True)
                fake_scores = self.discriminate(fake, labels, training=True)
                gp = gradient_penalty(self.discriminator, real, fake, labels,
                                      seed=self.seed_generator)
                d_loss = critic_loss(real_scores, fake_scores) + self.gp_weight * gp
                scaled = loss_to_differentiate(with_penalties(d_loss, self.discriminator),
                                               self.d_optimizer)
            self._apply(self.d_optimizer, scaled, tape, d_vars)

        with tf.GradientTape() as tape:
            fake = self.generate(self.latents(batch_size), labels, training=True)
            g_loss = wasserstein_generator_loss(self.discriminate(fake, labels, training=True))
            scaled = loss_to_differentiate(with_penalties(g_loss, self.generator),
                                           self.g_optimizer)
        self._apply(self.g_optimizer, scaled, tape, g_vars)

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.gp_tracker.update_state(gp)
        self.wasserstein_tracker.update_state(-critic_loss(real_scores, fake_scores))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        config = super().get_config()
        config.pop("label_smoothing")
        return {**config, "critic_steps": self.critic_steps, "gp_weight": self.gp_weight}

    @classmethod
    def from_config(cls, config):
        config.pop("conditional", None)  # saved before it was read from the networks
        return super().from_config(config)
