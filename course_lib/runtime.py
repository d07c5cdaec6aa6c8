"""One call at the top of every notebook: seeds, device, precision policy, strategy, fast mode.

    from course_lib.runtime import setup
    rt = setup(seed=42)        # prints one summary line
    FAST = rt.fast             # True when COURSE_FAST=1: CI and quick tries
    num_epochs = 2 if FAST else 40
    with rt.strategy.scope():  # build models and optimizers here
        ...

The precision policy is picked from the accelerator (see `pick_policy`) and can be forced with
`setup(precision=...)` or the `COURSE_PRECISION` environment variable.
"""

import contextlib
import dataclasses
import logging
import os
import platform
import random
import sys
import tempfile
import warnings
from pathlib import Path

FAST_ENV = "COURSE_FAST"
PRECISION_ENV = "COURSE_PRECISION"

# Where the course lives. The Colab install command and the student notebooks' first cell are
# built from this one value; set COURSE_REPOSITORY to install from a fork.
REPOSITORY_URL = "https://github.com/aigc-course/aigc-course"

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def cache_dir(*parts):
    """Returns (and creates) the course's cache folder, or a sub-folder of it.

    The folder is `$COURSE_CACHE_DIR` when set, else `$XDG_CACHE_HOME/course_lib`, else
    `~/.cache/course_lib`. Trained helper models (such as the digit judge) are kept here.
    """
    root = os.environ.get("COURSE_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "course_lib"
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def fast_mode(environ=None):
    """Reads fast mode from `COURSE_FAST` (1/true/yes/on or 0/false/no/off, default off)."""
    environ = os.environ if environ is None else environ
    value = environ.get(FAST_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{FAST_ENV}={environ.get(FAST_ENV)!r} is not understood: "
        f"use {FAST_ENV}=1 for fast mode or {FAST_ENV}=0 (or leave it unset) for the full run."
    )


def in_colab():
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def repository_url():
    return os.environ.get("COURSE_REPOSITORY", REPOSITORY_URL)


def colab_install_command():
    """The pip line that installs `course_lib` on Colab without touching TensorFlow.

    The package's dependency ranges admit the TensorFlow, Keras and TFDS that Colab ships, so
    pip keeps them; `--upgrade-strategy only-if-needed` (pip's default) makes that explicit.
    """
    return f'pip install -q --upgrade-strategy only-if-needed "course-lib @ git+{repository_url()}"'


def colab_install_cell():
    """Source of the first code cell of every notebook: installs course_lib when it is missing.

    On a laptop or in CI `course_lib` is already installed and the cell does nothing.
    """
    return (
        "# On Colab, install the course library (TensorFlow is left as Colab ships it).\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("course_lib") is None:\n'
        f"    %{colab_install_command()}"
    )


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """What the program runs on.

    Attributes:
        kind: "tpu", "gpu" or "cpu".
        name: a human-readable name, e.g. "NVIDIA H100" or the CPU model.
        count: number of accelerators (1 for the CPU).
        compute_capability: (major, minor) for NVIDIA GPUs, else None.
        cpu_bf16: whether the CPU has native bfloat16 instructions (AVX512-BF16 or AMX).
    """

    kind: str
    name: str
    count: int = 1
    compute_capability: tuple = None
    cpu_bf16: bool = False


def _cpu_name_and_bf16():
    name, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            name = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return name, bool(flags & {"avx512_bf16", "amx_bf16"})


def detect_device():
    """Inspects TensorFlow's devices and returns a `DeviceInfo`."""
    import tensorflow as tf

    tpus = tf.config.list_logical_devices("TPU")
    if tpus or os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
        return DeviceInfo("tpu", "TPU", count=max(len(tpus), 1))
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return DeviceInfo(
            "gpu",
            details.get("device_name", "GPU"),
            count=len(gpus),
            compute_capability=details.get("compute_capability"),
        )
    name, bf16 = _cpu_name_and_bf16()
    return DeviceInfo("cpu", name, count=1, cpu_bf16=bf16)


def pick_policy(device):
    """The mixed-precision policy for a device.

    - NVIDIA compute capability 8.0+ (Ampere, Hopper, ...) and TPUs: "mixed_bfloat16". bfloat16
      has float32's exponent range, so it needs no loss scaling and does not overflow to NaN.
    - NVIDIA 7.x (V100, T4): "mixed_float16" with loss scaling: their tensor cores do float16
      but not bfloat16.
    - Older GPUs and CPUs: "float32". On CPUs float16 is emulated (measured 3-4x slower); a CPU
      with AVX512-BF16 runs "mixed_bfloat16" faster (see benchmarks/precision.py), which
      `setup(precision="mixed_bfloat16")` turns on; it is not the default because bfloat16's
      8-bit mantissa changes results in the last digits, and checked outputs are float32.
    """
    if device.kind == "tpu":
        return "mixed_bfloat16"
    if device.kind == "gpu":
        major = (device.compute_capability or (0, 0))[0]
        if major >= 8:
            return "mixed_bfloat16"
        if major == 7:
            return "mixed_float16"
    return "float32"


def make_strategy(device, kind="auto"):
    """The `tf.distribute` strategy to build models under.

    Args:
        device: a `DeviceInfo`.
        kind: "auto" (TPUStrategy on a TPU, MirroredStrategy on 2+ GPUs, else the default),
            "default" or "mirrored" (over the GPUs if there are several, else over the
            logical CPUs of `split_cpu` if there are several, else on one device).
    """
    import tensorflow as tf

    if kind not in ("auto", "default", "mirrored"):
        raise ValueError(f"strategy={kind!r}: use 'auto', 'default' or 'mirrored'.")
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        cpus = tf.config.list_logical_devices("CPU")
        several_gpus = device.kind == "gpu" and device.count > 1
        if len(cpus) > 1 and not several_gpus:  # logical CPUs from split_cpu
            return tf.distribute.MirroredStrategy([cpu.name for cpu in cpus])
        return tf.distribute.MirroredStrategy()
    if device.kind == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if device.kind == "gpu" and device.count > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def split_cpu(count):
    """Splits the CPU into `count` logical devices that `tf.distribute` can use as replicas.

    They share the same cores, so training gets no faster; it lets a laptop run the code of
    several GPUs (`MirroredStrategy`) and check that it trains the same. TensorFlow accepts
    this only before it starts its runtime (its first op or device query).
    """
    import tensorflow as tf

    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if len(current or [None]) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError as error:
        raise RuntimeError(
            f"Cannot split the CPU into {count} devices: TensorFlow has already started in this "
            "process. Restart the kernel and call setup(..., cpu_replicas=...) first.") from error


@contextlib.contextmanager
def native_stderr_silenced():
    """Hides what native code writes to file descriptor 2 inside the block.

    TensorFlow's C++ start-up lines (CUDA probing, oneDNN, CPU-feature notices) bypass Python
    logging and `TF_CPP_MIN_LOG_LEVEL`. If the block raises, the hidden text is printed so
    that no real error is lost.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2: nothing to silence
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_tensorflow():
    """Silences TensorFlow's Python-side log noise (C++ start-up lines are set in __init__)."""
    import absl.logging
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    absl.logging.set_verbosity(absl.logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*`shuffle=True` was passed.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"tensorflow.*")


@dataclasses.dataclass
class Runtime:
    """What `setup` decided. Pass `strategy` to model building, read `fast` in notebooks."""

    seed: int
    fast: bool
    device: DeviceInfo
    policy: str
    strategy: object
    colab: bool

    @property
    def num_replicas(self):
        return self.strategy.num_replicas_in_sync

    @property
    def strategy_name(self):
        name = type(self.strategy).__name__
        return "default strategy" if name.startswith("_Default") else name

    def summary(self):
        import keras
        import tensorflow as tf

        device = self.device.name
        if self.device.kind != "cpu":
            device = f"{self.device.count}x {device}"
            if self.device.compute_capability:
                major, minor = self.device.compute_capability
                device += f" (compute capability {major}.{minor})"
        elif self.device.cpu_bf16 and self.policy == "float32":
            device += " (bf16-capable: precision='mixed_bfloat16' trains faster here)"
        return (
            f"TensorFlow {tf.__version__}, Keras {keras.__version__} | "
            f"{self.device.kind.upper()}: {device} | policy {self.policy} | "
            f"{self.strategy_name} x{self.num_replicas} | "
            f"fast mode {'ON' if self.fast else 'off'} | seed {self.seed}"
        )


def seed_everything(seed):
    """Seeds Python's `random`, NumPy and the Keras/TensorFlow generators."""
    import keras

    random.seed(seed)
    keras.utils.set_random_seed(seed)
    # Keras before 3.13 (the newest for Python 3.10) keeps its global SeedGenerator across
    # set_random_seed, so unseeded keras.random draws would not repeat; newer Keras drops it
    # itself. It is rebuilt from Python's (now seeded) generator on next use.
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # a future Keras that moved it also resets it
        return
    global_state.set_global_attribute("global_seed_generator", None)


def setup(seed=42, precision="auto", strategy="auto", deterministic=False, fast=None,
          verbose=True, cpu_replicas=1):
    """Prepares the notebook's runtime and returns a `Runtime`.

    Args:
        seed: seeds Python, NumPy and Keras.
        precision: "auto" (see `pick_policy`), or one of "float32", "mixed_float16",
            "mixed_bfloat16". The `COURSE_PRECISION` environment variable overrides "auto".
        strategy: "auto", "default" or "mirrored" (see `make_strategy`).
        deterministic: also make TensorFlow ops deterministic (slower; for checked outputs).
        fast: force fast mode on or off; None reads `COURSE_FAST`.
        verbose: print the one-line summary.
        cpu_replicas: split the CPU into this many logical devices (see `split_cpu`), so that
            `strategy="mirrored"` has replicas to mirror on a machine without GPUs.
    """
    with native_stderr_silenced():
        import keras
        import tensorflow as tf

        if cpu_replicas != 1:
            split_cpu(cpu_replicas)
        device = detect_device()
    quiet_tensorflow()
    if precision == "auto":
        precision = os.environ.get(PRECISION_ENV, "auto") or "auto"
    if precision != "auto" and precision not in POLICIES:
        raise ValueError(f"precision={precision!r}: use 'auto' or one of {', '.join(POLICIES)}.")
    policy = pick_policy(device) if precision == "auto" else precision
    keras.mixed_precision.set_global_policy(policy)
    seed_everything(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    runtime = Runtime(
        seed=seed,
        fast=fast_mode() if fast is None else bool(fast),
        device=device,
        policy=policy,
        strategy=make_strategy(device, strategy),
        colab=in_colab(),
    )
    if verbose:
        print(runtime.summary())
    return runtime
