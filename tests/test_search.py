import keras_tuner as kt
import numpy as np
import pytest

from course_lib import recipes, search


def test_search_digits_are_three_disjoint_binary_sets():
    x_train, x_validation, x_test = search.search_digits()
    assert x_train.shape == (300, 16, 16, 1) and x_validation.shape == x_test.shape == (
        359, 16, 16, 1)
    assert np.array_equal(x_train, recipes.small_digits()[0])  # notebook 1's training digits
    assert np.array_equal(x_test, recipes.small_digits()[1])
    for images in (x_train, x_validation, x_test):
        assert set(np.unique(images)) == {-1.0, 1.0}
    train = {image.tobytes() for image in x_train}
    assert not any(image.tobytes() in train for image in x_validation)
    with pytest.raises(ValueError, match="num_train \\+ num_validation"):
        search.search_digits(num_train=1000, num_validation=500)


def test_hypermodel_declares_the_space_and_the_grid_its_two_values_each():
    hp = kt.HyperParameters()
    model = search.RecipeHyperModel().build(hp)
    assert {p.name for p in hp.space} == {"learning_rate", "weight_decay", "latent_dim"}
    rate = next(p for p in hp.space if p.name == "learning_rate")
    assert rate.sampling == "log" and (rate.min_value, rate.max_value) == search.LEARNING_RATES
    assert model.optimizer.__class__.__name__ == "AdamW"
    grid = kt.HyperParameters()
    search.RecipeHyperModel(grid=True).build(grid)
    assert {p.name: tuple(p.values) for p in grid.space} == search.GRID


def test_hyperband_epochs_follows_keras_tuner_brackets():
    assert search.hyperband_epochs(2) == (4, 2)
    assert search.hyperband_epochs(3) == (11, 6)
    assert search.hyperband_epochs(9) == (75, 23)
    oracle = kt.oracles.HyperbandOracle(objective="val_loss", max_epochs=9, factor=3)
    assert oracle._get_num_brackets() == 3  # the private helper the formula copies


def test_make_tuner_rejects_bad_names_and_budgets():
    hypermodel = search.RecipeHyperModel()
    with pytest.raises(ValueError, match="name must be one of"):
        search.make_tuner("annealing", hypermodel, 3, 30)
    with pytest.raises(ValueError, match="buys no trial"):
        search.make_tuner("random", hypermodel, 10, 5)
    bayesian = search.make_tuner("bayesian", hypermodel, 3, 12)
    assert bayesian.oracle.max_trials == 4 and bayesian.oracle.num_initial_points == 3


def test_hyperband_search_spends_its_epochs_and_reports_a_monotone_curve():
    x_train, x_validation, x_test = (x[:64] for x in search.search_digits())
    result = search.run_search("hyperband", x_train, x_validation, x_test, max_epochs=3,
                               budget_epochs=11, seed=0)
    assert (result.epochs, len(result.trials)) == search.hyperband_epochs(3)
    best = [score for _, score in result.curve]
    assert np.all(np.diff(best) <= 0) and best[-1] == result.best_score
    assert [spent for spent, _ in result.curve][-1] == result.epochs
    assert set(result.best_values) == {"learning_rate", "weight_decay", "latent_dim"}
    assert np.isfinite(result.test_score) and 0 < result.test_score < 300
    assert sorted({epochs for _, epochs, _ in result.trials}) == [1, 2, 3]


def test_train_in_pieces_keeps_the_best_score_and_rejects_bad_pieces():
    x_train, x_validation, _ = (x[:64] for x in search.search_digits())
    point = {"learning_rate": 3e-3, "weight_decay": 0.5, "latent_dim": 4}
    scores = search.train_in_pieces(point, (1, 2), x_train, x_validation)
    assert len(scores) == 2 and scores[1] <= scores[0]  # the best so far never worsens
    assert scores[-1] < recipes.COIN_FLIP_NATS  # it learned
    with pytest.raises(ValueError, match="positive whole numbers"):
        search.train_in_pieces(point, (1, 0), x_train, x_validation)
    with pytest.raises(ValueError, match="lacks"):
        search.train_in_pieces({"learning_rate": 1e-3}, (1,), x_train, x_validation)
