"""Tests of course_lib.metrics against scikit-image and direct NumPy/SciPy formulas."""

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from course_lib.metrics import frechet_distance, kernel_distance, nearest_neighbors, psnr, ssim


@pytest.fixture
def image_pair():
    """Four 16x20 RGB images in [-1, 1] and noisy copies of them."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 16, 20, 3)).astype(np.float32)
    y = np.clip(x + 0.2 * rng.normal(size=x.shape), -1, 1).astype(np.float32)
    return x, y


def skimage_ssim(a, b, data_range, sigma=1.5):
    """The exact skimage call that `ssim` documents it matches."""
    return structural_similarity(
        a, b, data_range=data_range, channel_axis=-1, gaussian_weights=True, sigma=sigma,
        use_sample_covariance=False,
    )


# ---------------------------------------------------------------- PSNR and SSIM


def test_psnr_matches_skimage(image_pair):
    x, y = image_pair
    values = psnr(x, y)
    assert values.shape == (4,)
    expected = [peak_signal_noise_ratio(a, b, data_range=2) for a, b in zip(x, y)]
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    # Data range 1 for [0, 1] images: same PSNR as the [-1, 1] images with range 2.
    np.testing.assert_allclose(psnr((x + 1) / 2, (y + 1) / 2, value_range=(0, 1)), values)


def test_psnr_single_image_tensor_and_identical(image_pair):
    x, y = image_pair
    single = psnr(tf.constant(x[0]), tf.constant(y[0]))
    assert isinstance(single, float)
    assert single == pytest.approx(peak_signal_noise_ratio(x[0], y[0], data_range=2), rel=1e-6)
    assert np.all(np.isinf(psnr(x, x)))


def test_ssim_matches_skimage(image_pair):
    x, y = image_pair
    values = ssim(x, y)
    assert values.shape == (4,)
    x01, y01 = (x + 1) / 2, (y + 1) / 2
    expected = [skimage_ssim(a, b, data_range=1) for a, b in zip(x01, y01)]
    np.testing.assert_allclose(values, expected, atol=1e-5)
    # For [0, 1] images it is skimage on the raw images, and tf.image.ssim agrees too.
    np.testing.assert_allclose(ssim(x01, y01, value_range=(0, 1)), expected, atol=1e-5)
    np.testing.assert_allclose(tf.image.ssim(x01, y01, max_val=1.0).numpy(), values, atol=1e-5)


def test_ssim_identical_single_and_small_images(image_pair):
    x, y = image_pair
    np.testing.assert_allclose(ssim(x, x), 1.0, atol=1e-12)
    assert ssim(x[0], y[0]) == pytest.approx(float(ssim(x, y)[0]))
    small_x, small_y = x[:, :8, :8, :1], y[:, :8, :8, :1]
    with pytest.raises(ValueError, match="smaller sigma"):
        ssim(small_x, small_y)
    # A smaller sigma gives a 7x7 window that fits; skimage with the same sigma agrees.
    pairs = zip((small_x + 1) / 2, (small_y + 1) / 2)
    expected = [skimage_ssim(a, b, 1, sigma=0.8) for a, b in pairs]
    np.testing.assert_allclose(ssim(small_x, small_y, sigma=0.8), expected, atol=1e-5)


def test_image_metrics_reject_bad_shapes(image_pair):
    x, y = image_pair
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, y[:2])
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, y[..., :1])
    with pytest.raises(ValueError, match="expected images"):
        psnr(x[0, 0], y[0, 0])


# ---------------------------------------------------------------- Frechet and kernel distances


@pytest.fixture
def gaussian_features():
    """Two samples of the same 16-d Gaussian and one with a shifted mean."""
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(16, 16)) / 4  # a non-diagonal covariance
    a = rng.normal(size=(200, 16)) @ mixing
    b = rng.normal(size=(200, 16)) @ mixing
    shifted = rng.normal(size=(200, 16)) @ mixing + 1.0
    return a, b, shifted


def direct_frechet(a, b):
    """The formula of Heusel et al. written out, via an eigendecomposition square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr((S_a S_b)^1/2) = Tr((S_a^1/2 S_b S_a^1/2)^1/2), a symmetric PSD matrix.
    root_a = scipy.linalg.sqrtm(s_a).real
    eigenvalues = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    tr_covmean = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    return np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * tr_covmean


def test_frechet_matches_direct_formula(gaussian_features):
    a, b, shifted = gaussian_features
    for other in (b, shifted):
        assert frechet_distance(a, other) == pytest.approx(direct_frechet(a, other), rel=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-8


def test_frechet_mean_shift_adds_squared_norm(gaussian_features):
    a, _, _ = gaussian_features
    delta = np.linspace(-1, 1, 16)
    # Shifting a set leaves its covariance unchanged: the distance is exactly ||delta||^2.
    assert frechet_distance(a, a + delta) == pytest.approx(delta @ delta, rel=1e-6)
    assert frechet_distance(a, a + 2 * delta) == pytest.approx(4 * delta @ delta, rel=1e-6)


def test_frechet_singular_covariance_is_finite():
    # 10 samples in 32 dimensions: both covariances are singular.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 32)), rng.normal(size=(10, 32))
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 0


def direct_kid(a, b):
    """Unbiased MMD^2 with k(x, y) = (x.y/d + 1)^3, written as explicit double sums."""
    d = a.shape[1]
    m, n = len(a), len(b)
    k = lambda x, y: (x @ y / d + 1) ** 3  # noqa: E731
    xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_direct_implementation(gaussian_features):
    a, _, shifted = gaussian_features
    a, shifted = a[:60], shifted[:60]
    # One subset of all samples is the plain estimate on the whole sets.
    value = kernel_distance(a, shifted, num_subsets=1, subset_size=60)
    assert value == pytest.approx(direct_kid(a, shifted), rel=1e-9)


def test_kid_near_zero_for_same_distribution(gaussian_features):
    a, b, shifted = gaussian_features
    same, same_std = kernel_distance(a, b, num_subsets=50, subset_size=100, return_std=True)
    different = kernel_distance(a, shifted, num_subsets=50, subset_size=100)
    assert abs(same) < 0.05 * different
    assert abs(same) < 3 * same_std  # unbiased: zero lies within the spread over subsets
    assert different > 0.5
    # Deterministic for a seed.
    assert kernel_distance(a, b, num_subsets=5, seed=3) == kernel_distance(
        a, b, num_subsets=5, seed=3
    )


@pytest.mark.parametrize("metric", [frechet_distance, kernel_distance])
def test_distances_reject_bad_inputs(metric, gaussian_features):
    a, b, _ = gaussian_features
    with pytest.raises(ValueError, match="dimensions differ"):
        metric(a, b[:, :8])
    with pytest.raises(ValueError, match="at least 2 samples"):
        metric(a, b[:1])
    with_nan = a.copy()
    with_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metric(with_nan, b)
    with pytest.raises(ValueError, match="2-D"):
        metric(a[0], b[0])


def test_kid_rejects_bad_subset_size(gaussian_features):
    a, b, _ = gaussian_features
    with pytest.raises(ValueError, match="subset_size"):
        kernel_distance(a, b[:50], subset_size=100)


def test_nearest_neighbors_matches_brute_force_and_finds_copies():
    rng = np.random.default_rng(0)
    references = rng.uniform(-1, 1, (50, 4, 4, 1))
    queries = np.concatenate([references[[7, 3]] + 1e-3, rng.uniform(-1, 1, (5, 4, 4, 1))])
    index, rms = nearest_neighbors(queries, references)
    brute = np.sqrt(((queries[:, None] - references[None]) ** 2).mean(axis=(2, 3, 4)))
    np.testing.assert_array_equal(index, brute.argmin(axis=1))
    np.testing.assert_allclose(rms, brute.min(axis=1), atol=1e-6)
    assert list(index[:2]) == [7, 3] and np.all(rms[:2] < 2e-3)  # near-copies are found
    with pytest.raises(ValueError, match="same image shape"):
        nearest_neighbors(queries, references[:, :2])
