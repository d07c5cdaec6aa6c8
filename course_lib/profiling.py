"""Profile a few training steps and read the trace in Python, offline.

TensorFlow's profiler records what every operation did during a window of steps into
`<logdir>/plugins/profile/<run>/<host>.xplane.pb`. TensorBoard's Profile tab (the `xprof`
package, `tensorboard-plugin-profile`) draws it; this module reads it without them:

- `ProfileSteps` profiles training batches `start`..`stop` of `model.fit`. Keras 3's own
  `TensorBoard(profile_batch=...)` marks each batch without the flag (`_r=1`) that makes the
  profiler treat it as a step, so the profiler's step analysis finds no steps; this callback
  marks them properly.
- `op_table` ranks the TensorFlow operations by their *self* time (time in the operation
  minus the time in operations it called), with TensorFlow's own converter (the table the
  Profile tab shows as "framework op stats").
- `step_times` splits each profiled step into the time spent waiting for the next batch from
  `tf.data` and the rest.
"""

import collections
import glob
import json
import os
import re

import keras

_OP_NAME = re.compile(r"^[^\s:]+:[^\s:]+$")  # "name:OpType", as the host plane names TF ops


class ProfileSteps(keras.callbacks.Callback):
    """Profiles training batches `start`..`stop` (inclusive) of the first epoch into `logdir`.

    Skip the first batches: they include tracing and compiling the step.
    """

    def __init__(self, logdir, start=3, stop=8):
        super().__init__()
        if not 0 <= start <= stop:
            raise ValueError(f"need 0 <= start <= stop, got start={start}, stop={stop}.")
        self.logdir, self.start, self.stop = str(logdir), start, stop
        self._trace, self._running, self._done = None, False, False

    def on_train_batch_begin(self, batch, logs=None):
        import tensorflow as tf

        if self._done:
            return
        if batch == self.start:
            tf.profiler.experimental.start(self.logdir)
            self._running = True
        if self._running:
            self._trace = tf.profiler.experimental.Trace("train", step_num=batch, _r=1)
            self._trace.__enter__()

    def on_train_batch_end(self, batch, logs=None):
        import tensorflow as tf

        if self._trace is not None:
            self._trace.__exit__(None, None, None)
            self._trace = None
        if self._running and batch == self.stop:
            tf.profiler.experimental.stop()
            self._running, self._done = False, True

    def on_train_end(self, logs=None):
        import tensorflow as tf

        if self._running:  # fewer batches than `stop`: keep what was recorded
            tf.profiler.experimental.stop()
            self._running, self._done = False, True


def latest_trace(logdir):
    """The newest `.xplane.pb` under `logdir` (raises `FileNotFoundError` if none)."""
    paths = sorted(glob.glob(os.path.join(str(logdir), "**", "plugins", "profile", "*",
                                          "*.xplane.pb"), recursive=True))
    if not paths:
        raise FileNotFoundError(f"No profiler trace (*.xplane.pb) under {logdir}: profile some "
                                "steps first (ProfileSteps, or tf.profiler.experimental.start).")
    return paths[-1]


def op_table(logdir, top=10):
    """The `top` TensorFlow operations of the newest trace by self time, on the host.

    Returns a list of dicts with `operation`, `type`, `occurrences`, `self_ms` and `share`
    (of all operations' self time). Uses TensorFlow's converter to the Profile tab's
    "framework op stats" (a private module of TensorFlow, checked with 2.21), or, if that is
    missing, sums the trace's events itself.
    """
    path = latest_trace(logdir)
    try:
        from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

        raw, ok = plugin.xspace_to_tools_data([path], "framework_op_stats", {})
        table = json.loads(raw)[1]  # [0] counts idle time as an operation, [1] does not
    except (ImportError, AttributeError, ValueError, IndexError, TypeError):
        return _op_table_from_events(path, top)
    columns = [column["id"] for column in table["cols"]]
    rows = [dict(zip(columns, [cell.get("v") if cell else None for cell in row["c"]]))
            for row in table["rows"]]
    total = sum(row["total_self_time"] for row in rows) or 1.0
    rows.sort(key=lambda row: -row["total_self_time"])
    return [{"operation": row["operation"], "type": row["type"],
             "occurrences": int(row["occurrences"]), "self_ms": row["total_self_time"] / 1e3,
             "share": row["total_self_time"] / total} for row in rows[:top]]


def _host_plane(path):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    return next(plane for plane in space.planes if plane.name == "/host:CPU")


def _events(plane, line):
    """(name, start_ns, end_ns, stats) of a thread's events, in order of start."""
    names, stat_names = plane.event_metadata, plane.stat_metadata
    events = []
    for event in line.events:
        start = line.timestamp_ns + event.offset_ps / 1e3
        stats = {stat_names[s.metadata_id].name: s.int64_value for s in event.stats}
        events.append((names[event.metadata_id].name, start, start + event.duration_ps / 1e3,
                       stats))
    return sorted(events, key=lambda e: (e[1], -e[2]))


def _op_table_from_events(path, top):
    plane = _host_plane(path)
    self_ns, count = collections.Counter(), collections.Counter()
    for line in plane.lines:
        open_ops = []  # [name, end, time in children] of the operations running on this thread
        for name, start, end, _ in _events(plane, line) + [("", float("inf"), 0.0, {})]:
            while open_ops and open_ops[-1][1] <= start:
                done, _, children = open_ops.pop()
                self_ns[done] -= children
            if not _OP_NAME.match(name):
                continue
            if open_ops:
                open_ops[-1][2] += end - start
            open_ops.append([name, end, 0.0])
            self_ns[name] += end - start
            count[name] += 1
    total = sum(self_ns.values()) or 1.0
    return [{"operation": name.split(":")[0], "type": name.split(":")[1],
             "occurrences": count[name], "self_ms": ns / 1e6, "share": ns / total}
            for name, ns in self_ns.most_common(top)]


def step_times(logdir):
    """Each profiled step of the newest trace: `(step, total_ms, input_ms)`.

    `input_ms` is the part of the step spent in `IteratorGetNext`, waiting for `tf.data` to
    hand over the next batch; the rest is computing (and the framework's overhead).
    """
    plane = _host_plane(latest_trace(logdir))
    steps, fetches = [], []
    for line in plane.lines:
        for name, start, end, stats in _events(plane, line):
            if "step_num" in stats:
                steps.append((stats["step_num"], start, end))
            elif name.startswith("IteratorGetNext"):
                fetches.append((start, end))
    result = []
    for step, start, end in sorted(steps):
        result.append((int(step), (end - start) / 1e6,
                       _covered(fetches, start, end) / 1e6))
    return result


def _covered(intervals, start, end):
    """The length of the union of `intervals` within [start, end]: nested or overlapping
    events (the operation and its kernel are both named IteratorGetNext...) count once."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    total, reach = 0.0, start
    for a, b in clipped:
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total
