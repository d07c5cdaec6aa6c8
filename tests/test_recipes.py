import keras
import numpy as np
import pytest

from course_lib import recipes
from course_lib.recipes import Recipe


def rates(schedule, steps):
    return np.array([float(schedule(step)) if callable(schedule) else schedule
                     for step in steps])


def test_cosine_schedule_warms_up_linearly_then_decays_to_zero():
    schedule = recipes.learning_rate_schedule("cosine", 1e-2, total_steps=100, warmup_steps=10)
    values = rates(schedule, range(101))
    assert values[0] == 0 and np.isclose(values[5], 5e-3) and np.isclose(values[10], 1e-2)
    assert np.all(np.diff(values[:11]) > 0) and np.all(np.diff(values[10:]) <= 1e-12)
    assert np.isclose(values[55], 5e-3, rtol=1e-3)  # half way through the decay: half
    assert values[100] < 1e-9


def test_step_exponential_and_constant_schedules_with_and_without_warm_up():
    assert recipes.learning_rate_schedule("constant", 3e-3, 100) == 3e-3
    step = rates(recipes.learning_rate_schedule("step", 1.0, 100), [0, 49, 51, 74, 76, 99])
    assert np.allclose(step, [1, 1, 0.3, 0.3, 0.09, 0.09])
    exponential = recipes.learning_rate_schedule("exponential", 1.0, 100)
    assert np.isclose(float(exponential(100)), 0.05) and np.isclose(float(exponential(50)),
                                                                     0.05 ** 0.5)
    warm = rates(recipes.learning_rate_schedule("constant", 2.0, 100, warmup_steps=4),
                 [0, 1, 2, 4, 50])
    assert np.allclose(warm, [0, 0.5, 1, 2, 2])
    warm_step = rates(recipes.learning_rate_schedule("step", 1.0, 104, warmup_steps=4),
                      [2, 4, 55, 104])
    assert np.allclose(warm_step, [0.5, 1, 0.3, 0.09])


def test_warm_up_schedule_survives_serialization():
    schedule = recipes.learning_rate_schedule("exponential", 1.0, 100, warmup_steps=10)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert np.allclose(rates(again, [0, 5, 10, 60]), rates(schedule, [0, 5, 10, 60]))


def test_bad_recipes_and_schedules_say_what_to_change():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Recipe(optimizer="adagrad")
    with pytest.raises(ValueError, match="clipnorm must be > 0"):
        Recipe(clipnorm=0)
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        recipes.learning_rate_schedule("cosine", 1.0, total_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="schedule must be one of"):
        Recipe().replace(schedule="linear")


def test_build_optimizer_clips_the_global_norm_and_decays_weights():
    sgd = recipes.build_optimizer(Recipe("sgd", 0.1, clipnorm=1.0), 10, 5)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.global_clipnorm == 1.0
    assert np.isclose(sgd.momentum, 0.9)
    adamw = recipes.build_optimizer(Recipe("adamw", weight_decay=0.3), 10, 5)
    assert isinstance(adamw, keras.optimizers.AdamW) and np.isclose(adamw.weight_decay, 0.3)
    # a decay of 0 is 0, not Keras's default of 0.004
    assert recipes.build_optimizer(Recipe("adamw"), 10, 5).weight_decay == 0.0
    adam = recipes.build_optimizer(Recipe(weight_decay=0.1, schedule="cosine"), 10, 5)
    assert np.isclose(adam.weight_decay, 0.1)
    # one step of decoupled decay with a zero gradient shrinks w by lr * wd
    w = keras.Variable(np.ones(3, np.float32))
    decay = keras.optimizers.SGD(0.5, weight_decay=0.1)
    decay.apply_gradients([(np.zeros(3, np.float32), w)])
    assert np.allclose(w.numpy(), 1 - 0.5 * 0.1)


def test_l2_penalty_is_part_of_the_vae_training_loss():
    plain = recipes.build_small_vae(latent_dim=2, hidden_units=8, seed=0)
    penalised = recipes.build_small_vae(latent_dim=2, hidden_units=8, l2=1.0, seed=0)
    assert not plain.losses and len(penalised.losses) == 10  # every kernel of both networks
    x = np.where(np.random.default_rng(0).random((8, 16, 16, 1)) < 0.3, 1.0, -1.0)
    norms = []
    for model in (plain, penalised):
        model.compile(keras.optimizers.SGD(1e-3))
        model.fit(x.astype("float32"), epochs=3, batch_size=8, verbose=0)
        norms.append(sum(float(np.sum(v.numpy() ** 2)) for v in model.trainable_weights
                         if v.path.endswith("kernel")))
    assert norms[1] < norms[0]  # the penalty pulled the kernels towards 0


def test_train_recipe_learns_and_repeats_for_a_seed():
    x_train, x_validation = recipes.small_digits(num_train=64)
    assert x_train.shape == (64, 16, 16, 1) and set(np.unique(x_validation)) == {-1.0, 1.0}
    runs = [recipes.train_recipe(Recipe(learning_rate=3e-3), x_train, x_validation[:64],
                                 num_epochs=3, seed=1) for _ in range(2)]
    assert runs[0].score == runs[1].score
    assert not runs[0].diverged and runs[0].score < recipes.COIN_FLIP_NATS
    assert runs[0].epochs == 3 and len(runs[0].history["learning_rate"]) == 3
    table = recipes.spread({"a": runs})
    assert table["a"] == (runs[0].score, 0.0)


def test_a_run_that_ends_above_the_coin_flip_loss_counts_as_diverged():
    x_train, x_validation = recipes.small_digits(num_train=64)
    run = recipes.train_recipe(Recipe("sgd", 1.0, momentum=0.9), x_train, x_validation[:32],
                               num_epochs=2, seed=0)
    assert run.diverged and run.score == float("inf")
