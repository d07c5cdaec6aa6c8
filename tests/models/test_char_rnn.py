"""The character RNN: shapes, stepping with state, exact stream scoring, mixtures."""

import keras
import numpy as np
import pytest

from course_lib.models.char_rnn import CharRNN, fit_char_rnn, mixture_bits, stream_log2_probs


def _log2_softmax(logits):
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(-1, keepdims=True)
    return (logits - np.log(np.exp(logits).sum(-1, keepdims=True))) / np.log(2)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_stepping_with_state_equals_one_pass(cell):
    keras.utils.set_random_seed(0)
    model = CharRNN(7, embedding_dim=4, units=8, cell=cell)
    ids = np.random.default_rng(0).integers(0, 7, (2, 9)).astype("int32")
    whole = model(ids)
    assert whole.shape == (2, 9, 7) and whole.dtype == "float32"
    first, states = model(ids[:, :5], return_state=True)
    assert len(states) == (1 if cell == "gru" else 2)
    rest = model(ids[:, 5:], states)
    assert np.allclose(np.concatenate([first, rest], axis=1), whole, atol=1e-5)


def test_stream_scoring_is_exact_for_a_short_memory_and_covers_every_position():
    keras.utils.set_random_seed(1)
    model = CharRNN(6, embedding_dim=4, units=8)
    ids = np.random.default_rng(1).integers(1, 6, 203).astype("int32")
    one_pass = _log2_softmax(model(ids[None, :-1]))[0]
    expected = one_pass[np.arange(202), ids[1:]]
    # with enough warm-up every piece sees its whole history: equal to one pass
    got = stream_log2_probs(model, ids, num_streams=5, warmup=300)
    assert got.shape == (202,)
    assert np.allclose(got, expected, atol=1e-5)
    # with a shorter warm-up, the pieces still score every character once
    assert stream_log2_probs(model, ids, num_streams=7, warmup=3).shape == (202,)
    with pytest.raises(ValueError, match="at least 2 characters"):
        stream_log2_probs(model, ids[:1])


def test_generation_is_seeded_and_errors_are_clear():
    keras.utils.set_random_seed(2)
    model = CharRNN(5, embedding_dim=4, units=8, cell="lstm")
    first = model.generate([1, 2, 3], 12, seed=7)
    assert first.shape == (12,) and np.array_equal(first, model.generate([1, 2, 3], 12, seed=7))
    with pytest.raises(ValueError, match="prompt is empty"):
        model.generate([], 5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.generate([1], 5, temperature=0)
    with pytest.raises(ValueError, match="cell must be one of"):
        CharRNN(5, cell="rnn")


def test_config_round_trip():
    model = CharRNN(9, embedding_dim=3, units=5, cell="lstm", dropout=0.1)
    clone = CharRNN.from_config(model.get_config())
    assert (clone.units, clone.cell, clone.dropout_rate, clone.vocabulary_size) == (5, "lstm",
                                                                                   0.1, 9)


def test_mixture_bits():
    p, q = np.log2([0.5, 0.25]), np.log2([0.25, 0.5])
    assert np.isclose(mixture_bits(p, q, 1.0), 1.5)
    assert np.isclose(mixture_bits(p, q, 0.5), -np.log2(0.375))
    with pytest.raises(ValueError, match="weight must be in"):
        mixture_bits(p, q, 1.5)
    with pytest.raises(ValueError, match="different texts"):
        mixture_bits(p, q[:1], 0.5)


def test_fit_char_rnn_learns_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    keras.utils.set_random_seed(3)
    ids = np.tile(np.array([1, 2, 3, 4, 5, 3, 2], "int32"), 300)  # a repeating text
    model = fit_char_rnn(ids, ids[:700], 6, units=16, dropout=0.0, num_epochs=3, seq_len=20,
                         batch_size=8)
    bits = -stream_log2_probs(model, ids[:700]).mean()
    assert bits < 1.5  # uniform over 6 ids is 2.58 bits
    (cached,) = (tmp_path / "text").glob("*.weights.h5")
    again = fit_char_rnn(ids, ids[:700], 6, units=16, dropout=0.0, num_epochs=3, seq_len=20,
                         batch_size=8)  # loaded, not trained
    assert np.allclose(again(ids[None, :50]), model(ids[None, :50]), atol=1e-6)
    assert cached.exists() and len(list((tmp_path / "text").iterdir())) == 1
