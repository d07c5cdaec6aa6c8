"""Character n-gram models: counts, smoothing and bits per character, checked by hand."""

import numpy as np
import pytest

from course_lib.models.ngram import NGramModel


def _next_char_distribution(model, context, vocabulary_size):
    return np.array([model.probabilities(np.array([*context, c]))[-1]
                     for c in range(vocabulary_size)])


@pytest.mark.parametrize("smoothing", ["add-k", "kneser-ney"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_every_context_gives_a_distribution(smoothing, order):
    rng = np.random.default_rng(order)
    model = NGramModel(order, 5, smoothing=smoothing).fit(rng.integers(1, 5, 300))
    for context in ([1, 2], [4, 4], [0, 0]):  # seen, maybe seen, never seen
        p = _next_char_distribution(model, context, 5)
        assert np.all(p > 0) and np.isclose(p.sum(), 1.0), (context, p)


def test_add_k_by_hand():
    # "abab a": ids a=1, b=2. Bigram counts: ab 2, ba 2 (+ the padded start 0a).
    ids = np.array([1, 2, 1, 2, 1])
    model = NGramModel(2, 3, smoothing="add-k", k=0.5).fit(ids)
    p = model.probabilities(np.array([1, 2]))  # P(a | pad), P(b | a)
    assert np.isclose(p[1], (2 + 0.5) / (2 + 0.5 * 3))  # count(ab) = 2, count(a.) = 2


def test_kneser_ney_uses_continuation_counts():
    # "x" follows only one context but often, "y" follows many: a lower-order model by
    # continuation counts prefers "y" after an unseen context, raw frequency prefers "x".
    ids = np.array([1, 5] * 20 + [2, 6, 3, 6, 4, 6])
    model = NGramModel(2, 7).fit(ids)
    unseen = _next_char_distribution(model, [6], 7)  # after 6 came only 3 and 4
    raw = np.bincount(ids, minlength=7)
    assert raw[5] > raw[6] and unseen[6] > unseen[5]


def test_more_context_lowers_bits_on_structured_text_and_errors_are_clear():
    rng = np.random.default_rng(0)
    period = rng.integers(1, 9, 7)
    ids = np.tile(period, 200)  # a repeating pattern: the next id follows from the last few
    low = NGramModel(1, 9).fit(ids[:1000]).bits_per_char(ids[1000:])
    high = NGramModel(4, 9).fit(ids[:1000]).bits_per_char(ids[1000:])
    assert high < 0.2 < low
    with pytest.raises(ValueError, match="k must be > 0"):
        NGramModel(2, 9, smoothing="add-k", k=0)
    with pytest.raises(ValueError, match="ids must be in"):
        NGramModel(2, 3).fit(np.array([1, 2, 3]))
    with pytest.raises(RuntimeError, match="fit the model"):
        NGramModel(2, 3).probabilities(np.array([1]))


@pytest.mark.parametrize("smoothing", ["add-k", "kneser-ney"])
def test_next_probabilities_and_generation(smoothing):
    rng = np.random.default_rng(3)
    model = NGramModel(3, 6, smoothing=smoothing).fit(rng.integers(1, 6, 400))
    for context in ([1, 2], [5, 5, 3, 4], [2]):
        padded = [0] * (2 - len(context)) + context[-2:]
        assert np.allclose(model.next_probabilities(context),
                           _next_char_distribution(model, padded, 6))
    first = model.generate([1, 2], 50, seed=4)
    assert first.shape == (50,) and np.array_equal(first, model.generate([1, 2], 50, seed=4))
    assert set(first) <= set(range(6))
    # a low temperature sharpens towards the most likely continuation
    cold = model.generate([1, 2], 1, temperature=0.01, seed=0)[0]
    assert cold == np.argmax(model.next_probabilities([1, 2]))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.generate([1], 3, temperature=0)


def test_orders_whose_codes_overflow_are_refused():
    with pytest.raises(ValueError, match="do not fit in int64"):
        NGramModel(10, 104)
