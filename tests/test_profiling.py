import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import profiling


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("profile")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(640, 32)).astype("float32"), rng.integers(0, 10, 640)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).prefetch(2)
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(dataset, epochs=1, verbose=0, callbacks=[profiling.ProfileSteps(logdir, 3, 7)])
    return logdir


def test_op_table_ranks_the_operations_of_the_profiled_steps(trace_dir):
    rows = profiling.op_table(trace_dir, top=5)
    assert 1 <= len(rows) <= 5
    assert all(a["self_ms"] >= b["self_ms"] for a, b in zip(rows, rows[1:]))
    assert all(0 < row["share"] <= 1 and row["occurrences"] >= 1 for row in rows)
    every = profiling.op_table(trace_dir, top=1000)
    # The dense layers' products (oneDNN's kernels are named _MklMatMul and the like).
    assert any("MatMul" in row["type"] for row in every)
    assert any(row["type"] == "Dataset" for row in every)  # tf.data's work is in it too
    fallback = profiling._op_table_from_events(profiling.latest_trace(trace_dir), 1000)
    assert any("MatMul" in row["type"] for row in fallback)


def test_step_times_finds_the_marked_steps(trace_dir):
    steps = profiling.step_times(trace_dir)
    assert [step for step, _, _ in steps] == [3, 4, 5, 6, 7]
    assert all(0 <= waiting <= total for _, total, waiting in steps)


def test_bad_window_and_missing_trace_are_explained(tmp_path):
    with pytest.raises(ValueError, match="start"):
        profiling.ProfileSteps(tmp_path, start=5, stop=2)
    with pytest.raises(FileNotFoundError, match="profile some steps"):
        profiling.op_table(tmp_path)


def test_overlapping_waits_count_once():
    # an operation and its kernel, nested, then a wait that runs past the step's end
    assert profiling._covered([(10, 20), (12, 18), (25, 40)], 0, 30) == 15
    assert profiling._covered([], 0, 30) == 0
    assert profiling._covered([(0, 5), (3, 9)], 2, 8) == 6
