import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import dp


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(1)])
    return model


def squared_error(model):
    return lambda x, y: tf.reduce_mean((model(x)[:, 0] - y) ** 2)


def data(batch=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(batch, 5)).astype(np.float32),
            rng.normal(size=batch).astype(np.float32))


def test_per_example_gradients_equal_a_loop_over_examples():
    model = tiny_model()
    x, y = data()
    loss = squared_error(model)
    batched = dp.per_example_gradients(loss, model.trainable_variables, (x, y))
    assert [tuple(g.shape) for g in batched] == [(8, *v.shape) for v in
                                                 model.trainable_variables]
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            value = loss(x[i:i + 1], y[i:i + 1])
        for one, many in zip(tape.gradient(value, model.trainable_variables), batched):
            np.testing.assert_allclose(many[i], one, rtol=1e-5, atol=1e-6)


def test_clipping_bounds_every_example_and_leaves_small_ones_alone():
    rng = np.random.default_rng(1)
    gradients = [tf.constant(rng.normal(size=(6, 3, 2)) * scale, tf.float32)
                 for scale in (1.0, 5.0)]
    gradients[0] = tf.tensor_scatter_nd_update(gradients[0], [[0]], [tf.fill((3, 2), 1e-3)])
    gradients[1] = tf.tensor_scatter_nd_update(gradients[1], [[0]], [tf.fill((3, 2), 1e-3)])
    clipped, norms = dp.clip_gradients(gradients, clip_norm=2.0)
    expected = np.sqrt(sum(np.sum(g.numpy().reshape(6, -1) ** 2, axis=1) for g in gradients))
    np.testing.assert_allclose(norms, expected, rtol=1e-5)
    after = np.sqrt(sum(np.sum(g.numpy().reshape(6, -1) ** 2, axis=1) for g in clipped))
    assert np.all(after <= 2.0 + 1e-5) and np.allclose(after[norms > 2.0], 2.0, rtol=1e-5)
    for before, now in zip(gradients, clipped):  # example 0's norm is far below 2: unchanged
        np.testing.assert_allclose(now[0], before[0])
        ratio = now.numpy()[1:] / before.numpy()[1:]  # one factor per example, every variable
        assert np.allclose(ratio, ratio.reshape(5, -1)[:, :1, None], rtol=1e-5)
    unclipped, _ = dp.clip_gradients(gradients, None)
    assert all(np.array_equal(a, b) for a, b in zip(unclipped, gradients))


def test_no_noise_and_no_clipping_is_plain_sgd():
    model = tiny_model()
    x, y = data(batch=16)
    loss = squared_error(model)
    variables = model.trainable_variables
    per_example = dp.per_example_gradients(loss, variables, (x, y))
    clipped, _ = dp.clip_gradients(per_example, None)
    private = dp.private_gradient([tf.reduce_sum(g, 0) for g in clipped], None, 0.0, len(x),
                                  seed=(0, 0))
    with tf.GradientTape() as tape:
        value = loss(x, y)
    for plain, ours in zip(tape.gradient(value, variables), private):
        np.testing.assert_allclose(ours, plain, rtol=1e-5, atol=1e-6)
    # and one step of SGD with it moves the weights exactly as plain SGD does
    twin = tiny_model()  # the same initial weights
    with tf.GradientTape() as twin_tape:
        twin_value = squared_error(twin)(x, y)
    keras.optimizers.SGD(0.1).apply(twin_tape.gradient(twin_value, twin.trainable_variables),
                                    twin.trainable_variables)
    keras.optimizers.SGD(0.1).apply(private, variables)
    for a, b in zip(variables, twin.trainable_variables):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_private_gradient_adds_noise_of_the_stated_size():
    totals = [tf.zeros((200, 50)), tf.zeros((1000,))]
    noisy = dp.private_gradient(totals, clip_norm=3.0, noise_multiplier=2.0, denominator=4.0,
                                seed=(5, 7))
    for tensor in noisy:  # std 1.5; within 4 standard errors of the estimates
        values = tensor.numpy().ravel()
        assert abs(np.std(values) / 1.5 - 1) < 4 / np.sqrt(2 * values.size)
        assert abs(np.mean(values)) < 4 * 1.5 / np.sqrt(values.size)
    again = dp.private_gradient(totals, 3.0, 2.0, 4.0, seed=(5, 7))
    assert all(np.array_equal(a, b) for a, b in zip(noisy, again))  # seeded
    other = dp.private_gradient(totals, 3.0, 2.0, 4.0, seed=(5, 9))
    assert not np.array_equal(noisy[0], other[0])
    with pytest.raises(ValueError, match="clip norm"):
        dp.private_gradient(totals, None, 1.0, 4.0, seed=(0, 0))
    with pytest.raises(ValueError, match="noise_multiplier"):
        dp.private_gradient(totals, 1.0, -1.0, 4.0, seed=(0, 0))


def test_epsilon_is_what_dp_accounting_says():
    import dp_accounting

    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.064, dp_accounting.GaussianDpEvent(2.0)), 1500)
    direct = dp_accounting.rdp.RdpAccountant().compose(event).get_epsilon(1e-5)
    assert dp.epsilon(2.0, 0.064, 1500, 1e-5) == pytest.approx(direct, rel=1e-9)
    pld = dp_accounting.pld.PLDAccountant().compose(event).get_epsilon(1e-5)
    assert dp.epsilon(2.0, 0.064, 1500, 1e-5, accountant="pld") == pytest.approx(pld, rel=1e-9)
    assert pld < direct  # the tighter accountant
    assert dp.epsilon(4.0, 0.064, 1500, 1e-5) < direct < dp.epsilon(2.0, 0.064, 3000, 1e-5)
    assert dp.epsilon(0.0, 0.064, 10, 1e-5) == math.inf
    sigma = dp.noise_for_epsilon(3.0, 0.064, 1500, 1e-5)
    assert dp.epsilon(sigma, 0.064, 1500, 1e-5) <= 3.0 + 1e-6
    assert dp.epsilon(0.97 * sigma, 0.064, 1500, 1e-5) > 3.0
    for bad in ((1.0, 0.0, 10, 1e-5), (1.0, 0.1, 0, 1e-5), (1.0, 0.1, 10, 1.0)):
        with pytest.raises(ValueError):
            dp.epsilon(*bad)
    with pytest.raises(ValueError, match="accountant"):
        dp.epsilon(1.0, 0.1, 10, 1e-5, accountant="moments")


def test_train_dp_vae_learns_and_is_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    images = np.where(rng.random((64, 16, 16, 1)) < 0.2, 1.0, -1.0).astype(np.float32)
    seen = []

    def record(step, vae, norms):
        seen.append((step, len(norms), float(np.mean(vae.elbo(images[:16])))))

    first = dp.train_dp_vae(images, 0.5, 5.0, steps=30, sampling_rate=0.25, learning_rate=3e-3,
                            microbatch=16, callback=record)
    assert [s for s, _, _ in seen] == list(range(1, 31))
    assert 0 < np.mean([n for _, n, _ in seen]) < 32  # Poisson batches of about 16
    assert seen[-1][2] > seen[0][2] + 10  # the ELBO rises: it learns through the noise
    second = dp.train_dp_vae(images, 0.5, 5.0, steps=30, sampling_rate=0.25,
                             learning_rate=3e-3, microbatch=16)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="binary"):
        dp.train_dp_vae(images * 0.5, 1.0, 1.0, steps=1, sampling_rate=0.5)
