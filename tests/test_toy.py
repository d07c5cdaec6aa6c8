"""Tests of course_lib.toy: the ring of Gaussians and the mode-coverage numbers."""

import numpy as np
import pytest

from course_lib.toy import make_ring, mode_coverage, ring_centers


def test_ring_centers_lie_evenly_on_the_circle():
    centers = ring_centers(num_modes=8, radius=2.0)
    assert centers.shape == (8, 2) and centers.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 2.0, rtol=1e-6)
    np.testing.assert_allclose(centers[0], [2.0, 0.0], atol=1e-6)
    gaps = np.linalg.norm(centers - np.roll(centers, 1, axis=0), axis=1)
    np.testing.assert_allclose(gaps, 2 * 2.0 * np.sin(np.pi / 8), rtol=1e-5)  # equal chords


def test_make_ring_shapes_dtypes_and_statistics():
    points, modes = make_ring(4000, num_modes=6, radius=3.0, std=0.05, seed=1)
    assert points.shape == (4000, 2) and points.dtype == np.float32
    assert modes.shape == (4000,) and modes.dtype == np.int32
    assert set(np.unique(modes)) == set(range(6))
    assert np.bincount(modes).min() > 4000 / 6 * 0.8  # modes drawn uniformly
    offsets = points - ring_centers(6, 3.0)[modes]
    assert np.std(offsets) == pytest.approx(0.05, rel=0.05)  # each Gaussian has std 0.05
    assert np.abs(offsets.mean(axis=0)).max() < 0.005


def test_make_ring_is_reproducible_for_a_seed():
    a, ma = make_ring(50, seed=3)
    b, mb = make_ring(50, seed=3)
    c, _ = make_ring(50, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    assert not np.allclose(a, c)


def test_real_samples_cover_every_mode_with_high_quality():
    points, modes = make_ring(2500, seed=0)
    report = mode_coverage(points)
    assert report["modes_covered"] == 8 and report["covered"].all()
    # The share of a 2-D Gaussian within 3 std is 1 - exp(-4.5) = 0.989.
    assert report["high_quality_fraction"] == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    assert report["counts"].sum() == round(report["high_quality_fraction"] * 2500)
    # Points are assigned to the mode they came from.
    np.testing.assert_allclose(report["counts"], np.bincount(modes, minlength=8), atol=10)


def test_points_at_one_mode_cover_one_mode():
    points = np.tile(ring_centers()[3], (500, 1)) + 0.01
    report = mode_coverage(points)
    assert report["modes_covered"] == 1
    assert report["covered"].tolist() == [i == 3 for i in range(8)]
    assert report["high_quality_fraction"] == 1.0
    assert report["counts"][3] == 500


def test_uniform_noise_has_low_quality():
    rng = np.random.default_rng(0)
    points = rng.uniform(-2.5, 2.5, size=(2500, 2))
    report = mode_coverage(points)
    # 8 discs of radius 0.06 cover 0.4% of the square: almost no point is high quality, and
    # 20 high-quality points on one mode are out of reach.
    assert report["high_quality_fraction"] < 0.02
    assert report["modes_covered"] == 0


def test_a_few_stray_points_do_not_cover_a_mode():
    points, _ = make_ring(2500, num_modes=8, seed=0)
    points = points[np.isin(np.argmin(np.linalg.norm(
        points[:, None] - ring_centers()[None], axis=-1), axis=1), [0, 1, 2, 3])]
    stray = np.tile(ring_centers()[6], (5, 1))  # 5 points on mode 6: under 0.8% of the samples
    report = mode_coverage(np.concatenate([points, stray]))
    assert report["modes_covered"] == 4 and report["counts"][6] == 5
    assert mode_coverage(np.concatenate([points, stray]), min_fraction=0.0)["modes_covered"] == 5


def test_threshold_is_measured_in_standard_deviations():
    points = np.tile(ring_centers()[0] + [0.1, 0.0], (100, 1))  # 5 std (0.02) off the centre
    assert mode_coverage(points)["high_quality_fraction"] == 0.0
    assert mode_coverage(points, threshold=6.0)["high_quality_fraction"] == 1.0
    assert mode_coverage(points, std=0.05)["high_quality_fraction"] == 1.0  # 2 std of 0.05


@pytest.mark.parametrize("kwargs, match", [
    ({"num_modes": 0}, "num_modes"),
    ({"num_modes": 2.5}, "num_modes"),
    ({"radius": -1.0}, "radius"),
    ({"std": 0.0}, "std"),
    ({"num_samples": 0}, "num_samples"),
])
def test_make_ring_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_ring(**{"num_samples": 10, **kwargs})


@pytest.mark.parametrize("points, kwargs, match", [
    (np.zeros((10, 3)), {}, r"\(N, 2\)"),
    (np.zeros((0, 2)), {}, "non-empty"),
    (np.zeros(10), {}, r"\(N, 2\)"),
    (np.full((4, 2), np.nan), {}, "NaN"),
    (np.zeros((4, 2)), {"threshold": 0.0}, "threshold"),
    (np.zeros((4, 2)), {"min_fraction": 1.5}, "min_fraction"),
    (np.zeros((4, 2)), {"std": -0.1}, "std"),
])
def test_mode_coverage_rejects_bad_arguments(points, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mode_coverage(points, **kwargs)
