"""The text GAN's pieces: Gumbel-softmax samples from the right distribution and carries a
gradient; the generator's soft samples reach its weights; a GAN step trains both players."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib.models.char_rnn import CharRNN
from course_lib.models.text_gan import (
    TextDiscriminator,
    TextGAN,
    fit_discriminator,
    gan_windows,
    gumbel_softmax,
    sample_soft,
)


def test_gumbel_max_samples_the_softmax():
    logits = np.log(np.array([[0.6, 0.3, 0.1]], np.float32)).repeat(20000, axis=0)
    hard = gumbel_softmax(logits, temperature=0.5, hard=True, seed=1).numpy()
    assert set(np.unique(hard)) == {0.0, 1.0} and np.allclose(hard.sum(-1), 1.0)
    assert np.allclose(hard.mean(0), [0.6, 0.3, 0.1], atol=0.015)
    soft = gumbel_softmax(logits[:5], temperature=2.0, seed=2).numpy()
    assert np.allclose(soft.sum(-1), 1.0, atol=1e-5) and (soft < 1).all()
    with pytest.raises(ValueError, match="temperature"):
        gumbel_softmax(logits, temperature=0.0)


def test_straight_through_has_the_soft_gradient():
    logits = tf.Variable([[1.0, 2.0, 0.5]])
    weights = tf.constant([[1.0, -2.0, 3.0]])
    with tf.GradientTape(persistent=True) as tape:
        hard = gumbel_softmax(logits, 1.0, hard=True, seed=3)
        soft = gumbel_softmax(logits, 1.0, hard=False, seed=3)
        hard_value, soft_value = tf.reduce_sum(hard * weights), tf.reduce_sum(soft * weights)
    assert np.allclose(tape.gradient(hard_value, logits), tape.gradient(soft_value, logits))
    assert np.count_nonzero(tape.gradient(hard_value, logits)) == 3


def test_soft_samples_carry_gradients_to_the_generator():
    keras.utils.set_random_seed(0)
    generator = CharRNN(7, embedding_dim=4, units=8)
    generator(np.zeros((1, 1), np.int32))
    prompt = tf.one_hot([[1], [2]], 7)
    with tf.GradientTape() as tape:
        samples = sample_soft(generator, prompt, length=5, seed=0)
        score = tf.reduce_sum(samples * tf.range(7, dtype=tf.float32))
    assert samples.shape == (2, 5, 7) and np.allclose(samples.numpy().sum(-1), 1.0)
    grads = tape.gradient(score, generator.trainable_variables)
    assert all(g is not None for g in grads) and any(np.abs(g).sum() > 0 for g in grads)
    with pytest.raises(ValueError, match="length"):
        sample_soft(generator, prompt, 0)


def _transition_accuracy(generator):
    """How often a sampled character follows the previous one as in "abcdabcd"."""
    prompt = tf.one_hot(np.full((64, 1), 1), 5)
    ids = np.concatenate([np.ones((64, 1), int),
                          sample_soft(generator, prompt, 8, seed=5).numpy().argmax(-1)], 1)
    return np.mean(ids[:, 1:] == ids[:, :-1] % 4 + 1)


@pytest.mark.slow
def test_a_gan_step_trains_both_players():
    keras.utils.set_random_seed(0)
    text = np.tile(np.array([1, 2, 3, 4], np.int32), 200)  # "abcdabcd...": easy to learn
    generator = CharRNN(5, embedding_dim=8, units=16)
    discriminator = TextDiscriminator(5, embedding_dim=8, filters=16, kernel_size=3)
    gan = TextGAN(generator, discriminator, length=8, prompt_length=1)
    gan.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
    before = _transition_accuracy(generator)
    history = gan.fit(gan_windows(text, 1, 8, 16), epochs=EPOCHS, verbose=0).history
    assert np.isfinite(history["d_loss"]).all() and np.isfinite(history["g_loss"]).all()
    after = _transition_accuracy(generator)  # learned from the discriminator alone
    assert after > before + 0.1, (before, after)  # 0.21 -> 0.39 when written
    with pytest.raises(ValueError, match="window needs"):
        gan_windows(text[:5], 1, 8, 4)


EPOCHS = 12


def test_fit_discriminator_scores_how_distinguishable_the_texts_are():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    real = np.tile(np.array([1, 2, 3, 4]), (200, 3))  # "abcd" repeated
    noise = rng.integers(1, 5, size=real.shape)  # the same characters in random order
    same = rng.integers(1, 5, size=real.shape)
    discriminator = TextDiscriminator(5, embedding_dim=8, filters=16, kernel_size=3)
    assert fit_discriminator(discriminator, real, noise, epochs=3) > 0.95
    fresh = TextDiscriminator(5, embedding_dim=8, filters=16, kernel_size=3)
    assert fit_discriminator(fresh, same, noise, epochs=3) < 0.65  # nothing to tell apart
    with pytest.raises(ValueError, match="same shape"):
        fit_discriminator(discriminator, real, noise[:, :5])
    with pytest.raises(ValueError, match="give more samples"):
        fit_discriminator(discriminator, real[:2], noise[:2], held_out=0.2)
