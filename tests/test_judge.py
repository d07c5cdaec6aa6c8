"""Tests of the digit judge (`course_lib.judge`, the scorer) and of how it is trained and
cached (`course_lib.judge_training`): trained once into a temporary cache for the module."""

import json
import os
import shutil
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import judge as judge_module
from course_lib import judge_training
from course_lib.data import load_digits
from course_lib.judge import METADATA_FILE, MODEL_FILE, DigitJudge, build_judge_model, load_judge

TINY_CONFIG = {"num_epochs": 1, "batch_size": 256}  # trains in seconds; for cache tests


@pytest.fixture(scope="module")
def judge_cache(tmp_path_factory):
    """COURSE_CACHE_DIR pointing at a fresh folder for this module, restored afterwards."""
    old = os.environ.get("COURSE_CACHE_DIR")
    folder = tmp_path_factory.mktemp("course_cache")
    os.environ["COURSE_CACHE_DIR"] = str(folder)
    judge_training._JUDGES.clear()
    yield folder
    judge_training._JUDGES.clear()
    if old is None:
        del os.environ["COURSE_CACHE_DIR"]
    else:
        os.environ["COURSE_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def judge(judge_cache):
    start = time.perf_counter()
    judge = load_judge()
    print(
        f"\njudge: trained in {judge.metadata['training_time_s']} s "
        f"(load_judge {time.perf_counter() - start:.1f} s), "
        f"test accuracy {judge.test_accuracy:.4f}"
    )
    return judge


@pytest.fixture(scope="module")
def digits():
    x_train, y_train = load_digits(image_size=16, split="train")
    x_test, y_test = load_digits(image_size=16, split="test")
    noise = np.random.default_rng(0).uniform(-1, 1, x_test.shape).astype(np.float32)
    return x_train, y_train, x_test, y_test, noise


def test_trained_once_and_accurate(judge, judge_cache, digits):
    _, _, x_test, y_test, _ = digits
    assert judge.test_accuracy >= 0.97
    assert judge.accuracy(x_test, y_test) == pytest.approx(judge.test_accuracy)
    metadata = json.loads((judge_cache / "judge" / METADATA_FILE).read_text())
    assert metadata["test_accuracy"] == pytest.approx(judge.test_accuracy)
    assert metadata["versions"]["keras"] == keras.__version__
    assert metadata["config"]["num_epochs"] == judge_module.JUDGE_CONFIG["num_epochs"]
    assert (judge_cache / "judge" / MODEL_FILE).exists()
    assert load_judge() is judge  # cached per process


def test_output_shapes_and_input_forms(judge, digits):
    _, _, x_test, y_test, _ = digits
    probs = judge.predict(x_test[:10])
    assert probs.shape == (10, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    features = judge.features(x_test[:10])
    assert features.shape == (10, judge_module.JUDGE_CONFIG["feature_dim"])
    assert features.dtype == np.float32
    # (N, H, W) without a channel axis, and tensors, give the same numbers.
    np.testing.assert_array_equal(judge.predict(tf.constant(x_test[:10, :, :, 0])), probs)
    # Other sizes are resized to 16x16: 32x32 digits are still recognised.
    x_32 = tf.image.resize(x_test, (32, 32), "bilinear", antialias=True)
    assert judge.accuracy(x_32, y_test) >= 0.95


def test_rejects_rgb_and_bad_shapes(judge, digits):
    x_test = digits[2]
    with pytest.raises(ValueError, match="1 channel"):
        judge.predict(np.repeat(x_test[:4], 3, axis=-1))
    with pytest.raises(ValueError, match="expects images"):
        judge.features(x_test[0, :, :, 0])
    with pytest.raises(ValueError, match="labels"):
        judge.accuracy(x_test[:4], [1, 2, 3])
    with pytest.warns(UserWarning, match=r"\[-1, 1\]"):
        judge.predict((x_test[:4] + 1) * 127.5)  # [0, 255] images by mistake


def test_deterministic_and_cache_reload(judge, judge_cache, digits):
    x_test = digits[2]
    first = judge.features(x_test)
    np.testing.assert_array_equal(judge.features(x_test), first)
    model_mtime = os.path.getmtime(judge_cache / "judge" / MODEL_FILE)
    judge_training._JUDGES.clear()
    reloaded = load_judge()
    assert reloaded is not judge
    assert os.path.getmtime(judge_cache / "judge" / MODEL_FILE) == model_mtime  # not retrained
    np.testing.assert_array_equal(reloaded.predict(x_test), judge.predict(x_test))
    np.testing.assert_array_equal(reloaded.features(x_test), first)


def test_float32_under_mixed_precision(judge, judge_cache, digits):
    x_test = digits[2]
    expected = judge.features(x_test[:32])
    old_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        reloaded = judge_training.judge_from_cache(judge_cache / "judge")
        features = reloaded.features(tf.cast(x_test[:32], tf.bfloat16))
    finally:
        keras.mixed_precision.set_global_policy(old_policy)
    assert features.dtype == np.float32
    # bfloat16 input pixels are rounded, so compare loosely; float32 weights and maths.
    np.testing.assert_allclose(features, expected, rtol=0.05, atol=0.05 * np.abs(expected).max())
    assert reloaded.model.get_layer("features").compute_dtype == "float32"


def test_fid_and_kid_separate_real_from_noise(judge, digits):
    x_train, _, x_test, _, noise = digits
    fid_real, fid_noise = judge.fid(x_train, x_test), judge.fid(noise, x_test)
    kid_real, kid_noise = judge.kid(x_train, x_test), judge.kid(noise, x_test)
    print(f"\nFID train/test {fid_real:.3f}, noise/test {fid_noise:.1f}")
    print(f"KID train/test {kid_real:.4f}, noise/test {kid_noise:.2f}")
    assert 0 <= fid_real and 10 * fid_real < fid_noise
    assert 10 * abs(kid_real) < kid_noise


def test_inception_score_and_class_histogram(judge, digits):
    _, _, x_test, _, noise = digits
    score_real, score_noise = judge.inception_score(x_test), judge.inception_score(noise)
    mean, std = judge.inception_score(x_test, num_splits=4, return_std=True)
    print(f"\nInception score real {score_real:.3f}, noise {score_noise:.3f}")
    assert 8 < score_real <= 10
    assert score_noise < 0.5 * score_real
    assert 1 <= mean <= 10 and std >= 0
    histogram = judge.class_histogram(x_test)
    assert histogram.shape == (10,) and histogram.sum() == pytest.approx(1.0)
    assert histogram.max() < 0.15  # the test split is balanced
    # A "generator" that only makes ones covers one class.
    ones = x_test[digits[3] == 1]
    assert judge.class_histogram(ones)[1] > 0.9


def test_label_accuracy(judge, digits):
    _, _, x_test, y_test, _ = digits
    assert judge.accuracy(x_test, y_test) >= 0.97
    shuffled = np.random.default_rng(0).permutation(y_test)
    assert 0.03 < judge.accuracy(x_test, shuffled) < 0.2


def test_report(judge, digits):
    x_train, _, x_test, y_test, _ = digits
    report = judge.report(x_test, x_train, labels=y_test)
    expected_keys = {
        "num_generated", "num_real", "fid", "kid", "kid_std", "inception_score",
        "max_class_fraction", "min_class_fraction", "classes_covered", "judge_test_accuracy",
        "label_accuracy",
    }
    assert set(report) == expected_keys
    assert report["fid"] == pytest.approx(judge.fid(x_test, x_train))
    assert report["kid"] == pytest.approx(judge.kid(x_test, x_train))
    assert report["classes_covered"] == 10
    assert report["label_accuracy"] == pytest.approx(judge.accuracy(x_test, y_test))
    assert "label_accuracy" not in judge.report(x_test[:50], x_test[50:100])


@pytest.mark.filterwarnings("ignore:The digit judge reached only")
def test_bad_cache_is_retrained_with_a_warning(judge, judge_cache, tmp_path):
    folder = tmp_path / "judge"
    folder.mkdir()
    for name in (MODEL_FILE, METADATA_FILE):
        shutil.copy(judge_cache / "judge" / name, folder / name)
    good_copy = judge_training.load_saved_judge(folder)
    assert good_copy.test_accuracy == judge.test_accuracy
    (folder / MODEL_FILE).write_bytes(b"not a keras file")
    # A tiny config keeps the retraining short (and the judge weak: see the filter above).
    with pytest.warns(UserWarning, match="retraining"):
        retrained = judge_training.judge_from_cache(folder, config=TINY_CONFIG)
    zeros = np.zeros((2, 16, 16, 1), np.float32)
    assert retrained.predict(zeros).shape == (2, 10)
    # The retrained judge was saved and loads again without a warning.
    np.testing.assert_array_equal(judge_training.load_saved_judge(folder).features(zeros),
                                  retrained.features(zeros))
    # What else `from_cache` treats as a bad cache (all caught the same way as above):
    metadata = json.loads((folder / METADATA_FILE).read_text())
    metadata["versions"]["keras"] = "0.0.1"  # made by another Keras
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="cached judge was made with"):
        judge_training.load_saved_judge(folder)
    metadata["versions"] = judge_training.versions()
    (folder / MODEL_FILE).write_bytes(b"PK not a zip")  # unloadable, checksum updated
    metadata["sha256"] = judge_training.sha256(folder / MODEL_FILE)
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(Exception):  # noqa: B017 - whatever Keras raises for a bad file
        judge_training.load_saved_judge(folder)
    (folder / METADATA_FILE).write_text("{ broken json")
    with pytest.raises(json.JSONDecodeError):
        judge_training.load_saved_judge(folder)


def test_the_scorer_needs_no_training(tmp_path):
    """`DigitJudge` scores with any model of the judge's shape; saving and loading (with the
    checksum) round-trip it, untrained, in well under a second of training code."""
    keras.utils.set_random_seed(0)
    untrained = DigitJudge(build_judge_model(image_size=8, feature_dim=4),
                           {"versions": judge_training.versions()})
    assert untrained.test_accuracy is None and untrained.image_size == 8
    images = np.random.default_rng(0).uniform(-1, 1, (5, 16, 16, 1)).astype(np.float32)
    assert untrained.features(images).shape == (5, 4)  # resized from 16x16 to 8x8
    np.testing.assert_allclose(untrained.predict(images).sum(axis=1), 1.0, rtol=1e-5)
    judge_training.save_judge(untrained, tmp_path)
    assert untrained.metadata["sha256"] == judge_training.sha256(tmp_path / MODEL_FILE)
    again = judge_training.load_saved_judge(tmp_path)
    np.testing.assert_array_equal(again.features(images), untrained.features(images))
    (tmp_path / MODEL_FILE).write_bytes((tmp_path / MODEL_FILE).read_bytes() + b"\0")
    with pytest.raises(ValueError, match="checksum"):
        judge_training.load_saved_judge(tmp_path)


def test_public_names_of_the_judge():
    """What notebooks, benchmarks and callbacks import from `course_lib.judge` is the
    training module's own object, not a copy."""
    for name in ("load_judge", "build_judge_model", "JUDGE_CONFIG", "MODEL_FILE",
                 "METADATA_FILE"):
        assert getattr(judge_module, name) is getattr(judge_training, name), name
    assert set(judge_module.__all__) >= {"DigitJudge", "load_judge", "build_judge_model"}
    assert not hasattr(DigitJudge, "train")  # the scorer does not train
