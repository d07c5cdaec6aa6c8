import keras
import numpy as np
import pytest
from keras import ops

from course_lib.models.unet import SinusoidalEmbedding, build_unet

SHAPE = (8, 8, 1)
WIDTHS = (8, 16)


def _tiny(num_classes=None, seed=0):
    keras.utils.set_random_seed(seed)
    network = build_unet(SHAPE, WIDTHS, num_classes=num_classes, num_heads=2)
    # The output layer starts at zero (the network then predicts 0 everywhere); give it
    # random weights so that the tests can see how the output depends on the inputs.
    output = network.get_layer("output")
    kernel = np.random.default_rng(seed).normal(0, 0.1, output.kernel.shape)
    output.kernel.assign(kernel.astype("float32"))
    return network


def _inputs(n=4, seed=0):
    rng = np.random.default_rng(seed)
    x_t = rng.standard_normal((n, *SHAPE)).astype("float32")
    return x_t, np.linspace(0, 99, n).astype("float32")


def test_sinusoidal_embedding_follows_its_formula():
    dim, t = 8, np.array([0.0, 1.0, 37.0, 999.0], "float32")
    embedding = ops.convert_to_numpy(SinusoidalEmbedding(dim)(t))
    frequencies = 10000.0 ** (-np.arange(dim // 2) / (dim // 2))
    angles = t[:, None] * frequencies
    np.testing.assert_allclose(embedding, np.concatenate([np.sin(angles), np.cos(angles)], 1),
                               atol=1e-4)
    # Every timestep has the same norm, sqrt(dim / 2), and its own direction.
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), np.sqrt(dim / 2), rtol=1e-5)
    assert len({tuple(np.round(row, 4)) for row in embedding}) == len(t)
    layer = SinusoidalEmbedding.from_config(SinusoidalEmbedding(dim, max_period=100).get_config())
    assert (layer.dim, layer.max_period) == (dim, 100)
    with pytest.raises(ValueError, match="even"):
        SinusoidalEmbedding(5)


def test_output_has_the_image_shape_starts_at_zero_and_depends_on_t():
    keras.utils.set_random_seed(0)
    fresh = build_unet(SHAPE, WIDTHS, num_heads=2)
    x_t, t = _inputs()
    np.testing.assert_array_equal(ops.convert_to_numpy(fresh([x_t, t])), 0.0)  # zero init
    network = _tiny()
    output = ops.convert_to_numpy(network([x_t, t]))
    assert output.shape == (4, *SHAPE) and output.dtype == np.float32
    other_t = ops.convert_to_numpy(network([x_t, t + 10]))
    assert not np.allclose(output, other_t, atol=1e-4)
    # Integer timesteps are accepted and mean the same as floats.
    np.testing.assert_allclose(ops.convert_to_numpy(network([x_t, t.astype("int32")])), output,
                               atol=1e-6)


def test_conditional_output_depends_on_the_label():
    network = _tiny(num_classes=3)
    x_t, t = _inputs(4)
    x_t, t = np.repeat(x_t[:1], 4, axis=0), np.repeat(t[:1], 4)  # one input, four labels
    output = ops.convert_to_numpy(network([x_t, t, np.array([0, 1, 2, 3])]))  # 3 is null
    for i in range(4):
        for j in range(i):
            assert not np.allclose(output[i], output[j], atol=1e-4)
    assert network.get_layer("label_embedding").input_dim == 4  # 3 labels + the null label


@pytest.mark.parametrize("label_channels", [True, False])
@pytest.mark.parametrize("scale_shift", [True, False])
def test_label_channels_and_scale_shift_variants(label_channels, scale_shift):
    keras.utils.set_random_seed(0)
    network = build_unet(SHAPE, WIDTHS, num_classes=3, num_heads=2,
                         label_channels=label_channels, scale_shift=scale_shift)
    # The stem sees the image, plus one channel per label when the label is an input map.
    assert network.get_layer("stem").kernel.shape[2] == 1 + 3 * label_channels
    width = WIDTHS[0]
    embedding = network.get_layer("down0_res0_embedding")
    assert embedding.kernel.shape[-1] == (2 * width if scale_shift else width)
    if label_channels:  # one-hot maps, all zero for the null label, never trained
        one_hot = network.get_layer("label_one_hot")
        np.testing.assert_array_equal(one_hot.get_weights()[0], np.eye(4, 3))
        assert not one_hot.trainable_weights
    x_t, t = _inputs(2)
    output = ops.convert_to_numpy(network([x_t, t, np.array([0, 3])]))
    assert output.shape == x_t.shape


def test_default_size_attention_and_mixed_precision_output():
    network = build_unet((16, 16, 1), (32, 64, 128))
    assert 500_000 <= network.count_params() <= 1_500_000
    attention = [layer.name for layer in network.layers
                 if isinstance(layer, keras.layers.MultiHeadAttention)]
    assert attention == ["down2_attention_mha"]  # one block, at 4x4
    assert not any(isinstance(layer, keras.layers.MultiHeadAttention)
                   for layer in build_unet(SHAPE, WIDTHS, attention_at=(), num_heads=2).layers)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        network = build_unet(SHAPE, WIDTHS, num_heads=2)
        assert network.get_layer("stem").compute_dtype == "bfloat16"
        assert network(list(_inputs(2))).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_invalid_shapes_are_rejected_clearly():
    with pytest.raises(ValueError, match="divisible by"):
        build_unet((10, 10, 1), (8, 16, 32))  # 10 is not divisible by 2**2
    with pytest.raises(ValueError, match="num_heads"):
        build_unet(SHAPE, (6, 12), num_heads=4)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_serializes_and_reloads(tmp_path, num_classes):
    network = _tiny(num_classes)
    x_t, t = _inputs()
    inputs = [x_t, t] if num_classes is None else [x_t, t, np.array([0, 1, 2, 3])]
    path = tmp_path / "unet.keras"
    network.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(ops.convert_to_numpy(reloaded(inputs)),
                               ops.convert_to_numpy(network(inputs)), atol=1e-6)
