import keras
import numpy as np
import pytest

from course_lib import runtime
from course_lib.runtime import DeviceInfo, pick_policy


@pytest.mark.parametrize(
    "device, policy",
    [
        (DeviceInfo("gpu", "Tesla V100", compute_capability=(7, 0)), "mixed_float16"),
        (DeviceInfo("gpu", "Tesla T4", compute_capability=(7, 5)), "mixed_float16"),
        (DeviceInfo("gpu", "A100", compute_capability=(8, 0)), "mixed_bfloat16"),
        (DeviceInfo("gpu", "H200", compute_capability=(9, 0)), "mixed_bfloat16"),
        (DeviceInfo("gpu", "Tesla K80", compute_capability=(3, 7)), "float32"),
        (DeviceInfo("gpu", "unknown GPU"), "float32"),
        (DeviceInfo("tpu", "TPU", count=8), "mixed_bfloat16"),
        (DeviceInfo("cpu", "Xeon", cpu_bf16=True), "float32"),
        (DeviceInfo("cpu", "M2"), "float32"),
    ],
)
def test_policy_for_each_device(device, policy):
    assert pick_policy(device) == policy


def test_detect_device_on_this_machine():
    device = runtime.detect_device()
    assert device.kind in ("cpu", "gpu", "tpu")
    assert device.count >= 1 and device.name


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("ON", True),
                                             ("0", False), ("", False), ("no", False)])
def test_fast_mode_from_environment(value, expected):
    assert runtime.fast_mode({"COURSE_FAST": value}) is expected
    assert runtime.fast_mode({}) is False


def test_fast_mode_rejects_unclear_values():
    with pytest.raises(ValueError, match="COURSE_FAST=1"):
        runtime.fast_mode({"COURSE_FAST": "maybe"})


def _draw():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.5)])
    x = np.ones((2, 3), "float32")
    return (np.random.rand(3), keras.random.normal((2,)).numpy(),
            model(x, training=True).numpy())


def test_seeding_gives_identical_results_twice(capsys):
    runtime.setup(seed=7, fast=False, verbose=False)
    first = _draw()
    runtime.setup(seed=7, fast=False, verbose=False)
    second = _draw()
    runtime.setup(seed=8, fast=False, verbose=False)
    third = _draw()
    for a, b, c in zip(first, second, third):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_setup_summary_and_policy(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_FAST", "1")
    try:
        rt = runtime.setup(seed=0, precision="mixed_bfloat16")
        assert rt.fast is True and rt.policy == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert rt.num_replicas == 1
        line = capsys.readouterr().out.strip()
        assert "policy mixed_bfloat16" in line and "fast mode ON" in line and "\n" not in line
        monkeypatch.setenv("COURSE_PRECISION", "float32")
        assert runtime.setup(seed=0, verbose=False).policy == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_setup_rejects_unknown_precision():
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        runtime.setup(precision="float8", verbose=False)


def test_colab_install_keeps_tensorflow(monkeypatch):
    monkeypatch.delenv("COURSE_REPOSITORY", raising=False)
    command = runtime.colab_install_command()
    assert runtime.REPOSITORY_URL in command and "tensorflow" not in command
    assert "--force-reinstall" not in command and "-U " not in command
    assert command in runtime.colab_install_cell()
    monkeypatch.setenv("COURSE_REPOSITORY", "https://example.org/fork")
    assert "git+https://example.org/fork" in runtime.colab_install_command()


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    path = runtime.cache_dir("judge")
    assert path == tmp_path / "cache" / "judge" and path.is_dir()


def test_native_stderr_is_hidden_but_kept_when_the_block_fails(capfd):
    import os

    with runtime.native_stderr_silenced():
        os.write(2, b"C++ start-up noise\n")
    assert "noise" not in capfd.readouterr().err
    with pytest.raises(RuntimeError):
        with runtime.native_stderr_silenced():
            os.write(2, b"the real reason\n")
            raise RuntimeError("import failed")
    assert "the real reason" in capfd.readouterr().err
