"""2-D toy data for GANs: a ring of Gaussians, and how many of its modes a generator covers.

Taught in notebooks/01_gan. The ring of 8 Gaussians (Metz et al. 2017, "Unrolled Generative
Adversarial Networks") puts equal mixture weights on 8 small Gaussians, std 0.02, whose
centres lie evenly on a circle of radius 2. It is the standard picture of mode collapse: a
generator that learns only some of the modes is plain to see, and easy to count.

The two numbers counted are those of VEEGAN (Srivastava et al. 2017, "VEEGAN: Reducing Mode
Collapse in GANs using Implicit Variational Learning"), also reported by PacGAN (Lin et al.
2018) on the same ring:

- a sample is **high quality** when it lies within `threshold` = 3 standard deviations of
  the nearest mode centre;
- a mode is **covered** when enough high-quality samples land on it. VEEGAN counts a mode
  as soon as one high-quality sample is nearest to it, so a single stray sample counts as
  a mode; here a mode needs `min_fraction` = 0.8% of the samples (20 of the 2,500 that the
  papers score), a share, so that the bar does not depend on how many samples are scored.
  `min_fraction=0` gives VEEGAN's count.

Real samples score 8 modes and a high-quality fraction of about 0.99 (the share of a 2-D
Gaussian within 3 std is 1 - e^(-4.5)); uniform noise over the ring's square scores a
high-quality fraction near 0.

Example:

    points, modes = make_ring(2500, seed=0)          # (2500, 2) float32, (2500,) int32
    report = mode_coverage(gan.sample(2500, seed=0))
    report["modes_covered"], report["high_quality_fraction"], report["counts"]
"""

import numpy as np


def _check(num_modes, radius, std):
    if int(num_modes) != num_modes or num_modes < 1:
        raise ValueError(f"num_modes must be a positive integer, got {num_modes!r}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std!r}")


def ring_centers(num_modes=8, radius=2.0):
    """The mode centres: `num_modes` points evenly spaced on a circle, the first at (radius, 0).

    Returns:
        (num_modes, 2) float32.
    """
    _check(num_modes, radius, 1.0)
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def make_ring(num_samples, num_modes=8, radius=2.0, std=0.02, seed=0):
    """Samples the ring of Gaussians: a mode chosen uniformly, then N(centre, std^2 I).

    Args:
        num_samples: how many points.
        num_modes: Gaussians on the ring (8 in Metz et al. 2017).
        radius: radius of the circle of centres.
        std: standard deviation of each Gaussian (0.02: the modes are far apart compared
            with their width, about 1.5 between neighbours against 0.02).
        seed: seed of NumPy's generator; the same seed gives the same points.

    Returns:
        `(points, modes)`: points (num_samples, 2) float32 and the mode of each point,
        (num_samples,) int32.

    Example:
        >>> points, modes = make_ring(1000, seed=0)
        >>> points.shape, np.bincount(modes).size
        ((1000, 2), 8)
    """
    if int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    _check(num_modes, radius, std)
    rng = np.random.default_rng(seed)
    modes = rng.integers(0, num_modes, size=int(num_samples)).astype(np.int32)
    noise = rng.normal(0.0, std, size=(int(num_samples), 2))
    points = ring_centers(num_modes, radius)[modes] + noise
    return points.astype(np.float32), modes


def mode_coverage(points, num_modes=8, radius=2.0, std=0.02, threshold=3.0,
                  min_fraction=0.008):
    """Counts the modes of the ring that `points` cover, and the share of high-quality points.

    Each point is assigned to its nearest mode centre. It is high quality when that distance
    is at most `threshold * std` (VEEGAN's criterion). A mode is covered when at least
    `min_fraction` of all points, and at least one, are high-quality points assigned to it
    (the default 0.008 is 20 of 2,500 samples; 0 gives VEEGAN's "at least one").

    Args:
        points: (N, 2) array, e.g. a generator's samples.
        num_modes, radius, std: the ring the points should come from (as in `make_ring`).
        threshold: distance, in standard deviations, that counts as "on the mode".
        min_fraction: share of all points a mode needs to count as covered (0: one point).

    Returns:
        a dict with
        - `modes_covered`: int, the number of covered modes (0 to num_modes);
        - `high_quality_fraction`: float, the share of points within threshold * std of
          their nearest centre;
        - `counts`: (num_modes,) int array, the high-quality points of each mode;
        - `covered`: (num_modes,) bool array, which modes are covered.

    Example:
        >>> real, _ = make_ring(2500, seed=0)
        >>> mode_coverage(real)["modes_covered"]
        8
    """
    _check(num_modes, radius, std)
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold!r}")
    if not 0 <= min_fraction <= 1:
        raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction!r}")
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"points must be a non-empty (N, 2) array, got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("points contain NaN or infinity (did training diverge?)")
    centers = ring_centers(num_modes, radius).astype(np.float64)
    distances = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=-1)  # (N, modes)
    nearest = np.argmin(distances, axis=1)
    high_quality = distances[np.arange(len(points)), nearest] <= threshold * std
    counts = np.bincount(nearest[high_quality], minlength=num_modes)
    covered = counts >= max(1, min_fraction * len(points))
    return {
        "modes_covered": int(covered.sum()),
        "high_quality_fraction": float(high_quality.mean()),
        "counts": counts,
        "covered": covered,
    }
