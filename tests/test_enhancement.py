"""Classical enhancement: exact where it should be, and clear about bad input."""

import numpy as np
import pytest

from course_lib import enhancement


def test_downscale_and_bicubic_upscale():
    clip = np.zeros((2, 4, 6, 1), np.float32)
    clip[:, :2, :2] = 1.0
    small = enhancement.downscale(clip)
    assert small.shape == (2, 2, 3, 1) and small[0, 0, 0, 0] == 1.0 and small[0, 1, 1, 0] == 0
    flat = np.full((1, 4, 4, 3), 0.3, np.float32)
    assert np.allclose(enhancement.bicubic_upscale(flat), 0.3, atol=1e-6)
    with pytest.raises(ValueError, match="divisible"):
        enhancement.downscale(np.zeros((1, 5, 4, 1)))


def test_temporal_average_cuts_independent_noise():
    rng = np.random.default_rng(0)
    clean = np.full((9, 32, 32, 1), 0.5, np.float32)
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    averaged = enhancement.temporal_average(noisy, radius=1)
    # three frames: the noise's standard deviation falls by about sqrt(3) in the middle
    ratio = noisy[1:-1].std() / averaged[1:-1].std()
    assert 1.6 < ratio < 1.9
    assert np.allclose(averaged[0], noisy[:2].mean(axis=0))  # fewer frames at the ends
    assert np.array_equal(enhancement.temporal_average(noisy, radius=0), noisy)


def test_gray_world_gives_every_channel_the_same_mean():
    rng = np.random.default_rng(1)
    clip = rng.uniform(0.2, 0.6, (3, 8, 8, 3)).astype(np.float32) * [1.2, 1.0, 0.6]
    balanced = enhancement.gray_world(clip)
    means = balanced.mean(axis=(1, 2))
    assert np.allclose(means, means.mean(axis=1, keepdims=True), atol=1e-5)


def test_equalize_and_flicker():
    rng = np.random.default_rng(2)
    clip = rng.uniform(0.3, 0.5, (4, 16, 16, 3)).astype(np.float32)  # low contrast
    for method in ("histogram", "clahe"):
        out = enhancement.equalize(clip, method)
        assert out.shape == clip.shape and out.std() > clip.std()
    with pytest.raises(ValueError, match="clahe"):
        enhancement.equalize(clip, "sharpen")
    steady = np.full((5, 2, 2, 1), 0.4, np.float32)
    assert enhancement.brightness_flicker(steady) == 0.0
    steady[1::2] += 0.1  # brightness up and down by 0.1 every frame
    assert np.isclose(enhancement.brightness_flicker(steady), 0.1)


def test_clip_scores_and_windows():
    clip = np.random.default_rng(3).uniform(size=(5, 16, 16, 3)).astype(np.float32)
    scores = enhancement.clip_scores(clip, clip)
    assert scores["ssim"] > 0.999 and scores["psnr"] > 60
    windows = enhancement.frame_windows_around(clip, 1)
    assert windows.shape == (5, 3, 16, 16, 3)
    assert np.array_equal(windows[0, 0], clip[0]) and np.array_equal(windows[2, 2], clip[3])
    with pytest.raises(ValueError, match="differ"):
        enhancement.clip_scores(clip, clip[:4])


def test_colour_cast_and_paired_crops():
    grey = np.full((2, 4, 4, 3), 0.5, np.float32)
    assert enhancement.colour_cast(grey) == 0.0
    assert np.isclose(enhancement.colour_cast(grey * [1.0, 0.8, 0.6]), 0.2)
    inputs = np.arange(3 * 2 * 6 * 6, dtype=np.float32).reshape(3, 2, 6, 6, 1)
    targets = inputs[:, 0] + 1000
    x, y = enhancement.paired_crops(inputs, targets, 4, copies=2, seed=0)
    assert x.shape == (6, 2, 4, 4, 1) and y.shape == (6, 4, 4, 1)
    assert np.array_equal(x[:, 0] + 1000, y)  # the same window in input and target
    with pytest.raises(ValueError, match="do not fit"):
        enhancement.paired_crops(inputs, targets, 7, copies=1)
