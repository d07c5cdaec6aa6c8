import keras
import numpy as np
import pytest
from keras import layers

from course_lib import efficiency
from course_lib.models.gan import build_generator


def test_separable_convolution_weights_and_flops_match_the_formulas():
    inputs = keras.Input((8, 8, 128))
    full = keras.Model(inputs, layers.Conv2D(64, 3, padding="same", use_bias=False)(inputs))
    separable = keras.Model(inputs, layers.SeparableConv2D(64, 3, padding="same",
                                                           use_bias=False)(inputs))
    assert full.count_params() == 9 * 128 * 64 == 73_728
    assert separable.count_params() == 9 * 128 + 128 * 64
    full_flops, _ = efficiency.count_flops(full, (1, 8, 8, 128))
    separable_flops, _ = efficiency.count_flops(separable, (1, 8, 8, 128))
    assert full_flops == 2 * 8 * 8 * 9 * 128 * 64  # a multiply-add is 2 operations
    assert separable_flops == 2 * 8 * 8 * (9 * 128 + 128 * 64)
    assert 7 < full_flops / separable_flops < 8.5  # 1 / (1/64 + 1/9)


def test_light_generator_is_a_drop_in_with_far_fewer_weights():
    dcgan = build_generator(64, (16, 16, 1), None, (128, 64))
    light = efficiency.build_light_generator(64, (16, 16, 1), (128, 64), projection_channels=32)
    images = light(np.zeros((2, 64), "float32"))
    assert images.shape == (2, 16, 16, 1) and images.dtype == "float32"
    assert dcgan.count_params() > 3 * light.count_params()
    # Fewer operations too, though less so: a resize-convolution computes at the upsampled
    # resolution, where a strided transposed convolution computes at the input's.
    assert efficiency.count_flops(dcgan, (1, 64))[0] > 2 * efficiency.count_flops(light,
                                                                                (1, 64))[0]
    with pytest.raises(ValueError, match="divisible"):
        efficiency.build_light_generator(image_shape=(12, 12, 1), filters=(128, 64, 32))
    with pytest.raises(ValueError, match="projection_channels"):
        efficiency.build_light_generator(projection_channels=0)
    with pytest.raises(ValueError, match="filters"):
        efficiency.build_light_generator(filters=())


def test_sampling_seconds_times_a_compiled_generator():
    generator = efficiency.build_variant("separable")
    seconds = efficiency.sampling_seconds(generator, num_samples=300, repeats=2, batch_size=128)
    assert 0 < seconds < 30
