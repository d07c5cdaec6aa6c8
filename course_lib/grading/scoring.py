"""The grader's side of grading: the tests run here, the student's answers run in the sandbox.

`course grade` starts two processes for each submission: the student's kernel in its sandbox
(`course_lib.grading.kernel`) and this scorer, outside it, joined by a channel that carries
only data (`course_lib.grading.wire`). The scorer reads the hidden tests, runs each question's
test cases here with otter's own doctest runner and points, and every time a test calls an
answer (`psnr(x, y)`), the call is sent to the kernel and its result comes back as arrays and
numbers. So the tests, their expected values and the verdict never exist where the student's
code runs: a submission can change what its own functions return, and nothing else.

Tests are written in the notebook as ordinary cells (CI runs them there) and must therefore be
self-contained: they may use `np`, `tf`, `keras`, `layers` and `ops`, the exercise's answer
names, and whatever they import or define themselves, never other notebook variables. What
cannot cross as data (a model the answer builds, a `tf.data` pipeline, a gradient through the
answer) is looked at by a probe: a function of the test marked `@in_kernel`, which runs beside
the answers and returns data. A probe's source is visible to the submission, so it must not
hold expected values.
"""

import argparse
import inspect
import json
import os
import secrets
import sys
import textwrap
import time
from pathlib import Path

from course_lib.grading import wire

PRELUDE = ("import numpy as np\nimport tensorflow as tf\nimport keras\n"
           "from keras import layers, ops\n")
_SESSION = None  # the kernel's session while the scorer runs tests; None in a notebook


def in_kernel(function):
    """Marks a test helper that runs beside the student's answers and returns data.

    In a notebook (and in CI) this returns `function` itself. While grading, calling it runs
    its source in the student's sandboxed kernel, where it sees the notebook's names, and
    brings back its result as data. Use it for what cannot cross as data: a model built by an
    answer, a `tf.data` pipeline, a gradient taken through an answer.

    Example:

        @in_kernel
        def first_batch(images, batch_size):
            return next(iter(photo_pipeline(images, batch_size)))

        assert first_batch(toy, 4).shape == (4, 4, 4, 3)
    """
    if _SESSION is None:
        return function
    return _Probe(_SESSION, function)


class StudentError(Exception):
    """The student's code raised (its type and message are in the text)."""


# When the student's code raised one of these builtin errors, the StudentError is also an
# instance of it, so that a test can check that bad input is refused
# (`except ValueError:`). Only plain builtin types, named by the kernel, are mapped: nothing
# of the student's crosses but the name, and AssertionError is not among them (a test's
# own assertions must not be caught as the student's).
MAPPED_ERRORS = {error.__name__: error for error in (
    ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, NotImplementedError,
    RuntimeError, ArithmeticError)}
_MAPPED_CLASSES = {name: type(f"Student{name}", (StudentError, error), {})
                   for name, error in MAPPED_ERRORS.items()}


def student_error(kind, message):
    """The exception for an error the student's code raised in the kernel."""
    return _MAPPED_CLASSES.get(kind, StudentError)(f"{kind}: {message}")


class KernelStopped(Exception):
    """The kernel is gone (it exited, crashed, or sent something that is not a message), or
    the time ran out."""


class _GraderCodec(wire.Codec):
    """Also sends the test's models (config and weights) and functions (as callbacks)."""

    def __init__(self, session):
        self.session = session
        self.models = {}

    def encode_other(self, value, arrays, depth):
        import keras

        if isinstance(value, keras.Model):
            key = str(len(self.models))
            self.models[key] = value
            weights = value.get_weights()
            arrays += weights
            return {"__model__": key, "config": value.to_json(),
                    "weights": list(range(len(arrays) - len(weights), len(arrays)))}
        if isinstance(value, keras.KerasTensor):
            raise wire.WireError("a symbolic KerasTensor cannot be sent to the student's "
                                 "kernel: build the model inside a probe (`in_kernel`)")
        if callable(value) and not isinstance(value, type):
            return {"__callback__": self.session.register(value)}
        return super().encode_other(value, arrays, depth)


class Session:
    """Requests to the kernel, with one deadline for the whole submission."""

    def __init__(self, receiver, writer, deadline):
        self.receiver, self.writer, self.deadline = receiver, writer, deadline
        self.callbacks = {}
        self.stopped = None  # why the kernel can no longer answer

    def register(self, function):
        key = secrets.token_hex(6)
        self.callbacks[key] = function
        return key

    def _receive(self):
        if self.stopped:
            raise KernelStopped(self.stopped)
        try:
            return self.receiver.get(self.deadline - time.monotonic())
        except TimeoutError:
            self.stopped = "timeout"
        except EOFError as error:
            self.stopped = f"the kernel stopped ({error})"
        raise KernelStopped(self.stopped)

    def ready(self):
        message, _ = self._receive()
        return message

    def request(self, message, args=(), kwargs=None):
        codec = _GraderCodec(self)
        encoded, arrays = codec.encode(list(args))
        kw, _ = codec.encode(dict(kwargs or {}), arrays)
        nonce = secrets.token_hex(8)
        try:
            wire.write_frame(self.writer, {**message, "id": nonce, "args": encoded,
                                           "kwargs": kw}, arrays)
        except (OSError, ValueError):
            self.stopped = self.stopped or "the kernel stopped (its channel is closed)"
            raise KernelStopped(self.stopped) from None
        while True:
            reply, arrays = self._receive()
            if reply.get("reply") == nonce:
                break
            if reply.get("op") == "callback":
                self._answer_callback(reply, arrays)
            # anything else (a stale or forged reply) is ignored
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            raise student_error(error.get("type"), error.get("message"))
        try:
            if message["op"] == "lookup":
                found = reply.get("found")
                return (found if isinstance(found, dict) else {}), arrays
            value = wire.Codec().decode(reply.get("value"), arrays)
            models = reply.get("models")
            for key, weights in (models.items() if isinstance(models, dict) else ()):
                if key in codec.models:  # the answer changed a model in place
                    codec.models[key].set_weights(wire.Codec().decode(weights, arrays))
            return value
        except (wire.WireError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise StudentError(f"the answer's result could not be read: {error}") from None

    def _answer_callback(self, message, arrays):
        nonce = message.get("id")
        function = self.callbacks.get(message.get("callback"))
        try:
            if function is None:
                raise KeyError("no such function of the test")
            args = wire.Codec().decode(message.get("args", []), arrays)
            kwargs = wire.Codec().decode(message.get("kwargs", {"__dict__": []}), arrays)
            value, out = wire.Codec().encode(function(*args, **kwargs))
            reply = {"reply": nonce, "value": value}
        except Exception as error:  # the test's own function, called with the student's data
            reply, out = {"reply": nonce, "error": {"type": type(error).__name__,
                                                    "message": str(error)[:500]}}, []
        try:
            wire.write_frame(self.writer, reply, out)
        except (OSError, ValueError):
            self.stopped = self.stopped or "the kernel stopped (its channel is closed)"
            raise KernelStopped(self.stopped) from None


class RemoteFunction:
    """An answer's function, called in the student's kernel."""

    def __init__(self, session, name):
        self._session, self.__name__ = session, name

    def __call__(self, *args, **kwargs):
        return self._session.request({"op": "call", "name": self.__name__}, args, kwargs)

    def __repr__(self):
        return f"<the submission's {self.__name__}>"


class _Probe:
    def __init__(self, session, function):
        lines = textwrap.dedent(inspect.getsource(function)).splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(("def ", "async def")))
        self._session, self.__name__ = session, function.__name__
        self._source = "\n".join(lines[start:]) + "\n"

    def __call__(self, *args, **kwargs):
        return self._session.request(
            {"op": "probe", "name": self.__name__, "source": self._source}, args, kwargs)


def _install_answers(session, namespace, names):
    """Puts the submission's answer names in the test namespace: functions as remote calls,
    values as data; a name the submission lacks, or whose value is not data, is left
    undefined (a NameError in the test). Returns {name: note} for the values not read."""
    found, arrays = session.request({"op": "lookup", "names": list(names)})
    notes = {}
    for name in names:
        entry = found.get(name)
        entry = entry if isinstance(entry, dict) else {"missing": True}
        namespace.pop(name, None)
        if entry.get("callable"):
            namespace[name] = RemoteFunction(session, name)
        elif "value" in entry:
            try:
                namespace[name] = wire.Codec().decode(entry["value"], arrays)
            except wire.WireError as error:
                notes[name] = f"{name} ({error})"
        elif "error" in entry:
            notes[name] = f"{name} (a {str(entry.get('type', 'value'))[:80]})"
    return notes


def _kernel_report(message):
    """The kernel's first message, reduced to what the grade table uses (the message comes
    from the student's side: it may be forged, so nothing else of it is kept)."""
    errors = message.get("cells_with_errors")
    cells = []
    if isinstance(errors, list):
        for entry in errors[:20]:
            if (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                    and isinstance(entry[1], str)):
                cells.append([entry[0], entry[1][:200]])
    count = message.get("errors")
    return {"ready": message.get("ready") is True, "cells_with_errors": cells,
            "errors": count if isinstance(count, int) and count >= len(cells) else len(cells)}


def _write_json(path, data):
    tmp = Path(f"{path}.part")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def run_questions(session, tests, questions, answers, on_question=None):
    """Runs each question's test file here against the kernel behind `session`; returns
    {question: {"score", "possible", "cases"}}, stopping after a question during which the
    kernel stopped. `on_question(results)` is called after each question."""
    global _SESSION
    from otter.test_files import OKTestFile

    results, notes = {}, {}  # notes: one per answer name (the same note each question)
    namespace = {"__name__": "__grader__"}
    exec(PRELUDE, namespace)
    _SESSION = session
    try:
        for question in questions:
            test = OKTestFile.from_file(str(Path(tests) / f"{question}.py"))
            notes.update(_install_answers(session, namespace, answers))
            test.run(namespace)
            results[question] = {
                "score": test.score, "possible": test.possible,
                "cases": [{"hidden": r.test_case.hidden, "passed": r.passed,
                           "message": "" if r.passed else r.message[:3000]}
                          for r in test.test_case_results]}
            if session.stopped:
                break
            if on_question:
                on_question(results, list(notes.values()))
    finally:
        _SESSION = None
    return results, list(notes.values())


def score(tests, questions, answers, reader, writer, seconds, out):
    """Runs each question's tests against the kernel behind (`reader`, `writer`) and writes
    the results to `out` after every question (so what was earned before a crash is kept).

    Args:
        tests: the folder of otter test files (`<question>.py`, hidden cases included).
        questions: question names, in order.
        answers: the names the answer cells define.
        seconds: time left for the whole submission.
    """
    session = Session(wire.Receiver(reader), writer, time.monotonic() + seconds)
    results = {"questions": {}, "kernel": None, "stopped": None, "notes": []}
    _write_json(out, results)

    def progress(questions_so_far, notes):
        results["questions"], results["notes"] = questions_so_far, notes
        _write_json(out, results)

    try:
        results["kernel"] = _kernel_report(session.ready())
        if results["kernel"]["ready"]:
            results["questions"], results["notes"] = run_questions(
                session, tests, questions, answers, on_question=progress)
    except KernelStopped:
        pass
    except Exception as error:  # a reply the scorer could not use: the kernel's fault
        session.stopped = session.stopped or (
            f"the scorer could not use the kernel's reply ({error})")
    finally:
        results["stopped"] = session.stopped
        _write_json(out, results)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", required=True)
    parser.add_argument("--questions", required=True, help="comma-separated, in order")
    parser.add_argument("--answers", required=True, help="comma-separated answer names")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    # The channel is stdin/stdout; the tests' printing goes to stderr.
    reader = os.fdopen(os.dup(0), "rb", buffering=0)
    writer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    score(args.tests, args.questions.split(","), [a for a in args.answers.split(",") if a],
          reader, writer, args.seconds, args.out)
    return 0


if __name__ == "__main__":
    # Through the imported module, so that the tests' `in_kernel` (imported from it) sees the
    # session that this run sets.
    from course_lib.grading import scoring

    sys.exit(scoring.main())
