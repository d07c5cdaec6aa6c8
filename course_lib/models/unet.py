"""The denoising U-Net of diffusion models: `SinusoidalEmbedding` and `build_unet`.

Taught in notebooks/02_diffusion. The network eps(x_t, t) of a diffusion model maps a noisy
image and its timestep to an image-shaped output (the predicted noise, or a velocity for flow
matching). Ho et al. 2020 ("Denoising Diffusion Probabilistic Models") use a U-Net
(Ronneberger et al. 2015) in the style of PixelCNN++, and so do we, scaled down:

- the timestep enters through a sinusoidal embedding (Vaswani et al. 2017, "Attention Is All
  You Need", section 3.5) followed by a two-layer MLP, and is added to every residual block;
- residual blocks: GroupNorm -> swish -> 3x3 conv, twice, plus a 1x1 conv on the skip path
  when the width changes (GroupNorm, not BatchNorm: the statistics of a batch of images at
  different noise levels mean little);
- one self-attention block at the lowest resolution, where every pixel can then see the
  whole image;
- the encoder's activations are concatenated to the decoder's at the same resolution;
- the output convolution starts at zero (so the first prediction is 0, the mean of the
  noise) and is float32 under mixed precision.

For classifier-free guidance (Ho & Salimans 2022), `num_classes` adds a label input. The
network sees it twice: as one-hot input channels stacked onto x_t (all zero for the null
label), so the first convolution has it at every pixel, and as a learned embedding added to
the time embedding, so every residual block has it too. The extra label `num_classes` means
"no label", so one network is both conditional and unconditional. (On the digits, a short
run with the embedding alone barely learned its label; the input channels together with
v-prediction, `DiffusionModel(objective="v")`, learned it: see notebook 3.)

Example:

    network = build_unet((16, 16, 1), widths=(32, 64, 128))
    noise_pred = network([x_t, t])                       # t: (batch,) timesteps
    network = build_unet((16, 16, 1), num_classes=10)    # labels 0..9, 10 = unconditional
    noise_pred = network([x_t, t, labels])
"""

import math

import keras
from keras import layers, ops

PACKAGE = "course_lib"


@keras.saving.register_keras_serializable(package=PACKAGE)
class SinusoidalEmbedding(layers.Layer):
    """Embeds scalar timesteps as sines and cosines of geometrically spaced frequencies.

        emb(t) = [sin(t w_0), ..., sin(t w_{d/2-1}), cos(t w_0), ..., cos(t w_{d/2-1})],
        w_i = max_period^(-i / (d/2)),

    so nearby timesteps get similar vectors, and the fast and slow frequencies together tell
    every timestep in [0, max_period) apart. Computed in float32 whatever the dtype policy:
    in float16 or bfloat16, t = 999 and t = 1000 would be the same number.

    Args:
        dim: the size d of the embedding (even).
        max_period: the longest period (10000, as in Vaswani et al. 2017).

    Call arguments:
        inputs: timesteps of shape (batch,), ints or floats. Returns (batch, dim) float32.

    Example:
        >>> SinusoidalEmbedding(8)(ops.convert_to_tensor([0.0, 1.0, 999.0])).shape
        (3, 8)
    """

    def __init__(self, dim, max_period=10000.0, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if dim % 2:
            raise ValueError(f"SinusoidalEmbedding needs an even dim, got {dim}.")
        self.dim = int(dim)
        self.max_period = float(max_period)

    def call(self, inputs):
        half = self.dim // 2
        frequencies = ops.exp(-math.log(self.max_period) * ops.arange(half, dtype="float32")
                              / half)  # (half,)
        angles = ops.cast(inputs, "float32")[:, None] * frequencies[None, :]  # (batch, half)
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)  # (batch, dim)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


def _groups(channels):
    """The number of GroupNorm groups: 8, or fewer for narrow layers (it must divide them)."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def _residual_block(x, embedding, width, name, scale_shift=False):
    """GroupNorm -> swish -> conv, then the embedding, GroupNorm -> swish -> conv, + skip.

    The embedding enters as a bias added before the second GroupNorm (Ho et al. 2020) or,
    with `scale_shift`, after it as a per-channel scale and shift, h = norm(h) * (1 + s) + b
    with (s, b) = Dense(swish(embedding)) ("adaptive group normalisation", Dhariwal & Nichol
    2021, section 3), which lets the timestep or label switch channels on and off, not only
    move them.
    """
    skip = x if x.shape[-1] == width else layers.Conv2D(width, 1, name=f"{name}_skip")(x)
    h = layers.GroupNormalization(_groups(x.shape[-1]), name=f"{name}_norm1")(x)
    h = layers.Activation("swish")(h)
    h = layers.Conv2D(width, 3, padding="same", name=f"{name}_conv1")(h)
    e = layers.Activation("swish")(embedding)
    if scale_shift:
        e = layers.Dense(2 * width, name=f"{name}_embedding")(e)
        e = layers.Reshape((1, 1, 2 * width))(e)
        scale, shift = e[..., :width], e[..., width:]
        h = layers.GroupNormalization(_groups(width), name=f"{name}_norm2")(h)
        h = h * (1.0 + scale) + shift
    else:
        e = layers.Dense(width, name=f"{name}_embedding")(e)
        h = layers.Add()([h, layers.Reshape((1, 1, width))(e)])
        h = layers.GroupNormalization(_groups(width), name=f"{name}_norm2")(h)
    h = layers.Activation("swish")(h)
    h = layers.Conv2D(width, 3, padding="same", name=f"{name}_conv2")(h)
    return layers.Add()([skip, h])


def _attention_block(x, num_heads, name):
    """Self-attention over all pixels (height * width tokens), with a residual connection."""
    height, width, channels = x.shape[1:]
    h = layers.GroupNormalization(_groups(channels), name=f"{name}_norm")(x)
    h = layers.Reshape((height * width, channels))(h)  # (batch, tokens, channels)
    h = layers.MultiHeadAttention(num_heads, channels // num_heads, name=f"{name}_mha")(h, h)
    return layers.Add()([x, layers.Reshape((height, width, channels))(h)])


def build_unet(image_shape=(16, 16, 1), widths=(32, 64, 128), num_res_blocks=1,
               attention_at=None, num_classes=None, embedding_dim=None, num_heads=4,
               scale_shift=False, label_channels=True, name="unet"):
    """The denoising U-Net: [x_t, t(, labels)] -> an image-shaped float32 output.

    Each entry of `widths` is one resolution level: `num_res_blocks` residual blocks, then a
    stride-2 convolution halves height and width (except after the last level). The decoder
    mirrors it: every block first concatenates the output of the encoder block of the same
    level, and UpSampling2D + conv doubles the size. At widths (32, 64, 128) on 16x16x1
    images the network has about 1.2M parameters.

    Args:
        image_shape: (height, width, channels); height and width divisible by
            2**(len(widths) - 1).
        widths: channels of each resolution level, fine to coarse.
        num_res_blocks: residual blocks per level, in the encoder and in the decoder.
        attention_at: the resolutions (heights in pixels) whose encoder level ends with a
            self-attention block; None: the lowest resolution only, one block between the
            encoder and the decoder; () for none.
        num_classes: for a class-conditional network (classifier-free guidance), the number
            of labels; the network then takes labels in 0 .. num_classes, where
            `num_classes` is the null label "no condition".
        embedding_dim: size of the time embedding (None: 4 * widths[0], as in Ho et al.).
        num_heads: attention heads (each of widths[level] / num_heads channels).
        scale_shift: how the time (and label) embedding enters each residual block: as a
            bias (False, Ho et al. 2020) or as a scale and shift of its normalised
            activations (True, "adaptive group normalisation", Dhariwal & Nichol 2021).
        label_channels: with `num_classes`, also give the label as one-hot input channels
            (True) or only through the embedding (False).
        name: the model's name.

    Returns:
        a functional `keras.Model` with inputs `x_t` (batch, *image_shape), `t` (batch,)
        float32 timesteps (ints are cast) and, if `num_classes`, `labels` (batch,) int32.
    """
    height, width, channels = image_shape
    factor = 2 ** (len(widths) - 1)
    if height % factor or width % factor:
        raise ValueError(f"image_shape {image_shape}: height and width must be divisible by "
                         f"2**(len(widths) - 1) = {factor}; use fewer widths or another size.")
    if any(w % num_heads for w in widths):
        raise ValueError(f"every width in {widths} must be divisible by num_heads={num_heads}.")
    lowest = height // factor
    attention_at = (lowest,) if attention_at is None else tuple(attention_at)
    embedding_dim = embedding_dim or 4 * widths[0]

    x_t = keras.Input(image_shape, name="x_t")
    t = keras.Input((), dtype="float32", name="t")
    inputs = [x_t, t]

    # Time embedding: sinusoids, then an MLP.  (batch, embedding_dim)
    embedding = SinusoidalEmbedding(widths[0], name="time_sinusoids")(t)
    embedding = layers.Dense(embedding_dim, activation="swish", name="time_mlp1")(embedding)
    embedding = layers.Dense(embedding_dim, name="time_mlp2")(embedding)
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        label_embedding = layers.Embedding(num_classes + 1, embedding_dim,
                                           name="label_embedding")(labels)
        embedding = layers.Add()([embedding, label_embedding])

    # Encoder: (H, W) -> (H / factor, W / factor), keeping each block's output for a skip.
    x = x_t
    if num_classes and label_channels:
        # The label also as input channels: one-hot maps, all zero for the null label.
        one_hot = layers.Embedding(num_classes + 1, num_classes, trainable=False,
                                   embeddings_initializer=keras.initializers.Identity(),
                                   name="label_one_hot")(labels)
        one_hot = layers.Reshape((1, 1, num_classes))(one_hot)
        one_hot = layers.UpSampling2D((height, width), name="label_maps")(one_hot)
        x = layers.Concatenate()([x, one_hot])
    x = layers.Conv2D(widths[0], 3, padding="same", name="stem")(x)
    skips = []
    for level, w in enumerate(widths):
        for block in range(num_res_blocks):
            x = _residual_block(x, embedding, w, f"down{level}_res{block}", scale_shift)
            skips.append(x)
        if x.shape[1] in attention_at:
            x = _attention_block(x, num_heads, f"down{level}_attention")
        if level < len(widths) - 1:
            x = layers.Conv2D(w, 3, strides=2, padding="same", name=f"down{level}_pool")(x)

    # Decoder: the mirror image, each block fed the encoder's output of the same size.
    for level in reversed(range(len(widths))):
        for block in range(num_res_blocks):
            x = layers.Concatenate()([x, skips.pop()])
            x = _residual_block(x, embedding, widths[level], f"up{level}_res{block}",
                                scale_shift)
        if level > 0:
            x = layers.UpSampling2D(2, name=f"up{level}_upsample")(x)
            x = layers.Conv2D(widths[level - 1], 3, padding="same", name=f"up{level}_conv")(x)

    x = layers.GroupNormalization(_groups(widths[0]), name="out_norm")(x)
    x = layers.Activation("swish")(x)
    outputs = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros",
                            dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)
