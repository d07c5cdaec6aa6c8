import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib.training import loss_to_differentiate, prepare_optimizer


@pytest.fixture(scope="module")
def histories():
    script = Path(__file__).with_name("distributed_check.py")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mirrored_custom_train_step_matches_single_device(histories):
    assert histories["replicas"] == 2
    single, mirrored = histories["regressor_single"], histories["regressor_mirrored"]
    for key in ("loss_a", "loss_b"):
        # Same data, same initial weights, same updates: the curves agree to float32 noise
        # (not half or double: losses are tracked undivided, gradients divided by replicas).
        np.testing.assert_allclose(mirrored[key], single[key], rtol=1e-3)
        assert single[key][-1] < 0.95 * single[key][0]  # and the model learned
    assert single["loss_a"][-1] < 0.5 * single["loss_a"][0]


def test_mirrored_gan_with_batchnorm_and_random_latents_trains(histories):
    single, mirrored = histories["gan_single"], histories["gan_mirrored"]
    for key in ("d_loss", "g_loss"):
        assert np.all(np.isfinite(mirrored[key]))
        # Latents and BatchNorm statistics differ per replica, so only the scale must agree.
        np.testing.assert_allclose(mirrored[key], single[key], rtol=0.25)


def test_mirrored_vae_trains_like_single_device(histories):
    single, mirrored = histories["vae_single"], histories["vae_mirrored"]
    for key in ("loss", "reconstruction", "kl"):
        assert np.all(np.isfinite(mirrored[key]))
    # Sampling noise differs per replica; the loss curve must have the same scale and fall.
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=0.1)
    assert mirrored["loss"][-1] < mirrored["loss"][0]


def test_float16_policy_wraps_and_scales_the_loss():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(1, dtype="float32")])
        optimizer = prepare_optimizer(keras.optimizers.Adam(1e-2), model.trainable_variables)
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        y = x.sum(axis=1, keepdims=True)
        losses = []
        for _ in range(60):
            with tf.GradientTape() as tape:
                loss = keras.ops.mean(keras.ops.square(model(x, training=True) - y))
                scaled = loss_to_differentiate(loss, optimizer)
            assert float(scaled) > float(loss) * 2  # multiplied by the dynamic loss scale
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            losses.append(float(loss))
        assert losses[-1] < 0.3 * losses[0]
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_prepare_optimizer_names_the_fix_for_an_unbuilt_network():
    network = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="build the network first"):
        prepare_optimizer(keras.optimizers.Adam(), network.trainable_variables)


def test_custom_train_steps_train_on_weight_penalties():
    """A regularizer on a network's kernel is part of the loss its train_step differentiates
    (a custom train_step that forgot `network.losses` would ignore it silently)."""
    from keras import layers

    from course_lib.models.gan import GAN, build_mlp_discriminator, build_mlp_generator
    from course_lib.training import with_penalties

    plain = keras.Sequential([keras.Input((2,)), layers.Dense(3)])
    assert with_penalties(1.5, plain) == 1.5
    penalised = keras.Sequential([keras.Input((2,)), layers.Dense(
        3, kernel_initializer="ones", kernel_regularizer=keras.regularizers.L2(0.5))])
    assert np.isclose(float(with_penalties(np.float32(1.5), penalised)), 1.5 + 0.5 * 6)

    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    kernels = []
    for strength in (0.0, 10.0):
        keras.utils.set_random_seed(0)
        generator, discriminator = build_mlp_generator(2, 2), build_mlp_discriminator(2)
        if strength:  # a penalty on every kernel of the discriminator
            for variable in discriminator.trainable_weights:
                if variable.path.endswith("kernel"):
                    variable.regularizer = keras.regularizers.L2(strength)
        gan = GAN(generator, discriminator, seed=0)
        gan.compile(keras.optimizers.SGD(1e-3), keras.optimizers.SGD(1e-3))
        gan.fit(x, batch_size=32, epochs=2, verbose=0)
        kernels.append(sum(float(np.sum(v.numpy() ** 2)) for v in discriminator.trainable_weights
                           if v.path.endswith("kernel")))
    assert kernels[1] < 0.9 * kernels[0]
