import math

import numpy as np
import pytest

from course_lib import extraction, forensics


def test_victim_answers_keep_the_top_class():
    probs = np.random.default_rng(0).dirichlet(np.ones(10) * 0.3, 200)
    for mode in extraction.MODES:
        answers = extraction.victim_answers(probs, mode)
        assert answers.dtype == np.float32 and answers.shape == probs.shape
        assert np.allclose(answers.sum(axis=1), 1, atol=1e-6)
        unique = np.sum(answers == answers.max(axis=1, keepdims=True), axis=1) == 1
        assert np.array_equal(answers.argmax(axis=1)[unique], probs.argmax(axis=1)[unique])
        assert mode == "rounded" or unique.all()  # only rounding can make ties
    rounded = extraction.victim_answers(probs, "rounded")
    assert len(np.unique(np.round(rounded * rounded.shape[1] * 10, 3))) < 200  # coarse values
    flat = np.full((1, 20), 1 / 20)  # every probability rounds to 0: the top class answers
    assert extraction.victim_answers(flat, "rounded")[0, 0] == 1
    labels = extraction.victim_answers(probs, "labels")
    assert set(np.unique(labels)) == {0.0, 1.0}


def test_bad_answers_are_refused():
    with pytest.raises(ValueError, match="mode must be one of"):
        extraction.victim_answers(np.eye(3), "logits")
    with pytest.raises(ValueError, match="probability distribution"):
        extraction.victim_answers(np.ones((2, 3)), "labels")
    with pytest.raises(ValueError, match=r"\(N, num_classes\)"):
        extraction.victim_answers(np.ones(3) / 3, "labels")


def test_ownership_p_value_is_the_binomial_tail():
    assert extraction.ownership_p_value(0, 50) == pytest.approx(1.0)
    assert extraction.ownership_p_value(50, 50) == pytest.approx(1e-50)
    exact = sum(math.comb(20, k) * 0.1 ** k * 0.9 ** (20 - k) for k in range(5, 21))
    assert extraction.ownership_p_value(5, 20) == pytest.approx(exact)
    rng = np.random.default_rng(0)  # the tail against simulated guessers
    guesses = (rng.integers(0, 10, (20_000, 30)) == 0).sum(axis=1)
    assert extraction.ownership_p_value(6, 30) == pytest.approx(np.mean(guesses >= 6), abs=0.01)
    for bad in (-1, 31, 2.5):
        with pytest.raises(ValueError, match="matches must be an integer"):
            extraction.ownership_p_value(bad, 30)


def test_trigger_set_is_keyed():
    images, labels = extraction.trigger_set(20, key=3)
    again, same = extraction.trigger_set(20, key=3)
    other, _ = extraction.trigger_set(20, key=4)
    assert images.shape == (20, 16, 16, 1) and set(np.unique(images)) == {-1.0, 1.0}
    assert np.array_equal(images, again) and np.array_equal(labels, same)
    assert not np.array_equal(images, other)
    assert np.all(images[:, :4, :4] == images[:, :1, :1])  # 4x4 squares
    with pytest.raises(ValueError, match="multiple of cells"):
        extraction.trigger_set(2, image_shape=(10, 10, 1))


def _toy_victim(images):
    """Class 1 when the left half is brighter than the right: a rule a copy can learn."""
    left = images[:, :, :8].mean(axis=(1, 2, 3))
    right = images[:, :, 8:].mean(axis=(1, 2, 3))
    p = 1 / (1 + np.exp(-8 * (left - right)))
    return np.stack([1 - p, p], axis=1)


def test_extract_copies_a_victim_it_can_only_query():
    rng = np.random.default_rng(0)
    queries = rng.uniform(-1, 1, (300, 16, 16, 1)).astype(np.float32)
    test = rng.uniform(-1, 1, (300, 16, 16, 1)).astype(np.float32)
    labels = _toy_victim(test).argmax(axis=1)
    copy = extraction.extract(_toy_victim, queries, "probabilities", num_steps=200)
    untrained = extraction.build_copy(num_classes=2, seed=1)
    assert extraction.agreement(copy, labels, test) > 0.8
    assert extraction.agreement(copy, labels, test) > extraction.agreement(untrained, labels,
                                                                           test) + 0.2
    with pytest.raises(ValueError, match="victim labels for"):
        extraction.agreement(copy, labels[:5], test)


def test_detector_separates_two_kinds_of_images():
    rng = np.random.default_rng(0)
    real = np.clip(rng.normal(0, 0.3, (400, 16, 16, 1)), -1, 1)
    fake = np.clip(real[::-1] + rng.normal(0, 0.3, real.shape), -1, 1)  # noisier
    detector = forensics.train_detector(real[:300], fake[:300], num_epochs=5)
    table = forensics.cross_aucs({"noisy": detector}, real[300:], {"noisy": fake[300:]})
    assert table["noisy"]["noisy"] > 0.9
    evaded = forensics.evade(detector, fake[300:], epsilon=0.1)
    assert np.abs(evaded - fake[300:]).max() <= 0.1 + 1e-5 and np.abs(evaded).max() <= 1
    before = forensics.detector_scores(detector, fake[300:]).mean()
    assert forensics.detector_scores(detector, evaded).mean() < before - 0.5
    with pytest.raises(ValueError, match="epsilon must be positive"):
        forensics.evade(detector, fake[:2], epsilon=0)
    with pytest.raises(ValueError, match="differ in shape"):
        forensics.train_detector(real, fake[:, :8, :8])


def test_blur_keeps_the_shape_and_removes_detail():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, 16, 16, 1)).astype(np.float32)
    blurred = forensics.blur(images, 8)
    assert blurred.shape == images.shape
    assert np.abs(np.diff(blurred, axis=2)).mean() < 0.5 * np.abs(np.diff(images, axis=2)).mean()
    flat = np.full((1, 16, 16, 1), 0.3, np.float32)
    assert np.allclose(forensics.blur(flat, 8), 0.3, atol=1e-5)
