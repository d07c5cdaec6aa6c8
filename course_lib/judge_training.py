"""How the digit judge is made: its network, its training recipe and its cache.

`course_lib.judge` holds the scorer (`DigitJudge`: preprocessing, features, FID, KID,
Inception score, the report); this module trains one, saves it with a checksum and keeps it
in `cache_dir("judge")`, so that every notebook of a machine scores with the same weights:

    from course_lib.judge import load_judge   # the same function as `judge_training.load_judge`
    judge = load_judge()                       # trains once (~15 s on a 2-core CPU), then cached

A cache is used only if it was written by the same Keras and TensorFlow, with the same
`JUDGE_CONFIG` and `JUDGE_FORMAT`, and its model file matches the checksum saved beside it;
anything else is retrained, with a warning.

Training reseeds Keras and TensorFlow with the judge's seed; Python's and NumPy's generator
states are restored afterwards. Load the judge early in a notebook.
"""

import hashlib
import json
import os
import random
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from course_lib.runtime import cache_dir

# Hyperparameters of the judge. Changing any of them makes `load_judge` retrain the cache.
JUDGE_CONFIG = {
    "image_size": 16,  # the judge sees 16x16 digits; other sizes are resized to it
    "feature_dim": 64,  # width of the "features" layer used for FID/KID
    "dropout": 0.3,  # against overfitting 1,437 training images
    "num_epochs": 20,  # test accuracy has levelled off by then (~98.5%)
    "batch_size": 128,  # larger batches run faster per epoch on a CPU
    "learning_rate": 3e-3,  # Adam
    "seed": 0,  # seeds weight initialisation, dropout and shuffling
}
JUDGE_FORMAT = 1  # bump when the recipe changes in a way JUDGE_CONFIG does not show
MIN_TEST_ACCURACY = 0.97  # a judge below this warns after training
NUM_CLASSES = 10
MODEL_FILE = "digit_judge.keras"
METADATA_FILE = "digit_judge.json"

_JUDGES = {}  # the judges loaded in this process, by cache folder


def build_judge_model(image_size=16, feature_dim=64, dropout=0.3):
    """The judge's network: two conv blocks, a dense "features" layer and a softmax.

    Every layer is float32 whatever the global mixed-precision policy, so the judge's
    outputs are float32 and the cached file gives the same numbers in every notebook.
    `DigitJudge` reads the layer named "features".
    """
    f32 = "float32"
    layers = keras.layers
    inputs = keras.Input((image_size, image_size, 1), dtype=f32, name="images")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", dtype=f32)(inputs)  # (16, 16, 32)
    x = layers.MaxPooling2D(dtype=f32)(x)  # (8, 8, 32)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", dtype=f32)(x)  # (8, 8, 64)
    x = layers.MaxPooling2D(dtype=f32)(x)  # (4, 4, 64)
    x = layers.Flatten(dtype=f32)(x)  # (1024,)
    x = layers.Dropout(dropout, dtype=f32)(x)
    features = layers.Dense(feature_dim, activation="relu", name="features", dtype=f32)(x)
    x = layers.Dropout(dropout, dtype=f32)(features)
    probs = layers.Dense(NUM_CLASSES, activation="softmax", name="probs", dtype=f32)(x)
    return keras.Model(inputs, probs, name="digit_judge")


def train_judge(config=None, verbose=0):
    """Trains a judge on the train split of `load_digits` (not saved: see `judge_from_cache`).

    Args:
        config: overrides of `JUDGE_CONFIG` (e.g. `{"num_epochs": 1}` in tests).
        verbose: passed to `fit`.

    Returns:
        A `DigitJudge` whose `metadata` records its test accuracy, training time, versions
        and config.
    """
    from course_lib.data import load_digits
    from course_lib.judge import DigitJudge

    config = {**JUDGE_CONFIG, **(config or {})}
    x_train, y_train = load_digits(image_size=config["image_size"], split="train")
    x_test, y_test = load_digits(image_size=config["image_size"], split="test")
    python_state, numpy_state = random.getstate(), np.random.get_state()
    keras.utils.set_random_seed(config["seed"])
    try:
        model = build_judge_model(config["image_size"], config["feature_dim"], config["dropout"])
        model.compile(
            optimizer=keras.optimizers.Adam(config["learning_rate"]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        start = time.perf_counter()
        model.fit(
            x_train, y_train, batch_size=config["batch_size"],
            epochs=config["num_epochs"], shuffle=True, verbose=verbose,
        )
        training_time = time.perf_counter() - start
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    metadata = {
        "test_accuracy": None,
        "train_accuracy": None,
        "training_time_s": round(training_time, 2),
        "num_train": len(x_train),
        "num_test": len(x_test),
        "num_parameters": model.count_params(),
        "versions": versions(),
        "config": config,
        "data": "course_lib.data.load_digits(image_size, split, test_fraction=0.2, seed=0)",
    }
    judge = DigitJudge(model, metadata)
    judge.test_accuracy = metadata["test_accuracy"] = judge.accuracy(x_test, y_test)
    metadata["train_accuracy"] = judge.accuracy(x_train, y_train)
    if judge.test_accuracy < MIN_TEST_ACCURACY:
        warnings.warn(
            f"The digit judge reached only {judge.test_accuracy:.3f} test accuracy "
            f"(expected >= {MIN_TEST_ACCURACY}); its scores are less reliable.",
            stacklevel=2,
        )
    return judge


def versions():
    """What a cached judge depends on: a change in any of these retrains it."""
    return {"judge_format": JUDGE_FORMAT, "keras": keras.__version__, "tensorflow": tf.__version__}


def sha256(path):
    """The hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_judge(judge, directory):
    """Writes `digit_judge.keras` and `digit_judge.json` (with the model's checksum) into
    `directory`, atomically: a reader never sees half a file."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    model_path = os.path.join(directory, MODEL_FILE)
    tmp_model = os.path.join(directory, f"tmp-{os.getpid()}-{MODEL_FILE}")
    judge.model.save(tmp_model)
    os.replace(tmp_model, model_path)
    judge.metadata["sha256"] = sha256(model_path)
    tmp_meta = os.path.join(directory, f"tmp-{os.getpid()}-{METADATA_FILE}")
    with open(tmp_meta, "w") as f:
        json.dump(judge.metadata, f, indent=2)
    os.replace(tmp_meta, os.path.join(directory, METADATA_FILE))


def load_saved_judge(directory):
    """Loads a judge saved by `save_judge`; raises if its files are missing, corrupt or were
    written by other versions."""
    from course_lib.judge import DigitJudge

    directory = Path(directory)
    with open(directory / METADATA_FILE) as f:
        metadata = json.load(f)
    if metadata.get("versions") != versions():
        raise ValueError(
            f"cached judge was made with {metadata.get('versions')}, now {versions()}")
    if metadata.get("sha256") != sha256(directory / MODEL_FILE):
        raise ValueError(f"{directory / MODEL_FILE} does not match its checksum")
    model = keras.models.load_model(directory / MODEL_FILE, compile=False)
    return DigitJudge(model, metadata)


def judge_from_cache(directory=None, retrain=False, config=None):
    """Loads the judge cached in `directory`, or trains and caches one.

    A missing, corrupt or out-of-date cache (other Keras/TensorFlow versions, another
    config) is replaced by a freshly trained judge, with a warning; it never raises.

    Args:
        directory: the cache folder; default `cache_dir("judge")`.
        retrain: train a new judge even if a good cache exists.
        config: overrides of `JUDGE_CONFIG`.
    """
    directory = cache_dir("judge") if directory is None else directory
    config = {**JUDGE_CONFIG, **(config or {})}
    exists = any(os.path.exists(os.path.join(directory, name))
                 for name in (MODEL_FILE, METADATA_FILE))
    if exists and not retrain:
        try:
            judge = load_saved_judge(directory)
            if judge.metadata.get("config") != config:
                raise ValueError("cached judge was trained with another config")
            return judge
        except Exception as error:  # any bad cache: retrain rather than crash
            warnings.warn(
                f"Cannot use the cached digit judge in {directory} "
                f"({type(error).__name__}: {error}); retraining it.",
                stacklevel=2,
            )
    judge = train_judge(config)
    save_judge(judge, directory)
    return judge


def load_judge(retrain=False):
    """The course's digit judge: loaded from `cache_dir("judge")`, trained there if needed.

    Trained once per machine (a corrupt or out-of-date cache is retrained, with a
    warning), then loaded from the cache; within a process the same object is returned.

    Args:
        retrain: train a new judge and overwrite the cache.

    Returns:
        A `course_lib.judge.DigitJudge`.
    """
    directory = cache_dir("judge")
    key = os.fspath(directory)
    if retrain or key not in _JUDGES:
        _JUDGES[key] = judge_from_cache(directory, retrain=retrain)
    return _JUDGES[key]
