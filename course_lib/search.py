"""Hyperparameter search with KerasTuner, on the training-recipes task.

Taught in notebooks/06_advanced/02_hyperparameter_search.ipynb. The task is
`course_lib.recipes`' VAE on 300 binarised digits; a search picks the learning rate, the
decoupled weight decay and the size of the latent code by the negative ELBO on a validation
set, and the chosen model is then scored once on a test set that no search saw (choosing the
best of many runs by one set makes that set's score optimistic).

    search_digits      the three sets: 300 training digits, 359 validation, 359 test
    RecipeHyperModel   a `keras_tuner.HyperModel`: the search space and how to train a point
    make_tuner         grid, random, Bayesian optimisation or Hyperband, at a budget in epochs
    hyperband_epochs   the epochs KerasTuner's Hyperband trains in all (to match budgets)
    run_search         one search: its best point, its curve and its cost
    SearchResult       what `run_search` returns

Budgets are counted in training epochs, not trials: a Hyperband "trial" may train one epoch
or all of them, so equal trial counts would not be a fair race.
"""

import dataclasses
import math
import tempfile
import time
import warnings

import keras
import keras_tuner
import numpy as np

from course_lib import recipes

TUNERS = ("grid", "random", "bayesian", "hyperband")
LEARNING_RATES = (1e-4, 3e-2)  # the range searched, sampled on a log scale
LATENT_DIMS = (4, 8, 16, 32)
# The grid: two values of each hyperparameter, 2 x 2 x 2 = 8 points.
GRID = {"learning_rate": (1e-3, 1e-2), "weight_decay": (0.0, 1.0), "latent_dim": (8, 32)}


def search_digits(num_train=300, num_validation=359, seed=0):
    """(x_train, x_validation, x_test): binarised digits in {-1, 1}, 16 x 16.

    The training digits are `recipes.small_digits`' (the first `num_train` of the training
    split); the validation digits are the next `num_validation` of the same split, for the
    search to choose by; the test digits are the 359 of the test split, for the one final
    score of the chosen model.
    """
    from course_lib.data import binarize, load_digits

    x_train, x_test = recipes.small_digits(num_train, seed=seed)
    pool, _ = load_digits(recipes.IMAGE_SHAPE[0])
    if num_validation < 1 or num_train + num_validation > len(pool):
        raise ValueError(f"num_train + num_validation must be at most {len(pool)} (and "
                         f"num_validation >= 1), got {num_train} + {num_validation}.")
    x_validation = binarize(pool[num_train:num_train + num_validation], seed=seed + 2)
    return x_train, x_validation, x_test


class RecipeHyperModel(keras_tuner.HyperModel):
    """The search space and the training of one point of it.

    Searched: the learning rate of AdamW (log scale, 1e-4 to 3e-2), its decoupled weight
    decay (0 to 1) and the latent dimension of the VAE (4, 8, 16 or 32). With `grid=True`
    the same hyperparameters take only the two values each of `GRID`.

    Args:
        batch_size: training batch size.
        grid: discrete values for `keras_tuner.GridSearch`.
        seed: the initial weights and batch order of every trial (the same for all
            points, so that trials differ only by their hyperparameters).
    """

    def __init__(self, batch_size=32, grid=False, seed=0):
        super().__init__(name="recipe_vae", tunable=True)
        self.batch_size, self.grid, self.seed = batch_size, grid, seed

    def build(self, hp):
        if self.grid:
            rate = hp.Choice("learning_rate", GRID["learning_rate"])
            decay = hp.Choice("weight_decay", GRID["weight_decay"])
            latent = hp.Choice("latent_dim", GRID["latent_dim"])
        else:
            rate = hp.Float("learning_rate", *LEARNING_RATES, sampling="log")
            decay = hp.Float("weight_decay", 0.0, 1.0)
            latent = hp.Choice("latent_dim", LATENT_DIMS)
        recipe = recipes.Recipe("adamw", rate, weight_decay=decay)
        model = recipes.build_small_vae(latent_dim=latent, seed=self.seed)
        # A constant rate: the schedule does not depend on how long a trial runs, which
        # Hyperband varies.
        model.compile(recipes.build_optimizer(recipe, steps_per_epoch=1, num_epochs=1))
        return model

    def fit(self, hp, model, x_train, validation_data, **kwargs):
        from course_lib.data import make_dataset

        return model.fit(
            make_dataset(x_train, batch_size=self.batch_size, seed=self.seed),
            validation_data=make_dataset(validation_data, batch_size=512, shuffle=False),
            **kwargs)


def hyperband_epochs(max_epochs, factor=3):
    """The epochs KerasTuner's Hyperband (one iteration) trains in all, and its trials.

    Computed with the bracket sizes of `keras_tuner.Hyperband` (version 1.4): each bracket
    starts a number of random points with few epochs and continues the best third of them
    (for `factor` 3) for three times as many, until `max_epochs`.
    """
    brackets, epochs = 0, max_epochs
    while epochs >= 1:
        epochs, brackets = epochs / factor, brackets + 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    total = trials = 0
    for bracket in range(brackets):
        done = 0
        for round_ in range(bracket + 1):
            size = math.ceil(end_size / (bracket + 1) * factor ** (bracket - round_))
            until = math.ceil(max_epochs / factor ** (bracket - round_))
            total, trials, done = total + size * (until - done), trials + size, until
    return total, trials


def make_tuner(name, hypermodel, max_epochs, budget_epochs, seed=0, directory=None,
               factor=3):
    """A KerasTuner tuner minimising "val_loss" (the validation negative ELBO).

    Grid, random and Bayesian search train `budget_epochs // max_epochs` points for
    `max_epochs` each (the grid stops there even if it has more points); Hyperband trains
    as many epochs as `hyperband_epochs(max_epochs, factor)` says, whatever the budget.
    """
    if name not in TUNERS:
        raise ValueError(f"name must be one of {TUNERS}, got {name!r}.")
    trials = budget_epochs // max_epochs
    if trials < 1:
        raise ValueError(f"budget_epochs ({budget_epochs}) buys no trial of {max_epochs} "
                         "epochs: raise it or lower max_epochs.")
    common = {"objective": "val_loss", "directory": directory or tempfile.mkdtemp(),
              "project_name": name, "overwrite": True,
              # KerasTuner replaces a seed of 0 by a random one, and draws the k-th value of a
              # search with seed + k, so seeds 1 and 2 would share all but one draw: space
              # the course's seeds 1,000 apart, starting at 1.
              "seed": 1 + 1000 * seed}
    if name == "hyperband":
        return keras_tuner.Hyperband(hypermodel, max_epochs=max_epochs, factor=factor,
                                     hyperband_iterations=1, **common)
    if name == "bayesian":
        # KerasTuner starts Bayesian optimisation with 3 random points per hyperparameter
        # (9 here), which would leave nothing for the Gaussian process to choose at small
        # budgets: start with 3, or fewer when the budget is smaller still.
        return keras_tuner.BayesianOptimization(
            hypermodel, max_trials=trials, num_initial_points=max(1, min(3, trials - 1)),
            **common)
    tuner = {"grid": keras_tuner.GridSearch, "random": keras_tuner.RandomSearch}[name]
    return tuner(hypermodel, max_trials=trials, **common)


@dataclasses.dataclass
class SearchResult:
    """What one search gave.

    Attributes:
        name: the tuner.
        best_score: the best validation negative ELBO any trial reached (nats per image;
            KerasTuner scores a trial by its best epoch).
        best_values: the hyperparameters of that trial.
        test_score: the chosen model (its best epoch's weights) scored on the test digits,
            negative ELBO with 4 draws of z.
        curve: (epochs spent so far, best validation score so far) after each trial, in the
            order the trials ran.
        trials: [(hyperparameters, epochs trained, score)] in the order they ran.
        epochs: epochs trained in all.
        seconds: wall-clock time of the search.
    """

    name: str
    best_score: float
    best_values: dict
    test_score: float
    curve: list
    trials: list
    epochs: int
    seconds: float


def _searched(values):
    return {key: value for key, value in values.items() if not key.startswith("tuner/")}


def run_search(name, x_train, x_validation, x_test, max_epochs, budget_epochs, seed=0,
               batch_size=32):
    """One search with the tuner `name` (see `make_tuner`); returns a `SearchResult`."""
    with tempfile.TemporaryDirectory() as directory:
        hypermodel = RecipeHyperModel(batch_size=batch_size, grid=name == "grid", seed=seed)
        tuner = make_tuner(name, hypermodel, max_epochs, budget_epochs, seed, directory)
        start = time.perf_counter()
        with warnings.catch_warnings():
            # Hyperband continues a trial from its checkpoint into a new model whose optimizer
            # is not built yet, so Keras skips the saved optimizer state (with a warning each
            # time): a continued trial restarts AdamW's moments, as notebook 1's rebuilt
            # optimizer did.
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            # Bayesian optimisation's Gaussian process (scikit-learn's) warns when a length
            # scale reaches its bound: the scores vary along that hyperparameter faster than
            # a few trials can resolve, i.e. like noise. The search goes on either way.
            warnings.filterwarnings("ignore", "The optimal value found for dimension")
            tuner.search(x_train, validation_data=x_validation, epochs=max_epochs, verbose=0)
        seconds = time.perf_counter() - start
        ran = sorted(tuner.oracle.trials.values(), key=lambda trial: int(trial.trial_id))
        trials, curve, spent, best = [], [], 0, math.inf
        for trial in ran:
            values = trial.hyperparameters.values
            epochs = (values.get("tuner/epochs", max_epochs)
                      - values.get("tuner/initial_epoch", 0))
            score = trial.score if trial.score is not None else math.inf
            spent, best = spent + epochs, min(best, score)
            trials.append((_searched(values), epochs, score))
            curve.append((spent, best))
        best_trial = tuner.oracle.get_best_trials(1)[0]
        with warnings.catch_warnings():  # (the same warning: a model only scored needs none)
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            model = tuner.load_model(best_trial)
        test_score = float(-np.mean(model.elbo(x_test, num_samples=4)))
        keras.backend.clear_session(free_memory=True)
    return SearchResult(name, float(best_trial.score),
                        _searched(best_trial.hyperparameters.values), test_score, curve,
                        trials, spent, seconds)


def train_in_pieces(values, pieces, x_train, x_validation, seed=0, batch_size=32):
    """Train one point of the search space in pieces, as Hyperband continues a trial.

    Each piece builds a new model and a new AdamW (as KerasTuner does when it continues a
    trial), loads the best epoch's weights of the piece before, and trains `pieces[i]` more
    epochs. `pieces=(9,)` is one trial of 9 epochs; `pieces=(1, 2, 6)` is the path of the
    winner of Hyperband's most aggressive bracket at `max_epochs=9`.

    Args:
        values: {"learning_rate", "weight_decay", "latent_dim"}, e.g. a `SearchResult`'s
            `best_values`.
        pieces: epochs of each piece, positive integers.

    Returns:
        The best validation negative ELBO after each piece (nats per image).
    """
    if not pieces or any(int(epochs) != epochs or epochs < 1 for epochs in pieces):
        raise ValueError(f"pieces must be positive whole numbers of epochs, got {pieces!r}.")
    missing = {"learning_rate", "weight_decay", "latent_dim"} - set(values)
    if missing:
        raise ValueError(f"values lacks {sorted(missing)}: pass a SearchResult's best_values.")
    hp = keras_tuner.HyperParameters()
    for key in ("learning_rate", "weight_decay", "latent_dim"):
        hp.Fixed(key, values[key])
    hypermodel = RecipeHyperModel(batch_size=batch_size, seed=seed)
    weights, best, scores = None, math.inf, []
    for epochs in pieces:
        model = hypermodel.build(hp)
        if weights is not None:
            model.set_weights(weights)
        keep_best = keras.callbacks.EarlyStopping(patience=int(epochs) + 1,
                                                  restore_best_weights=True)
        history = hypermodel.fit(hp, model, x_train, x_validation, epochs=int(epochs),
                                 callbacks=[keep_best], verbose=0)
        piece_best = min(history.history["val_loss"])
        if piece_best < best:  # KerasTuner continues from the best epoch so far
            best, weights = piece_best, model.get_weights()
        scores.append(float(best))
        keras.backend.clear_session(free_memory=True)
    return scores
