"""A small GPT: a decoder-only Transformer language model, with a key/value cache.

    causal_mask            which keys each query may attend to
    CausalSelfAttention    multi-head self-attention under the causal mask, with a cache
    TransformerBlock       pre-norm block: x + attention(norm(x)), then x + MLP(norm(x))
    MiniGPT                token and position embeddings, blocks, a final norm, logits
    gpt_step               the `course_lib.decoding` step function of a MiniGPT (cached)
    windowed_log2_probs    log2 P(each character | the context before it) over a whole text

Attention (Vaswani et al. 2017) for one head, with queries Q, keys K and values V of size d:

    softmax(Q K^T / sqrt(d) + M) V,   M[i, j] = 0 if key j is at or before query i, else -inf

so that each position sees only itself and the past: a language model must not read the
character it predicts. When generating, the keys and values of the past never change, so
the model keeps them (the KV cache) and computes only the new position's: one token costs
attention over the past instead of a forward pass over the whole sequence.
"""

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "course_lib"


def causal_mask(num_queries, num_keys=None):
    """Boolean (num_queries, num_keys) mask: query i (the last num_queries positions of
    num_keys) may attend to key j when j <= i + num_keys - num_queries."""
    num_keys = num_queries if num_keys is None else num_keys
    if num_keys < num_queries:
        raise ValueError(f"{num_queries} queries need at least as many keys, got {num_keys}.")
    offset = num_keys - num_queries
    return np.arange(num_keys)[None, :] <= np.arange(num_queries)[:, None] + offset


@keras.saving.register_keras_serializable(package=PACKAGE)
class CausalSelfAttention(layers.Layer):
    """Multi-head causal self-attention.

    Args:
        num_heads: the number of heads.
        key_dim: the size of each head's queries, keys and values.

    Call arguments:
        x: (batch, time, width).
        cache: None, or the (keys, values) of the positions before x, each (batch, heads,
            past, key_dim).

    Returns:
        (outputs (batch, time, width), (keys, values) of the past and x, attention weights
        (batch, heads, time, past + time)).
    """

    def __init__(self, num_heads, key_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim = num_heads, key_dim

    def build(self, input_shape):
        width = input_shape[-1]
        self.qkv = layers.Dense(3 * self.num_heads * self.key_dim, name="qkv")
        self.qkv.build(input_shape)
        self.out = layers.Dense(width, name="out")
        self.out.build((*input_shape[:-1], self.num_heads * self.key_dim))

    def call(self, x, cache=None):
        batch, time = ops.shape(x)[0], ops.shape(x)[1]
        qkv = ops.reshape(self.qkv(x), (batch, time, 3, self.num_heads, self.key_dim))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # (3, batch, heads, time, key_dim)
        queries, keys, values = qkv[0], qkv[1], qkv[2]
        if cache is not None:
            keys = ops.concatenate([ops.cast(cache[0], keys.dtype), keys], axis=2)
            values = ops.concatenate([ops.cast(cache[1], values.dtype), values], axis=2)
        num_keys = ops.shape(keys)[2]
        # scores and softmax in float32: -1e9 and sums of many exponentials need the range
        scores = ops.einsum("bhqd,bhkd->bhqk", ops.cast(queries, "float32"),
                            ops.cast(keys, "float32")) / np.sqrt(self.key_dim)
        rows = ops.arange(time)[:, None] + (num_keys - time)
        allowed = ops.arange(num_keys)[None, :] <= rows  # causal_mask(time, num_keys)
        scores = ops.where(allowed[None, None], scores, -1e9)
        weights = ops.softmax(scores, axis=-1)
        mixed = ops.einsum("bhqk,bhkd->bhqd", weights, ops.cast(values, "float32"))
        mixed = ops.reshape(ops.transpose(mixed, (0, 2, 1, 3)),
                            (batch, time, self.num_heads * self.key_dim))
        return self.out(ops.cast(mixed, x.dtype)), (keys, values), weights

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TransformerBlock(layers.Layer):
    """Pre-norm Transformer block (as in GPT-2): x + attention(norm(x)), then
    x + MLP(norm(x)), the MLP widening to `mlp_dim` with a GELU."""

    def __init__(self, num_heads, key_dim, mlp_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim, self.mlp_dim, self.dropout_rate = (
            num_heads, key_dim, mlp_dim, dropout)

    def build(self, input_shape):
        width = input_shape[-1]
        self.norm1 = layers.LayerNormalization(epsilon=1e-5, name="norm1")
        self.attention = CausalSelfAttention(self.num_heads, self.key_dim, name="attention")
        self.norm2 = layers.LayerNormalization(epsilon=1e-5, name="norm2")
        self.hidden = layers.Dense(self.mlp_dim, activation="gelu", name="hidden")
        self.project = layers.Dense(width, name="project")
        self.dropout = layers.Dropout(self.dropout_rate)
        for layer in (self.norm1, self.attention, self.norm2, self.hidden):
            layer.build(input_shape)
        self.project.build((*input_shape[:-1], self.mlp_dim))

    def call(self, x, cache=None, training=None):
        attended, cache, weights = self.attention(self.norm1(x), cache=cache)
        x = x + self.dropout(attended, training=training)
        x = x + self.dropout(self.project(self.hidden(self.norm2(x))), training=training)
        return x, cache, weights

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "mlp_dim": self.mlp_dim, "dropout": self.dropout_rate}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MiniGPT(keras.Model):
    """A decoder-only Transformer over token ids.

    Args:
        vocabulary_size: the number of ids.
        max_length: the longest sequence (prompt and generated tokens) it can read: the
            number of learned position embeddings.
        width: the size of every position's vector.
        num_layers, num_heads: blocks, and attention heads per block (key_dim = width /
            num_heads).
        mlp_dim: the hidden width of each block's MLP (4 * width by default).
        dropout: on the blocks' outputs while training.

    Call arguments:
        ids: (batch, time) ints.
        cache: None, or the list of per-block (keys, values) of the positions before ids.
        return_cache: also return the updated cache (and the attention weights).

    Returns:
        logits (batch, time, vocabulary_size) in float32; with `return_cache`,
        (logits, cache, attention weights per block).
    """

    def __init__(self, vocabulary_size, max_length=256, width=128, num_layers=2, num_heads=4,
                 mlp_dim=None, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if width % num_heads:
            raise ValueError(f"width {width} must be a multiple of num_heads {num_heads}.")
        self.vocabulary_size, self.max_length, self.width = vocabulary_size, max_length, width
        self.num_layers, self.num_heads = num_layers, num_heads
        self.mlp_dim, self.dropout_rate = mlp_dim or 4 * width, dropout
        self.token_embedding = layers.Embedding(vocabulary_size, width, name="tokens")
        self.position_embedding = layers.Embedding(max_length, width, name="positions")
        self.blocks = [TransformerBlock(num_heads, width // num_heads, self.mlp_dim, dropout,
                                        name=f"block{i}") for i in range(num_layers)]
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="norm")
        self.head = layers.Dense(vocabulary_size, dtype="float32", name="head")

    def call(self, ids, cache=None, return_cache=False, training=None):
        time = ids.shape[1]
        past = 0 if cache is None else cache[0][0].shape[2]
        if time is not None and past is not None and past + time > self.max_length:
            raise ValueError(
                f"{past + time} tokens do not fit in the model's context of "
                f"{self.max_length}: shorten the prompt, generate fewer tokens, or build the "
                "model with a larger max_length.")
        positions = ops.arange(ops.shape(ids)[1]) + (0 if cache is None
                                                     else ops.shape(cache[0][0])[2])
        x = self.token_embedding(ids) + self.position_embedding(positions)[None]
        new_cache, attention = [], []
        for i, block in enumerate(self.blocks):
            x, block_cache, weights = block(x, cache=None if cache is None else cache[i],
                                            training=training)
            new_cache.append(block_cache)
            attention.append(weights)
        logits = self.head(self.norm(x))
        return (logits, new_cache, attention) if return_cache else logits

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "max_length": self.max_length, "width": self.width,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim, "dropout": self.dropout_rate}


def gpt_step(model, use_cache=True):
    """The `course_lib.decoding` step function of a `MiniGPT`, compiled with `tf.function`.

    With `use_cache` the state is the KV cache, and each new token costs one position's
    work; without it the state is the whole sequence so far, and every step runs the
    model over all of it (the same logits, for comparison). `reduce_retracing` lets the
    compiled step accept the growing lengths without tracing it again at every step.
    """
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def next_logits(ids):
        return model(ids)[:, -1]

    @tf.function(reduce_retracing=True)
    def next_logits_cached(ids, cache):
        logits, cache, _ = model(ids, cache=cache, return_cache=True)
        return logits[:, -1], cache

    def check(length):  # the compiled call cannot raise MiniGPT's clear error itself
        if length > model.max_length:
            raise ValueError(
                f"{length} tokens do not fit in the model's context of {model.max_length}: "
                "shorten the prompt, generate fewer tokens, or build the model with a larger "
                "max_length.")

    def cached(ids, state):
        ids = tf.constant(np.asarray(ids, np.int32))
        check(ids.shape[1] + (0 if state is None else state[0][0].shape[2]))
        if state is None:  # the prompt: its length differs from the one-token steps
            logits, cache, _ = model(ids, return_cache=True)
            return ops.convert_to_numpy(logits[:, -1]), cache
        logits, cache = next_logits_cached(ids, state)
        return ops.convert_to_numpy(logits), cache

    def recomputed(ids, state):
        ids = np.asarray(ids, np.int32)
        sequence = ids if state is None else np.concatenate([state, ids], axis=1)
        check(sequence.shape[1])
        return ops.convert_to_numpy(next_logits(tf.constant(sequence))), sequence

    return cached if use_cache else recomputed


def windowed_log2_probs(model, ids, stride=None, batch_size=32):
    """log2 P(ids[t] | up to max_length ids before it) for t = 1 .. len(ids) - 1.

    A Transformer reads at most `model.max_length` positions, so the text is scored in
    windows of that length that overlap: each window scores only its last `stride`
    positions (half the context by default), which therefore see at least
    max_length - stride characters of context; the first window scores all of its own.
    """
    ids = np.asarray(ids, np.int32).reshape(-1)
    context = model.max_length
    stride = stride or context // 2
    if not 0 < stride <= context:
        raise ValueError(f"stride must be in (0, {context}], got {stride}.")
    if len(ids) < 2:
        raise ValueError(f"need at least 2 characters to score, got {len(ids)}.")
    starts = list(range(0, max(len(ids) - context - 1, 0) + stride, stride))
    windows, keep = [], []
    for start in starts:
        window = ids[start:start + context + 1]
        first = 0 if start == 0 else context - stride  # predictions already scored: skip
        if start + first + 1 >= len(ids):
            break
        windows.append(np.pad(window, (0, context + 1 - len(window))))
        keep.append((first, len(window) - 1))
    results = []
    for i in range(0, len(windows), batch_size):
        batch = np.stack(windows[i:i + batch_size])
        logits = ops.convert_to_numpy(model(batch[:, :-1])).astype(np.float64)
        logits -= logits.max(-1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, batch[:, 1:, None], axis=-1)[..., 0]
        for row, (first, last) in zip(picked, keep[i:i + batch_size]):
            results.append(row[first:last])
    return np.concatenate(results) / np.log(2)
