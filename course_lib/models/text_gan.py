"""A text GAN that can train: Gumbel-softmax samples from a character language model.

    gumbel_softmax       a differentiable stand-in for sampling a token (Jang et al. 2017;
                         Maddison et al. 2017), with the straight-through variant
    sample_soft          a `CharRNN` generating one-hot characters through Gumbel-softmax,
                         so that a discriminator's gradient reaches the generator
    TextDiscriminator    a convolutional critic of (soft) one-hot character sequences
    TextGAN              the adversarial fine-tuning of a generator pretrained by maximum
                         likelihood (non-saturating GAN loss)
    fit_discriminator    trains a discriminator to tell real continuations from generated
                         ones, and returns its accuracy on held-out pairs

Sampling a token, `argmax(logits + g)` with Gumbel noise g = -log(-log u), u ~ U(0, 1), draws
from softmax(logits) (the Gumbel-max trick) but has no gradient: a GAN whose generator samples
tokens cannot learn from its discriminator. Gumbel-softmax replaces the argmax by a softmax at
temperature tau,

    y = softmax((logits + g) / tau),

which tends to the one-hot sample as tau -> 0 and is differentiable. The straight-through
estimator uses the hard one-hot sample forward and y's gradient backward.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

PACKAGE = "course_lib"


def gumbel_softmax(logits, temperature=1.0, hard=False, seed=None):
    """A relaxed one-hot sample from softmax(logits) over the last axis.

    With `hard`, the forward value is the one-hot sample itself (argmax of logits + Gumbel
    noise) and the gradient is that of the relaxed sample (straight-through)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    logits = ops.cast(logits, "float32")
    uniform = keras.random.uniform(ops.shape(logits), minval=1e-10, maxval=1.0, seed=seed)
    gumbel = -ops.log(-ops.log(uniform))
    soft = ops.softmax((logits + gumbel) / temperature, axis=-1)
    if not hard:
        return soft
    one_hot = ops.one_hot(ops.argmax(soft, axis=-1), ops.shape(logits)[-1], dtype=soft.dtype)
    return soft + ops.stop_gradient(one_hot - soft)


def sample_soft(generator, prompt, length, temperature=1.0, hard=True, seed=None,
                training=None):
    """`length` characters from a `CharRNN` after the one-hot `prompt` (batch, P, V), each
    drawn with `gumbel_softmax` and fed back as the next input (its embedding is the one-hot
    times the embedding matrix, so the gradient flows through the choice). `seed`: an int, a
    `keras.random.SeedGenerator` (inside compiled steps) or None. Returns the (batch,
    length, V) samples, prompt excluded."""
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}.")
    if not generator.built:
        generator(np.zeros((1, 1), np.int32))
    embeddings = generator.embedding.embeddings
    inputs = ops.matmul(prompt, ops.cast(embeddings, prompt.dtype))
    outputs, *states = generator.rnn(inputs, training=training)
    if isinstance(seed, int):  # one generator for all steps, so that each draws afresh
        seed = keras.random.SeedGenerator(seed)
    samples = []
    for _ in range(length):
        logits = generator.head(outputs[:, -1:])
        sample = gumbel_softmax(logits, temperature, hard, seed=seed)
        samples.append(sample)
        outputs, *states = generator.rnn(ops.matmul(sample, embeddings), initial_state=states,
                                         training=training)
    return ops.concatenate(samples, axis=1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TextDiscriminator(keras.Model):
    """One-hot characters (batch, time, V) -> one real/fake logit: a linear embedding (so
    soft one-hots work), two 1-D convolutions, max-pooling over time."""

    def __init__(self, vocabulary_size, embedding_dim=32, filters=128, kernel_size=5,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.embedding_dim = vocabulary_size, embedding_dim
        self.filters, self.kernel_size = filters, kernel_size
        self.embed = layers.Dense(embedding_dim, use_bias=False, name="embed")
        self.conv1 = layers.Conv1D(filters, kernel_size, activation="relu", padding="same")
        self.conv2 = layers.Conv1D(filters, kernel_size, activation="relu", padding="same")
        self.pool = layers.GlobalMaxPooling1D()
        self.out = layers.Dense(1, dtype="float32")

    def call(self, one_hot):
        return self.out(self.pool(self.conv2(self.conv1(self.embed(one_hot)))))[:, 0]

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim, "filters": self.filters,
                "kernel_size": self.kernel_size}


class TextGAN(keras.Model):
    """Adversarial training of a `CharRNN` generator against a `TextDiscriminator`.

    Train on batches of real character windows (batch, prompt_length + length) of ids: the
    generator continues each window's first `prompt_length` characters for `length` steps
    with straight-through Gumbel-softmax samples; the discriminator sees the real and the
    generated continuations. Losses are the non-saturating ones of Goodfellow et al. 2014:
    D minimises -log D(real) - log(1 - D(fake)), G minimises -log D(fake); both players
    step on the same samples, each with the gradient taken before either update.
    """

    def __init__(self, generator, discriminator, length=32, prompt_length=1, temperature=1.0,
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.discriminator = generator, discriminator
        vocabulary_size = generator.vocabulary_size
        if not generator.built:  # build both players now, not inside the compiled step
            generator(np.zeros((1, 1), np.int32))
        if not discriminator.built:
            discriminator(np.zeros((1, length, vocabulary_size), np.float32))
        self.length, self.prompt_length, self.temperature = length, prompt_length, temperature
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_tracker = keras.metrics.Mean(name="d_loss")
        self.g_tracker = keras.metrics.Mean(name="g_loss")
        self.real_tracker = keras.metrics.Mean(name="d_real")

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer

    @property
    def metrics(self):
        return [self.d_tracker, self.g_tracker, self.real_tracker]

    def _split(self, ids):
        one_hot = ops.one_hot(ids, self.generator.vocabulary_size)
        return one_hot[:, :self.prompt_length], one_hot[:, self.prompt_length:]

    def train_step(self, ids):
        prompt, real = self._split(ids)
        # One batch of samples serves both players (a simultaneous update): sampling 32
        # characters step by step is the costly part, in compute and in tracing.
        with tf.GradientTape() as tape:
            fake = sample_soft(self.generator, prompt, self.length, self.temperature,
                               seed=self.seed_generator, training=True)
            g_loss = ops.mean(ops.softplus(-self.discriminator(fake)))
        g_grads = tape.gradient(g_loss, self.generator.trainable_variables)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real)
            fake_logits = self.discriminator(ops.stop_gradient(fake))
            d_loss = ops.mean(ops.softplus(-real_logits) + ops.softplus(fake_logits))
        grads = tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        self.d_tracker.update_state(d_loss)
        self.g_tracker.update_state(g_loss)
        self.real_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        return {m.name: m.result() for m in self.metrics}


def gan_windows(ids, prompt_length, length, batch_size, seed=0):
    """Random windows of `prompt_length + length` ids from a text, batched, for `TextGAN`."""
    ids = np.asarray(ids, np.int32)
    width = prompt_length + length
    if len(ids) < width:
        raise ValueError(f"the text has {len(ids)} ids; a window needs {width}.")
    starts = np.arange(0, len(ids) - width + 1, length)
    windows = np.stack([ids[s:s + width] for s in starts])
    return (tf.data.Dataset.from_tensor_slices(windows).shuffle(len(windows), seed=seed)
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def fit_discriminator(discriminator, real_ids, fake_ids, epochs=5, batch_size=64,
                      held_out=0.2, learning_rate=1e-3, seed=0):
    """Trains `discriminator` to tell `real_ids` (label 1) from `fake_ids` (label 0), both
    (n, length) character ids, on all but a `held_out` fraction of each; returns its accuracy
    on that held-out fraction (0.5: it cannot tell them apart).

    Used before adversarial training, so that the generator's first gradients come from a
    critic that already knows something, and as a score in itself: how distinguishable the
    generated text is."""
    real_ids, fake_ids = np.asarray(real_ids, np.int32), np.asarray(fake_ids, np.int32)
    if real_ids.ndim != 2 or real_ids.shape != fake_ids.shape:
        raise ValueError(f"real_ids and fake_ids must both be (n, length) arrays of the same "
                         f"shape, got {real_ids.shape} and {fake_ids.shape}.")
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be in (0, 1), got {held_out}.")
    rng = np.random.default_rng(seed)
    num_held_out = int(round(held_out * len(real_ids)))
    if num_held_out < 1 or num_held_out >= len(real_ids):
        raise ValueError(f"{len(real_ids)} pairs leave nothing to hold out or to train on "
                         f"with held_out={held_out}: give more samples.")
    order = rng.permutation(len(real_ids))
    held, kept = order[:num_held_out], order[num_held_out:]
    x = np.concatenate([real_ids[kept], fake_ids[kept]])
    y = np.concatenate([np.ones(len(kept)), np.zeros(len(kept))]).astype(np.float32)
    ids = keras.Input(real_ids.shape[1:], dtype="int32")
    classifier = keras.Model(ids, discriminator(ops.one_hot(ids, discriminator.vocabulary_size)))
    classifier.compile(keras.optimizers.Adam(learning_rate),
                       keras.losses.BinaryCrossentropy(from_logits=True))
    shuffled = rng.permutation(len(x))
    classifier.fit(x[shuffled], y[shuffled], epochs=epochs, batch_size=batch_size, verbose=0)
    real_logits = ops.convert_to_numpy(classifier.predict(real_ids[held], verbose=0))
    fake_logits = ops.convert_to_numpy(classifier.predict(fake_ids[held], verbose=0))
    return float(np.mean(np.concatenate([real_logits > 0, fake_logits <= 0])))
