"""Image-to-image GANs (pix2pix): a U-Net generator, a PatchGAN discriminator, `Pix2Pix`.

Taught in notebooks/01_gan/04_image_enhancement. Pix2pix (Isola et al. 2017,
"Image-to-Image Translation with Conditional Adversarial Networks") learns a map from a
degraded image s to a clean image x with a conditional GAN plus an L1 term:

    L_D = -E[log D(s, x)] - E[log(1 - D(s, G(s)))]
    L_G = -E[log D(s, G(s))] + lambda * E[|x - G(s)|_1],     lambda = 100 in the paper.

D sees the pair (input, output) and gives one logit per overlapping patch (a "PatchGAN"), so
it judges local texture and leaves the global layout to the L1 term. With no discriminator,
`Pix2Pix` trains G with the L1 loss alone: the baseline that shows what the adversarial
term adds (sharper texture) and what it costs (usually a little PSNR: Blau & Michaeli 2018,
"The Perception-Distortion Tradeoff").

The generator here is residual: it outputs its input plus a learned correction, so an
untrained generator already returns the (bicubic-upsampled) input, and training only has to
learn what bicubic interpolation misses (as in VDSR, Kim et al. 2016). It has no BatchNorm
(as in EDSR, Lim et al. 2017): restoration needs no batch statistics, and BatchNorm's moving
averages lag far behind the weights in a short run, so the network would restore well in
training mode and worse in inference mode.

Example:

    x_train = load_photo_patches(patch_size=32, split="train")
    degraded = degrade(x_train, scale=2, noise_std=0.2)    # half resolution, noisy, bicubic
    model = Pix2Pix(build_unet_generator((32, 32, 3), (32, 64, 128)),
                    build_patch_discriminator((32, 32, 3), (32, 64)), l1_weight=10.0)
    model.compile(g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
                  d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    model.fit(make_dataset(degraded, x_train, batch_size=16), epochs=num_epochs)
    restored = model.enhance(degrade(x_test, scale=2, noise_std=0.2, seed=1))
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from course_lib.models.gan import discriminator_loss, generator_loss
from course_lib.training import loss_to_differentiate, prepare_optimizer

PACKAGE = "course_lib"


def pix2pix_generator_loss(fake_logits, target, restored, l1_weight=100.0,
                           reconstruction_loss=None):
    """The generator's pix2pix loss: -mean log D(s, G(s)) + l1_weight * mean |x - G(s)|.

    The adversarial term is the non-saturating loss on the discriminator's patch logits
    (`course_lib.models.gan.generator_loss`); both terms are means (over patches and over
    pixels and channels), as in the reference implementation, so lambda = 100 weighs them as
    in the paper.

    Args:
        fake_logits: the discriminator's logits on (degraded, restored) pairs, any shape.
        target: the clean images (N, H, W, C).
        restored: the generator's output G(s), same shape as `target`.
        l1_weight: lambda.
        reconstruction_loss: `f(target, restored)` -> scalar, the term lambda multiplies;
            None for the L1 distance (`l1_distance`). `Pix2Pix` passes its own
            `reconstruction_loss` method.

    Returns:
        a float32 scalar.
    """
    reconstruction = l1_distance if reconstruction_loss is None else reconstruction_loss
    return generator_loss(fake_logits) + l1_weight * reconstruction(target, restored)


def l1_distance(target, restored):
    """Mean absolute difference of two image batches, in float32 (the pix2pix L1 term)."""
    return ops.mean(ops.abs(ops.cast(target, "float32") - ops.cast(restored, "float32")))


def mean_gradient(images):
    """The mean gradient magnitude of each image, a sharpness measure: (N,) float64.

    Forward differences dx = y[i, j+1] - y[i, j] and dy = y[i+1, j] - y[i, j], the magnitude
    sqrt(dx^2 + dy^2) averaged over pixels and channels. Divided by the same number for the
    clean images, 1 means as much local contrast as they have; below 1 is smoother.

    Args:
        images: (N, H, W, C).
    """
    images = np.asarray(images, np.float64)
    dy = np.diff(images, axis=1)[:, :, :-1]  # (N, H-1, W-1, C)
    dx = np.diff(images, axis=2)[:, :-1]
    return np.sqrt(dx**2 + dy**2).mean(axis=(1, 2, 3))


def downsample(images, scale=4, noise_std=0.0, seed=0):
    """What a low-resolution, noisy camera records: area-averaged by `scale`, plus noise.

    Args:
        images: (N, H, W, C) in [-1, 1]; H and W divisible by `scale`.
        scale: the downsampling factor (area averaging, like a camera's larger pixels).
        noise_std: standard deviation of Gaussian noise added at the low resolution, in the
            [-1, 1] scale (0: no noise).
        seed: seed of the noise.

    Returns:
        float32 (N, H // scale, W // scale, C), not clipped.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {images.shape}")
    height, width = images.shape[1:3]
    if height % scale or width % scale:
        raise ValueError(f"image size {height}x{width} is not divisible by scale={scale}")
    small = tf.image.resize(images, (height // scale, width // scale), method="area").numpy()
    if noise_std:
        small += noise_std * np.random.default_rng(seed).standard_normal(small.shape)
    return small.astype(np.float32)


def degrade(images, scale=4, noise_std=0.0, seed=0):
    """The restoration task: `downsample` (and add noise), then upsample back with bicubic.

    Args:
        images: (N, H, W, C) in [-1, 1]; H and W divisible by `scale`.
        scale, noise_std, seed: as in `downsample` (the same seed gives the same noise).

    Returns:
        float32 (N, H, W, C), clipped to [-1, 1]: the bicubic baseline and the generator's
        input.
    """
    small = downsample(images, scale, noise_std, seed)
    upsampled = tf.image.resize(small, np.shape(images)[1:3], method="bicubic")
    return np.clip(upsampled.numpy(), -1.0, 1.0).astype(np.float32)


def build_unet_generator(image_shape=(32, 32, 3), filters=(64, 128, 256), name="generator"):
    """A residual U-Net: strided convolutions down, transposed convolutions up, skips across.

    Down: Conv2D(stride 2) + LeakyReLU(0.2), each halving the size. Up: Conv2DTranspose
    (stride 2) + ReLU, each doubling it, concatenated with the encoder's features of the same
    size (the U-Net's skip connections, which carry the fine detail past the bottleneck). The
    last layer predicts a correction that is added to the input (float32); its weights start
    at zero, so the untrained generator returns its input exactly. No BatchNorm (see the
    module docstring).

    Args:
        image_shape: (height, width, channels); height and width divisible by 2**len(filters).
        filters: channels of the downsampling blocks (the upsampling blocks mirror them).

    Returns:
        a `keras.Model` mapping degraded images to restored images (float32).
    """
    factor = 2 ** len(filters)
    if image_shape[0] % factor or image_shape[1] % factor:
        raise ValueError(f"image_shape {image_shape}: height and width must be divisible by "
                         f"2**len(filters) = {factor}")
    source = keras.Input(image_shape, name="source")
    h, skips = source, []
    for f in filters:
        h = layers.Conv2D(f, 4, strides=2, padding="same")(h)  # /2
        h = layers.LeakyReLU(0.2)(h)
        skips.append(h)
    for f, skip in zip(reversed(filters[:-1]), reversed(skips[:-1])):
        h = layers.Conv2DTranspose(f, 4, strides=2, padding="same", activation="relu")(h)  # x2
        h = layers.Concatenate()([h, skip])
    h = layers.Conv2DTranspose(filters[0], 4, strides=2, padding="same", activation="relu")(h)
    correction = layers.Conv2D(image_shape[-1], 3, padding="same", dtype="float32",
                               kernel_initializer="zeros", name="correction")(h)
    restored = layers.Add(dtype="float32", name="restored")([source, correction])
    return keras.Model(source, restored, name=name)


def build_patch_discriminator(image_shape=(32, 32, 3), filters=(64, 128, 256),
                              normalization=None, name="discriminator"):
    """The PatchGAN discriminator: one logit per overlapping patch of the (input, output) pair.

    The two images are concatenated along channels; 4x4 convolutions with LeakyReLU, of
    stride 2 except the last, shrink them, and a last 4x4 convolution gives a grid of
    logits. Each logit sees a window of r = 1 + sum_l (k_l - 1) * prod_{i<l} s_i pixels: 16
    for two filters, 34 for three, 70 for the paper's five (strides 2, 2, 2, 1, 1).

    No normalisation by default. `Pix2Pix`, like `GAN`, calls the discriminator separately
    on the real and the restored pairs, and BatchNorm would then normalise each batch by its
    own statistics, hiding from D any difference shared by the whole batch (restorations
    that are all a little too smooth). Against a fixed generator a BatchNorm discriminator
    learns far more slowly than a plain one (tests/models/test_pix2pix.py); in
    full training both stay near chance and both sharpen the restorations
    (`python benchmarks/gan.py --only discriminator_batches`). The paper's BatchNorm, with
    one image a batch, normalised each image by itself. `normalization="batch"` puts
    BatchNorm after every convolution but the first, for that comparison.

    Args:
        image_shape: (height, width, channels) of each image of the pair.
        filters: channels of the stride-2 convolutions.
        normalization: None, or "batch" for BatchNorm after every convolution but the first.

    Returns:
        a `keras.Model` mapping `[source, candidate]` to logits (batch, h, w, 1), float32.
    """
    if normalization not in (None, "batch"):
        raise ValueError(f"normalization must be None or 'batch', got {normalization!r}")
    source = keras.Input(image_shape, name="source")
    candidate = keras.Input(image_shape, name="candidate")
    h = layers.Concatenate()([source, candidate])
    for i, f in enumerate(filters):
        h = layers.Conv2D(f, 4, strides=2 if i < len(filters) - 1 else 1, padding="same")(h)
        if i > 0 and normalization == "batch":
            h = layers.BatchNormalization()(h)
        h = layers.LeakyReLU(0.2)(h)
    logits = layers.Conv2D(1, 4, padding="same", dtype="float32", name="patch_logits")(h)
    return keras.Model([source, candidate], logits, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Pix2Pix(keras.Model):
    """Pix2pix: a conditional GAN with an L1 term, or (no discriminator) L1 regression alone.

    Args:
        generator: degraded -> restored, e.g. `build_unet_generator`.
        discriminator: `[source, candidate]` -> patch logits, e.g. `build_patch_discriminator`;
            None trains the generator with the reconstruction loss only.
        l1_weight: lambda, the weight of the reconstruction term (100 in the paper).

    Call arguments:
        inputs: degraded images. Returns the generator's restorations.

    Train on a dataset of `(degraded, clean)` pairs. `compile(g_optimizer=...,
    d_optimizer=...)` (no d_optimizer without a discriminator). Metrics: `g_loss`,
    `reconstruction` (the reconstruction term: the mean absolute error, [-1, 1] scale,
    unless a subclass overrides `reconstruction_loss`), and with a discriminator `d_loss` and
    `g_gan` (the generator's adversarial term); `evaluate` reports `reconstruction`.

    Example (the mean squared error instead of L1):

        class L2Pix2Pix(Pix2Pix):
            def reconstruction_loss(self, target, restored):
                return ops.mean(ops.square(ops.cast(target, "float32")
                                           - ops.cast(restored, "float32")))
    """

    def __init__(self, generator, discriminator=None, l1_weight=100.0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.l1_weight = float(l1_weight)
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_gan_tracker = keras.metrics.Mean(name="g_gan")
        self.built = True

    @property
    def metrics(self):
        if self.discriminator is None:
            return [self.g_loss_tracker, self.reconstruction_tracker]
        return [self.g_loss_tracker, self.reconstruction_tracker, self.d_loss_tracker,
                self.g_gan_tracker]

    def compile(self, g_optimizer, d_optimizer=None, **kwargs):
        """One optimizer per network; call it inside `strategy.scope()`."""
        if (self.discriminator is None) != (d_optimizer is None):
            raise ValueError("pass d_optimizer exactly when the model has a discriminator")
        self.g_optimizer = prepare_optimizer(g_optimizer, self.generator.trainable_variables)
        self.d_optimizer = (None if d_optimizer is None else
                            prepare_optimizer(d_optimizer, self.discriminator.trainable_variables))
        super().compile(optimizer=self.g_optimizer, **kwargs)  # no unused default RMSprop

    def get_compile_config(self):
        return {"g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
                "d_optimizer": (None if self.d_optimizer is None else
                                keras.saving.serialize_keras_object(self.d_optimizer))}

    def compile_from_config(self, config):
        """Recompiles a reloaded model with its optimizers (their state is restored next)."""
        self.compile(**{key: None if value is None else
                        keras.saving.deserialize_keras_object(value)
                        for key, value in config.items()})

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def reconstruction_loss(self, target, restored):
        """The per-pixel term of the generator's loss, a float32 scalar: here L1 (`l1_distance`).

        `train_step` (through `pix2pix_generator_loss`, or alone without a discriminator)
        and `test_step` call this method, so a subclass that overrides it trains and
        evaluates with its own loss, e.g. the mean squared error (see the class docstring).

        Args:
            target: the clean images (N, H, W, C).
            restored: the generator's output, same shape.
        """
        return l1_distance(target, restored)

    def enhance(self, images, batch_size=128):
        """Restores `images` (N, H, W, C): NumPy, clipped to [-1, 1]."""
        images = np.asarray(images, np.float32)
        out = [ops.convert_to_numpy(self.generator(images[i:i + batch_size], training=False))
               for i in range(0, len(images), batch_size)]
        return np.clip(np.concatenate(out), -1.0, 1.0)

    def train_step(self, data):
        source, target = data
        g_vars = self.generator.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            restored = self.generator(source, training=True)
            reconstruction = self.reconstruction_loss(target, restored)
            if self.discriminator is not None:
                # Real and restored pairs in separate calls, as `GAN.train_step` does (the
                # default PatchGAN has no BatchNorm: see build_patch_discriminator).
                real_logits = self.discriminator([source, target], training=True)
                fake_logits = self.discriminator([source, restored], training=True)
                d_loss = discriminator_loss(real_logits, fake_logits)
                g_loss = pix2pix_generator_loss(fake_logits, target, restored, self.l1_weight,
                                                self.reconstruction_loss)
                g_gan = g_loss - self.l1_weight * reconstruction  # adversarial term, a metric
            else:
                g_loss = self.l1_weight * reconstruction
            g_scaled = loss_to_differentiate(g_loss, self.g_optimizer)
            if self.discriminator is not None:
                d_scaled = loss_to_differentiate(d_loss, self.d_optimizer)
        # Both networks step on the same forward pass (as the pix2pix reference code does).
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_scaled, g_vars), g_vars))
        if self.discriminator is not None:
            d_vars = self.discriminator.trainable_variables
            self.d_optimizer.apply_gradients(zip(tape.gradient(d_scaled, d_vars), d_vars))
            self.d_loss_tracker.update_state(d_loss)
            self.g_gan_tracker.update_state(g_gan)
        del tape
        self.g_loss_tracker.update_state(g_loss)
        self.reconstruction_tracker.update_state(reconstruction)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        source, target = data
        restored = self.generator(source, training=False)
        self.reconstruction_tracker.update_state(self.reconstruction_loss(target, restored))
        return {"reconstruction": self.reconstruction_tracker.result()}

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": (None if self.discriminator is None else
                              keras.saving.serialize_keras_object(self.discriminator)),
            "l1_weight": self.l1_weight,
        }

    @classmethod
    def from_config(cls, config):
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        if config.get("discriminator") is not None:
            config["discriminator"] = keras.saving.deserialize_keras_object(
                config["discriminator"])
        return cls(**config)
