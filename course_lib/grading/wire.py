"""Plain data between the grader and a student's sandboxed kernel: a codec and a channel.

What crosses is JSON plus NumPy arrays in an `.npz` read with `allow_pickle=False`: never a
pickle, never code that the receiving side runs. Values are tagged so that a tuple stays a
tuple and a tensor a tensor:

    None, bool, int, float, str, list          as JSON
    tuple, dict, bytes, np.ndarray, NumPy scalars, tf.Tensor, tf.Variable   tagged
    keras.Model (grader to kernel only)         its config and weights
    any other callable (grader to kernel only)  a callback: the kernel calls it back

Anything else (a tf.data.Dataset, a symbolic KerasTensor, an instance of a student's class) is
refused with a `WireError` that says what to do: describe it as data in a probe
(`course_lib.grading.in_kernel`).
"""

import base64
import io
import json
import queue
import struct
import threading

import numpy as np

MAGIC = b"CLW1"
MAX_FRAME = 512 * 2**20  # bytes in one message: arrays included
MAX_DEPTH = 64


class WireError(Exception):
    """A value that cannot cross, or a message that is not one."""


class Codec:
    """Turns values into (JSON-able object, arrays) and back.

    Subclasses handle what only one side may send: `encode_other(value)` returns a tagged
    dict or raises `WireError`; `decode_other(tag, payload)` builds the value for a tag.
    """

    def encode(self, value, arrays=None):
        """(JSON-able object, arrays); pass `arrays` to add to a list that other values of
        the same message share."""
        arrays = [] if arrays is None else arrays
        return self._encode(value, arrays, 0), arrays

    def decode(self, obj, arrays):
        return self._decode(obj, arrays, 0)

    def _encode(self, value, arrays, depth):
        if depth > MAX_DEPTH:
            raise WireError("value nested too deeply")
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, (bool, int, float, str)):  # a subclass: as the plain builtin
            return self._encode(_builtin(value), arrays, depth)
        if isinstance(value, list):
            return [self._encode(v, arrays, depth + 1) for v in value]
        if isinstance(value, tuple):
            return {"__tuple__": [self._encode(v, arrays, depth + 1) for v in value]}
        if isinstance(value, dict):
            return {"__dict__": [[self._encode(k, arrays, depth + 1),
                                  self._encode(v, arrays, depth + 1)] for k, v in value.items()]}
        if isinstance(value, bytes):
            return {"__bytes__": base64.b64encode(value).decode()}
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise WireError("a NumPy array of Python objects cannot be graded")
            arrays.append(value)
            return {"__array__": len(arrays) - 1}
        if isinstance(value, np.generic):
            arrays.append(np.asarray(value))
            return {"__scalar__": len(arrays) - 1}
        tensor = _tensor_kind(value)
        if tensor:
            arrays.append(np.asarray(value.numpy()))
            return {tensor: len(arrays) - 1}
        return self.encode_other(value, arrays, depth)

    def _decode(self, obj, arrays, depth):
        if depth > MAX_DEPTH:
            raise WireError("message nested too deeply")
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, list):
            return [self._decode(v, arrays, depth + 1) for v in obj]
        if not isinstance(obj, dict) or len(obj) < 1:
            raise WireError(f"not a value: {str(obj)[:80]}")
        tag = next(iter(obj))
        payload = obj[tag]
        if tag == "__tuple__":
            return tuple(self._decode(v, arrays, depth + 1) for v in payload)
        if tag == "__dict__":
            return {_hashable(self._decode(k, arrays, depth + 1)):
                    self._decode(v, arrays, depth + 1) for k, v in payload}
        if tag == "__bytes__":
            return base64.b64decode(payload)
        if tag in ("__array__", "__scalar__", "__tensor__", "__variable__"):
            array = _array(arrays, payload)
            if tag == "__array__":
                return array
            if tag == "__scalar__":
                return array[()]
            import tensorflow as tf

            return tf.constant(array) if tag == "__tensor__" else tf.Variable(array)
        return self.decode_other(tag, obj, arrays, depth)

    def encode_other(self, value, arrays, depth):
        raise WireError(f"a {type(value).__module__}.{type(value).__qualname__} cannot be "
                        "graded: return arrays, numbers, strings or containers of them (a test "
                        "can describe other objects as data with a probe, `in_kernel`)")

    def decode_other(self, tag, obj, arrays, depth):
        raise WireError(f"unknown tag {tag[:40]!r}")


def _builtin(value):
    """A subclass of a builtin (a bool-like int, a str subclass) as the plain builtin."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _hashable(key):
    if isinstance(key, (list, dict, np.ndarray)):
        raise WireError("a dictionary key must be a number, a string or a tuple")
    return key


def _array(arrays, index):
    if not isinstance(index, int) or not 0 <= index < len(arrays):
        raise WireError("an array reference points nowhere")
    return arrays[index]


def _tensor_kind(value):
    """"__tensor__" for an eager tensor, "__variable__" for a variable, else None (without
    importing TensorFlow where it is not loaded yet)."""
    import sys

    tf = sys.modules.get("tensorflow")
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(value, keras.Variable):
        return "__variable__"
    if tf is not None:
        if isinstance(value, tf.Variable):
            return "__variable__"
        if isinstance(value, tf.Tensor) and hasattr(value, "numpy"):
            return "__tensor__"
    return None


# ---------------------------------------------------------------------------------------
# The channel: length-prefixed frames (JSON, then an .npz of the arrays) over two pipes
# ---------------------------------------------------------------------------------------

def _pack(message, arrays):
    header = json.dumps(message, allow_nan=True).encode()
    blob = b""
    if arrays:
        buffer = io.BytesIO()
        np.savez(buffer, *arrays)
        blob = buffer.getvalue()
    if len(header) + len(blob) > MAX_FRAME:
        raise WireError(f"message of {len(header) + len(blob)} bytes: over {MAX_FRAME}")
    return MAGIC + struct.pack("<QQ", len(header), len(blob)) + header + blob


def _read_exactly(stream, size):
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(stream):
    """One (message, arrays) from a binary stream; EOFError at its end, WireError if what
    arrives is not a frame."""
    head = _read_exactly(stream, 4 + 16)
    if head[:4] != MAGIC:
        raise WireError("the stream is not a channel of this grader")
    json_size, blob_size = struct.unpack("<QQ", head[4:])
    if json_size + blob_size > MAX_FRAME:
        raise WireError(f"message of {json_size + blob_size} bytes: over {MAX_FRAME}")
    try:
        message = json.loads(_read_exactly(stream, json_size))
        arrays = []
        if blob_size:
            with np.load(io.BytesIO(_read_exactly(stream, blob_size)),
                         allow_pickle=False) as npz:
                arrays = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    except (ValueError, KeyError, OSError) as error:
        raise WireError(f"a malformed message ({type(error).__name__})") from None
    if not isinstance(message, dict):
        raise WireError("a message must be an object")
    return message, arrays


def write_frame(stream, message, arrays=()):
    stream.write(_pack(message, list(arrays)))
    stream.flush()


class Receiver:
    """Reads frames on a thread so that the reader can wait with a timeout.

    `get(timeout)` returns (message, arrays), or raises EOFError when the other side has
    gone (or sent something that is not a frame: `error` says what), TimeoutError when
    nothing came in time.
    """

    def __init__(self, stream):
        self.error = None
        self._queue = queue.Queue(maxsize=4)
        threading.Thread(target=self._run, args=(stream,), daemon=True).start()

    def _run(self, stream):
        try:
            while True:
                self._queue.put(read_frame(stream))
        except EOFError:
            pass
        except (WireError, OSError) as error:
            self.error = str(error)
        self._queue.put(None)

    def get(self, timeout):
        try:
            frame = self._queue.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            raise TimeoutError from None
        if frame is None:
            self._queue.put(None)  # stays closed
            raise EOFError(self.error or "the kernel closed its channel")
        return frame
