"""course_lib.style_transfer: Gram matrices, the losses, the offline loader, `transfer` (tiny)."""

import contextlib
import io
import tempfile
import time

import keras
import numpy as np
import pytest

from course_lib import style_transfer as st


def _features(shape=(2, 5, 4, 3), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _images(shape=(1, 32, 32, 3), seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


@pytest.fixture(scope="module")
def offline():
    """load_feature_extractor() as on a machine without internet and without cached weights."""
    requested = []
    build = st._vgg19

    def spy(weights):
        requested.append((weights, time.perf_counter()))
        return build(weights)

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as home:
        patch.setenv("KERAS_HOME", home)  # no cached weights there
        patch.setattr(st, "_host_reachable", lambda host, port, timeout: False)
        patch.setattr(st, "_vgg19", spy)
        # Built under a mixed-precision policy, which the extractor must not take up.
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(printed):
                model, weights_used = st.load_feature_extractor(timeout=0.1)
        finally:
            keras.mixed_precision.set_global_policy(previous)
    return {"model": model, "weights_used": weights_used, "printed": printed.getvalue(),
            "requested": [(weights, t - start) for weights, t in requested]}


def test_gram_matrix_matches_an_einsum_reference_and_is_symmetric_psd():
    features = _features()
    gram = keras.ops.convert_to_numpy(st.gram_matrix(features))
    flat = features.reshape(2, -1, 3)
    expected = np.einsum("bpi,bpj->bij", flat, flat) / 20
    assert gram.shape == (2, 3, 3) and gram.dtype == np.float32
    np.testing.assert_allclose(gram, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gram, np.transpose(gram, (0, 2, 1)), atol=1e-6)
    assert np.all(np.linalg.eigvalsh(gram.astype(np.float64)) > -1e-5)


def test_gram_matrix_is_independent_of_the_image_size():
    features = _features((1, 3, 3, 4))
    tiled = np.tile(features, (1, 2, 3, 1))  # the same statistics over 6x more positions
    np.testing.assert_allclose(keras.ops.convert_to_numpy(st.gram_matrix(tiled)),
                               keras.ops.convert_to_numpy(st.gram_matrix(features)), rtol=1e-5)


def test_gram_matrix_is_float32_even_for_float16_input():
    features = np.full((1, 4, 4, 2), 200.0, np.float16)  # 16 * 200^2 overflows float16
    gram = keras.ops.convert_to_numpy(st.gram_matrix(features))
    assert gram.dtype == np.float32
    np.testing.assert_allclose(gram, 40000.0)


def test_style_loss_is_zero_for_the_style_itself_and_positive_otherwise():
    a, b = _features((1, 4, 4, 3), 1), _features((1, 4, 4, 3), 2)
    targets = [st.gram_matrix(a), st.gram_matrix(a * 2)]
    same = keras.ops.convert_to_numpy(st.style_loss([a, a * 2], targets))
    other = keras.ops.convert_to_numpy(st.style_loss([b, b * 2], targets))
    assert same.shape == (1,) and np.allclose(same, 0.0, atol=1e-7)
    assert other[0] > 0.01


def test_style_loss_is_invariant_to_a_rescaled_network():
    a, b = _features((1, 4, 4, 3), 1), _features((1, 4, 4, 3), 2)
    loss = st.style_loss([b], [st.gram_matrix(a)])
    scaled = st.style_loss([10 * b], [st.gram_matrix(10 * a)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss),
                               keras.ops.convert_to_numpy(scaled), rtol=1e-4)


def test_content_loss_is_relative_squared_error():
    target = _features((1, 3, 3, 2), 3)
    loss = keras.ops.convert_to_numpy(st.content_loss(target * 1.5, target))
    np.testing.assert_allclose(loss, [0.25], rtol=1e-5)


def test_total_variation_is_zero_for_a_constant_image_and_per_image():
    constant = np.full((2, 8, 8, 3), 0.3, np.float32)
    assert np.allclose(keras.ops.convert_to_numpy(st.total_variation_loss(constant)), 0.0)
    stripes = np.zeros((1, 4, 4, 1), np.float32)
    stripes[:, :, 1::2] = 1.0  # vertical stripes: only horizontal neighbours differ
    both = np.concatenate([stripes, stripes.transpose(0, 2, 1, 3)])  # and horizontal stripes
    tv = keras.ops.convert_to_numpy(st.total_variation_loss(both))
    np.testing.assert_allclose(tv, [1.0, 1.0])


def test_preprocess_matches_keras_vgg19_preprocess_input():
    images = _images((2, 4, 4, 3))
    expected = keras.applications.vgg19.preprocess_input((images + 1.0) * 127.5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(st.preprocess(images)), expected,
                               atol=1e-3)


def test_offline_loader_falls_back_quickly_with_a_clear_label(offline):
    assert offline["weights_used"] == st.RANDOM_FALLBACK == "random (offline fallback)"
    [(weights, seconds)] = offline["requested"]  # one VGG19, never with ImageNet weights
    assert weights is None and seconds < 10
    assert "Could not get the pretrained ImageNet VGG19 weights" in offline["printed"]
    assert "RANDOM weights" in offline["printed"]


def test_extractor_returns_the_style_and_content_feature_maps(offline):
    features = offline["model"](_images((1, 32, 32, 3)))
    assert [tuple(f.shape) for f in features["style"]] == [
        (1, 32, 32, 64), (1, 16, 16, 128), (1, 8, 8, 256), (1, 4, 4, 512), (1, 2, 2, 512)]
    assert tuple(features["content"].shape) == (1, 4, 4, 512)


def _tiny_vgg(fail_for_imagenet):
    """A stand-in for VGG19 with its layer names (2 filters each): the loader logic, fast."""

    def build(weights):
        if weights == "imagenet" and fail_for_imagenet:
            raise ValueError("hash mismatch")
        x = inputs = keras.Input((None, None, 3))
        for name in ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1",
                     "block4_conv2", "block5_conv1"):
            x = keras.layers.Conv2D(2, 3, padding="same", name=name)(x)
        return keras.Model(inputs, x)

    return build


@pytest.mark.parametrize("cached, reachable, fails, expected, says", [
    (True, False, False, "imagenet", "cached in"),
    (False, True, False, "imagenet", "downloaded to"),
    (False, True, True, "random (offline fallback)", "the download failed"),
    (True, False, True, "random (offline fallback)", "the cached copy"),
])
def test_loader_takes_the_cache_then_the_download_then_the_fallback(
        monkeypatch, tmp_path, capsys, cached, reachable, fails, expected, says):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    if cached:
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / st.WEIGHTS_FILE).write_bytes(b"weights")
    monkeypatch.setattr(st, "_host_reachable", lambda host, port, timeout: reachable)
    monkeypatch.setattr(st, "_vgg19", _tiny_vgg(fails))
    _, weights_used = st.load_feature_extractor(timeout=0.1)
    assert weights_used == expected
    assert says in capsys.readouterr().out


def test_probe_failure_is_bounded_by_its_timeout():
    start = time.perf_counter()
    assert not st._host_reachable("unreachable.invalid", 443, timeout=1.0)
    assert time.perf_counter() - start < 3


def test_random_weights_are_seeded_he_normal():
    def model(seed):
        net = keras.Sequential([keras.Input((8, 8, 16)), keras.layers.Conv2D(64, 3)])
        return st.randomize_weights(net, seed).layers[0].get_weights()

    (kernel, bias), (same, _), (other, _) = model(0), model(0), model(1)
    assert np.array_equal(kernel, same) and not np.array_equal(kernel, other)
    assert np.all(bias == 0)
    assert kernel.std() == pytest.approx(np.sqrt(2 / (3 * 3 * 16)), rel=0.1)


def test_extractor_runs_in_float32_under_mixed_precision(offline):
    vgg = offline["model"].get_layer("vgg19_features")
    assert all(layer.dtype_policy.name == "float32" for layer in vgg.layers)
    assert offline["model"](_images())["content"].dtype == "float32"


def test_a_few_transfer_steps_reduce_the_loss(offline):
    content, style = _images((32, 32, 3), 0) * 0.3, _images((40, 40, 3), 1)
    frames = []
    image, history = st.transfer(content, style, offline["model"], num_steps=8,
                                 learning_rate=0.05, style_weight=10.0,
                                 callback=lambda step, x, losses: frames.append(step))
    assert image.shape == (32, 32, 3) and image.dtype == np.float32
    assert image.min() >= -1.0 and image.max() <= 1.0
    assert set(history) == {"loss", "content", "style", "tv"}
    assert all(len(v) == 8 for v in history.values()) and frames == list(range(1, 9))
    assert history["content"][0] == pytest.approx(0.0, abs=1e-6)  # it starts at the content
    assert history["style"][-1] < 0.7 * history["style"][0]
    assert history["loss"][-1] < history["loss"][0]
