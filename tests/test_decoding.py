"""Decoding rules against hand-computed distributions and toy models with known answers."""

import keras
import numpy as np
import pytest

from course_lib import decoding
from course_lib.models.char_rnn import CharRNN


def kept(logits, **kwargs):
    return set(np.flatnonzero(np.isfinite(decoding.filter_logits(logits, **kwargs))))


PROBS = np.array([0.05, 0.5, 0.15, 0.3])  # sorted: 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05)


@pytest.mark.parametrize("top_p,expected", [(0.5, {1}), (0.8, {1, 3}), (0.81, {1, 3, 2}),
                                            (0.2, {1}), (1.0, {0, 1, 2, 3})])
def test_top_p_keeps_the_smallest_set_with_enough_mass(top_p, expected):
    assert kept(np.log(PROBS), top_p=top_p) == expected


def test_top_k_temperature_and_batches():
    logits = np.log(PROBS)
    assert kept(logits, top_k=2) == {1, 3}
    assert kept(logits, top_k=10) == {0, 1, 2, 3}
    assert np.allclose(decoding.filter_logits(logits, temperature=0.5), logits / 0.5)
    batch = np.stack([logits, logits[::-1]])
    filtered = decoding.filter_logits(batch, top_k=1)
    assert [set(np.flatnonzero(np.isfinite(row))) for row in filtered] == [{1}, {2}]
    # both limits at once: the intersection
    assert kept(logits, top_k=3, top_p=0.5) == {1}


@pytest.mark.parametrize("kwargs,message", [
    ({"top_p": 0.0}, "top_p must be in"), ({"top_p": 1.5}, "top_p must be in"),
    ({"top_k": 0}, "top_k must be an integer"), ({"top_k": 1.5}, "top_k must be an integer"),
    ({"temperature": 0.0}, "temperature must be > 0")])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        decoding.filter_logits(np.zeros(4), **kwargs)


def markov_step(table):
    """A toy model: the next token depends only on the last one, P = table[last]."""
    log_table = np.log(table)

    def step(ids, state):
        return log_table[np.asarray(ids)[:, -1]], np.asarray(ids)[:, -1]
    return step


def test_sampling_follows_the_filtered_distribution_and_greedy_the_argmax():
    table = np.tile(PROBS, (4, 1))
    step = markov_step(table)
    draws = decoding.generate(step, [0], 1, num_samples=20000, seed=0)[:, 0]
    assert np.allclose(np.bincount(draws, minlength=4) / 20000, PROBS, atol=0.015)
    nucleus = decoding.generate(step, [0], 1, top_p=0.8, num_samples=20000, seed=1)[:, 0]
    assert np.allclose(np.bincount(nucleus, minlength=4) / 20000, [0, 0.625, 0, 0.375],
                       atol=0.015)
    assert np.array_equal(decoding.generate(step, [0], 3, greedy=True), [[1, 1, 1]])
    again = decoding.generate(step, [2], 5, num_samples=3, seed=4)
    assert np.array_equal(again, decoding.generate(step, [2], 5, num_samples=3, seed=4))
    batch = decoding.generate(step, [[0], [2]], 2, greedy=True)  # one row per prompt
    assert np.array_equal(batch, [[1, 1], [1, 1]])
    with pytest.raises(ValueError, match="prompt is empty"):
        decoding.generate(step, [], 3)
    with pytest.raises(ValueError, match="top_k must be"):
        decoding.generate(step, [1], 3, top_k=0)


def test_beam_search_finds_the_best_sequence_that_greedy_misses():
    # From 0: A=1 (0.6) or B=2 (0.4). After A everything is flat; after B, C=3 is 0.9.
    table = np.array([[1e-6, 0.6, 0.4 - 1e-6, 1e-6],
                      [0.25, 0.25, 0.25, 0.25],
                      [0.05, 0.025, 0.025, 0.9],
                      [0.25, 0.25, 0.25, 0.25]])
    step = markov_step(table / table.sum(1, keepdims=True))
    assert np.array_equal(decoding.generate(step, [0], 2, greedy=True), [[1, 0]])  # 0.15
    tokens, log_p = decoding.beam_search(step, [0], 2, beam_width=2, alpha=0.0)
    assert np.array_equal(tokens, [2, 3]) and np.isclose(log_p, np.log(0.4 * 0.9), atol=1e-5)
    # exhaustive check: no 2-token sequence is more likely
    best = max((np.log(table[0, a]) + np.log(table[a, b]), (a, b))
               for a in range(4) for b in range(4))
    assert tuple(tokens) == best[1]


def test_length_normalisation_stops_the_preference_for_short_sequences():
    end = 3
    # From 0: end at once (0.5), or X=1 (0.5) then end (0.9): shorter is more likely in
    # total (0.5 > 0.45) but less likely per token.
    table = np.array([[1e-9, 0.5, 1e-9, 0.5],
                      [0.05, 1e-9, 0.05, 0.9],
                      [0.25, 0.25, 0.25, 0.25],
                      [0.25, 0.25, 0.25, 0.25]])
    step = markov_step(table / table.sum(1, keepdims=True))
    short, _ = decoding.beam_search(step, [0], 5, beam_width=3, end_id=end, alpha=0.0)
    longer, _ = decoding.beam_search(step, [0], 5, beam_width=3, end_id=end, alpha=1.0)
    assert list(short) == [end] and list(longer) == [1, end]
    assert np.isclose(decoding.length_normalized(-1.0, 1, alpha=1.0), -1.0)
    assert np.isclose(decoding.length_normalized(-1.0, 7, alpha=1.0), -0.5)


def test_char_rnn_step_continues_the_state():
    keras.utils.set_random_seed(0)
    model = CharRNN(6, embedding_dim=4, units=8)
    step = decoding.char_rnn_step(model)
    greedy = decoding.generate(step, [1, 2], 4, greedy=True)[0]
    ids = [1, 2]
    for _ in range(4):  # recomputing the whole sequence each time gives the same tokens
        ids.append(int(np.argmax(model(np.array([ids], "int32"))[0, -1])))
    assert list(greedy) == ids[2:]
    tokens, _ = decoding.beam_search(step, [1, 2], 4, beam_width=3)
    assert tokens.shape == (4,)

