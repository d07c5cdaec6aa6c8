"""Variational autoencoders: the sampling layer, encoder/decoder builders, `VAE` and `CVAE`.

Taught in notebooks/03_vae. A VAE (Kingma & Welling 2014, "Auto-Encoding Variational Bayes")
learns an encoder q(z|x) = N(mu(x), diag(sigma^2(x))) and a decoder p(x|z) by maximising the
evidence lower bound

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x),   p(z) = N(0, I).

Training minimises the negative ELBO per image: reconstruction (-log p(x|z), one sample of z
via the reparameterisation z = mu + sigma * eps) plus beta times the KL (beta = 1 is the VAE;
beta != 1 is the beta-VAE of Higgins et al. 2017). A CVAE (Sohn et al. 2015) conditions both
networks on a label y, so `sample(labels=...)` draws the digit you ask for.

Images are in [-1, 1] as everywhere in the course. The decoder outputs one logit per pixel and
the likelihood is Bernoulli: p(x|z) = prod_i sigmoid(l_i)^t_i (1 - sigmoid(l_i))^(1 - t_i) with
t = (x + 1) / 2. It is a probability distribution over *binary* images (t in {0, 1}), so the
ELBO is a bound on log p(x) and bits per dimension are a code length only for binary data:
train on `data.make_dataset(..., binarize=True)` and evaluate on `data.binarize(x_test)`, as
the VAE literature does. On grey targets the same formula is a cross-entropy, which no model
can push below the targets' own entropy (`bernoulli_entropy`); it still trains a good decoder
mean (its expected value over binarisations of x is the cross-entropy on x itself), which is
what image restoration uses.

Example:

    encoder = build_encoder((16, 16, 1), latent_dim=2)
    decoder = build_decoder((16, 16, 1), latent_dim=2)
    vae = VAE(encoder, decoder)
    vae.compile(keras.optimizers.Adam(1e-3))
    vae.fit(make_dataset(x_train), epochs=num_epochs)
    samples = vae.sample(64, seed=0)        # (64, 16, 16, 1) in [-1, 1]
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from course_lib.training import loss_to_differentiate, with_penalties

PACKAGE = "course_lib"


# ---------------------------------------------------------------------------------------
# The maths, as functions
# ---------------------------------------------------------------------------------------


def gaussian_kl(mean, log_var):
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) per example, in nats.

    Closed form: 1/2 * sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2).

    Args:
        mean, log_var: (batch, latent_dim).

    Returns:
        (batch,)
    """
    mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
    return 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var, axis=-1)


def bernoulli_pixel_log_likelihood(images, logits):
    """log p(x_i|z) of each pixel for images in [-1, 1] under Bernoulli(sigmoid(logits)).

    With t = (x + 1) / 2, a pixel contributes t log p + (1 - t) log(1 - p), computed
    stably from the logits: -(max(l, 0) - l t + log(1 + exp(-|l|))).

    Returns:
        the images' shape, in nats.
    """
    targets = (ops.cast(images, "float32") + 1.0) / 2.0
    logits = ops.cast(logits, "float32")
    return -(ops.maximum(logits, 0.0) - logits * targets + ops.log1p(ops.exp(-ops.abs(logits))))


def bernoulli_log_likelihood(images, logits):
    """log p(x|z) per example for images in [-1, 1] under per-pixel Bernoulli(sigmoid(logits)).

    The sum over pixels of `bernoulli_pixel_log_likelihood`. For binary images (values -1
    and 1) it is a log-probability; for grey images a (negative) cross-entropy.

    Returns:
        (batch,), in nats.
    """
    per_pixel = bernoulli_pixel_log_likelihood(images, logits)
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def bernoulli_entropy(images):
    """The targets' own entropy per image, -sum_i [t_i log t_i + (1 - t_i) log(1 - t_i)], nats.

    The Bernoulli cross-entropy of a grey image is smallest, at exactly this value, when the
    decoder predicts p_i = t_i for every pixel (Gibbs' inequality), so no model's
    reconstruction term can go below it. It is 0 for binary images, and it is also the
    entropy of the coin flips of `data.binarize`: the part of a binarised image that no
    model can predict.

    Args:
        images: (batch, H, W, C) in [-1, 1] (NumPy or tensor).

    Returns:
        NumPy float64 (batch,), in nats.
    """
    t = np.clip((np.asarray(images, np.float64) + 1.0) / 2.0, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_pixel = -(np.where(t > 0, t * np.log(t), 0.0)
                      + np.where(t < 1, (1 - t) * np.log1p(-t), 0.0))
    return per_pixel.reshape(len(t), -1).sum(axis=1)


def gaussian_log_density(z, mean, log_var):
    """log N(z; mean, diag(exp(log_var))) summed over the last axis, in nats."""
    return -0.5 * ops.sum(
        math.log(2 * math.pi) + log_var + ops.square(z - mean) / ops.exp(log_var), axis=-1)


# ---------------------------------------------------------------------------------------
# Layers and networks
# ---------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(layers.Layer):
    """Draws z = mean + exp(log_var / 2) * eps with eps ~ N(0, I): the reparameterisation trick.

    The randomness is in eps only, so gradients flow through `mean` and `log_var`.

    Args:
        seed: seed of the layer's `keras.random.SeedGenerator` (None: unseeded).

    Call arguments:
        inputs: a pair `(mean, log_var)`, each (batch, latent_dim).

    Example:
        >>> z = Sampling(seed=0)([ops.zeros((4, 2)), ops.zeros((4, 2))])  # 4 draws of N(0, I)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_var = inputs
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _label_inputs(num_classes):
    labels = keras.Input((), dtype="int32", name="labels")
    return labels, ops.one_hot(labels, num_classes)


def build_encoder(image_shape=(16, 16, 1), latent_dim=2, num_classes=None, filters=(32, 64),
                  hidden_units=128, kernel_regularizer=None, name="encoder"):
    """The encoder q(z|x[, y]): strided convolutions, then the Gaussian's mean and log-variance.

    Args:
        image_shape: (height, width, channels); height and width divisible by 2**len(filters).
        latent_dim: size of z.
        num_classes: for a CVAE, the number of labels (the encoder then also takes `labels`).
        filters: channels of the stride-2 convolutions.
        hidden_units: width of the dense layer before the two heads.
        kernel_regularizer: a penalty on every kernel (e.g. `keras.regularizers.L2(1e-4)`),
            added to the training loss by `VAE.train_step`.

    Returns:
        a `keras.Model` mapping images (and labels) to `[mean, log_var]` (float32).
    """
    images = keras.Input(image_shape, name="images")
    inputs, x = [images], images
    if num_classes:
        labels, onehot = _label_inputs(num_classes)
        inputs.append(labels)
        # The label as extra constant channels: (batch, H, W, C + num_classes)
        plane = ops.cast(onehot[:, None, None, :], images.dtype) * ops.ones_like(images[..., :1])
        x = layers.Concatenate()([x, plane])
    penalty = {"kernel_regularizer": kernel_regularizer}
    for f in filters:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", **penalty)(x)
    x = layers.Flatten()(x)  # (batch, H / 2**len(filters) * W / 2**len(filters) * filters[-1])
    x = layers.Dense(hidden_units, activation="relu", **penalty)(x)
    mean = layers.Dense(latent_dim, dtype="float32", name="z_mean", **penalty)(x)
    log_var = layers.Dense(latent_dim, dtype="float32", name="z_log_var", **penalty)(x)
    return keras.Model(inputs if num_classes else images, [mean, log_var], name=name)


def build_decoder(image_shape=(16, 16, 1), latent_dim=2, num_classes=None, filters=(64, 32),
                  hidden_units=128, kernel_regularizer=None, name="decoder"):
    """The decoder p(x|z[, y]): dense layers, then transposed convolutions up to the image.

    Args:
        image_shape: (height, width, channels) of the images to produce.
        latent_dim: size of z.
        num_classes: for a CVAE, the number of labels (the decoder then also takes `labels`).
        filters: channels of the stride-2 transposed convolutions, coarse to fine.
        hidden_units: width of the first dense layer.
        kernel_regularizer: a penalty on every kernel, as for `build_encoder`.

    Returns:
        a `keras.Model` mapping z (and labels) to per-pixel logits (float32), image-shaped.
    """
    z = keras.Input((latent_dim,), name="z")
    inputs, h = [z], z
    if num_classes:
        labels, onehot = _label_inputs(num_classes)
        inputs.append(labels)
        h = layers.Concatenate()([h, ops.cast(onehot, z.dtype)])
    start = image_shape[0] // 2 ** len(filters), image_shape[1] // 2 ** len(filters)
    penalty = {"kernel_regularizer": kernel_regularizer}
    h = layers.Dense(hidden_units, activation="relu", **penalty)(h)
    h = layers.Dense(start[0] * start[1] * filters[0], activation="relu", **penalty)(h)
    h = layers.Reshape((*start, filters[0]))(h)
    for f in filters:
        h = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu",
                                   **penalty)(h)
    logits = layers.Conv2D(image_shape[-1], 3, padding="same", dtype="float32", name="logits",
                           **penalty)(h)
    return keras.Model(inputs if num_classes else z, logits, name=name)


# ---------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class VAE(keras.Model):
    """A variational autoencoder with its own `train_step` (negative ELBO with weight beta).

    Args:
        encoder: a model from `build_encoder` (images -> [mean, log_var]).
        decoder: a model from `build_decoder` (z -> logits).
        beta: weight of the KL term (1: the VAE's ELBO; other values: beta-VAE).
        seed: seed of the sampling layer and of `sample`.

    Call arguments:
        inputs: images (batch, H, W, C) in [-1, 1]. Returns reconstructions (decoder at the
            posterior mean), in [-1, 1].

    Metrics: `loss` (reconstruction + beta * kl), `reconstruction` (-log p(x|z), nats per
    image) and `kl` (nats per image), each a mean over all the examples seen in the epoch
    (a smaller last batch weighs less); `test_step` reports the same on held-out data.
    The likelihood p(x|z) is `pixel_log_likelihood` (Bernoulli); a subclass may override it,
    and training, the bounds and `inpainting.latent_search_fill` all follow.
    """

    conditional = False

    def __init__(self, encoder, decoder, beta=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        # A variable, not a float: the compiled train_step reads its current value, so a
        # callback can change it during training (KL warm-up).
        self.beta_variable = keras.Variable(float(beta), trainable=False, name="beta")
        self.seed = seed
        self.sampling = Sampling(seed=seed, name="sampling")
        self.sample_seed = keras.random.SeedGenerator(None if seed is None else seed + 1)
        self.latent_dim = int(decoder.inputs[0].shape[-1])  # z is the decoder's first input
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.built = True  # the encoder and decoder are functional models, built already

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    @property
    def beta(self):
        """Weight of the KL term; assign a new float at any time (e.g. from a callback)."""
        return self.beta_variable

    @beta.setter
    def beta(self, value):
        self.beta_variable.assign(float(value))

    # -- the pieces -------------------------------------------------------------------
    def _unpack(self, data):
        """(images, labels or None) from what a dataset yields."""
        if isinstance(data, (tuple, list)):
            if self.conditional and len(data) < 2:
                raise ValueError(f"{type(self).__name__} trains on (images, labels) pairs")
            return data[0], (data[1] if self.conditional else None)
        if self.conditional:
            raise ValueError(f"{type(self).__name__} trains on (images, labels) pairs; "
                             "make the dataset with make_dataset(images, labels)")
        return data, None

    def _with_labels(self, tensor, labels):
        tensor = ops.convert_to_tensor(tensor)
        if not self.conditional:
            return tensor
        if labels is None:
            raise ValueError(f"{type(self).__name__} needs labels: pass labels=...")
        return [tensor, ops.convert_to_tensor(labels, "int32")]

    def encode(self, images, labels=None, training=False):
        """[mean, log_var] of q(z|x[, y])."""
        return self.encoder(self._with_labels(images, labels), training=training)

    def decode_logits(self, z, labels=None, training=False):
        return self.decoder(self._with_labels(z, labels), training=training)

    def decode(self, z, labels=None):
        """Images in [-1, 1]: the mean of p(x|z), 2 * sigmoid(logits) - 1."""
        return 2.0 * ops.sigmoid(self.decode_logits(z, labels)) - 1.0

    def call(self, inputs, training=False):
        images, labels = self._unpack(inputs) if self.conditional else (inputs, None)
        mean, _ = self.encode(images, labels, training=training)
        return 2.0 * ops.sigmoid(self.decode_logits(mean, labels, training=training)) - 1.0

    def sample(self, num_samples, labels=None, seed=None):
        """Draws z ~ N(0, I) and decodes it: (num_samples, H, W, C) in [-1, 1] (NumPy)."""
        seed = self.sample_seed if seed is None else seed
        z = keras.random.normal((num_samples, self.latent_dim), seed=seed)
        return ops.convert_to_numpy(self.decode(z, labels))

    def pixel_log_likelihood(self, images, logits):
        """log p(x_i|z) of each pixel, in nats (the images' shape): Bernoulli(sigmoid(logits)).

        The decoder's likelihood, in one place: training, `elbo`, `iwae_bound` and
        `inpainting.latent_search_fill` all call it.
        """
        return bernoulli_pixel_log_likelihood(images, logits)

    def log_likelihood(self, images, logits):
        """log p(x|z) per example, in nats (batch,): `pixel_log_likelihood` summed."""
        per_pixel = self.pixel_log_likelihood(images, logits)
        return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)

    def loss_terms(self, images, labels=None, training=False):
        """Per-example (reconstruction, kl) in nats, with one sample of z."""
        mean, log_var = self.encode(images, labels, training=training)
        z = self.sampling([mean, log_var])
        logits = self.decode_logits(z, labels, training=training)
        return -self.log_likelihood(images, logits), gaussian_kl(mean, log_var)

    # -- training ---------------------------------------------------------------------
    def _loss(self, reconstruction, kl):
        """The negative ELBO with weight beta, averaged over the batch."""
        return ops.mean(reconstruction + self.beta * kl)

    def _track(self, reconstruction, kl):
        # Per-example values: a Mean over them weighs every example once, so the epoch's
        # number is the mean over examples, not a mean of batch means.
        self.loss_tracker.update_state(reconstruction + self.beta * kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        images, labels = self._unpack(data)
        with tf.GradientTape() as tape:
            reconstruction, kl = self.loss_terms(images, labels, training=True)
            loss = with_penalties(self._loss(reconstruction, kl), self)  # + kernel penalties
            scaled = loss_to_differentiate(loss, self.optimizer)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._track(reconstruction, kl)

    def test_step(self, data):
        images, labels = self._unpack(data)
        reconstruction, kl = self.loss_terms(images, labels)
        return self._track(reconstruction, kl)

    # -- evaluation -------------------------------------------------------------------
    def elbo(self, images, labels=None, num_samples=1, batch_size=256):
        """ELBO per image in nats (NumPy, (N,)), averaged over `num_samples` draws of z."""
        return self._per_image(images, labels, batch_size,
                               lambda x, y: self._elbo_batch(x, y, num_samples))

    def distortion_and_rate(self, images, labels=None, num_samples=1, batch_size=256):
        """Per-image (distortion, rate) in nats, NumPy (N,) each; -ELBO = distortion + rate.

        distortion = E_q[-log p(x|z)] (averaged over `num_samples` draws of z) and rate =
        KL(q(z|x) || p(z)). Average them over the images (`.mean()`) for per-example means.
        """
        def batch_terms(x, y):
            mean, log_var = self.encode(x, y)
            distortion = 0.0
            for _ in range(num_samples):
                z = self.sampling([mean, log_var])
                distortion = distortion - self.log_likelihood(x, self.decode_logits(z, y))
            return ops.stack([distortion / num_samples, gaussian_kl(mean, log_var)], axis=-1)

        terms = self._per_image(images, labels, batch_size, batch_terms)  # (N, 2)
        return terms[:, 0], terms[:, 1]

    def iwae_bound(self, images, labels=None, num_samples=50, batch_size=128):
        """Importance-weighted bound on log p(x) per image, in nats (Burda et al. 2016).

        log p(x) >= E[log (1/K) sum_k p(x, z_k) / q(z_k|x)],  z_k ~ q(z|x).
        K = 1 is the ELBO; the bound tightens (rises) as K grows.
        """
        return self._per_image(images, labels, batch_size,
                               lambda x, y: self._iwae_batch(x, y, num_samples))

    def _per_image(self, images, labels, batch_size, fn):
        images = np.asarray(images, np.float32)
        out = []
        for start in range(0, len(images), batch_size):
            y = None if labels is None else np.asarray(labels)[start:start + batch_size]
            out.append(ops.convert_to_numpy(fn(images[start:start + batch_size], y)))
        return np.concatenate(out).astype(np.float64)

    def _elbo_batch(self, images, labels, num_samples):
        total = 0.0
        for _ in range(num_samples):
            reconstruction, kl = self.loss_terms(images, labels)
            total = total - (reconstruction + kl)
        return total / num_samples

    def _iwae_batch(self, images, labels, num_samples):
        mean, log_var = self.encode(images, labels)
        log_weights = []
        for _ in range(num_samples):
            z = self.sampling([mean, log_var])
            log_px_z = self.log_likelihood(images, self.decode_logits(z, labels))
            log_pz = gaussian_log_density(z, ops.zeros_like(z), ops.zeros_like(z))
            log_qz = gaussian_log_density(z, mean, log_var)
            log_weights.append(log_px_z + log_pz - log_qz)
        log_weights = ops.stack(log_weights, axis=0)  # (K, batch)
        return ops.logsumexp(log_weights, axis=0) - math.log(num_samples)

    # -- serialization ----------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": float(ops.convert_to_numpy(self.beta_variable)),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CVAE(VAE):
    """A conditional VAE: encoder and decoder both see the label (Sohn et al. 2015).

    Build the networks with `num_classes=...`; train on a dataset that yields
    `(images, labels)`; `sample(n, labels=...)` draws the requested classes, and
    `decode(z, labels)` with one z and several labels keeps the style and changes the class.

    Call arguments:
        inputs: a pair `(images, labels)`. Returns reconstructions in [-1, 1].
    """

    conditional = True

    def sample(self, num_samples, labels=None, seed=None):
        if labels is None:
            raise ValueError("CVAE.sample needs labels=: the classes to draw, one per sample")
        labels = np.broadcast_to(np.asarray(labels, np.int32), (num_samples,))
        return super().sample(num_samples, labels, seed)
