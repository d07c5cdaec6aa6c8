"""Image restoration (inpainting): masks, a naive fill, VAE latent search, masked PSNR/SSIM.

Taught in notebooks/03_vae/04_restoration.ipynb; the diffusion model's inpainting
(`DiffusionModel.inpaint`, RePaint) in notebooks/02_diffusion/04_editing.ipynb. A mask has
the images' shape and holds 1 where a pixel is visible and 0 where it is missing.
Inpainting with a trained VAE (decoder D, prior p(z) = N(0, I)) looks for the most probable
latent code given the visible pixels, the maximum a posteriori (MAP) estimate

    z* = argmin_z  - sum_i m_i log p(x_i | z)  +  prior_weight * ||z||^2 / 2,

where log p(x_i | z) is the decoder's own per-pixel likelihood (`vae.pixel_log_likelihood`,
the one the VAE was trained with: Bernoulli for the course's VAEs) and ||z||^2 / 2 is
-log p(z) up to a constant; prior_weight = 1 is the exact posterior. Then it keeps what was
seen and takes only the missing pixels from the decoder's mean:

    x_hat = m * x + (1 - m) * D(z*).

Example:

    mask = block_mask(x_test.shape, size=8, seed=0)
    restored = latent_search_fill(vae, x_test, mask, steps=200)  # MAP, prior_weight=1
    print(masked_psnr(x_test, restored, mask).mean(), masked_psnr(x_test,
          naive_fill(x_test, mask), mask).mean())
"""

import keras
import numpy as np
import tensorflow as tf

from course_lib import metrics


def _pixel_mask(shape, missing):
    """Broadcasts a (N, H, W) boolean 'missing' array to a float32 mask of `shape`."""
    mask = (~missing).astype(np.float32)[..., None]  # (N, H, W, 1)
    return np.broadcast_to(mask, tuple(shape)).copy()


def block_mask(shape, size, seed=0):
    """A mask hiding one `size` x `size` square per image, at a random (seeded) position.

    Args:
        shape: (N, H, W, C) of the images; all channels of a pixel share its mask value.
        size: side of the hidden square in pixels (at most H and W).
        seed: NumPy seed; the same seed gives the same squares.

    Returns:
        float32 array of `shape`: 1 = visible, 0 = missing.
    """
    n, height, width = shape[0], shape[1], shape[2]
    if not 0 < size <= min(height, width):
        raise ValueError(f"size must be in 1..{min(height, width)}, got {size}")
    rng = np.random.default_rng(seed)
    tops = rng.integers(0, height - size + 1, size=n)
    lefts = rng.integers(0, width - size + 1, size=n)
    missing = np.zeros((n, height, width), bool)
    for i, (top, left) in enumerate(zip(tops, lefts)):
        missing[i, top:top + size, left:left + size] = True
    return _pixel_mask(shape, missing)


def random_mask(shape, fraction=0.5, seed=0):
    """A mask hiding exactly round(fraction * H * W) random pixels of each image (seeded).

    Args:
        shape: (N, H, W, C) of the images; all channels of a pixel share its mask value.
        fraction: the fraction of pixels to hide, in [0, 1].
        seed: NumPy seed.

    Returns:
        float32 array of `shape`: 1 = visible, 0 = missing.
    """
    n, height, width = shape[0], shape[1], shape[2]
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    num_missing = int(round(fraction * height * width))
    # Rank random numbers per image: the num_missing smallest are hidden.
    ranks = rng.random((n, height * width)).argsort(axis=1).argsort(axis=1)
    return _pixel_mask(shape, (ranks < num_missing).reshape(n, height, width))


def naive_fill(images, mask, method="mean", iterations=50):
    """Fills the missing pixels without any learning: the baseline a model has to beat.

    Args:
        images: (N, H, W, C) in [-1, 1].
        mask: same shape, 1 = visible, 0 = missing.
        method: "mean": every missing pixel gets the mean of the image's visible pixels;
            "diffuse": start from "mean", then repeat `iterations` times a 3x3 average
            that resets the visible pixels each time (heat diffusion from the edges of the
            hole inwards).
        iterations: number of averaging steps for "diffuse".

    Returns:
        float32 NumPy array; the visible pixels are exactly those of `images`.
    """
    images = np.asarray(images, np.float32)
    mask = np.asarray(mask, np.float32)
    visible_mean = (images * mask).sum(axis=(1, 2), keepdims=True) / np.maximum(
        mask.sum(axis=(1, 2), keepdims=True), 1.0)  # (N, 1, 1, C)
    filled = mask * images + (1 - mask) * visible_mean
    if method == "diffuse":
        blur = keras.layers.AveragePooling2D(pool_size=3, strides=1, padding="same")
        for _ in range(iterations):
            filled = mask * images + (1 - mask) * keras.ops.convert_to_numpy(blur(filled))
    elif method != "mean":
        raise ValueError(f"method must be 'mean' or 'diffuse', got {method!r}")
    return filled.astype(np.float32)


def latent_search_objective(vae, z, images, mask, labels=None, prior_weight=1.0):
    """The negative log posterior of z given the visible pixels, per image (up to a constant).

        - sum_i m_i log p(x_i | z) + prior_weight * ||z||^2 / 2,

    with the decoder's own likelihood `vae.pixel_log_likelihood` (Bernoulli for `VAE`).
    Pixels with m = 0 do not enter it.

    Args:
        vae: a `course_lib.models.vae.VAE` or `CVAE`.
        z: (N, latent_dim) latent codes (a tensor or variable, so gradients can flow).
        images: (N, H, W, C) in [-1, 1].
        mask: same shape, 1 = visible, 0 = missing.
        labels: the labels, for a CVAE.
        prior_weight: weight of the prior term (1: the exact posterior).

    Returns:
        (N,) float32 tensor, in nats.
    """
    logits = vae.decode_logits(z, labels)
    per_pixel = tf.cast(vae.pixel_log_likelihood(images, logits), tf.float32)  # (N, H, W, C)
    data_term = -tf.reduce_sum(tf.cast(mask, tf.float32) * per_pixel, axis=[1, 2, 3])
    prior_term = 0.5 * prior_weight * tf.reduce_sum(tf.square(tf.cast(z, tf.float32)), axis=-1)
    return data_term + prior_term


def latent_search_fill(vae, images, mask, steps=200, learning_rate=0.05, prior_weight=1.0,
                       labels=None, return_decoded=False):
    """Inpaints with a trained (C)VAE by MAP search on z (see the module docstring).

    z starts at the encoder's mean for the naively filled images (`naive_fill`), then Adam
    minimises `latent_search_objective` (the decoder's negative log-likelihood of the
    visible pixels plus prior_weight * ||z||^2 / 2) per image for `steps` steps.

    Args:
        vae: a `course_lib.models.vae.VAE` or `CVAE` (uses `encode`, `decode_logits`,
            `pixel_log_likelihood` and `decode`).
        images: (N, H, W, C) in [-1, 1]; only the visible pixels are used.
        mask: same shape, 1 = visible, 0 = missing.
        steps: Adam steps on z (0: just decode the encoder's mean).
        learning_rate: Adam's learning rate.
        prior_weight: weight of the prior term (1: the exact MAP estimate; larger values
            keep z nearer the origin).
        labels: the labels, for a CVAE.
        return_decoded: also return D(z*), the decoder's whole image.

    Returns:
        the composite m * x + (1 - m) * D(z*), float32 NumPy (N, H, W, C); with
        `return_decoded`, the pair (composite, decoded).
    """
    images = np.asarray(images, np.float32)
    mask = np.asarray(mask, np.float32)
    mean, _ = vae.encode(naive_fill(images, mask), labels)
    z = tf.Variable(tf.cast(mean, tf.float32), name="z")  # (N, latent_dim)
    optimizer = keras.optimizers.Adam(learning_rate)
    targets, weights = tf.constant(images), tf.constant(mask)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(latent_search_objective(vae, z, targets, weights, labels,
                                                         prior_weight))
        optimizer.apply_gradients([(tape.gradient(loss, z), z)])
        return loss

    for _ in range(steps):
        step()
    decoded = keras.ops.convert_to_numpy(vae.decode(z, labels)).astype(np.float32)
    composite = mask * images + (1 - mask) * decoded
    return (composite, decoded) if return_decoded else composite


def masked_psnr(x, y, mask, value_range=(-1, 1)):
    """PSNR in dB of each image of `y` against `x`, over the missing pixels (mask == 0) only.

    MSE_i = sum((1 - m) * (x - y)^2) / sum(1 - m) over image i, PSNR_i = 10 log10(R^2 / MSE_i)
    with R = high - low of `value_range`. Identical missing regions give inf; an image with
    no missing pixel gives nan.

    Returns:
        NumPy float64 array (N,).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    missing = 1.0 - np.asarray(mask, np.float64)
    count = missing.sum(axis=(1, 2, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = (missing * (x - y) ** 2).sum(axis=(1, 2, 3)) / count
        return 10.0 * np.log10((value_range[1] - value_range[0]) ** 2 / mse)


def masked_ssim(x, y, mask, value_range=(-1, 1), sigma=0.8):
    """SSIM of each image of `y` against `x`, over the missing pixels (mask == 0) only.

    The local SSIM values (`metrics.ssim(..., return_map=True)`) are averaged over the
    windows centred on a missing pixel. Those windows also see the visible pixels around
    the hole, which an inpainting keeps: they measure how well the fill fits its
    surroundings, as well as how close it is to the truth. Windows near the border do not
    fit in the image ('valid' SSIM), so a hole pixel closer than k // 2 to the border is the
    centre of no window; its neighbours' windows still cover it. `sigma` = 0.8 gives a 7 x 7 window,
    which suits 16 x 16 digits (the default 11 x 11 window of `metrics.ssim` leaves only
    6 x 6 centres).

    Returns:
        NumPy float64 array (N,); nan for an image whose hole holds no window centre.
    """
    maps = metrics.ssim(x, y, value_range=value_range, sigma=sigma, return_map=True)
    maps = maps.reshape((-1, *maps.shape[-2:]))  # (N, h, w)
    missing = 1.0 - np.asarray(mask, np.float64).reshape((len(maps), *np.shape(mask)[-3:]))
    missing = missing.min(axis=-1)  # a pixel is missing when all its channels are
    radius_h = (missing.shape[1] - maps.shape[1]) // 2
    radius_w = (missing.shape[2] - maps.shape[2]) // 2
    centres = missing[:, radius_h:radius_h + maps.shape[1], radius_w:radius_w + maps.shape[2]]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (maps * centres).sum(axis=(1, 2)) / centres.sum(axis=(1, 2))
