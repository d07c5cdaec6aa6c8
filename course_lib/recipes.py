"""Training recipes, measured: optimizers, learning-rate schedules, weight penalties, clipping.

Taught in notebooks/06_advanced/01_training_recipes.ipynb. A recipe is everything about
training except the model and the data; this module turns one into Keras objects and runs it
on a task small enough to repeat over several seeds, so that two recipes are compared by
more than one lucky run.

    Recipe               one recipe: optimizer, learning rate and its schedule, warm-up,
                         decoupled weight decay, an L2 penalty in the loss, gradient clipping,
                         early stopping
    learning_rate_schedule  a `keras.optimizers.schedules` object (or a constant)
    build_optimizer      the Keras optimizer of a recipe
    small_digits         the task: 300 binarised digits to train on, 359 held-out ones
    build_small_vae      chapter 3's VAE, a little wider (it overfits 300 digits in a minute)
    train_recipe         trains it with a recipe and scores it on the held-out digits
    compare_recipes      several recipes over several seeds
    spread               mean and standard deviation of each recipe's scores

The task: a VAE on few digits memorises them, so the training loss keeps falling while the
held-out negative ELBO (nats per image: lower is better) turns and rises. That is the
setting where recipes matter, and a score that a model cannot game: it is a bound on the
code length of binary images the model never saw (see `course_lib.models.vae`).
"""

import dataclasses
import math
import time

import keras
import numpy as np

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "step", "exponential", "cosine")
IMAGE_SHAPE = (16, 16, 1)
# A model that says "ink with probability 1/2" for every pixel: 256 ln 2 nats per image.
# A run whose training loss ends above it learned nothing (it diverged).
COIN_FLIP_NATS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * math.log(2)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train: every choice that is not the model or the data.

    Attributes:
        optimizer: "sgd" (with `momentum`), "rmsprop", "adam" or "adamw".
        learning_rate: the peak learning rate.
        schedule: "constant", "step" (x0.3 at 50% and 75% of training), "exponential"
            (x0.05 over training) or "cosine" (to 0 at the end).
        warmup_epochs: epochs of linear warm-up from 0 to `learning_rate` before the schedule.
        momentum: SGD's momentum (ignored by the other optimizers).
        weight_decay: decoupled weight decay (Loshchilov & Hutter 2019): every step also
            does w <- w - learning_rate * weight_decay * w, outside the gradient.
        l2: an L2 penalty l2 * sum(w^2) on every kernel, added to the loss (so Adam rescales
            its gradient like any other).
        clipnorm: rescale the gradients so that their global norm is at most this (None: off).
        early_stopping: stop when the held-out loss has not improved for `patience` epochs
            and keep the best weights.
        patience: see `early_stopping`.
    """

    optimizer: str = "adam"
    learning_rate: float = 3e-3
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    l2: float = 0.0
    clipnorm: float = None
    early_stopping: bool = False
    patience: int = 5

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.clipnorm is not None and not self.clipnorm > 0:
            raise ValueError(f"clipnorm must be > 0 or None (no clipping), got {self.clipnorm}.")
        if min(self.warmup_epochs, self.weight_decay, self.l2) < 0:
            raise ValueError("warmup_epochs, weight_decay and l2 must be >= 0.")

    def replace(self, **changes):
        """A copy with some attributes changed: `plain.replace(schedule="cosine")`."""
        return dataclasses.replace(self, **changes)

    def describe(self):
        """The optimizer, its learning rate and whatever differs from the defaults, e.g.
        "adamw 0.003, weight_decay=0.5, schedule=cosine, warmup_epochs=2"."""
        default = Recipe()
        changed = [f"{field.name}={getattr(self, field.name):g}"
                   if isinstance(getattr(self, field.name), float)
                   else f"{field.name}={getattr(self, field.name)}"
                   for field in dataclasses.fields(self)
                   if field.name not in ("optimizer", "learning_rate")
                   and (getattr(self, field.name) != getattr(default, field.name)
                        or field.name == "momentum")
                   and not (field.name == "momentum" and self.optimizer != "sgd")
                   and not (field.name == "patience" and not self.early_stopping)]
        return ", ".join([f"{self.optimizer} {self.learning_rate:g}", *changed])


PLAIN = Recipe()  # Adam at 3e-3, constant, nothing else: what most first runs use
# The recipes notebooks/06_advanced/01_training_recipes.ipynb and benchmarks/advanced.py
# compare, each over the same seeds.
COMPARED = {
    "Adam (plain)": PLAIN,
    "cosine + warm-up": PLAIN.replace(schedule="cosine", warmup_epochs=2.0),
    "SGD + momentum": Recipe("sgd", 0.01, clipnorm=10.0),
    "RMSprop": Recipe("rmsprop", 1e-3),
    "L2 in the loss": PLAIN.replace(l2=3e-3),
    "AdamW (decoupled decay)": PLAIN.replace(optimizer="adamw", weight_decay=0.5),
    "early stopping": PLAIN.replace(early_stopping=True, patience=10),
    "AdamW + cosine + early stopping": PLAIN.replace(
        optimizer="adamw", weight_decay=0.5, schedule="cosine", warmup_epochs=2.0,
        early_stopping=True, patience=10),
}


def learning_rate_schedule(schedule, learning_rate, total_steps, warmup_steps=0):
    """The learning rate as a function of the step: a `keras.optimizers.schedules` object.

    Args:
        schedule: "constant", "step", "exponential" or "cosine" (see `Recipe`).
        learning_rate: the peak value (reached after the warm-up).
        total_steps: the number of training steps (the schedules end there).
        warmup_steps: linear warm-up steps from 0, before the schedule proper.

    Returns:
        A float for a constant rate without warm-up, else a `LearningRateSchedule`: give
        either to an optimizer, which then calls it with its own step counter.
    """
    from keras.optimizers import schedules

    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
    if total_steps < 1 or not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need total_steps >= 1 and 0 <= warmup_steps < total_steps, got "
                         f"{total_steps} and {warmup_steps}.")
    decay_steps = total_steps - warmup_steps
    if schedule == "cosine":  # Keras's cosine decay has the linear warm-up built in
        return schedules.CosineDecay(0.0 if warmup_steps else learning_rate, decay_steps,
                                     warmup_target=learning_rate if warmup_steps else None,
                                     warmup_steps=warmup_steps)
    if schedule == "constant":
        after = None
    elif schedule == "step":
        after = schedules.PiecewiseConstantDecay(
            [decay_steps // 2, decay_steps * 3 // 4],
            [learning_rate, learning_rate * 0.3, learning_rate * 0.09])
    else:
        after = schedules.ExponentialDecay(learning_rate, decay_steps, decay_rate=0.05)
    if not warmup_steps:
        return learning_rate if after is None else after
    return WarmUp(learning_rate, warmup_steps, after)


@keras.saving.register_keras_serializable(package="course_lib")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `learning_rate` over `warmup_steps`, then `after`.

    Args:
        learning_rate: the rate reached at the end of the warm-up.
        warmup_steps: steps of warm-up.
        after: a schedule for the steps after the warm-up (called with the step count
            from the end of the warm-up), or None to stay at `learning_rate`.
    """

    def __init__(self, learning_rate, warmup_steps, after=None):
        self.learning_rate, self.warmup_steps, self.after = learning_rate, warmup_steps, after

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.learning_rate * step / self.warmup_steps
        later = (self.learning_rate if self.after is None
                 else self.after(keras.ops.maximum(step - self.warmup_steps, 0.0)))
        return keras.ops.where(step < self.warmup_steps, warm, later)

    def get_config(self):
        after = None if self.after is None else keras.saving.serialize_keras_object(self.after)
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps,
                "after": after}

    @classmethod
    def from_config(cls, config):
        after = config["after"] and keras.saving.deserialize_keras_object(config["after"])
        return cls(config["learning_rate"], config["warmup_steps"], after)


def build_optimizer(recipe, steps_per_epoch, num_epochs):
    """The Keras optimizer of `recipe`, its schedule sized for the run.

    Clipping is `global_clipnorm`: all gradients are scaled by one factor,
    min(1, clipnorm / ||g||) with ||g|| the norm of all of them together, so the update keeps
    its direction (`clipnorm` in Keras clips each variable's gradient on its own, which
    changes the direction).
    """
    total = steps_per_epoch * num_epochs
    rate = learning_rate_schedule(recipe.schedule, recipe.learning_rate, total,
                                  round(recipe.warmup_epochs * steps_per_epoch))
    common = {"global_clipnorm": recipe.clipnorm}
    if recipe.weight_decay or recipe.optimizer == "adamw":
        # AdamW gets the recipe's decay even when it is 0 (then it is Adam): Keras's own
        # default of 0.004 would otherwise apply where the recipe says none.
        common["weight_decay"] = recipe.weight_decay
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=recipe.momentum, **common)
    if recipe.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate, **common)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, **common)
    return keras.optimizers.Adam(rate, **common)


def small_digits(num_train=300, seed=0):
    """The recipes' task: (x_train, x_validation), binarised digits in {-1, 1}, 16 x 16.

    The first `num_train` training digits of `load_digits` (about 30 of each class) and the
    359 held-out test digits, each binarised once (`data.binarize`, fixed seeds), so that
    every recipe sees the very same pixels.
    """
    from course_lib.data import binarize, load_digits

    x_train, _ = load_digits(IMAGE_SHAPE[0])
    x_test, _ = load_digits(IMAGE_SHAPE[0], split="test")
    if not 1 <= num_train <= len(x_train):
        raise ValueError(f"num_train must be in [1, {len(x_train)}], got {num_train}.")
    return binarize(x_train[:num_train], seed=seed + 1), binarize(x_test, seed=seed)


def build_small_vae(latent_dim=16, hidden_units=256, l2=0.0, seed=0):
    """Chapter 3's convolutional VAE with a 256-unit dense layer on each side (about 600k
    weights: plenty to memorise 300 digits) and, with `l2`, an L2 penalty on every kernel."""
    from course_lib.models.vae import VAE, build_decoder, build_encoder

    keras.utils.set_random_seed(seed)
    penalty = keras.regularizers.L2(l2) if l2 else None
    encoder = build_encoder(IMAGE_SHAPE, latent_dim, hidden_units=hidden_units,
                            kernel_regularizer=penalty)
    decoder = build_decoder(IMAGE_SHAPE, latent_dim, hidden_units=hidden_units,
                            kernel_regularizer=penalty)
    return VAE(encoder, decoder, seed=seed)


@dataclasses.dataclass
class RecipeResult:
    """What one training run gave.

    Attributes:
        score: held-out negative ELBO at the end (after restoring the best weights when
            early stopping), nats per image, averaged over 4 draws of z: lower is better.
        history: Keras's history (`loss`, `val_loss`, ... per epoch) plus `learning_rate`.
        diverged: the training loss ended non-finite or above `COIN_FLIP_NATS`.
        epochs: epochs actually trained.
        seconds: wall-clock time of the run.
    """

    score: float
    history: dict
    diverged: bool
    epochs: int
    seconds: float


def train_recipe(recipe, x_train, x_validation, num_epochs, seed=0, batch_size=32,
                 model=None, callbacks=()):
    """Trains `build_small_vae` (or `model`, a compiled-or-not VAE) with `recipe`.

    The seed fixes the initial weights, the order of the batches and the draws of z, so a
    recipe and a seed give the same run; different seeds measure the spread.
    Returns a `RecipeResult`.
    """
    from course_lib.data import make_dataset

    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe, got {type(recipe).__name__}.")
    model = model or build_small_vae(l2=recipe.l2, seed=seed)
    steps = math.ceil(len(x_train) / batch_size)
    model.compile(build_optimizer(recipe, steps, num_epochs))
    rates = []
    watch = [keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: rates.append(
        float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))))]
    if recipe.early_stopping:
        watch.append(keras.callbacks.EarlyStopping(patience=recipe.patience,
                                                   restore_best_weights=True))
    start = time.perf_counter()
    history = model.fit(make_dataset(x_train, batch_size=batch_size, seed=seed),
                        validation_data=make_dataset(x_validation, batch_size=512,
                                                     shuffle=False),
                        epochs=num_epochs, verbose=0, callbacks=[*watch, *callbacks])
    history = {**history.history, "learning_rate": rates}
    final_loss = history["loss"][-1]
    diverged = not np.isfinite(final_loss) or final_loss > COIN_FLIP_NATS
    score = float("inf") if diverged else float(-model.elbo(x_validation, num_samples=4).mean())
    return RecipeResult(score, history, diverged, len(history["loss"]),
                        time.perf_counter() - start)


def compare_recipes(recipes, x_train, x_validation, num_epochs, seeds=(0, 1, 2), **kwargs):
    """Runs every recipe of the dict `recipes` once per seed.

    Returns `{name: [RecipeResult per seed]}`; `spread` summarises it.
    """
    return {name: [train_recipe(recipe, x_train, x_validation, num_epochs, seed, **kwargs)
                   for seed in seeds]
            for name, recipe in recipes.items()}


def spread(results):
    """`{name: (mean, standard deviation)}` of the scores of `compare_recipes` (the standard
    deviation over seeds with ddof=1; 0 for a single seed)."""
    table = {}
    for name, runs in results.items():
        scores = np.array([run.score for run in runs], np.float64)
        table[name] = (float(scores.mean()),
                       float(scores.std(ddof=1)) if len(scores) > 1 else 0.0)
    return table
