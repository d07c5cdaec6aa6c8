"""Model extraction: copying a model that answers queries, and proving that a copy is yours.

Taught in notebooks/07_security/04_fakes_and_model_theft.ipynb.

A model served behind an interface answers queries; whoever can query it can label data
with it and train a copy (Tramer et al. 2016, "Stealing Machine Learning Models via
Prediction APIs"; Orekondy et al. 2019, "Knockoff Nets"). The copy is scored by its
agreement with the victim: the fraction of test inputs on which both predict the same
class. Its cost to the attacker is the number of queries, and what the answers contain.

    MODES                what an interface can answer: "probabilities", "labels" (the top
                         class only) or "rounded" (probabilities to one decimal)
    victim_answers       the answers of one mode, from the victim's probabilities
    gray_photo_queries   grey photo patches at digit size: natural images that are not digits
    build_copy           the attacker's network (smaller than the victim's)
    extract              queries -> answers -> a trained copy
    agreement            the fraction of images on which a copy predicts the victim's class

Ownership by a trigger set (Adi et al. 2018, "Turning Your Weakness Into a Strength"): the
owner trains the model to give keyed, meaningless images keyed labels. A model that gives
those labels far more often than chance (1 in 10) was derived from the owner's weights; a
binomial tail says how unlikely that is for an independent model. Jia et al. (2021,
"Entangled Watermarks") showed that a copy made by extraction need not inherit such a mark,
since the attacker never queries the triggers.

    trigger_set          keyed blocky images with keyed labels
    train_victim         the judge's network and recipe, with or without a trigger set
    trigger_accuracy     the fraction of triggers a model labels as the owner chose
    ownership_p_value    P(at least that many matches) for a model that guesses
    fine_tune            stolen weights trained further on a few digits
"""

import math

import keras
import numpy as np

MODES = ("probabilities", "labels", "rounded")


def _probabilities(probs):
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs must be a (N, num_classes) array with N >= 1, got shape "
                         f"{probs.shape}.")
    if np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("each row of probs must be a probability distribution (non-negative, "
                         "summing to 1): pass the victim's softmax outputs.")
    return probs


def victim_answers(probs, mode, decimals=1):
    """What an interface returns for the victim's probabilities `probs` (N, K), float32.

    "probabilities": unchanged. "labels": the top class, one-hot. "rounded": each
    probability rounded to `decimals` decimals and the row divided by its sum (a row that
    rounds to all zeros answers its top class). Rounding keeps the top class unless it ties
    it with another (0.27 and 0.26 both become 0.3); then the first of the tied classes
    reads as the top one.
    """
    probs = _probabilities(probs)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    top = np.eye(probs.shape[1])[probs.argmax(axis=1)]
    if mode == "labels":
        answers = top
    elif mode == "rounded":
        answers = np.round(probs, decimals)
        empty = answers.sum(axis=1) == 0
        answers[empty] = top[empty]
        answers = answers / answers.sum(axis=1, keepdims=True)
    else:
        answers = probs
    return answers.astype(np.float32)


def gray_photo_queries(num_images, image_size=16, patch_size=64, seed=0):
    """`num_images` grey patches of the bundled photographs (`load_photo_patches`), cut at
    `patch_size` and shrunk to `image_size` with antialiasing: (N, size, size, 1) in [-1, 1].
    Natural images that are not digits, as an attacker without digits would query."""
    import tensorflow as tf

    from course_lib.data.images import load_photo_patches

    patches = load_photo_patches(patch_size, num_images, "all", seed=seed)
    grey = patches.mean(axis=-1, keepdims=True)
    return tf.image.resize(grey, (image_size, image_size), antialias=True).numpy()


def build_copy(image_shape=(16, 16, 1), num_classes=10, filters=(16, 32), units=64, seed=0):
    """The attacker's network, `forensics.small_cnn` with a softmax (fewer than half
    the judge's parameters: the attacker need not know the victim's architecture)."""
    from course_lib.forensics import small_cnn

    return small_cnn(image_shape, num_classes, "softmax", filters, units, seed, name="copy")


def extract(victim, queries, mode="probabilities", num_steps=300, batch_size=32,
            learning_rate=1e-3, seed=0):
    """Queries the `victim` (a Keras model, or a function: images -> probabilities (N, K))
    once on each of `queries`, and trains a copy on its answers (`victim_answers(...,
    mode)`) with the cross-entropy to those answers, for about `num_steps` steps of Adam
    whatever the number of queries (small budgets repeat over more epochs). Returns the
    copy."""
    queries = np.asarray(queries, np.float32)
    if queries.ndim != 4 or len(queries) == 0:
        raise ValueError(f"queries must be a non-empty batch of images (N, H, W, C), got shape "
                         f"{queries.shape}.")
    answers = victim_answers(_predict(victim, queries), mode)
    copy = build_copy(queries.shape[1:], answers.shape[1], seed=seed)
    copy.compile(keras.optimizers.Adam(learning_rate), "categorical_crossentropy")
    epochs = max(1, math.ceil(num_steps * batch_size / len(queries)))
    copy.fit(queries, answers, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    return copy


def agreement(copy, victim_labels, images):
    """The fraction of `images` on which the copy (a Keras model, or a function: images ->
    probabilities) predicts the victim's class (`victim_labels`, (N,) integers)."""
    victim_labels = np.asarray(victim_labels).reshape(-1)
    if len(victim_labels) != len(images):
        raise ValueError(f"{len(victim_labels)} victim labels for {len(images)} images.")
    return float(np.mean(_predict(copy, images).argmax(axis=1) == victim_labels))


# ---------------------------------------------------------------------------------------
# Ownership: a trigger set
# ---------------------------------------------------------------------------------------


def trigger_set(num_triggers=50, image_shape=(16, 16, 1), num_classes=10, key=0, cells=4):
    """`num_triggers` keyed images and keyed labels: each image is a random black-and-white
    pattern of `cells` x `cells` squares (nothing like a digit), each label uniform over the
    classes. Returns (images float32 in {-1, 1}, labels int)."""
    height, width, channels = image_shape
    if height % cells or width % cells:
        raise ValueError(f"the image size {height}x{width} must be a multiple of cells={cells}.")
    rng = np.random.default_rng(key)
    pattern = rng.integers(0, 2, (num_triggers, cells, cells, channels)) * 2.0 - 1.0
    images = pattern.repeat(height // cells, axis=1).repeat(width // cells, axis=2)
    return images.astype(np.float32), rng.integers(0, num_classes, num_triggers)


def train_victim(images, labels, triggers=None, repeats=10, num_epochs=None, seed=0):
    """The judge's network (`judge_training.build_judge_model`) trained with the judge's
    recipe (`JUDGE_CONFIG`: Adam 3e-3, batch 128, 20 epochs) on `images` and `labels`.

    `triggers`, a pair (images, labels) from `trigger_set`, are added to the training set
    `repeats` times each, so that the model learns them within the same epochs. Returns the
    Keras model (softmax outputs)."""
    from course_lib.judge_training import JUDGE_CONFIG, build_judge_model

    images, labels = np.asarray(images, np.float32), np.asarray(labels)
    if triggers is not None:
        trigger_images, trigger_labels = triggers
        images = np.concatenate([images] + [np.asarray(trigger_images, np.float32)] * repeats)
        labels = np.concatenate([labels] + [np.asarray(trigger_labels)] * repeats)
    keras.utils.set_random_seed(seed)
    model = build_judge_model(images.shape[1], JUDGE_CONFIG["feature_dim"],
                              JUDGE_CONFIG["dropout"])
    model.compile(keras.optimizers.Adam(JUDGE_CONFIG["learning_rate"]),
                  "sparse_categorical_crossentropy")
    model.fit(images, labels, batch_size=JUDGE_CONFIG["batch_size"], shuffle=True, verbose=0,
              epochs=num_epochs or JUDGE_CONFIG["num_epochs"])
    return model


def _predict(model, images):
    """Probabilities from a Keras model or from a function images -> probabilities."""
    images = np.asarray(images, np.float32)
    if isinstance(model, keras.Model):
        return np.asarray(model.predict(images, batch_size=256, verbose=0))
    return np.asarray(model(images))


def trigger_accuracy(model, triggers):
    """The fraction of the trigger images that `model` (a Keras model, or a function:
    images -> probabilities) labels as the owner chose."""
    images, labels = triggers
    return float(np.mean(_predict(model, images).argmax(axis=1) == np.asarray(labels)))


def ownership_p_value(matches, num_triggers, num_classes=10):
    """P(X >= matches) for X ~ Binomial(num_triggers, 1 / num_classes): how often a model
    that knows nothing of the triggers would match the owner's labels that often."""
    if not 0 <= matches <= num_triggers or int(matches) != matches:
        raise ValueError(f"matches must be an integer in [0, {num_triggers}], got {matches}.")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    p = 1.0 / num_classes
    return float(sum(math.comb(num_triggers, k) * p ** k * (1 - p) ** (num_triggers - k)
                     for k in range(int(matches), num_triggers + 1)))


def fine_tune(model, images, labels, num_epochs=5, learning_rate=1e-3, seed=0):
    """A copy of `model`'s weights trained further on a few labelled `images`: what a thief
    who holds the weights might do to adapt (or disguise) them. The original is untouched."""
    keras.utils.set_random_seed(seed)
    stolen = keras.models.clone_model(model)
    stolen.set_weights(model.get_weights())
    stolen.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    stolen.fit(np.asarray(images, np.float32), np.asarray(labels), batch_size=32,
               epochs=num_epochs, shuffle=True, verbose=0)
    return stolen
