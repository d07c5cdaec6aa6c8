"""Image-quality and distribution metrics: PSNR, SSIM, Frechet distance (FID), kernel
distance (KID), and the nearest-neighbour check for copied training images.

PSNR and SSIM compare two images pixel by pixel (is this reconstruction close to that
original?). The Frechet and kernel distances compare two *sets* of feature vectors (do these
generated digits look, on the whole, like real ones?); `course_lib.judge` supplies the
features. Every function accepts NumPy arrays or tensors and returns NumPy floats.

Images in the course are float32 in [-1, 1], channels-last: `value_range=(-1, 1)` is the
default everywhere.
"""

import warnings

import numpy as np
import scipy.linalg
import tensorflow as tf

# SSIM constants of Wang et al. (2004), the same in scikit-image and `tf.image.ssim`.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# skimage's Gaussian window: radius int(3.5 * sigma + 0.5), i.e. 11 x 11 for sigma 1.5.
SSIM_TRUNCATE = 3.5


def _as_image_batch(x, y, name):
    """Returns float64 tensors (N, H, W, C) and whether the inputs were single images."""
    x = tf.cast(tf.convert_to_tensor(x), tf.float64)
    y = tf.cast(tf.convert_to_tensor(y), tf.float64)
    if x.shape != y.shape:
        raise ValueError(f"{name}: x and y must have the same shape, got {x.shape} and {y.shape}")
    if x.shape.rank not in (3, 4):
        raise ValueError(
            f"{name}: expected images (N, H, W, C) or one image (H, W, C), got shape {x.shape}"
        )
    single = x.shape.rank == 3
    if single:
        x, y = x[None], y[None]
    return x, y, single


def _data_range(value_range):
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    return low, high - low


def _per_image(values, single):
    values = np.asarray(values, dtype=np.float64)
    return float(values[0]) if single else values


def psnr(x, y, value_range=(-1, 1)):
    """Peak signal-to-noise ratio, in dB, of each image of `x` against the one in `y`.

    $\\mathrm{PSNR} = 10 \\log_{10}(R^2 / \\mathrm{MSE})$, where $R$ is the data range
    (`high - low` of `value_range`: 2 for the course's [-1, 1] images) and the mean squared
    error is taken over height, width and channels of each image. Computed in float64.

    Matches `skimage.metrics.peak_signal_noise_ratio(x_i, y_i, data_range=high - low)` per
    image: measured differences ~2e-8 dB on float32 images (the tests assert 1e-6
    relative). Identical images give `inf` (no warning), as scikit-image does.

    Args:
        x: images (N, H, W, C) or one image (H, W, C); NumPy array or tensor.
        y: images of the same shape as `x`.
        value_range: (low, high) of the pixel values; only `high - low` matters.

    Returns:
        NumPy float64 array of shape (N,), or a Python float for a single image.

    Reference:
        https://en.wikipedia.org/wiki/Peak_signal-to-noise_ratio
    """
    x, y, single = _as_image_batch(x, y, "psnr")
    _, data_range = _data_range(value_range)
    mse = tf.reduce_mean(tf.square(x - y), axis=[1, 2, 3])  # (N,)
    # log10 of R^2 / 0 is +inf: identical images get an infinite PSNR.
    values = 10.0 * tf.math.log(data_range**2 / mse) / tf.math.log(tf.constant(10.0, tf.float64))
    return _per_image(values.numpy(), single)


def _gaussian_window(sigma):
    """The (k, k, 1, 1) normalised Gaussian window skimage uses for this sigma."""
    radius = int(SSIM_TRUNCATE * sigma + 0.5)
    coords = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (coords / sigma) ** 2)
    g /= g.sum()
    window = np.outer(g, g)  # (k, k), sums to 1
    return tf.constant(window[:, :, None, None], tf.float64)


def ssim(x, y, value_range=(-1, 1), sigma=1.5, return_map=False):
    """Structural similarity (Wang et al. 2004) of each image of `x` against the one in `y`.

    Images are first mapped from `value_range` to [0, 1], then, per channel,

    $\\mathrm{SSIM} = \\frac{(2\\mu_x\\mu_y + C_1)(2\\sigma_{xy} + C_2)}
    {(\\mu_x^2 + \\mu_y^2 + C_1)(\\sigma_x^2 + \\sigma_y^2 + C_2)}$,

    with local means and (population) covariances from a Gaussian window of standard
    deviation `sigma` truncated at radius `int(3.5 * sigma + 0.5)` (11 x 11 for 1.5),
    `C1 = (0.01)^2`, `C2 = (0.03)^2`, evaluated only where the window fits inside the image
    ('valid') and averaged over positions and channels. Computed in float64.

    This is exactly what scikit-image computes with
    `skimage.metrics.structural_similarity(x01, y01, data_range=1, channel_axis=-1,
    gaussian_weights=True, sigma=sigma, use_sample_covariance=False)` where
    `x01 = (x - low) / (high - low)`: measured differences ~1e-7 on float32 images
    (skimage keeps float32 inputs in float32; the tests assert 1e-5). For
    `value_range=(0, 1)` that is skimage on the raw images. The mapping matters: the
    luminance term is not shift-invariant, so skimage run on the raw [-1, 1] images with
    `data_range=2` gives a different number (0.2 apart on noisy test images). With
    `sigma=1.5` this also equals `tf.image.ssim(x01, y01, max_val=1.0)` (same 11 x 11
    window, 'valid') up to its float32 arithmetic (measured ~3e-7). skimage's *default*
    call (7 x 7 uniform window, sample covariance) is a different metric.

    Identical images give 1 (up to rounding, ~1e-15).

    Args:
        x: images (N, H, W, C) or one image (H, W, C); NumPy array or tensor.
        y: images of the same shape as `x`.
        value_range: (low, high) of the pixel values.
        sigma: standard deviation of the Gaussian window, in pixels.
        return_map: return the local SSIM values instead of their mean: (N, H - k + 1,
            W - k + 1) for a k x k window, averaged over channels; entry (i, j) belongs to the
            window centred on pixel (i + r, j + r), r = k // 2.

    Returns:
        NumPy float64 array of shape (N,), or a Python float for a single image (with
        `return_map`, the maps).

    Raises:
        ValueError: if an image is smaller than the window (e.g. 8 x 8 digits with the
            default 11 x 11 window). Upsample first (`load_digits(image_size=16)`) or pass a
            smaller `sigma` (0.8 gives a 7 x 7 window; skimage accepts the same `sigma`).

    Reference:
        Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility
        to structural similarity", IEEE TIP 2004.
    """
    x, y, single = _as_image_batch(x, y, "ssim")
    low, data_range = _data_range(value_range)
    window = _gaussian_window(sigma)
    size = int(window.shape[0])
    height, width, channels = (int(d) for d in x.shape[1:])
    if height < size or width < size:
        raise ValueError(
            f"ssim: images are {height}x{width} but the Gaussian window for sigma={sigma} is "
            f"{size}x{size}; upsample the images or pass a smaller sigma "
            "(sigma=0.8 gives a 7x7 window)"
        )
    x = (x - low) / data_range  # now in [0, 1], so the data range is 1
    y = (y - low) / data_range
    c1 = SSIM_K1**2
    c2 = SSIM_K2**2

    def local_mean(z):
        # Filter each channel on its own: fold channels into the batch axis.
        n = tf.shape(z)[0]
        z = tf.reshape(tf.transpose(z, [0, 3, 1, 2]), [-1, height, width, 1])
        z = tf.nn.conv2d(z, window, strides=1, padding="VALID")  # (N*C, h, w, 1)
        return tf.reshape(z, [n, channels, height - size + 1, width - size + 1])

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov_xy = local_mean(x * y) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    structure = (2 * cov_xy + c2) / (var_x + var_y + c2)
    ssim_map = luminance * structure  # (N, C, h, w)
    if return_map:
        maps = tf.reduce_mean(ssim_map, axis=1).numpy()
        return maps[0] if single else maps
    return _per_image(tf.reduce_mean(ssim_map, axis=[1, 2, 3]).numpy(), single)


def _as_features(features, name):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (num_samples, dim), got {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return features


def _check_pair(features_a, features_b, min_samples, caller):
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{caller}: feature dimensions differ ({a.shape[1]} vs {b.shape[1]})"
        )
    for name, f in (("features_a", a), ("features_b", b)):
        if len(f) < min_samples:
            raise ValueError(
                f"{caller} needs at least {min_samples} samples in {name}, got {len(f)}"
            )
    return a, b


def frechet_distance(features_a, features_b, eps=1e-6):
    """Frechet distance between Gaussians fitted to two sets of features (the FID formula).

    $d^2 = \\lVert\\mu_a - \\mu_b\\rVert^2
    + \\mathrm{Tr}\\big(\\Sigma_a + \\Sigma_b - 2(\\Sigma_a\\Sigma_b)^{1/2}\\big)$,

    with means and unbiased covariances (`np.cov`) of each set, as in the reference
    `pytorch-fid` implementation: if the matrix square root is not finite, or SciPy warns
    that the product is singular (features that are always 0 make it so), `eps` is added
    to both diagonals and it is recomputed (this moves the result by ~`eps` times the
    trace); imaginary parts left by rounding are dropped (an error if a diagonal one
    exceeds 1e-3). With Inception-v3
    features this is FID; `course_lib.judge` uses its digit classifier's features instead,
    so its numbers are only comparable with each other. The estimate is biased upwards for
    few samples: compare values computed with the same numbers of samples.

    Args:
        features_a: (num_samples_a, dim) array, num_samples_a >= 2.
        features_b: (num_samples_b, dim) array, num_samples_b >= 2.
        eps: diagonal offset used only when the product of covariances is singular.

    Returns:
        The distance as a Python float (>= 0 up to rounding; 0 for identical sets).

    Raises:
        ValueError: on mismatched dimensions, fewer than 2 samples, NaN or inf values.

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
        Nash Equilibrium", NeurIPS 2017; https://github.com/mseitzer/pytorch-fid
    """
    a, b = _check_pair(features_a, features_b, 2, "frechet_distance")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sigma_a = np.atleast_2d(np.cov(a, rowvar=False))
    sigma_b = np.atleast_2d(np.cov(b, rowvar=False))
    diff = mu_a - mu_b

    try:
        with warnings.catch_warnings():
            # Recent SciPy warns when the product is singular (e.g. dead ReLU features).
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    except scipy.linalg.LinAlgWarning:
        covmean = np.full_like(sigma_a, np.nan)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(len(sigma_a)) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"frechet_distance: imaginary component {np.max(np.abs(covmean.imag)):.3g} "
                "in the matrix square root"
            )
        covmean = covmean.real
    distance = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean)
    return float(distance)


def _polynomial_kernel(x, y):
    """k(x, y) = (x . y / d + 1)^3 for all pairs of rows: (len(x), len(y))."""
    k = x @ y.T / x.shape[1] + 1.0
    return k * k * k


def _unbiased_mmd2(k_xx, k_yy, k_xy):
    """Unbiased estimate of MMD^2 from the three kernel matrices of two samples."""
    m, n = k_xy.shape
    # Drop the diagonals k(x_i, x_i): the U-statistic averages over pairs i != j.
    sum_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    sum_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return sum_xx + sum_yy - 2.0 * k_xy.mean()


# Below this many kernel entries (128 MiB of float64) `kernel_distance` computes the kernel
# matrices of the whole sets once and reads each subset's out of them.
_MAX_PRECOMPUTED_KERNEL = 2**24


def kernel_distance(
    features_a, features_b, num_subsets=100, subset_size=None, seed=0, return_std=False
):
    """Kernel distance between two sets of features (the KID formula).

    The unbiased estimate of the squared maximum mean discrepancy with the cubic
    polynomial kernel $k(x, y) = (x \\cdot y / d + 1)^3$,

    $\\mathrm{MMD}^2 = \\frac{1}{m(m-1)}\\sum_{i \\ne j} k(a_i, a_j)
    + \\frac{1}{n(n-1)}\\sum_{i \\ne j} k(b_i, b_j) - \\frac{2}{mn}\\sum_{i, j} k(a_i, b_j)$,

    averaged over `num_subsets` random subsets of `subset_size` rows drawn (without
    replacement, independently for each subset) from each set, as in the paper's code.
    Unlike the Frechet distance it is unbiased: about 0 for two samples of the same
    distribution (it can be slightly negative) whatever the number of samples.

    Args:
        features_a: (num_samples_a, dim) array.
        features_b: (num_samples_b, dim) array.
        num_subsets: number of random subsets averaged.
        subset_size: rows per subset, at least 2; default `min(num_samples_a,
            num_samples_b, 1000)`. When it equals both set sizes every subset is the whole
            set, so one subset is enough.
        seed: seed of the NumPy generator that draws the subsets.
        return_std: also return the standard deviation over subsets.

    Returns:
        The mean over subsets as a Python float, or `(mean, std)` if `return_std`.

    Raises:
        ValueError: on mismatched dimensions, too few samples, NaN or inf values.

    Reference:
        Binkowski, Sutherland, Arbel, Gretton, "Demystifying MMD GANs", ICLR 2018.
    """
    a, b = _check_pair(features_a, features_b, 2, "kernel_distance")
    if subset_size is None:
        subset_size = min(len(a), len(b), 1000)
    if not 2 <= subset_size <= min(len(a), len(b)):
        raise ValueError(
            f"kernel_distance: subset_size must be in [2, {min(len(a), len(b))}] for sets of "
            f"{len(a)} and {len(b)} samples, got {subset_size}"
        )
    if num_subsets < 1:
        raise ValueError(f"kernel_distance: num_subsets must be >= 1, got {num_subsets}")
    precompute = (len(a) + len(b)) ** 2 <= _MAX_PRECOMPUTED_KERNEL
    if precompute:
        k_aa, k_bb = _polynomial_kernel(a, a), _polynomial_kernel(b, b)
        k_ab = _polynomial_kernel(a, b)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        i = rng.choice(len(a), subset_size, replace=False)
        j = rng.choice(len(b), subset_size, replace=False)
        if precompute:
            kernels = k_aa[np.ix_(i, i)], k_bb[np.ix_(j, j)], k_ab[np.ix_(i, j)]
        else:
            x, y = a[i], b[j]
            kernels = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
        values.append(_unbiased_mmd2(*kernels))
    values = np.asarray(values)
    mean = float(values.mean())
    return (mean, float(values.std())) if return_std else mean


def nearest_neighbors(queries, references):
    """For each query image, its closest reference image and their RMS distance.

    The check for copying: compare the distances of generated images to their nearest
    training images with those of unseen real images (a model that copies its training set
    gives distances near 0; taught in notebooks/01_gan/02_dcgan).

    Args:
        queries: (n, ...) images.
        references: (N, ...) images of the same shape (e.g. the training set).

    Returns:
        (index, rms): (n,) int indices into `references` and (n,) float64 root-mean-square
        distances per pixel.
    """
    q = np.asarray(queries, np.float64).reshape(len(queries), -1)
    r = np.asarray(references, np.float64).reshape(len(references), -1)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries {np.shape(queries)[1:]} and references "
                         f"{np.shape(references)[1:]} must have the same image shape")
    squared = (q**2).sum(1)[:, None] - 2 * q @ r.T + (r**2).sum(1)[None, :]  # (n, N)
    index = squared.argmin(axis=1)
    rms = np.sqrt(np.maximum(squared[np.arange(len(q)), index], 0.0) / q.shape[1])
    return index, rms
