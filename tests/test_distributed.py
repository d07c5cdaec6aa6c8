import json
import sys
import time

import pytest

from course_lib import distributed

WORKER = [sys.executable, "-m", "course_lib.distributed"]


def test_free_ports_and_tf_config_describe_a_local_cluster():
    ports = distributed.free_ports(3)
    assert len(set(ports)) == 3
    config = json.loads(distributed.tf_config(ports, 2))
    assert config["cluster"]["worker"] == [f"127.0.0.1:{port}" for port in ports]
    assert config["task"] == {"type": "worker", "index": 2}
    with pytest.raises(ValueError, match="index"):
        distributed.tf_config(ports, 3)


def test_a_failed_worker_stops_the_others_and_a_timeout_stops_all(tmp_path):
    fails = ("import os, sys, time, json; i = json.loads(os.environ['TF_CONFIG'])['task']"
             "['index']; time.sleep(60) if i == 0 else sys.exit(3)")
    start = time.monotonic()
    cluster = distributed.LocalCluster([sys.executable, "-c", fails], 2, log_dir=tmp_path / "a")
    with cluster:
        codes = cluster.wait(timeout=30)
    assert codes[1] == 3 and codes[0] not in (None, 0)  # worker 0 was stopped, not finished
    assert time.monotonic() - start < 20
    sleeper = distributed.LocalCluster([sys.executable, "-c", "import time; time.sleep(60)"], 2,
                                       log_dir=tmp_path / "b")
    with sleeper, pytest.raises(TimeoutError, match="ran past"):
        sleeper.wait(timeout=2)
    assert all(process.poll() is not None for process in sleeper.processes)


def test_two_workers_match_one_process_and_resume_after_a_kill(tmp_path):
    epochs = 4
    single = distributed.run_workers(tmp_path / "one", 1, epochs, timeout=240, num_train=128)
    double = distributed.run_workers(tmp_path / "two", 2, epochs, kill_after=2, timeout=300,
                                     num_train=128)
    assert [r["epoch"] for r in double] == list(range(epochs))  # none lost, none trained twice
    assert {r["workers"] for r in double} == {2}
    first_pid = double[0]["pid"]
    assert double[1]["pid"] == first_pid and all(r["pid"] != first_pid for r in double[2:])
    assert single[-1]["loss"] < single[0]["loss"] - 10  # it learns
    assert abs(double[-1]["loss"] - single[-1]["loss"]) < 0.02 * single[-1]["loss"]


def test_scale_learning_rate_rules_and_errors():
    assert distributed.scale_learning_rate(1e-3, 32, 128) == pytest.approx(4e-3)
    assert distributed.scale_learning_rate(1e-3, 32, 128, "sqrt") == pytest.approx(2e-3)
    assert distributed.scale_learning_rate(1e-3, 32, 128, "none") == 1e-3
    with pytest.raises(ValueError, match="rule"):
        distributed.scale_learning_rate(1e-3, 32, 128, "cubic")
    with pytest.raises(ValueError, match="kill_after"):
        distributed.run_workers("unused", 2, epochs=3, kill_after=3)


def test_setup_splits_the_cpu_for_a_mirrored_strategy_before_tensorflow_starts():
    import subprocess

    code = """
from course_lib import runtime
rt = runtime.setup(seed=0, strategy="mirrored", cpu_replicas=2, verbose=False)
print("replicas", rt.num_replicas)
try:
    runtime.split_cpu(3)
except RuntimeError as error:
    print("refused:", error)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert "replicas 2" in result.stdout, result.stderr[-2000:]
    assert "refused: Cannot split the CPU into 3 devices" in result.stdout


def test_workers_that_restored_different_epochs_refuse_to_go_on(tmp_path):
    distributed.run_workers(tmp_path, 2, epochs=2, timeout=240, num_train=64)
    state = tmp_path / "checkpoints" / "worker-1" / "checkpoint"  # worker 1 forgets epoch 2
    state.write_text(state.read_text().replace('ckpt-2"', 'ckpt-1"', 1))
    with pytest.raises(RuntimeError, match="exited with") as error:
        distributed.run_workers(tmp_path, 2, epochs=3, timeout=240, num_train=64)
    assert "restored different epochs" in str(error.value)
