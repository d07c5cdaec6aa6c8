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

This module is the scorer: `DigitJudge` prepares images, computes features and
probabilities, and turns them into numbers. How the judge is trained, saved, checksummed and
cached is `course_lib.judge_training` (its `load_judge`, `build_judge_model` and
`JUDGE_CONFIG` are importable from here too).
"""

import warnings

import keras
import numpy as np
import tensorflow as tf

from course_lib import metrics
from course_lib.judge_training import (
    JUDGE_CONFIG,
    METADATA_FILE,
    MODEL_FILE,
    NUM_CLASSES,
    build_judge_model,
    load_judge,
)

__all__ = ["DigitJudge", "load_judge", "build_judge_model", "JUDGE_CONFIG", "MODEL_FILE",
           "METADATA_FILE", "NUM_CLASSES"]
INFERENCE_BATCH_SIZE = 256


class DigitJudge:
    """A trained digit classifier that scores sets of generated digits.

    Get one with `load_judge()`. Images are (N, H, W, 1) or (N, H, W) in [-1, 1], of any
    size (resized to 16x16 with antialiased bilinear interpolation, as `load_digits` does),
    NumPy arrays or tensors of any float dtype. Outputs are float32 whatever the global
    mixed-precision policy (the network's layers are float32).

    Args:
        model: a trained Keras model from `build_judge_model` (it needs a layer named
            "features").
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
