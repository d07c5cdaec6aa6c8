"""Decoding a language model: turning next-token distributions into text.

Taught in notebooks/04_text/02_decoding.ipynb, where each rule is written by hand first. A
model is seen through one function, `step(ids, state) -> (logits, state)`: it reads new ids
(batch, time) from a state (None at the start) and returns the logits of the token after
the last one, (batch, vocabulary), with the state to continue from. A recurrent model's
state is its hidden state (`char_rnn_step`); a Transformer's is its key/value cache. Every
decoding rule works with any model that way.

    filter_logits       temperature, then top-k and/or top-p (nucleus) truncation
    generate            greedy decoding or sampling, one token at a time
    beam_search         the most likely continuations, with length normalisation
    char_rnn_step       the step function of a `course_lib.models.char_rnn.CharRNN`

The rules (Holtzman et al. 2020 compare them): greedy takes the argmax; sampling draws from
softmax(logits / T); top-k keeps the k most likely tokens; top-p keeps the smallest set of
most likely tokens whose probability is at least p; beam search keeps the `beam_width`
best partial sequences by total log-probability.
"""

import keras
import numpy as np
from keras import ops


def _check_arguments(temperature, top_k, top_p):
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature} (greedy decoding is "
                         "the limit T -> 0: use generate(..., greedy=True)).")
    if top_k is not None and (int(top_k) != top_k or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 (or None for no limit), got {top_k}.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 keeps every token), got {top_p}.")


def filter_logits(logits, temperature=1.0, top_k=None, top_p=None):
    """Logits divided by the temperature, with the tokens outside the top-k and/or the top-p
    set put to -inf. `logits` is a (batch, vocabulary) or (vocabulary,) array; float64
    NumPy comes back.

    Top-p keeps, per row, the most likely tokens in order until their probability reaches
    `top_p`: the smallest such set (ties broken towards the lower id).
    """
    _check_arguments(temperature, top_k, top_p)
    logits = np.array(logits, np.float64) / temperature
    squeeze = logits.ndim == 1
    logits = np.atleast_2d(logits)
    top_k = None if top_k is None else min(int(top_k), logits.shape[-1])
    order = np.argsort(-logits, axis=-1, kind="stable")  # most likely first
    keep = np.ones_like(logits, bool)
    if top_k is not None:
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(logits.shape[-1])[None], axis=-1)
        keep &= ranks < top_k
    if top_p is not None:
        sorted_logits = np.take_along_axis(logits, order, axis=-1)
        probabilities = np.exp(sorted_logits - sorted_logits[:, :1])
        probabilities /= probabilities.sum(-1, keepdims=True)
        before = np.cumsum(probabilities, axis=-1) - probabilities  # mass of the better ones
        keep_sorted = before < top_p - 1e-12  # keep until the mass reaches top_p
        nucleus = np.zeros_like(keep)
        np.put_along_axis(nucleus, order, keep_sorted, axis=-1)
        keep &= nucleus
    filtered = np.where(keep, logits, -np.inf)
    return filtered[0] if squeeze else filtered


def _softmax(logits):
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def generate(step, prompt_ids, num_tokens, greedy=False, temperature=1.0, top_k=None,
             top_p=None, num_samples=1, seed=0):
    """`num_samples` continuations of `prompt_ids`, `num_tokens` each: (num_samples,
    num_tokens) int32. Greedy takes the most likely token; otherwise tokens are drawn from
    `filter_logits(logits, temperature, top_k, top_p)`, seeded. A 2-D `prompt_ids`
    (batch, length) continues each of its prompts once (`num_samples` is then the batch)."""
    prompt_ids = np.asarray(prompt_ids, np.int32)
    if prompt_ids.ndim == 2:
        num_samples = len(prompt_ids)
    prompt_ids = np.atleast_2d(prompt_ids)
    if prompt_ids.size == 0:
        raise ValueError("the prompt is empty: give at least one token to start from.")
    if num_tokens < 0 or num_samples < 1:
        raise ValueError(f"num_tokens must be >= 0 and num_samples >= 1, got {num_tokens} "
                         f"and {num_samples}.")
    if not greedy:
        _check_arguments(temperature, top_k, top_p)  # before the model runs
    rng = np.random.default_rng(seed)
    if len(prompt_ids) == 1:
        prompt_ids = np.tile(prompt_ids, (num_samples, 1))
    logits, state = step(prompt_ids, None)
    tokens = np.zeros((num_samples, num_tokens), np.int32)
    for t in range(num_tokens):
        logits = np.asarray(logits, np.float64)
        if greedy:
            tokens[:, t] = logits.argmax(-1)
        else:
            probabilities = _softmax(filter_logits(logits, temperature, top_k, top_p))
            cumulative = probabilities.cumsum(-1)
            draws = rng.random((num_samples, 1)) * cumulative[:, -1:]
            tokens[:, t] = np.minimum((cumulative < draws).sum(-1), logits.shape[-1] - 1)
        if t + 1 < num_tokens:
            logits, state = step(tokens[:, t:t + 1], state)
    return tokens


def length_normalized(log_probability, length, alpha=0.6):
    """The beam score of Wu et al. 2016 (GNMT): log P / ((5 + length) / 6) ** alpha. With
    alpha = 0 it is the raw log-probability, which favours short sequences."""
    return log_probability / ((5.0 + length) / 6.0) ** alpha


def _take(state, index):
    return keras.tree.map_structure(lambda s: ops.take(s, index, axis=0), state)


def beam_search(step, prompt_ids, max_tokens, beam_width=4, end_id=None, alpha=0.6):
    """The most likely continuation of `prompt_ids` that beam search finds.

    Keeps the `beam_width` partial sequences of highest total log-probability; a sequence
    that emits `end_id` is finished. The search stops when no open sequence can overtake the
    best finished one any more, or at `max_tokens`, when the open ones join the finished
    ones. They are ranked by `length_normalized(log_probability, length, alpha)`.
    Returns (tokens, log_probability) of the best: tokens int32 (end_id included).
    """
    prompt_ids = np.asarray(prompt_ids, np.int32).reshape(-1)
    if prompt_ids.size == 0:
        raise ValueError("the prompt is empty: give at least one token to start from.")
    if beam_width < 1 or max_tokens < 1:
        raise ValueError(f"beam_width and max_tokens must be >= 1, got {beam_width} and "
                         f"{max_tokens}.")
    logits, state = step(prompt_ids[None], None)
    sequences = np.zeros((1, 0), np.int32)
    scores = np.zeros(1)  # total log-probability of each open beam
    finished = []  # (normalised score, tokens, log-probability)
    for t in range(max_tokens):
        logits = np.asarray(logits, np.float64)
        log_probs = logits - logits.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        candidates = (scores[:, None] + log_probs).reshape(-1)
        vocabulary = log_probs.shape[-1]
        best = np.argsort(-candidates, kind="stable")[:2 * beam_width]
        keep_beams, keep_tokens, keep_scores = [], [], []
        for flat in best:
            beam, token = divmod(int(flat), vocabulary)
            tokens = np.append(sequences[beam], token).astype(np.int32)
            if end_id is not None and token == end_id:
                finished.append((length_normalized(candidates[flat], len(tokens), alpha),
                                 tokens, float(candidates[flat])))
            elif len(keep_beams) < beam_width:
                keep_beams.append(beam)
                keep_tokens.append(tokens)
                keep_scores.append(candidates[flat])
        if not keep_beams:
            break
        if finished:  # stop when no open beam can still overtake the best finished one:
            # its log-probability can only fall, and its length penalty is largest at
            # max_tokens, so log P / lp(max_tokens) bounds its score from above
            bound = max(keep_scores) / ((5.0 + max_tokens) / 6.0) ** alpha
            if max(f[0] for f in finished) >= bound:
                break
        sequences, scores = np.stack(keep_tokens), np.array(keep_scores)
        if t + 1 < max_tokens:
            state = _take(state, np.array(keep_beams))
            logits, state = step(sequences[:, -1:], state)
    else:
        for tokens, score in zip(sequences, scores):
            finished.append((length_normalized(score, len(tokens), alpha), tokens, score))
    _, tokens, log_probability = max(finished, key=lambda f: f[0])
    return np.asarray(tokens, np.int32), float(log_probability)


def char_rnn_step(model):
    """The `step(ids, state)` function of a `CharRNN`: its state is the recurrent state."""
    def step(ids, state):
        logits, state = model(np.asarray(ids, np.int32), state, return_state=True)
        return ops.convert_to_numpy(logits[:, -1]), state
    return step

