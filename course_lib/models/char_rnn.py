"""A character-level recurrent language model, scored exactly on a long text.

    CharRNN             embedding -> GRU or LSTM -> logits over the next character; one
                        step at a time with `return_state`, for generation
    stream_log2_probs   log2 P(each character | everything before it) over a whole text,
                        the number n-gram models are compared on
    mixture_bits        bits per character of a mixture of two models' probabilities
    fit_char_rnn        notebook 1's training recipe, cached for the notebooks after it

The model is trained with teacher forcing: on a window of characters x_1..x_T it predicts
x_2..x_{T+1}, each from all the characters before it, and the loss is the mean
cross-entropy -log P(x_{t+1} | x_1..x_t), in nats (divide by ln 2 for bits).
"""

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "course_lib"
CELLS = {"gru": layers.GRU, "lstm": layers.LSTM}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CharRNN(keras.Model):
    """Embedding, one recurrent layer, dropout and a dense layer to next-character logits.

    Args:
        vocabulary_size: the number of ids (`course_lib.data.CharVocabulary.size`).
        embedding_dim: size of each character's learned vector.
        units: the recurrent layer's state size.
        cell: "gru" or "lstm".
        dropout: dropout rate on the recurrent layer's outputs while training.

    Call arguments:
        ids: int tensor (batch, time).
        states: the recurrent state(s) to start from (None: zeros), as returned with
            `return_state=True`.
        return_state: also return the final states, to continue from them.

    Returns:
        logits (batch, time, vocabulary_size) in float32, and with `return_state` the list
        of states (one for a GRU, two for an LSTM).
    """

    def __init__(self, vocabulary_size, embedding_dim=64, units=256, cell="gru", dropout=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.vocabulary_size, self.embedding_dim = vocabulary_size, embedding_dim
        self.units, self.cell, self.dropout_rate = units, cell, dropout
        self.embedding = layers.Embedding(vocabulary_size, embedding_dim)
        self.rnn = CELLS[cell](units, return_sequences=True, return_state=True)
        self.dropout = layers.Dropout(dropout)
        # float32 logits, also under mixed precision: the softmax needs the range
        self.head = layers.Dense(vocabulary_size, dtype="float32")

    def call(self, ids, states=None, return_state=False, training=None):
        outputs, *states = self.rnn(self.embedding(ids), initial_state=states,
                                    training=training)
        logits = self.head(self.dropout(outputs, training=training))
        return (logits, states) if return_state else logits

    def generate(self, prompt_ids, num_chars, temperature=1.0, seed=0):
        """Samples `num_chars` ids after `prompt_ids`, each from softmax(logits / T).

        The prompt is read once; each new character then costs one step of the recurrent
        layer (its state carries the whole history). Returns the new ids, int32.
        """
        prompt_ids = np.asarray(prompt_ids, np.int32).reshape(-1)
        if prompt_ids.size == 0:
            raise ValueError("the prompt is empty: give at least one character to start from.")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature} (for the single "
                             "most likely character, take the argmax of the logits).")
        rng = np.random.default_rng(seed)
        logits, states = self(prompt_ids[None], return_state=True)
        generated = []
        for _ in range(num_chars):
            scaled = ops.convert_to_numpy(logits[0, -1]).astype(np.float64) / temperature
            probabilities = np.exp(scaled - scaled.max())
            next_id = rng.choice(self.vocabulary_size, p=probabilities / probabilities.sum())
            generated.append(next_id)
            logits, states = self(np.array([[next_id]], np.int32), states, return_state=True)
        return np.array(generated, np.int32)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim, "units": self.units, "cell": self.cell,
                "dropout": self.dropout_rate}


def stream_log2_probs(model, ids, num_streams=16, warmup=256):
    """log2 P(ids[t] | ids[:t]) for t = 1 .. len(ids) - 1, as one float64 array.

    The text is cut into `num_streams` pieces scored side by side (a batch); each piece is
    first fed the `warmup` characters before it, whose predictions are dropped, so every
    character is predicted from at least `warmup` characters of context (or all of them,
    near the start) - as in one pass over the whole text, but in parallel.
    `model(ids)` must return next-character logits for every position.
    """
    ids = np.asarray(ids, np.int32).reshape(-1)
    if len(ids) < 2:
        raise ValueError(f"need at least 2 characters to score, got {len(ids)}.")
    targets = len(ids) - 1  # positions 1 .. len - 1
    piece = -(-targets // num_streams)  # ceil
    starts = np.arange(0, targets, piece)  # each piece predicts ids[s + 1 : s + 1 + piece]
    rows, masks = [], []
    for start in starts:
        first = max(0, start - warmup)  # inputs ids[first : start + piece]
        window = ids[first:start + piece + 1]
        # Padding goes on the right, after the text: a causal model's earlier outputs
        # never see it.
        row = np.zeros(warmup + piece + 1, np.int32)
        row[:len(window)] = window
        mask = np.zeros(warmup + piece, bool)
        mask[start - first:len(window) - 1] = True  # predictions of ids[start + 1 ...]
        rows.append(row)
        masks.append(mask)
    rows, masks = np.stack(rows), np.stack(masks)
    logits = ops.convert_to_numpy(model(rows[:, :-1], training=False)).astype(np.float64)
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, rows[:, 1:, None], axis=-1)[..., 0]
    return picked[masks] / np.log(2)


def mixture_bits(log2_p, log2_q, weight):
    """Bits per character of the mixture weight * p + (1 - weight) * q, from two models'
    log2 probabilities of the same characters."""
    if not 0 <= weight <= 1:
        raise ValueError(f"weight must be in [0, 1], got {weight}.")
    log2_p, log2_q = np.asarray(log2_p, np.float64), np.asarray(log2_q, np.float64)
    if log2_p.shape != log2_q.shape:
        raise ValueError(f"the two models scored different texts: shapes {log2_p.shape} and "
                         f"{log2_q.shape}.")
    mixed = weight * np.exp2(log2_p) + (1 - weight) * np.exp2(log2_q)
    return float(-np.mean(np.log2(mixed)))


def fit_char_rnn(train_ids, validation_ids, vocabulary_size, units=384, dropout=0.3,
                 num_epochs=12, seq_len=100, batch_size=32, learning_rate=3e-3, cell="gru",
                 callbacks=(), cache=True):
    """A `CharRNN` trained with the recipe of notebooks/04_text/01_language_models.ipynb.

    Adam with gradients clipped to norm 1; the learning rate cut to 30% when the validation
    loss improves by less than 0.005 nats (`ReduceLROnPlateau`); early stopping after two
    epochs without improvement, keeping the best weights. With `cache`, the weights are
    kept in the course cache under a name made from the recipe and a hash of the training
    ids, and loaded instead of trained when they are there. Returns the model.
    """
    import hashlib

    from course_lib.data import char_windows
    from course_lib.runtime import cache_dir

    train_ids = np.asarray(train_ids, np.int32)
    recipe = (vocabulary_size, units, dropout, num_epochs, seq_len, batch_size, learning_rate,
              cell, hashlib.sha1(train_ids.tobytes()).hexdigest()[:12])
    name = "char_rnn_" + hashlib.sha1(repr(recipe).encode()).hexdigest()[:16] + ".weights.h5"
    path = cache_dir("text") / name
    model = CharRNN(vocabulary_size, embedding_dim=64, units=units, cell=cell, dropout=dropout)
    model(np.zeros((1, 1), np.int32))  # build the weights
    if cache and path.exists():
        model.load_weights(path)
        return model
    model.compile(keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(char_windows(train_ids, seq_len, batch_size, seed=0),
              validation_data=char_windows(validation_ids, seq_len, batch_size, shuffle=False),
              epochs=num_epochs, verbose=0,
              callbacks=[keras.callbacks.ReduceLROnPlateau(factor=0.3, patience=0,
                                                           min_delta=0.005),
                         keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True),
                         *callbacks])
    if cache:
        temporary = path.with_name(path.name.replace(".weights.h5", ".partial.weights.h5"))
        model.save_weights(temporary)
        temporary.replace(path)  # whole or not at all
    return model
