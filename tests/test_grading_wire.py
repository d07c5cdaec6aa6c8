"""The grader's channel carries only data: values round-trip, everything else is refused."""

import io
import json
import struct
import time

import numpy as np
import pytest
import tensorflow as tf

from course_lib.grading import wire


def _round_trip(value):
    obj, arrays = wire.Codec().encode(value)
    buffer = io.BytesIO()
    wire.write_frame(buffer, {"value": obj}, arrays)
    buffer.seek(0)
    message, arrays = wire.read_frame(buffer)
    return wire.Codec().decode(message["value"], arrays)


def test_values_keep_their_types():
    value = {"a": (1, 2.5, None, True), 3: [np.arange(6).reshape(2, 3), np.float32(1.5)],
             "bytes": b"\x00\x01", "nan": float("nan")}
    back = _round_trip(value)
    assert isinstance(back["a"], tuple) and back["a"] == (1, 2.5, None, True)
    assert np.array_equal(back[3][0], value[3][0]) and back[3][0].dtype == value[3][0].dtype
    assert type(back[3][1]) is np.float32 and back[3][1] == 1.5
    assert back["bytes"] == b"\x00\x01" and np.isnan(back["nan"])


def test_tensors_and_variables_come_back_as_tensors():
    tensor, variable = tf.constant([1.0, 2.0], tf.float64), tf.Variable([[3]], dtype=tf.int32)
    back_tensor, back_variable = _round_trip([tensor, variable])
    assert isinstance(back_tensor, tf.Tensor) and back_tensor.dtype == tf.float64
    assert isinstance(back_variable, tf.Variable) and back_variable.numpy().tolist() == [[3]]


@pytest.mark.parametrize("value, words", [
    (object(), "cannot be graded"),
    (np.array([object()]), "Python objects"),
    (tf.data.Dataset.range(3), "Dataset"),
    (lambda x: x, "function"),
])
def test_what_is_not_data_is_refused_with_a_reason(value, words):
    with pytest.raises(wire.WireError, match=words):
        wire.Codec().encode(value)


def _frame(header, blob=b"", magic=wire.MAGIC):
    return magic + struct.pack("<QQ", len(header), len(blob)) + header + blob


def test_malformed_frames_are_refused():
    for data, words in [
        (_frame(b"{}", magic=b"XXXX"), "not a channel"),
        (_frame(b"[1, 2]"), "must be an object"),
        (_frame(b"{not json"), "malformed"),
        (wire.MAGIC + struct.pack("<QQ", wire.MAX_FRAME, 1), "over"),
    ]:
        with pytest.raises(wire.WireError, match=words):
            wire.read_frame(io.BytesIO(data))
    with pytest.raises(EOFError):
        wire.read_frame(io.BytesIO(_frame(b'{"a": 1}')[:-2]))  # cut short


def test_a_pickle_inside_the_arrays_is_not_loaded():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    import zipfile

    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as npz:
        npz.writestr("arr_0.npy", buffer.getvalue())
    frame = _frame(json.dumps({"value": {"__array__": 0}}).encode(), blob.getvalue())
    with pytest.raises(wire.WireError, match="malformed"):
        wire.read_frame(io.BytesIO(frame))


def test_the_receiver_waits_with_a_timeout_and_sees_the_end():
    import os

    read_end, write_end = os.pipe()
    receiver = wire.Receiver(os.fdopen(read_end, "rb", buffering=0))
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        receiver.get(0.2)
    assert time.monotonic() - start < 2
    with os.fdopen(write_end, "wb") as writer:
        wire.write_frame(writer, {"hello": 1}, [np.zeros(2)])
    message, arrays = receiver.get(5)
    assert message == {"hello": 1} and arrays[0].shape == (2,)
    with pytest.raises(EOFError):
        receiver.get(5)
