"""The mini-GPT: the causal mask, the KV cache equal to recomputation, clear errors."""

import keras
import numpy as np
import pytest

from course_lib import decoding
from course_lib.models.gpt import MiniGPT, causal_mask, gpt_step, windowed_log2_probs


def test_causal_mask():
    assert np.array_equal(causal_mask(3), [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    # two new queries after three cached positions see the past and themselves
    assert np.array_equal(causal_mask(2, 5), [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="at least as many keys"):
        causal_mask(3, 2)


def _model(**kwargs):
    keras.utils.set_random_seed(0)
    return MiniGPT(11, max_length=16, width=16, num_layers=2, num_heads=2, **kwargs)


def test_no_position_sees_the_future():
    model = _model()
    ids = np.random.default_rng(0).integers(0, 11, (2, 10)).astype("int32")
    changed = ids.copy()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11  # change the future of position 5
    assert np.allclose(model(ids)[:, :6], model(changed)[:, :6], atol=1e-5)
    assert not np.allclose(model(ids)[:, 6:], model(changed)[:, 6:], atol=1e-3)


def test_the_kv_cache_gives_the_logits_of_recomputation():
    model = _model()
    ids = np.random.default_rng(1).integers(0, 11, (2, 12)).astype("int32")
    whole = model(ids)
    logits, cache, attention = model(ids[:, :7], return_cache=True)
    assert len(cache) == 2 and cache[0][0].shape == (2, 2, 7, 8)
    assert attention[0].shape == (2, 2, 7, 7)
    steps = [logits]
    for t in range(7, 12):  # one token at a time from the cache
        logits, cache, _ = model(ids[:, t:t + 1], cache=cache, return_cache=True)
        steps.append(logits)
    assert np.allclose(np.concatenate(steps, axis=1), whole, atol=1e-4)
    cached = decoding.generate(gpt_step(model), ids[0, :4], 8, greedy=True)
    recomputed = decoding.generate(gpt_step(model, use_cache=False), ids[0, :4], 8, greedy=True)
    assert np.array_equal(cached, recomputed)


def test_context_errors_and_config():
    model = _model(dropout=0.1)
    with pytest.raises(ValueError, match="do not fit in the model's context of 16"):
        model(np.zeros((1, 17), "int32"))
    _, cache, _ = model(np.zeros((1, 10), "int32"), return_cache=True)
    with pytest.raises(ValueError, match="do not fit"):
        model(np.zeros((1, 7), "int32"), cache=cache)
    for use_cache in (True, False):  # also from the compiled generation steps
        with pytest.raises(ValueError, match="do not fit in the model's context of 16"):
            decoding.generate(gpt_step(model, use_cache=use_cache), [1, 2, 3], 20, greedy=True)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        MiniGPT(5, width=10, num_heads=4)
    clone = MiniGPT.from_config(model.get_config())
    assert (clone.max_length, clone.num_layers, clone.mlp_dim, clone.dropout_rate) == (
        16, 2, 64, 0.1)


def test_it_learns_a_pattern():
    keras.utils.set_random_seed(2)
    model = MiniGPT(6, max_length=32, width=32, num_layers=1, num_heads=2)
    ids = np.tile(np.array([1, 2, 3, 4, 5, 3], "int32"), 200)
    x = ids[:-1][:1184].reshape(-1, 16)
    y = ids[1:][:1184].reshape(-1, 16)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.3  # from ln 6 = 1.79


def test_windowed_scoring_covers_every_position_once():
    model = _model()
    ids = np.random.default_rng(3).integers(0, 11, 50).astype("int32")
    scores = windowed_log2_probs(model, ids, stride=8)
    assert scores.shape == (49,)
    # the first window's own scores are exact: the same as one pass over its positions
    logits = np.asarray(model(ids[None, :16]), np.float64)[0]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert np.allclose(scores[:16], log_probs[np.arange(16), ids[1:17]] / np.log(2), atol=1e-5)
    # later windows start every 8 and score their last 8 predictions: ids[30] is scored
    # in the window of ids[16:32], from the 14 characters before it
    t = 30
    window_logits = np.asarray(model(ids[None, 16:32]), np.float64)[0]
    window_lp = window_logits - np.log(np.exp(window_logits).sum(-1, keepdims=True))
    assert np.isclose(scores[t - 1], window_lp[t - 17, ids[t]] / np.log(2), atol=1e-5)
    assert windowed_log2_probs(model, ids[:5]).shape == (4,)
    with pytest.raises(ValueError, match="stride must be in"):
        windowed_log2_probs(model, ids, stride=17)
