"""Data-parallel training on several processes: a local cluster, and a loop that survives a kill.

`tf.distribute.MultiWorkerMirroredStrategy` trains one model on several machines (workers),
each holding a full copy of the weights: every step, each worker computes the gradient of its
part of the global batch and an all-reduce sums them, so every copy applies the same update.
Each process learns who it is from the `TF_CONFIG` environment variable (the addresses of all
workers and its own index); worker 0 is the *chief*.

Two things here:

- `LocalCluster` starts N worker processes on this machine, each with its `TF_CONFIG` on free
  localhost ports, and always cleans them up (a dead worker stops the others, which would
  otherwise wait for it in the next all-reduce until the strategy's health check gives up), and
  a worker whose launcher dies exits too.
- `fit` is the training loop the workers run. Keras 3's `model.fit` fails under
  `MultiWorkerMirroredStrategy` (keras-team/keras#20585: its data adapter meets `PerReplica`
  values it cannot handle), so `fit` drives the model's own `train_step` (the course's pattern,
  `course_lib.training`) with `strategy.run` over a distributed dataset. After every epoch it
  writes a checkpoint (the model, its optimizer, its random streams and the epoch counter);
  started again after a crash it restores the latest one and goes on with the next epoch, so no
  finished epoch is lost or trained twice.

`python -m course_lib.distributed --out DIR` is the worker program: chapter 3's VAE on 300
binarised digits (`recipes.small_digits`), with the per-epoch losses appended to
`DIR/losses.jsonl` by the chief.
"""

import argparse
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

LOSSES_FILE = "losses.jsonl"
LAUNCHER_ENV = "COURSE_LAUNCHER_PID"  # set by LocalCluster: a worker exits if its launcher dies


def free_ports(count):
    """`count` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:  # held open together, so the ports differ
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def tf_config(ports, index):
    """The `TF_CONFIG` (a JSON string) of worker `index` in a cluster on these local ports."""
    if not 0 <= index < len(ports):
        raise ValueError(f"index must be in [0, {len(ports)}), got {index}.")
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


class LocalCluster:
    """N processes of one command, each a worker of a `MultiWorkerMirroredStrategy`.

    Use it as a context manager: leaving the block (normally or by an exception) kills every
    worker still running.

        with LocalCluster([sys.executable, "-m", "course_lib.distributed", "--out", d], 2) as c:
            codes = c.wait(timeout=300)

    Args:
        command: the program and its arguments, the same for every worker.
        num_workers: how many processes.
        log_dir: where each worker's output goes (`worker-<i>.log`); a temporary folder
            if None.
        env: extra environment variables for every worker.
    """

    def __init__(self, command, num_workers=2, log_dir=None, env=None):
        if num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, got {num_workers}.")
        self.command, self.num_workers, self.env = list(command), num_workers, env or {}
        if log_dir is None:
            import tempfile

            log_dir = tempfile.mkdtemp(prefix="cluster-")
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes = []

    def start(self):
        """Starts the workers on fresh free ports; returns self."""
        if any(process.poll() is None for process in self.processes):
            raise RuntimeError("The cluster is running: stop() it before starting it again.")
        ports = free_ports(self.num_workers)
        self.processes = []
        for index in range(self.num_workers):
            env = {**os.environ, **self.env, "TF_CONFIG": tf_config(ports, index),
                   LAUNCHER_ENV: str(os.getpid())}
            with open(self.log_dir / f"worker-{index}.log", "ab") as log:
                self.processes.append(subprocess.Popen(
                    self.command, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True))  # its own process group: killed with its children
        return self

    def kill(self, index):
        """Kills worker `index` at once (SIGKILL), as a crashed machine would stop."""
        self._signal(self.processes[index], signal.SIGKILL)

    def wait(self, timeout, poll=0.2):
        """Waits for every worker to exit; returns their exit codes.

        If a worker fails (a non-zero code) the others are stopped: they could only wait for it
        in their next all-reduce. Raises `TimeoutError` (after stopping them all) if the workers
        are still running after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            codes = [process.poll() for process in self.processes]
            if all(code is not None for code in codes):
                return codes
            if any(code not in (None, 0) for code in codes):
                self.stop()
                return [process.poll() for process in self.processes]
            time.sleep(poll)
        self.stop()
        raise TimeoutError(f"The workers ran past {timeout} s and were stopped; their output is "
                           f"in {self.log_dir}.")

    def stop(self, grace=5.0):
        """Terminates every running worker (SIGTERM, then SIGKILL after `grace` seconds)."""
        for process in self.processes:
            self._signal(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL)
                process.wait()

    def log(self, index):
        """What worker `index` printed so far."""
        return (self.log_dir / f"worker-{index}.log").read_text(errors="replace")

    @staticmethod
    def _signal(process, sig):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def scale_learning_rate(rate, base_batch, batch, rule="linear"):
    """The learning rate for a global batch of `batch`, tuned as `rate` at `base_batch`.

    "linear" multiplies it by batch / base_batch (Goyal et al. 2017, for SGD: k times the
    batch averages k times the examples per step, so a step k times larger covers the same
    ground in k times fewer steps); "sqrt" by its square root (the rule Malladi et al. 2022
    derive for Adam, together with changes to its betas and epsilon that this leaves out);
    "none" keeps it.
    """
    if base_batch <= 0 or batch <= 0:
        raise ValueError(f"batch sizes must be positive, got {base_batch} and {batch}.")
    factors = {"linear": batch / base_batch, "sqrt": (batch / base_batch) ** 0.5, "none": 1.0}
    if rule not in factors:
        raise ValueError(f"rule must be one of {sorted(factors)}, got {rule!r}.")
    return rate * factors[rule]


def run_workers(out_dir, num_workers=2, epochs=10, kill_after=None, timeout=600, **options):
    """Trains the worker program (`python -m course_lib.distributed`) on a `LocalCluster`.

    With `kill_after=k`, the last worker is killed once the chief has recorded k epochs; the
    cluster stops, and a new one (fresh processes) resumes from the checkpoints.

    Args:
        out_dir: the run's folder (losses, checkpoints, worker logs); reusing it resumes.
        options: more worker flags, e.g. `num_train=128` for `--num-train 128`.

    Returns:
        The chief's records (`read_losses`): one dict per epoch with its loss and the pid of
        the process that trained it.
    """
    out_dir = pathlib.Path(out_dir)
    command = [sys.executable, "-m", "course_lib.distributed", "--out", str(out_dir),
               "--epochs", str(epochs)]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    if kill_after is not None and not 0 < kill_after < epochs:
        raise ValueError(f"kill_after must be in (0, {epochs}), got {kill_after}.")
    if kill_after is not None and read_losses(out_dir):
        raise ValueError(f"{out_dir} already holds a run: a kill needs a fresh folder.")
    if kill_after is not None:
        command += ["--pause-at", str(kill_after)]  # time to kill a worker after that epoch
    # One replica per process, also on a machine with GPUs (each worker would take them all).
    cluster = LocalCluster(command, num_workers, log_dir=out_dir / "logs",
                           env={"CUDA_VISIBLE_DEVICES": ""})
    victim = num_workers - 1
    deadline = time.monotonic() + timeout
    with cluster:
        if kill_after is not None:
            # Kill once the chief has recorded the epoch and the victim has saved it too (it
            # prints the epoch after saving), so that both restore the same epoch.
            while (len(read_losses(out_dir)) < kill_after
                   or f"epoch {kill_after - 1}:" not in cluster.log(victim)):
                if time.monotonic() > deadline or any(
                        process.poll() is not None for process in cluster.processes):
                    raise RuntimeError("The workers stopped or stalled before the kill; worker "
                                       f"0 said:\n{cluster.log(0)[-3000:]}")
                time.sleep(0.2)
            cluster.kill(victim)
            cluster.wait(timeout=60)
            cluster.start()
        codes = cluster.wait(timeout=max(1.0, deadline - time.monotonic()))
    if codes != [0] * num_workers:
        raise RuntimeError(f"The workers exited with {codes}; worker 0 said:\n"
                           f"{cluster.log(0)[-3000:]}")
    return read_losses(out_dir)


def read_losses(out_dir):
    """The chief's records in `out_dir/losses.jsonl`: a list of dicts, one per finished epoch."""
    path = pathlib.Path(out_dir) / LOSSES_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_chief(strategy):
    """Worker 0 (or a single process) writes what must be written once."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().jobs
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def fit(model, make_dataset, strategy, epochs, checkpoint_dir, on_epoch_end=None):
    """Trains `model` with its own `train_step` under `strategy`, one checkpoint per epoch.

    Build and compile the model inside `strategy.scope()` first (see `course_lib.training`:
    its optimizer built on its variables). If `checkpoint_dir` holds a checkpoint, training
    resumes after the epoch it saved.

    Args:
        make_dataset: `epoch -> tf.data.Dataset` of *global* batches (the strategy splits each
            among the replicas); give each epoch its own shuffling seed, so that a resumed
            run sees the batches an uninterrupted one would.
        epochs: the epoch to stop at.
        checkpoint_dir: the chief's checkpoints; the other workers write theirs into
            `checkpoint_dir/worker-<i>` (every worker must take part in saving).
        on_epoch_end: called as `on_epoch_end(epoch, logs)` on every worker, with `logs`
            the metrics averaged over the epoch and over all replicas.

    Returns:
        The first epoch this call trained (0, or the epoch after the restored checkpoint).
    """
    import tensorflow as tf

    checkpoint_dir = pathlib.Path(checkpoint_dir)
    if not is_chief(strategy):
        checkpoint_dir = checkpoint_dir / f"worker-{strategy.cluster_resolver.task_id}"
    with strategy.scope():
        epoch_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_done")
    # The random streams (e.g. the VAE's draws of z) go in too, so that a resumed run draws
    # what an uninterrupted one would have drawn.
    random_states = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch_done,
                                     random_states=random_states)
    manager = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=2)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    first = _agreed_epoch(strategy, epoch_done)

    @tf.function
    def train_step(batch):
        strategy.run(model.train_step, args=(batch,))

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    for epoch in range(first, epochs):
        for metric in model.metrics:
            metric.reset_state()
        dataset = strategy.experimental_distribute_dataset(
            make_dataset(epoch).with_options(options))
        for batch in dataset:
            train_step(batch)
        # The metrics' variables are summed over the replicas when read: global means.
        logs = {metric.name: float(metric.result()) for metric in model.metrics}
        epoch_done.assign(epoch + 1)
        manager.save(checkpoint_number=epoch + 1)  # every worker saves (reads are all-reduces)
        if on_epoch_end is not None:
            on_epoch_end(epoch, logs)
    return first


def _agreed_epoch(strategy, epoch_done):
    """The restored epoch, checked to be the same on every worker (each restores its own copy)."""
    import tensorflow as tf

    @tf.function
    def sums():
        def replica_fn():
            context = tf.distribute.get_replica_context()
            value = tf.cast(epoch_done, tf.float64)
            return (context.all_reduce(tf.distribute.ReduceOp.SUM, value),
                    context.all_reduce(tf.distribute.ReduceOp.SUM, value * value))
        return strategy.run(replica_fn)

    # The values are all equal exactly when N * sum(v^2) == sum(v)^2; every worker computes
    # the same two sums, so all of them reach the same verdict.
    total, squares = (float(strategy.experimental_local_results(x)[0]) for x in sums())
    replicas = strategy.num_replicas_in_sync
    if replicas * squares != total * total:
        raise RuntimeError(f"The workers restored different epochs (mean {total / replicas:g}): "
                           "their checkpoint folders disagree. Delete the newer checkpoints or "
                           "all of them and start again.")
    return int(epoch_done.numpy())


def _exit_with_launcher(launcher_pid):
    """Ends this worker if the process that launched it dies (so no orphan keeps training)."""
    import threading

    def watch():
        while True:
            if os.getppid() != launcher_pid:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True).start()


def _train_vae(args):
    """The worker program: the VAE of `course_lib.recipes` on the recipes' 300 digits."""
    if os.environ.get(LAUNCHER_ENV):
        _exit_with_launcher(int(os.environ[LAUNCHER_ENV]))
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # TF_CONFIG, or one local worker

    import keras

    from course_lib import recipes
    from course_lib.training import prepare_optimizer

    x_train, _ = recipes.small_digits(num_train=args.num_train)
    with strategy.scope():
        model = recipes.build_small_vae(latent_dim=8, seed=args.seed)
        model.compile(prepare_optimizer(keras.optimizers.Adam(args.learning_rate),
                                        model.trainable_variables))

    def make_dataset(epoch):
        return (tf.data.Dataset.from_tensor_slices(x_train)
                .shuffle(len(x_train), seed=1000 * args.seed + epoch)
                .batch(args.global_batch, drop_remainder=True))

    out = pathlib.Path(args.out)
    chief = is_chief(strategy)
    started = time.time()

    def on_epoch_end(epoch, logs):
        if chief:
            record = {"epoch": epoch, "workers": strategy.num_replicas_in_sync,
                      "pid": os.getpid(), "seconds": round(time.time() - started, 2), **logs}
            with open(out / LOSSES_FILE, "a") as file:
                file.write(json.dumps(record) + "\n")
        print(f"epoch {epoch}: {logs}", flush=True)
        if epoch + 1 == args.pause_at:
            time.sleep(3)  # room for a demonstration to kill a worker mid-run

    out.mkdir(parents=True, exist_ok=True)
    first = fit(model, make_dataset, strategy, args.epochs, out / "checkpoints", on_epoch_end)
    print(f"trained epochs {first} to {args.epochs - 1} on {strategy.num_replicas_in_sync} "
          "replica(s)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="losses and checkpoints go here")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--num-train", type=int, default=300)
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per worker")
    parser.add_argument("--pause-at", type=int, default=0,
                        help="wait 3 s after this many epochs (to kill a worker there)")
    args = parser.parse_args(argv)
    if args.global_batch < 1 or args.epochs < 1:
        parser.error("--global-batch and --epochs must be positive")
    _train_vae(args)


if __name__ == "__main__":
    sys.exit(main())
