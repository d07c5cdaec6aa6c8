import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import speed


def tiny_dataset():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def build(jit_compile):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, dtype="float32")])
    model.compile(keras.optimizers.SGD(0.01), "mse", jit_compile=jit_compile)
    return model


def test_training_speed_times_the_steps_after_the_warmup_under_a_policy():
    before = keras.mixed_precision.global_policy().name
    result = speed.training_speed(build, tiny_dataset(), num_steps=5, warmup=2,
                                  policy="mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == before  # restored
    assert result["model"].layers[0].dtype_policy.name == "mixed_bfloat16"
    assert result["seconds_per_step"] > 0 and result["warmup_seconds"] > 0
    assert np.isfinite(result["final_loss"])
    assert result["model"].optimizer.iterations.numpy() == 7  # 2 + 5 steps, data repeated
    with pytest.raises(ValueError, match="num_steps"):
        speed.training_speed(build, tiny_dataset(), num_steps=0)


def test_step_timer_and_iterate_seconds_count_what_ran():
    timer = speed.StepTimer()
    build(False).fit(tiny_dataset(), epochs=2, verbose=0, callbacks=[timer])
    assert len(timer.durations) == 8 and min(timer.durations) > 0
    seconds = speed.iterate_seconds(tiny_dataset(), num_epochs=3)
    assert len(seconds) == 3 and min(seconds) > 0


def test_write_png_files_round_trips_to_eight_bits(tmp_path):
    images = np.linspace(-1, 1, 2 * 4 * 4).reshape(2, 4, 4, 1)
    paths = speed.write_png_files(images, tmp_path / "pngs")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["00000.png", "00001.png"]
    back = np.stack([tf.io.decode_png(tf.io.read_file(p)).numpy() for p in paths])
    assert back.dtype == np.uint8 and back.shape == images.shape
    assert np.abs(back / 127.5 - 1 - images).max() <= 1 / 255 + 1e-9
    with pytest.raises(ValueError, match="N, height, width, channels"):
        speed.write_png_files(images[0], tmp_path)


def test_compare_speeds_times_every_setting_in_every_round():
    results = speed.compare_speeds(build, tiny_dataset(), {"f32": {}, "bf16": {
        "policy": "mixed_bfloat16"}}, num_steps=3, warmup=1, rounds=2)
    assert set(results) == {"f32", "bf16"}
    for result in results.values():
        assert len(result["rounds"]) == 2 and result["spread"] >= 0
        assert result["seconds_per_step"] == min(result["rounds"])
    with pytest.raises(ValueError, match="rounds"):
        speed.compare_speeds(build, tiny_dataset(), {"f32": {}}, rounds=0)
