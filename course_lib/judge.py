"""The digit judge: a small CNN trained on the bundled digits that scores generated digits.

FID and KID compare Inception-v3 features of real and generated photos. Our generators make
16x16 digits, offline, so the course uses its own feature extractor instead: a classifier
trained once on the train split of `course_lib.data.load_digits(image_size=16)` (>= 97% test
accuracy), whose 64-d penultimate layer ("features") plays the role of Inception's pool
layer and whose softmax plays the role of Inception's class probabilities. Every chapter
reports the same table with it:

    from course_lib.judge import load_judge
    judge = load_judge()                    # trains once (~15 s on a 2-core CPU), then cached
    judge.report(generated, x_test, labels=requested_labels)
    # {'fid': ..., 'kid': ..., 'inception_score': ..., 'label_accuracy': ..., ...}

The numbers are comparable across chapters of this course, not with published FIDs. For
scale (measured with the default config): real train vs test digits give FID ~1.8 and KID
~0 (-1.3; KID is unbiased, so it can be negative, and its features are not normalised, so
its values are larger than Inception KIDs); uniform noise vs test digits gives FID ~240 and
KID ~77; the Inception score of the real test digits is ~9.6 (at most 10), of noise ~1.9.

The judge is trained under float32 whatever the global mixed-precision policy is (every
layer is built with `dtype="float32"`), so its outputs are float32 and the cached file
gives the same numbers in every notebook. Load it early: training it (only on a cache miss)
reseeds Keras and TensorFlow with the judge's seed; Python's and NumPy's generator states are
restored afterwards.
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

from course_lib import metrics
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
INFERENCE_BATCH_SIZE = 256

_JUDGES = {}  # the judges loaded in this process, by cache folder


def build_judge_model(image_size=16, feature_dim=64, dropout=0.3):
    """The judge's network: two conv blocks, a dense "features" layer and a softmax.

    Every layer is float32 whatever the global mixed-precision policy.
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


def _versions():
    """What the cached judge depends on: a change in any of these retrains it."""
    return {"judge_format": JUDGE_FORMAT, "keras": keras.__version__, "tensorflow": tf.__version__}


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class DigitJudge:
    """A trained digit classifier that scores sets of generated digits.

    Get one with `load_judge()`. Images are (N, H, W, 1) or (N, H, W) in [-1, 1], of any
    size (resized to 16x16 with antialiased bilinear interpolation, as `load_digits` does),
    NumPy arrays or tensors of any float dtype.

    Args:
        model: the trained Keras model from `build_judge_model`.
        metadata: the dict saved next to it (test accuracy, versions, config).

    Attributes:
        test_accuracy: accuracy on the test split of `load_digits`, measured after training.
        metadata: test accuracy, training time, versions and training config.

    Example:
        >>> from course_lib.data import load_digits
        >>> judge = load_judge()
        >>> x_test, y_test = load_digits(split="test")
        >>> judge.accuracy(x_test, y_test) >= 0.97
        True
        >>> judge.inception_score(x_test) > 8   # at most 10: confident and balanced
        True

    Reference:
        FID: Heusel et al. 2017; KID: Binkowski et al. 2018; Inception score: Salimans et
        al. 2016, "Improved Techniques for Training GANs". See `course_lib.metrics`.
    """

    def __init__(self, model, metadata):
        self.model = model
        self.metadata = metadata
        accuracy = metadata.get("test_accuracy")  # None while training
        self.test_accuracy = None if accuracy is None else float(accuracy)
        self.image_size = int(model.input_shape[1])
        # One forward pass gives both the penultimate features and the probabilities.
        self._features_and_probs = keras.Model(
            model.inputs, [model.get_layer("features").output, model.output]
        )

    # -------------------------------------------------------------- training and caching

    @classmethod
    def train(cls, config=None, verbose=0):
        """Trains a judge on the train split of `load_digits` (not saved; see `from_cache`).

        Args:
            config: overrides of `JUDGE_CONFIG` (e.g. `{"num_epochs": 1}` in tests).
            verbose: passed to `fit`.
        """
        from course_lib.data import load_digits  # imported here: only training needs it

        config = {**JUDGE_CONFIG, **(config or {})}
        x_train, y_train = load_digits(image_size=config["image_size"], split="train")
        x_test, y_test = load_digits(image_size=config["image_size"], split="test")
        python_state, numpy_state = random.getstate(), np.random.get_state()
        keras.utils.set_random_seed(config["seed"])
        try:
            model = build_judge_model(
                config["image_size"], config["feature_dim"], config["dropout"]
            )
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
            "versions": _versions(),
            "config": config,
            "data": "course_lib.data.load_digits(image_size, split, test_fraction=0.2, seed=0)",
        }
        judge = cls(model, metadata)
        judge.test_accuracy = judge.accuracy(x_test, y_test)
        metadata["test_accuracy"] = judge.test_accuracy
        metadata["train_accuracy"] = judge.accuracy(x_train, y_train)
        if judge.test_accuracy < MIN_TEST_ACCURACY:
            warnings.warn(
                f"The digit judge reached only {judge.test_accuracy:.3f} test accuracy "
                f"(expected >= {MIN_TEST_ACCURACY}); its scores are less reliable.",
                stacklevel=2,
            )
        return judge

    def save(self, directory):
        """Writes `digit_judge.keras` and `digit_judge.json` into `directory` atomically."""
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        model_path = os.path.join(directory, MODEL_FILE)
        # Write to temporary names, then rename: a reader never sees half a file.
        tmp_model = os.path.join(directory, f"tmp-{os.getpid()}-{MODEL_FILE}")
        self.model.save(tmp_model)
        os.replace(tmp_model, model_path)
        self.metadata["sha256"] = _sha256(Path(model_path))
        tmp_meta = os.path.join(directory, f"tmp-{os.getpid()}-{METADATA_FILE}")
        with open(tmp_meta, "w") as f:
            json.dump(self.metadata, f, indent=2)
        os.replace(tmp_meta, os.path.join(directory, METADATA_FILE))

    @classmethod
    def load(cls, directory):
        """Loads a saved judge; raises if the files are missing, corrupt or out of date."""
        directory = Path(directory)
        with open(directory / METADATA_FILE) as f:
            metadata = json.load(f)
        if metadata.get("versions") != _versions():
            raise ValueError(
                f"cached judge was made with {metadata.get('versions')}, now {_versions()}"
            )
        if metadata.get("sha256") != _sha256(directory / MODEL_FILE):
            raise ValueError(f"{directory / MODEL_FILE} does not match its checksum")
        model = keras.models.load_model(directory / MODEL_FILE, compile=False)
        return cls(model, metadata)

    @classmethod
    def from_cache(cls, directory=None, retrain=False, config=None):
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
        exists = os.path.exists(os.path.join(directory, MODEL_FILE)) or os.path.exists(
            os.path.join(directory, METADATA_FILE)
        )
        if exists and not retrain:
            try:
                judge = cls.load(directory)
                if judge.metadata.get("config") != config:
                    raise ValueError("cached judge was trained with another config")
                return judge
            except Exception as error:  # any bad cache: retrain rather than crash
                warnings.warn(
                    f"Cannot use the cached digit judge in {directory} "
                    f"({type(error).__name__}: {error}); retraining it.",
                    stacklevel=2,
                )
        judge = cls.train(config)
        judge.save(directory)
        return judge

    # -------------------------------------------------------------- inference

    def _prepare(self, images):
        """Any images -> float32 tensor (N, 16, 16, 1)."""
        images = tf.cast(tf.convert_to_tensor(images), tf.float32)
        if images.shape.rank == 3:  # (N, H, W): add the channel axis
            images = images[..., None]
        if images.shape.rank != 4:
            raise ValueError(
                f"The judge expects images (N, H, W, 1) or (N, H, W), got shape {images.shape}"
            )
        if images.shape[-1] != 1:
            raise ValueError(
                f"The judge expects grayscale digits with 1 channel, got {images.shape[-1]} "
                f"channels (shape {images.shape}); use tf.image.rgb_to_grayscale first if "
                "these are gray digits stored as RGB"
            )
        if images.shape[0] == 0:
            raise ValueError("The judge got an empty batch of images")
        low, high = float(tf.reduce_min(images)), float(tf.reduce_max(images))
        if low < -1.5 or high > 1.5:
            warnings.warn(
                f"The judge expects images in [-1, 1], got values in [{low:.3g}, {high:.3g}]",
                stacklevel=3,
            )
        size = (self.image_size, self.image_size)
        if tuple(images.shape[1:3]) != size:
            images = tf.image.resize(images, size, "bilinear", antialias=True)
        return images

    def _features_probs(self, images):
        """(features (N, d), probs (N, 10)) as float32 NumPy arrays."""
        images = self._prepare(images)
        features, probs = [], []
        for start in range(0, int(images.shape[0]), INFERENCE_BATCH_SIZE):
            f, p = self._features_and_probs(
                images[start : start + INFERENCE_BATCH_SIZE], training=False
            )
            features.append(np.asarray(f, dtype=np.float32))
            probs.append(np.asarray(p, dtype=np.float32))
        return np.concatenate(features), np.concatenate(probs)

    def predict(self, images):
        """Class probabilities p(y|x), float32 (N, 10)."""
        return self._features_probs(images)[1]

    def features(self, images):
        """Penultimate ("features" layer) activations, float32 (N, feature_dim)."""
        return self._features_probs(images)[0]

    def accuracy(self, images, labels):
        """Fraction of images whose predicted class is their label.

        For a conditional generator this is its "label accuracy": pass the generated
        samples and the labels they were asked for.

        Args:
            images: (N, H, W, 1) or (N, H, W) in [-1, 1].
            labels: integer labels (N,) in 0..9.
        """
        return _accuracy(self.predict(images), labels)

    def fid(self, generated, real):
        """Frechet distance between judge features of `generated` and `real` images.

        Biased upwards for small sets: compare numbers computed with equal set sizes.
        """
        return metrics.frechet_distance(self.features(generated), self.features(real))

    def kid(self, generated, real, num_subsets=100, subset_size=None, seed=0, return_std=False):
        """Kernel distance between judge features (see `metrics.kernel_distance`)."""
        return metrics.kernel_distance(
            self.features(generated), self.features(real), num_subsets=num_subsets,
            subset_size=subset_size, seed=seed, return_std=return_std,
        )

    def inception_score(self, images, num_splits=1, return_std=False):
        """The Inception score with the judge's probabilities: between 1 and 10.

        $\\mathrm{IS} = \\exp\\big(\\mathbb{E}_x\\,\\mathrm{KL}(p(y|x)\\,\\|\\,p(y))\\big)$,
        with $p(y)$ the mean of $p(y|x)$ over the split. High when each image is classified
        confidently and all ten classes appear equally often. Salimans et al. use 10 splits
        of 5,000 images; our sets hold hundreds, and small splits bias the score down, so
        the default is one split. Pass `num_splits > 1` to see the spread.

        Args:
            images: (N, H, W, 1) or (N, H, W) in [-1, 1].
            num_splits: number of equal splits the score is averaged over.
            return_std: also return the standard deviation over splits.

        Returns:
            The mean score as a float, or `(mean, std)`.
        """
        return _inception_score(self.predict(images), num_splits, return_std)

    def class_histogram(self, images):
        """Fraction of images predicted as each class, float64 (10,), summing to 1.

        A generator that covers every mode gives about 0.1 each; mode collapse shows as a
        few large fractions.
        """
        return _class_histogram(self.predict(images))

    def report(self, generated, real, labels=None):
        """All the judge's numbers for a set of generated digits, as one flat dict.

        Args:
            generated: generated images (N, H, W, 1) or (N, H, W) in [-1, 1].
            real: real images to compare with, e.g. `load_digits(split="test")[0]`.
            labels: for a conditional generator, the labels the samples were asked for.

        Returns:
            A dict with `num_generated`, `num_real`, `fid`, `kid`, `kid_std`,
            `inception_score`, `max_class_fraction`, `min_class_fraction`,
            `classes_covered` (classes receiving at least half their fair share, 5%),
            `judge_test_accuracy`, and `label_accuracy` when `labels` is given.
        """
        gen_features, gen_probs = self._features_probs(generated)
        real_features = self.features(real)
        kid, kid_std = metrics.kernel_distance(gen_features, real_features, return_std=True)
        histogram = _class_histogram(gen_probs)
        result = {
            "num_generated": len(gen_features),
            "num_real": len(real_features),
            "fid": metrics.frechet_distance(gen_features, real_features),
            "kid": kid,
            "kid_std": kid_std,
            "inception_score": _inception_score(gen_probs, 1, False),
            "max_class_fraction": float(histogram.max()),
            "min_class_fraction": float(histogram.min()),
            "classes_covered": int(np.sum(histogram >= 0.5 / NUM_CLASSES)),
            "judge_test_accuracy": self.test_accuracy,
        }
        if labels is not None:
            result["label_accuracy"] = _accuracy(gen_probs, labels)
        return result


def _accuracy(probs, labels):
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(probs):
        raise ValueError(f"Got {len(probs)} images but {len(labels)} labels")
    return float(np.mean(np.argmax(probs, axis=-1) == labels))


def _class_histogram(probs):
    counts = np.bincount(np.argmax(probs, axis=-1), minlength=NUM_CLASSES)
    return counts / counts.sum()


def _inception_score(probs, num_splits, return_std):
    probs = np.asarray(probs, dtype=np.float64)
    if not 1 <= num_splits <= len(probs):
        raise ValueError(f"num_splits must be in [1, {len(probs)}], got {num_splits}")
    log_probs = np.log(np.clip(probs, 1e-12, None))
    scores = []
    for split in np.array_split(np.arange(len(probs)), num_splits):
        p_y = probs[split].mean(axis=0)  # the marginal p(y) of this split
        kl = np.sum(probs[split] * (log_probs[split] - np.log(np.clip(p_y, 1e-12, None))), 1)
        scores.append(np.exp(kl.mean()))
    mean, std = float(np.mean(scores)), float(np.std(scores))
    return (mean, std) if return_std else mean


def load_judge(retrain=False):
    """The course's digit judge: loaded from `cache_dir("judge")`, trained there if needed.

    Trained once per machine (a corrupt or out-of-date cache is retrained, with a
    warning), then loaded from the cache; within a process the same object is returned.

    Args:
        retrain: train a new judge and overwrite the cache.

    Returns:
        A `DigitJudge`.
    """
    directory = cache_dir("judge")
    key = os.fspath(directory)
    if retrain or key not in _JUDGES:
        _JUDGES[key] = DigitJudge.from_cache(directory, retrain=retrain)
    return _JUDGES[key]
