"""Trains custom-`train_step` models on 1 device and under MirroredStrategy over 2 CPUs.

Run as a script (TensorFlow's logical devices must be set before it initialises): prints one
JSON line with the loss histories. Used by tests/test_training.py.
"""

import json

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

from course_lib.training import loss_to_differentiate, prepare_optimizer  # noqa: E402


class TwoNetworkRegressor(keras.Model):
    """Two networks, two Adam optimizers, one custom step: a deterministic stand-in for a GAN."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.net_a = keras.Sequential([keras.Input((4,)), layers.Dense(8, activation="tanh"),
                                       layers.Dense(1)])
        self.net_b = keras.Sequential([keras.Input((4,)), layers.Dense(1)])
        self.loss_a = keras.metrics.Mean(name="loss_a")
        self.loss_b = keras.metrics.Mean(name="loss_b")

    def call(self, x, training=False):
        return self.net_a(x, training=training) + self.net_b(x, training=training)

    @property
    def metrics(self):
        return [self.loss_a, self.loss_b]

    def compile(self, optimizer_a, optimizer_b, **kwargs):
        super().compile(**kwargs)
        self.optimizer_a = prepare_optimizer(optimizer_a, self.net_a.trainable_variables)
        self.optimizer_b = prepare_optimizer(optimizer_b, self.net_b.trainable_variables)

    def train_step(self, data):
        x, y = data
        for net, optimizer, tracker, loss_fn in (
            (self.net_a, self.optimizer_a, self.loss_a, lambda p: ops.square(p - y)),
            (self.net_b, self.optimizer_b, self.loss_b, lambda p: ops.abs(p - y)),
        ):
            with tf.GradientTape() as tape:
                loss = ops.mean(loss_fn(net(x, training=True)))
                scaled = loss_to_differentiate(loss, optimizer)
            grads = tape.gradient(scaled, net.trainable_variables)
            optimizer.apply_gradients(zip(grads, net.trainable_variables))
            tracker.update_state(loss)
        return {m.name: m.result() for m in self.metrics}


class TinyGAN(keras.Model):
    """BatchNorm, random latents and a `call` that takes latents, not data: the hard case."""

    def __init__(self, latent_dim=4, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.generator = keras.Sequential([keras.Input((latent_dim,)), layers.Dense(16),
                                           layers.BatchNormalization(), layers.LeakyReLU(0.2),
                                           layers.Dense(2)])
        self.discriminator = keras.Sequential([keras.Input((2,)), layers.Dense(16),
                                               layers.LeakyReLU(0.2), layers.Dense(1)])
        self.seed_generator = keras.random.SeedGenerator(1)
        self.d_loss = keras.metrics.Mean(name="d_loss")
        self.g_loss = keras.metrics.Mean(name="g_loss")

    def call(self, z, training=False):
        return self.generator(z, training=training)

    @property
    def metrics(self):
        return [self.d_loss, self.g_loss]

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = prepare_optimizer(d_optimizer, self.discriminator.trainable_variables)
        self.g_optimizer = prepare_optimizer(g_optimizer, self.generator.trainable_variables)

    def train_step(self, real):
        n = ops.shape(real)[0]
        z = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)

        def bce(logits, target):
            return ops.mean(ops.binary_crossentropy(target, logits, from_logits=True))

        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            d_loss = (bce(self.discriminator(real, training=True), ops.ones((n, 1)))
                      + bce(self.discriminator(fake, training=True), ops.zeros((n, 1))))
            scaled = loss_to_differentiate(d_loss, self.d_optimizer)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        with tf.GradientTape() as tape:
            logits = self.discriminator(self.generator(z, training=True), training=True)
            g_loss = bce(logits, ops.ones((n, 1)))
            scaled = loss_to_differentiate(g_loss, self.g_optimizer)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        self.d_loss.update_state(d_loss)
        self.g_loss.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}


def tiny_vae():
    from course_lib.models.vae import VAE, build_decoder, build_encoder

    return VAE(build_encoder((8, 8, 1), 2, filters=(4,), hidden_units=8),
               build_decoder((8, 8, 1), 2, filters=(4,), hidden_units=8), seed=0)


def train(model_class, strategy, data, build_shape):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = model_class()
        if model_class is tiny_vae:  # one optimizer: the standard compile() path
            model.compile(keras.optimizers.Adam(1e-2))
        else:
            model.build(build_shape)
            model.compile(keras.optimizers.Adam(1e-2, beta_1=0.5), keras.optimizers.Adam(1e-2))
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(64)
    history = model.fit(dataset, epochs=4, verbose=0).history
    return {key: [float(v) for v in values] for key, values in history.items()}


def main():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    points = rng.normal(size=(512, 2)).astype("float32") + 3.0
    prototypes = rng.random((4, 8, 8, 1)) < 0.4
    flips = rng.random((512, 8, 8, 1)) < 0.05
    images = np.where(prototypes[np.arange(512) % 4] ^ flips, 1.0, -1.0).astype("float32")
    single = tf.distribute.get_strategy()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(json.dumps({
        "replicas": mirrored.num_replicas_in_sync,
        "regressor_single": train(TwoNetworkRegressor, single, (x, y), (None, 4)),
        "regressor_mirrored": train(TwoNetworkRegressor, mirrored, (x, y), (None, 4)),
        "gan_single": train(TinyGAN, single, points, (None, 4)),
        "gan_mirrored": train(TinyGAN, mirrored, points, (None, 4)),
        "vae_single": train(tiny_vae, single, images, None),
        "vae_mirrored": train(tiny_vae, mirrored, images, None),
    }))


if __name__ == "__main__":
    main()
