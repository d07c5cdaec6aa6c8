"""The student's side of grading: runs the submitted notebook, then answers calls.

Started inside the sandbox as `python -m course_lib.grading.kernel NOTEBOOK`, with the channel
to the grader on its stdin and stdout (the notebook's own printing goes to stderr). It runs the
notebook's code cells as Jupyter would (IPython, magics included), going on after a cell that
raises, then serves the grader's requests until the grader closes the channel:

    lookup   the answer names: a value as data, or "callable"
    call     one of them with arguments the grader sends; the result comes back as data
    probe    define a test's probe function (its source) here, then call it
    run      run a cell of code (a check swaps blank answers in this way)
    callback (sent by this side) call a function of the test that was passed as an argument

Nothing here decides a grade: the tests, their expected values and the verdict stay with the
grader (`course_lib.grading.scoring`). Code in the notebook can change only what its own
functions return.
"""

import os
import secrets
import sys
import traceback

from course_lib.grading import wire
from course_lib.grading.assign import OTTER_INIT


class _Checks:
    """Stands in for otter's `grader` in the notebook: its checks do nothing here."""

    def check(self, *args, **kwargs):
        return None

    def check_all(self, *args, **kwargs):
        return None

    def export(self, *args, **kwargs):
        return None


class KernelCodec(wire.Codec):
    """Builds the grader's models (config and weights) and callbacks on this side."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.models = {}  # id in this message -> model, to send back its weights

    def decode_other(self, tag, obj, arrays, depth):
        if tag == "__model__":
            import keras

            keras.config.enable_unsafe_deserialization()  # the grader's Lambda layers
            model = keras.models.model_from_json(obj["config"])
            model.set_weights([wire._array(arrays, i) for i in obj["weights"]])
            self.models[obj["__model__"]] = model
            return model
        if tag == "__callback__":
            key = obj["__callback__"]

            def callback(*args, **kwargs):
                return self.kernel.request({"op": "callback", "callback": key}, args, kwargs)
            return callback
        return super().decode_other(tag, obj, arrays, depth)


class Kernel:
    def __init__(self, reader, writer, namespace):
        self.reader, self.writer, self.namespace = reader, writer, namespace

    def _send(self, message, arrays=()):
        try:
            wire.write_frame(self.writer, message, arrays)
        except wire.WireError as error:  # too large: say so instead
            wire.write_frame(self.writer, {"reply": message.get("reply"), "error": {
                "type": "WireError", "message": str(error)}})

    def _call(self, function, args, kwargs, nonce, codec):
        try:
            value = function(*args, **kwargs)
            obj, arrays = wire.Codec().encode(value)
            # the models it was given, as they are now (it may have changed them)
            models = {key: wire.Codec().encode(model.get_weights(), arrays)[0]
                      for key, model in codec.models.items()}
            return {"reply": nonce, "value": obj, "models": models}, arrays
        except BaseException as error:  # the student's code: anything, SystemExit included
            if isinstance(error, KeyboardInterrupt):
                raise
            return {"reply": nonce, "error": {"type": type(error).__name__,
                                              "message": str(error)[:2000]}}, []

    def _handle(self, message, arrays):
        op, nonce = message.get("op"), message.get("id")
        codec = KernelCodec(self)
        try:
            args = codec.decode(message.get("args", []), arrays)
            kwargs = codec.decode(message.get("kwargs", {"__dict__": []}), arrays)
        except wire.WireError as error:
            return {"reply": nonce, "error": {"type": "WireError", "message": str(error)}}, []
        if op == "lookup":
            found, arrays = {}, []
            for name in message["names"]:
                if name not in self.namespace:
                    found[name] = {"missing": True}
                elif callable(self.namespace[name]):
                    found[name] = {"callable": True}
                else:
                    try:
                        found[name] = {
                            "value": wire.Codec().encode(self.namespace[name], arrays)[0]}
                    except wire.WireError as error:
                        kind = type(self.namespace[name])
                        found[name] = {"error": str(error),
                                       "type": f"{kind.__module__}.{kind.__qualname__}"}
            return {"reply": nonce, "found": found}, arrays
        if op == "call":
            function = self.namespace.get(message["name"])
            if function is None:
                return {"reply": nonce, "error": {
                    "type": "NameError", "message": f"name {message['name']!r} is not defined"}}, []
            return self._call(function, args, kwargs, nonce, codec)
        if op == "probe":
            try:
                exec(compile(message["source"], f"<probe {message['name']}>", "exec"),
                     self.namespace)
                function = self.namespace[message["name"]]
            except BaseException as error:
                return {"reply": nonce, "error": {"type": type(error).__name__,
                                                  "message": str(error)[:2000]}}, []
            return self._call(function, args, kwargs, nonce, codec)
        if op == "run":  # a cell of code, as in a notebook (for checks of blank answers)
            error = run_cell(self.namespace, str(message.get("source", "")))
            return {"reply": nonce, "value": error}, []
        return {"reply": nonce, "error": {"type": "WireError", "message": f"unknown op {op!r}"}}, []

    def serve(self, until=None):
        """Answers requests until the grader closes the channel, or (nested, inside a
        callback) until the reply `until` arrives; returns that reply."""
        while True:
            try:
                message, arrays = wire.read_frame(self.reader)
            except EOFError:
                if until is not None:
                    raise
                return None
            if "reply" in message:
                if message["reply"] == until:
                    return message, arrays
                continue  # a stale reply: ignore it
            self._send(*self._handle(message, arrays))

    def request(self, message, args, kwargs):
        """Calls back into the grader (a function of the test) and returns its value."""
        nonce = secrets.token_hex(8)
        obj, arrays = wire.Codec().encode(list(args))
        kw, _ = wire.Codec().encode(kwargs, arrays)
        self._send({**message, "id": nonce, "args": obj, "kwargs": kw}, arrays)
        reply, arrays = self.serve(until=nonce)
        if "error" in reply:
            raise RuntimeError(f"the test's function raised {reply['error']['type']}: "
                               f"{reply['error']['message']}")
        return wire.Codec().decode(reply.get("value"), arrays)


def run_cell(namespace, source):
    """Runs one cell's source in IPython, as Jupyter would (magics included); returns
    "Type: message" if it raised, else None."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    if not InteractiveShell.initialized():
        config = Config()
        config.HistoryManager.enabled = False
        InteractiveShell.instance(config=config, user_ns=namespace)
    result = InteractiveShell.instance().run_cell(source, store_history=False, silent=False)
    namespace["grader"] = _Checks()  # whatever the cell did to it
    error = result.error_in_exec or result.error_before_exec
    return None if error is None else f"{type(error).__name__}: {str(error)[:200]}"


def run_notebook(path, namespace):
    """Runs the notebook's code cells in IPython; returns [(cell number, error line)] for the
    cells that raised."""
    import nbformat

    namespace["grader"] = _Checks()
    errors = []
    nb = nbformat.read(path, as_version=4)
    for number, cell in enumerate(nb.cells, 1):  # numbered as Jupyter shows them, from 1
        if cell.cell_type != "code" or cell.source.startswith(OTTER_INIT):
            continue
        error = run_cell(namespace, cell.source)
        if error is not None:
            errors.append((number, error))
    return errors


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # The channel: the original stdin and stdout. From here on the notebook's printing goes
    # to stderr, so nothing it prints is read as a message.
    reader = os.fdopen(os.dup(0), "rb", buffering=0)
    writer = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    namespace = {"__name__": "__main__"}
    try:
        errors = run_notebook(argv[0], namespace)
    except Exception:  # a notebook that cannot be read: say so, then serve nothing
        traceback.print_exc()
        wire.write_frame(writer, {"ready": False, "error": traceback.format_exc(limit=1)[-500:]})
        return 1
    wire.write_frame(writer, {"ready": True, "cells_with_errors": errors[:20],
                              "errors": len(errors)})
    Kernel(reader, writer, namespace).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
