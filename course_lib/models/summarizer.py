"""Summarizers: a sequence-to-sequence model that can copy, and a BERT-style sentence picker.

    encode_pairs         documents and summaries as padded id arrays, with each document's
                         unknown words given ids past the vocabulary so they can be copied
    PointerGenerator     a bidirectional-GRU encoder, a GRU decoder with attention, and a
                         switch between writing a vocabulary word and copying a source word
                         (See et al. 2017, "Get to the point")
    greedy_summaries     batched greedy decoding, optionally blocking repeated trigrams
    TextEncoder          a Transformer encoder over [CLS] s1 [SEP] [CLS] s2 [SEP] ... with
                         token, position and interval-segment embeddings (Liu and Lapata 2019)
    MaskedLanguageModel  BERT's pretraining task on it: predict the words hidden under [MASK]
                         (Devlin et al. 2019)
    SentenceScorer       a score for each sentence, read at its [CLS]; trained to pick the
                         sentence closest to the summary
    encode_sentences     documents as the SentenceScorer's inputs

The pointer-generator's probability of the next word w, with attention a_i over the source
positions, the decoder state s_t, the attention context c_t and the input x_t:

    p_gen = sigmoid(w . [s_t; c_t; x_t])
    P(w)  = p_gen P_vocab(w) + (1 - p_gen) sum_{i: source_i = w} a_i

so a word that is not in the vocabulary (a function's name, an argument) can still be written
by copying it, and the model learns when to copy.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from course_lib.data.summaries import WordVocabulary, tokenize

PACKAGE = "course_lib"


# -- sequence to sequence ----------------------------------------------------------------------
def encode_pairs(pairs, vocab, max_document=150, max_summary=24):
    """Arrays for `PointerGenerator`: a dict of int32 arrays and, per pair, the list of its
    document's words that the vocabulary lacks (their ids are vocab.size, vocab.size + 1, ...
    in the order they first occur).

        source       (N, max_document) document ids, unknown words as UNK, 0-padded
        source_ext   the same with unknown words as their extended ids
        decoder_in   (N, max_summary + 1) BOS then the summary (unknown words as UNK)
        target       the summary then EOS, unknown words that occur in the document as
                     their extended ids (so copying them is rewarded), others as UNK
    """
    if max_document < 1 or max_summary < 1:
        raise ValueError("max_document and max_summary must be at least 1.")
    n = len(pairs)
    arrays = {"source": np.zeros((n, max_document), np.int32),
              "source_ext": np.zeros((n, max_document), np.int32),
              "decoder_in": np.zeros((n, max_summary + 1), np.int32),
              "target": np.zeros((n, max_summary + 1), np.int32)}
    oovs = []
    for row, pair in enumerate(pairs):
        words = tokenize(pair["document"])[:max_document]
        if not words:
            raise ValueError(f"pair {pair.get('id', row)!r} has an empty document.")
        extra = []
        for col, word in enumerate(words):
            i = vocab.id(word)
            arrays["source"][row, col] = i
            if i == vocab.UNK:
                if word not in extra:
                    extra.append(word)
                i = vocab.size + extra.index(word)
            arrays["source_ext"][row, col] = i
        oovs.append(extra)
        summary = tokenize(pair.get("summary", ""))[:max_summary]
        ids = [vocab.id(w) for w in summary]
        ext = [vocab.size + extra.index(w) if i == vocab.UNK and w in extra else i
               for w, i in zip(summary, ids)]
        arrays["decoder_in"][row, :len(ids) + 1] = [vocab.BOS, *ids]
        arrays["target"][row, :len(ext) + 1] = [*ext, vocab.EOS]
    return arrays, oovs


@keras.saving.register_keras_serializable(package=PACKAGE)
class PointerGenerator(keras.Model):
    """Encoder-decoder with attention and (if `copy`) a pointer to the source.

    Call it with a dict of `encode_pairs` arrays; it returns the log-probability of each
    target word (B, T). `copy=False` is the same network without the pointer: it can only
    write vocabulary words, so unknown words become <unk>.
    """

    def __init__(self, vocabulary_size, embedding_dim=128, units=128, copy=True, dropout=0.1,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.embedding_dim, self.units = (
            vocabulary_size, embedding_dim, units)
        self.copy, self.dropout_rate = copy, dropout
        self.embed = layers.Embedding(vocabulary_size, embedding_dim, name="embed")
        self.encoder = layers.Bidirectional(
            layers.GRU(units, return_sequences=True, return_state=True), name="encoder")
        self.bridge = layers.Dense(2 * units, activation="tanh", name="bridge")
        self.decoder = layers.GRU(2 * units, return_sequences=True, return_state=True,
                                  name="decoder")
        self.attend = layers.Dense(2 * units, use_bias=False, name="attend")
        self.combine = layers.Dense(2 * units, activation="tanh", name="combine")
        # the distributions in float32 under mixed precision: a log of 1e-9 needs it
        self.vocab_out = layers.Dense(vocabulary_size, name="vocab_out", dtype="float32")
        self.switch = layers.Dense(1, name="switch", dtype="float32")
        self.drop = layers.Dropout(dropout)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def _embed(self, ids, training=None):
        known = ops.where(ids < self.vocabulary_size, ids, WordVocabulary.UNK)
        return self.drop(self.embed(known), training=training)

    def encode(self, source, training=None):
        """Encoder states (B, S, 2 units), the decoder's first state, and the source mask."""
        mask = ops.not_equal(source, 0)
        states, forward, backward = self.encoder(self._embed(source, training), mask=mask,
                                                 training=training)
        return states, self.bridge(ops.concatenate([forward, backward], axis=-1)), mask

    def decode(self, decoder_in, state, states, mask, training=None):
        """One or more decoder steps (teacher forcing when T > 1): the vocabulary
        distribution (B, T, V), the attention (B, T, S), p_gen (B, T, 1) and the new state."""
        inputs = self._embed(decoder_in, training)
        outputs, state = self.decoder(inputs, initial_state=state, training=training)
        scores = ops.cast(ops.einsum("btd,bsd->bts", self.attend(outputs), states), "float32")
        # Luong et al. 2015's "general" score s_t W h_i, after the decoder step
        scores = ops.where(mask[:, None, :], scores, -1e9)
        attention = ops.softmax(scores, axis=-1)
        context = ops.einsum("bts,bsd->btd", ops.cast(attention, states.dtype), states)
        hidden = self.drop(self.combine(ops.concatenate([outputs, context], axis=-1)),
                           training=training)
        vocab = ops.softmax(self.vocab_out(hidden), axis=-1)
        if self.copy:
            p_gen = ops.sigmoid(self.switch(ops.concatenate([outputs, context, inputs], -1)))
        else:
            p_gen = ops.ones_like(attention[..., :1])
        return vocab, attention, p_gen, state

    def call(self, batch, training=None):
        states, state, mask = self.encode(batch["source"], training)
        vocab, attention, p_gen, _ = self.decode(batch["decoder_in"], state, states, mask,
                                                 training)
        target = batch["target"]
        if not self.copy:  # it cannot copy, so an unknown word is scored as writing <unk>
            target = ops.where(target < self.vocabulary_size, target, WordVocabulary.UNK)
        in_vocab = target < self.vocabulary_size
        written = ops.take_along_axis(vocab, ops.where(in_vocab, target, 0)[..., None], -1)
        written = ops.where(in_vocab, written[..., 0], 0.0)
        copied = ops.sum(attention * ops.cast(
            ops.equal(batch["source_ext"][:, None, :], target[..., None]), attention.dtype), -1)
        probability = p_gen[..., 0] * written + (1.0 - p_gen[..., 0]) * copied
        return ops.log(probability + 1e-9)

    def _loss(self, batch, training):
        log_probs = self(batch, training=training)
        weights = ops.cast(ops.not_equal(batch["target"], 0), log_probs.dtype)
        return -ops.sum(log_probs * weights) / ops.sum(weights), ops.sum(weights)

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            loss, words = self._loss(batch, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.loss_tracker.update_state(loss, sample_weight=words)  # per word, not per batch
        return {"loss": self.loss_tracker.result()}

    def test_step(self, batch):
        loss, words = self._loss(batch, training=False)
        self.loss_tracker.update_state(loss, sample_weight=words)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]

    def next_word_distribution(self, vocab, attention, p_gen, source_ext, num_extra):
        """The mixed distribution over the vocabulary and the source's extra words for one
        step: (B, V + num_extra), from `decode`'s outputs for that step ((B, V), (B, S),
        (B, 1))."""
        batch = ops.shape(vocab)[0]
        mixed = ops.concatenate([p_gen * vocab, ops.zeros((batch, num_extra), vocab.dtype)], -1)
        rows = ops.repeat(ops.arange(batch)[:, None], ops.shape(source_ext)[1], axis=1)
        indices = ops.stack([rows, source_ext], axis=-1)
        copied = (1.0 - p_gen) * attention * ops.cast(ops.not_equal(source_ext, 0), vocab.dtype)
        return tf.tensor_scatter_nd_add(mixed, tf.reshape(indices, (-1, 2)),
                                        tf.reshape(copied, (-1,)))

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim, "units": self.units, "copy": self.copy,
                "dropout": self.dropout_rate}


def pair_dataset(arrays, batch_size=32, shuffle=True, seed=0):
    """A `tf.data` pipeline of `encode_pairs` batches (dicts of int32 tensors)."""
    dataset = tf.data.Dataset.from_tensor_slices(arrays)
    if shuffle:
        dataset = dataset.shuffle(len(arrays["source"]), seed=seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def greedy_summaries(model, arrays, oovs, vocab, max_length=24, block_trigrams=True,
                     batch_size=128):
    """Summaries (strings) written one word at a time, always the most probable word. With
    `block_trigrams`, a word that would repeat a trigram already written gets probability 0
    (Paulus et al. 2018): greedy decoders otherwise loop ("the the the")."""
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}.")

    @tf.function(reduce_retracing=True)
    def step(token, state, states, mask, source_ext, num_extra):
        vocab_p, attention, p_gen, state = model.decode(token[:, None], state, states, mask)
        probs = model.next_word_distribution(vocab_p[:, 0], attention[:, 0], p_gen[:, 0],
                                             source_ext, num_extra)
        return probs, state

    summaries = []
    for start in range(0, len(arrays["source"]), batch_size):
        source = arrays["source"][start:start + batch_size]
        source_ext = arrays["source_ext"][start:start + batch_size]
        extras = oovs[start:start + batch_size]
        num_extra = max(1, max(len(e) for e in extras))
        states, state, mask = model.encode(source)
        token = np.full(len(source), vocab.BOS, np.int32)
        written = np.zeros((len(source), max_length), np.int32)
        done = np.zeros(len(source), bool)
        for t in range(max_length):
            probs, state = step(tf.constant(token), state, states, mask,
                                tf.constant(source_ext), tf.constant(num_extra))
            probs = probs.numpy()
            probs[:, vocab.PAD] = probs[:, vocab.BOS] = 0.0
            if block_trigrams and t >= 2:
                for b in range(len(source)):
                    seen = {tuple(written[b, i:i + 3]) for i in range(t - 2)}
                    for a, c, w in seen:
                        if (a, c) == tuple(written[b, t - 2:t]):
                            probs[b, w] = 0.0
            token = probs.argmax(axis=-1).astype(np.int32)
            token[done] = vocab.PAD
            written[:, t] = token
            done |= token == vocab.EOS
            if done.all():
                break
        summaries += [vocab.decode(row, extra) for row, extra in zip(written, extras)]
    return summaries


# -- a BERT-style encoder that picks sentences ---------------------------------------------------
def encode_sentences(pairs, vocab, max_length=128, max_sentences=12, sentence_scores=None):
    """Inputs for `TextEncoder`/`SentenceScorer`: [CLS] s1 [SEP] [CLS] s2 [SEP] ..., cut at
    `max_length` tokens and `max_sentences` sentences.

    Returns a dict: `tokens` and `segments` (N, max_length) (segments alternate 0, 1 between
    sentences), `cls` (N, max_sentences) the position of each sentence's [CLS] and
    `sentence_mask` which of them exist; with `sentence_scores` (a score for each sentence of
    each pair, e.g. its ROUGE against the summary), `label`: the best-scored sentence among
    those that fit.
    """
    n = len(pairs)
    batch = {"tokens": np.zeros((n, max_length), np.int32),
             "segments": np.zeros((n, max_length), np.int32),
             "cls": np.zeros((n, max_sentences), np.int32),
             "sentence_mask": np.zeros((n, max_sentences), bool)}
    for row, pair in enumerate(pairs):
        position = 0
        for k, sentence in enumerate(pair["sentences"][:max_sentences]):
            ids = [vocab.CLS, *vocab.encode(sentence), vocab.SEP]
            if position + 3 > max_length:  # not even [CLS] word [SEP] fits
                break
            ids = ids[:max_length - position]
            batch["tokens"][row, position:position + len(ids)] = ids
            batch["segments"][row, position:position + len(ids)] = k % 2
            batch["cls"][row, k] = position
            batch["sentence_mask"][row, k] = True
            position += len(ids)
        if not batch["sentence_mask"][row].any():
            raise ValueError(f"pair {pair.get('id', row)!r} has no sentences.")
    if sentence_scores is not None:
        if len(sentence_scores) != n:
            raise ValueError(f"got sentence scores for {len(sentence_scores)} pairs, not {n}.")
        fits = batch["sentence_mask"].sum(axis=1)
        batch["label"] = np.array([int(np.argmax(np.asarray(scores)[:k]))
                                   for scores, k in zip(sentence_scores, fits)], np.int32)
    return batch


@keras.saving.register_keras_serializable(package=PACKAGE)
class EncoderBlock(layers.Layer):
    """Pre-norm Transformer encoder block: every token attends to every other (not a causal
    mask), except padding."""

    def __init__(self, num_heads, key_dim, mlp_dim, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim, self.mlp_dim, self.dropout_rate = (
            num_heads, key_dim, mlp_dim, dropout)

    def build(self, input_shape):
        width = input_shape[-1]
        self.norm1 = layers.LayerNormalization(epsilon=1e-5)
        self.attention = layers.MultiHeadAttention(self.num_heads, self.key_dim,
                                                   dropout=self.dropout_rate)
        self.norm2 = layers.LayerNormalization(epsilon=1e-5)
        self.hidden = layers.Dense(self.mlp_dim, activation="gelu")
        self.project = layers.Dense(width)
        self.drop = layers.Dropout(self.dropout_rate)

    def call(self, x, mask, training=None):
        h = self.norm1(x)
        x = x + self.drop(self.attention(h, h, attention_mask=mask[:, None, :],
                                         training=training), training=training)
        return x + self.drop(self.project(self.hidden(self.norm2(x))), training=training)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "mlp_dim": self.mlp_dim, "dropout": self.dropout_rate}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TextEncoder(keras.Model):
    """Token + position + segment embeddings, `num_layers` encoder blocks, a final norm:
    (tokens, segments) (B, L) -> states (B, L, width)."""

    def __init__(self, vocabulary_size, max_length=256, width=128, num_layers=2, num_heads=4,
                 dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.max_length, self.width = vocabulary_size, max_length, width
        self.num_layers, self.num_heads, self.dropout_rate = num_layers, num_heads, dropout
        self.tokens = layers.Embedding(vocabulary_size, width, name="tokens")
        self.positions = layers.Embedding(max_length, width, name="positions")
        self.segments = layers.Embedding(2, width, name="segments")
        self.blocks = [EncoderBlock(num_heads, width // num_heads, 4 * width, dropout,
                                    name=f"block{i}") for i in range(num_layers)]
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="norm")
        self.drop = layers.Dropout(dropout)

    def call(self, tokens, segments, training=None):
        length = ops.shape(tokens)[1]
        if isinstance(length, int) and length > self.max_length:
            raise ValueError(f"inputs of {length} tokens are longer than this encoder's "
                             f"max_length={self.max_length}; cut them (encode_sentences does).")
        x = (self.tokens(tokens) + self.positions(ops.arange(length))[None]
             + self.segments(segments))
        x = self.drop(x, training=training)
        mask = ops.not_equal(tokens, 0)
        for block in self.blocks:
            x = block(x, mask, training=training)
        return self.norm(x)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "max_length": self.max_length, "width": self.width,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "dropout": self.dropout_rate}


def mask_tokens(tokens, vocab_size, rate=0.15, seed=None):
    """BERT's corruption: choose `rate` of the real words (not padding or [CLS]/[SEP]); of
    those, 80% become [MASK], 10% a random word, 10% stay. Returns (corrupted, chosen)."""
    rng = np.random.default_rng(seed)
    tokens = np.asarray(tokens)
    words = tokens >= len(WordVocabulary.SPECIALS)
    chosen = words & (rng.random(tokens.shape) < rate)
    action = rng.random(tokens.shape)
    corrupted = np.where(chosen & (action < 0.8), WordVocabulary.MASK, tokens)
    random_words = rng.integers(len(WordVocabulary.SPECIALS), vocab_size, tokens.shape)
    corrupted = np.where(chosen & (action >= 0.8) & (action < 0.9), random_words, corrupted)
    return corrupted.astype(np.int32), chosen


class _ClassifierOnEncoder(keras.Model):
    """A head on a `TextEncoder` trained with a softmax cross-entropy; subclasses give
    `_step(batch, training) -> (loss, accuracy, examples)`. Loss and accuracy are tracked as
    means over examples, so a last, smaller batch does not count as much as a full one."""

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy = keras.metrics.Mean(name="accuracy")

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            loss, accuracy, count = self._step(batch, True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._track(loss, accuracy, count)

    def test_step(self, batch):
        return self._track(*self._step(batch, False))

    def _track(self, loss, accuracy, count):
        self.loss_tracker.update_state(loss, sample_weight=count)
        self.accuracy.update_state(accuracy, sample_weight=count)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy.result()}

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy]


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedLanguageModel(_ClassifierOnEncoder):
    """BERT's pretraining on a `TextEncoder`: cross-entropy of the original words at the
    chosen positions only. Train on batches of {"tokens", "segments", "target", "chosen"}
    (see `mlm_dataset`)."""

    def __init__(self, encoder, **kwargs):
        super().__init__(encoder, **kwargs)
        self.transform = layers.Dense(encoder.width, activation="gelu", name="transform")
        self.head_norm = layers.LayerNormalization(epsilon=1e-5, name="head_norm")
        self.head = layers.Dense(encoder.vocabulary_size, name="head", dtype="float32")

    def call(self, batch, training=None):
        """Logits over the vocabulary at the chosen positions only, (M, V) for the M chosen
        tokens of the batch: the output layer is the costly part, and BERT, too, computes it
        only where there is something to predict."""
        states = self.encoder(batch["tokens"], batch["segments"], training=training)
        chosen = tf.boolean_mask(states, batch["chosen"])
        return self.head(self.head_norm(self.transform(chosen)))

    def _step(self, batch, training):
        logits = self(batch, training=training)
        target = tf.boolean_mask(batch["target"], batch["chosen"])
        loss = ops.mean(keras.losses.sparse_categorical_crossentropy(target, logits,
                                                                     from_logits=True))
        right = ops.equal(ops.argmax(logits, -1), ops.cast(target, "int64"))
        examples = ops.cast(ops.shape(target)[0], "float32")
        return loss, ops.mean(ops.cast(right, "float32")), examples



def mlm_dataset(tokens, segments, vocab_size, batch_size=32, rate=0.15, seed=0):
    """A `tf.data` pipeline for `MaskedLanguageModel`, with fresh masks every epoch (the
    masking runs in `tf.numpy_function`, seeded per epoch)."""
    tokens, segments = np.asarray(tokens, np.int32), np.asarray(segments, np.int32)
    rng = np.random.default_rng(seed)

    def corrupt(batch_tokens):
        corrupted, chosen = mask_tokens(batch_tokens, vocab_size, rate, rng.integers(2**31))
        return corrupted, chosen

    @tf.autograph.experimental.do_not_convert  # plain graph code; NumPy does the masking
    def add_masks(batch):
        corrupted, chosen = tf.numpy_function(corrupt, [batch["target"]], (tf.int32, tf.bool))
        corrupted.set_shape(batch["target"].shape)
        chosen.set_shape(batch["target"].shape)
        return {**batch, "tokens": corrupted, "chosen": chosen}

    dataset = tf.data.Dataset.from_tensor_slices({"target": tokens, "segments": segments})
    return (dataset.shuffle(len(tokens), seed=seed).batch(batch_size).map(add_masks)
            .prefetch(tf.data.AUTOTUNE))


@keras.saving.register_keras_serializable(package=PACKAGE)
class SentenceScorer(_ClassifierOnEncoder):
    """A score for each sentence from the encoder's state at its [CLS]; the loss is the
    softmax cross-entropy of the right sentence among the document's sentences."""

    def __init__(self, encoder, **kwargs):
        super().__init__(encoder, **kwargs)
        self.score = layers.Dense(1, name="score", dtype="float32")

    def call(self, batch, training=None):
        states = self.encoder(batch["tokens"], batch["segments"], training=training)
        at_cls = ops.take_along_axis(states, batch["cls"][..., None], axis=1)
        logits = self.score(at_cls)[..., 0]
        return ops.where(batch["sentence_mask"], logits, -1e9)

    def _step(self, batch, training):
        logits = self(batch, training=training)
        loss = ops.mean(keras.losses.sparse_categorical_crossentropy(
            batch["label"], logits, from_logits=True))
        right = ops.equal(ops.argmax(logits, -1), ops.cast(batch["label"], "int64"))
        examples = ops.cast(ops.shape(logits)[0], "float32")
        return loss, ops.mean(ops.cast(right, "float32")), examples


    def pick(self, batch, batch_size=128):
        """The index of the best-scored sentence of each document."""
        picks = []
        keys = ("tokens", "segments", "cls", "sentence_mask")
        for start in range(0, len(batch["tokens"]), batch_size):
            part = {k: batch[k][start:start + batch_size] for k in keys}
            picks.append(ops.convert_to_numpy(ops.argmax(self(part), -1)))
        return np.concatenate(picks).astype(int)


def fine_tune_picker(encoder, train_sentences, validation_sentences, epochs, batch_size=32,
                     learning_rate=3e-4, seed=42, steps_per_epoch=None, callbacks=()):
    """A `SentenceScorer` on `encoder`, trained with AdamW on `encode_sentences` batches (with
    labels) and stopped early on the validation loss (keeping the best weights). Returns the
    picker and its `fit` history (a dict)."""
    keras.utils.set_random_seed(seed)
    picker = SentenceScorer(encoder)
    picker.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01))
    train_ds = tf.data.Dataset.from_tensor_slices(train_sentences).shuffle(
        len(train_sentences["tokens"]), seed=seed).batch(batch_size)
    if steps_per_epoch is not None:
        train_ds = train_ds.repeat()
    validation_ds = tf.data.Dataset.from_tensor_slices(validation_sentences).batch(128)
    history = picker.fit(train_ds, validation_data=validation_ds, epochs=epochs,
                         steps_per_epoch=steps_per_epoch, verbose=0,
                         callbacks=[keras.callbacks.EarlyStopping(
                             patience=1, restore_best_weights=True), *callbacks])
    return picker, history.history
