"""The scorer and the kernel, talking over their channel (no sandbox: the notebook is ours)."""

import subprocess
import sys
import time

import keras
import nbformat
import numpy as np
import pytest

from course_lib.grading import scoring, wire

NOTEBOOK = [
    "import numpy as np\nimport keras",
    "def twice(f, x):\n    return 2 * f(x)",  # calls the test's function back
    "def shrink(model, c):\n"  # changes the test's model in place
    "    for v in model.trainable_variables:\n"
    "        v.assign(keras.ops.clip(v, -c, c))",
    "answer = {'policy': 'mixed_float16', 'sizes': (1, 2)}",
    "def not_data():\n    return object()",
    "def crash():\n    import os\n    os._exit(3)",
    "def refuse(k):\n    raise ValueError(f'k must be >= 1, got {k}')",
    "def disagree():\n    assert False, 'the answer asserts'",
    "undefined_name_error",  # a cell that raises: the kernel goes on
]


@pytest.fixture()
def session(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in NOTEBOOK])
    path = tmp_path / "answers.ipynb"
    nbformat.write(nb, path)
    kernel = subprocess.Popen([sys.executable, "-m", "course_lib.grading.kernel", str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, cwd=tmp_path)
    yield scoring.Session(wire.Receiver(kernel.stdout), kernel.stdin, time.monotonic() + 120)
    kernel.kill()
    kernel.wait()


def test_calls_callbacks_models_values_and_errors(session):
    report = scoring._kernel_report(session.ready())
    assert report["ready"] and report["errors"] == 1
    number, error = report["cells_with_errors"][0]
    assert number == 9 and "NameError" in error

    twice = scoring.RemoteFunction(session, "twice")
    assert np.allclose(twice(lambda x: np.asarray(x) + 1, np.array([1.0, 2.0])), [4.0, 6.0])

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.set_weights([np.array([[5.0], [-0.2]], "float32"), np.array([3.0], "float32")])
    assert scoring.RemoteFunction(session, "shrink")(model, 1.0) is None
    kernel, bias = model.get_weights()  # the answer's change came back
    assert np.allclose(kernel.ravel(), [1.0, -0.2]) and np.allclose(bias, [1.0])

    namespace = {}
    notes = scoring._install_answers(session, namespace, ["answer", "twice", "missing"])
    assert namespace["answer"] == {"policy": "mixed_float16", "sizes": (1, 2)} and not notes
    assert isinstance(namespace["twice"], scoring.RemoteFunction) and "missing" not in namespace

    with pytest.raises(scoring.StudentError, match="cannot be graded"):
        scoring.RemoteFunction(session, "not_data")()
    with pytest.raises(scoring.StudentError, match="NameError"):
        scoring.RemoteFunction(session, "nowhere")()
    # a builtin error of the answer can be caught by its type, as a test of bad input does
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        scoring.RemoteFunction(session, "refuse")(0)
    try:  # ... but the answer's AssertionError is not the test's own
        scoring.RemoteFunction(session, "disagree")()
    except AssertionError:
        pytest.fail("an answer's AssertionError must not look like the test's")
    except scoring.StudentError as error:
        assert "AssertionError" in str(error)

    def peek(x):  # a probe: its source runs in the kernel, where `twice` is the answer
        return twice(abs, x)

    scoring._SESSION = session
    try:
        assert scoring.in_kernel(peek)(-3) == 6
    finally:
        scoring._SESSION = None

    with pytest.raises(scoring.KernelStopped):
        scoring.RemoteFunction(session, "crash")()
    assert "stopped" in session.stopped


def test_in_a_notebook_a_probe_is_the_function_itself():
    def probe():
        return 1

    assert scoring.in_kernel(probe) is probe


def test_a_forged_first_message_is_reduced_to_plain_fields():
    forged = {"ready": 1, "errors": "many", "cells_with_errors": [[1, "x" * 999], "junk"],
              "extra": {"anything": True}}
    assert scoring._kernel_report(forged) == {"ready": False, "errors": 1,
                                              "cells_with_errors": [[1, "x" * 200]]}
