"""A throwaway Linux sandbox for a student's code, without Docker or any daemon.

`run(argv, home)` runs one command to its end; `start(argv, home)` starts one and returns at
once, for a caller that talks to it through its pipes (as `course grade` talks to a student's
kernel). Either way:

- **Its own namespaces** (`unshare`): mount, PID, IPC and network, plus a user namespace when
  the grader is not root. The network namespace has its own loopback (a Jupyter kernel talks to
  its client through it) and nothing else: no other machine, not even the grader's own
  loopback services.
- **Its own file system**: a fresh root on tmpfs holding only the system's `/usr`, `/etc` and
  libraries, the course's Python environment and library (all read-only), an empty `/tmp`, a few
  devices, and the submission's folder as `HOME` (`/home/student`). The repository, the
  handout, the autograder bundle, other submissions and the grader's home do not exist there.
- **No privileges**: as root, the command runs as a throwaway user id with no capabilities and
  `no_new_privs` (`setpriv`); as another user, as the namespace's root with every capability
  dropped. Its environment is an allow-list, not the grader's.
- **Limits on the whole process tree**: a cgroup caps memory and the number of processes when
  one can be made (root, with cgroup v1 or v2), else each process's address space and the
  throwaway user's process count are capped; CPU time and file size are capped per process.
- **Nothing outlives it**: the command is the first process of its PID namespace, so when it
  ends (or is killed at its timeout, or by Ctrl-C) the kernel kills every process it started,
  daemons included; the cgroup and the sandbox root are then removed.

Elsewhere (macOS, Windows, a Linux without `unshare` or with user namespaces disabled)
`check()` raises `SandboxUnavailable` saying why.
"""

import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HOME = "/home/student"
# What a Python process needs from the system, bound read-only (merged-/usr links copied).
SYSTEM_PATHS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEVICES = ("null", "zero", "full", "random", "urandom")
# The only variables passed in from the grader's environment (values, not secrets).
PASSED_ENV = ("LANG", "LC_ALL", "TZ")
CGROUP_ROOT = Path("/sys/fs/cgroup")
_RUNNING = set()  # the sandboxes' first processes, for kill_all()
_LOCK = threading.Lock()


class SandboxUnavailable(RuntimeError):
    """This machine cannot make the sandbox; the message says why."""


@dataclass
class Result:
    """What a sandboxed command did."""

    returncode: int
    output: str
    seconds: float
    timed_out: bool = False
    out_of_memory: bool = False
    interrupted: bool = False
    limits: str = ""  # how the limits were enforced (a cgroup, or per process)


def check():
    """Raises `SandboxUnavailable` unless sandboxes work here; returns the mode ("root" or
    "user namespace")."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(
            f"grading in a sandbox needs Linux namespaces; this is {sys.platform}")
    missing = [tool for tool in ("unshare", "setpriv", "mount", "chroot") if not shutil.which(tool)]
    if missing:
        raise SandboxUnavailable(f"{', '.join(missing)} not found (util-linux and coreutils)")
    mode = "root" if os.geteuid() == 0 else "user namespace"
    probe = _unshare_argv() + ["true"]
    result = subprocess.run(probe, capture_output=True, text=True)
    if result.returncode:
        raise SandboxUnavailable(
            f"{shlex.join(probe)} failed ({result.stderr.strip()[:200]}): this machine does not "
            "allow new namespaces" + ("" if mode == "root" else
                                      " for unprivileged users (kernel.unprivileged_userns_clone)"))
    return mode


def _unshare_argv():
    argv = ["unshare", "--mount", "--pid", "--net", "--ipc", "--uts", "--fork", "--kill-child",
            "--mount-proc"]
    if os.geteuid() != 0:
        argv.insert(1, "--map-root-user")
    return argv


def _read_only_paths():
    """The Python environment and the course library, wherever they are installed."""
    import course_lib

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
             Path(course_lib.__file__).resolve().parent}
    return sorted(str(p) for p in paths
                  if not any(str(p) == s or str(p).startswith(s + "/") for s in SYSTEM_PATHS))


# Brings up the namespace's own loopback interface (SIOCGIFFLAGS, then SIOCSIFFLAGS + IFF_UP),
# without depending on iproute2.
_LOOPBACK_UP = """import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, struct.pack("16sH14s", b"lo", 0, b"")))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))"""


def kill_all():
    """Kills every sandbox this process is running (and so everything inside them)."""
    with _LOCK:
        running = list(_RUNNING)
    for process in running:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _script(root, home, read_only):
    """The shell script run as root inside the new namespaces: builds the sandbox's root and
    drops into it."""
    q = shlex.quote
    lines = ["set -eu", f"{q(sys.executable)} -c {q(_LOOPBACK_UP)}", "mount --make-rprivate /",
             f"mount -t tmpfs -o mode=755,size=16m course-sandbox {q(root)}"]
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            lines.append(f"ln -s {q(os.readlink(path))} {q(root + path)}")
        elif os.path.isdir(path):
            lines += [f"mkdir -p {q(root + path)}", f"mount --rbind {q(path)} {q(root + path)}",
                      f"mount -o remount,bind,ro {q(root + path)}"]
    lines += [f"mkdir -p {q(root)}/dev/shm {q(root)}/proc {q(root)}/tmp {q(root + HOME)}"]
    for device in DEVICES:
        lines += [f"touch {q(root)}/dev/{device}",
                  f"mount --bind /dev/{device} {q(root)}/dev/{device}"]
    lines += [f"mount -t tmpfs -o mode=1777,size=512m shm {q(root)}/dev/shm",
              f"mount -t tmpfs -o mode=1777,size=2g tmp {q(root)}/tmp",
              f"mount -t proc proc {q(root)}/proc"]
    # After /tmp: a Python environment may live under /tmp (or /home) and must stay visible.
    for path in read_only:
        lines += [f"mkdir -p {q(root + path)}", f"mount --bind {q(path)} {q(root + path)}",
                  f"mount -o remount,bind,ro {q(root + path)}"]
    lines += [f"mount --bind {q(str(home))} {q(root + HOME)}", f"cd {q(root)}"]
    return "\n".join(lines)


class _Cgroup:
    """A cgroup (v2, or v1's memory and pids controllers) capping the whole process tree."""

    def __init__(self, memory_bytes, max_processes):
        self.paths, name = [], f"course-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            if (CGROUP_ROOT / "cgroup.controllers").exists():  # v2
                path = CGROUP_ROOT / name
                path.mkdir()
                self.paths.append(path)
                (path / "memory.max").write_text(str(memory_bytes))
                (path / "memory.swap.max").write_text("0") if (
                    path / "memory.swap.max").exists() else None
                (path / "pids.max").write_text(str(max_processes))
                self.kind = "cgroup v2"
            else:  # v1
                memory, pids = CGROUP_ROOT / "memory" / name, CGROUP_ROOT / "pids" / name
                memory.mkdir()
                self.paths.append(memory)
                pids.mkdir()
                self.paths.append(pids)
                (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
                swap = memory / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(str(memory_bytes))
                (pids / "pids.max").write_text(str(max_processes))
                self.kind = "cgroup v1"
        except OSError:
            self.remove()
            raise

    def join(self):
        """Moves the calling process (and so all its future children) into the cgroup."""
        for path in self.paths:
            (path / "cgroup.procs").write_text(str(os.getpid()))

    def out_of_memory(self):
        for path in self.paths:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                if (path / name).exists():
                    for line in (path / name).read_text().splitlines():
                        field, _, value = line.partition(" ")
                        if field == key and int(value or 0) > 0:
                            return True
            if (path / "memory.failcnt").exists() and int((path / "memory.failcnt").read_text()):
                return True
        return False

    def remove(self):
        for path in self.paths:
            for _ in range(50):  # the kernel empties it a moment after its last process exits
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
        self.paths = []


def _preexec(cgroup, memory_bytes, max_processes, cpu_seconds, file_bytes, per_process_memory):
    import resource

    def apply():
        os.setsid()  # its own process group: a timeout or Ctrl-C kills the whole command
        if cgroup is not None:
            cgroup.join()
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if per_process_memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            # counted per real user id: the throwaway user's, once setpriv has switched to it
            resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    return apply


class Sandbox:
    """A running sandbox (from `start`): its first process is `process`; `close()` kills
    everything in it and returns the `Result`."""

    def __init__(self, process, cgroup, root, limits):
        self.process, self._cgroup, self._root = process, cgroup, root
        self.result = Result(returncode=-1, output="", seconds=0.0, limits=limits)
        self._start = time.perf_counter()
        self._closed = False

    def close(self, output=None):
        """Kills whatever still runs in the sandbox (killing the namespace's first process
        kills everything in it), removes its cgroup and root; returns the `Result`, whose
        output is `output` if given, else what is left to read on its stdout pipe."""
        if self._closed:
            return self.result
        self._closed = True
        process = self.process
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if output is None and process.stdout is not None and not process.stdout.closed:
            output, _ = process.communicate()
        process.wait()
        with _LOCK:
            _RUNNING.discard(process)
        self.result.returncode = process.returncode
        self.result.output = (output or b"").decode("utf-8", "replace")
        self.result.seconds = time.perf_counter() - self._start
        if self._cgroup is not None:
            self.result.out_of_memory = self._cgroup.out_of_memory()
            self._cgroup.remove()
        self._root.cleanup()
        return self.result


def start(argv, home, *, env=None, timeout=300, memory_gb=6.0, max_processes=256,
          cpu_seconds=None, file_gb=2.0, read_only=(), uid=None, stdin=subprocess.DEVNULL,
          stdout=subprocess.PIPE, stderr=subprocess.STDOUT):
    """Starts `argv` in a new sandbox and returns a `Sandbox` at once (see `run` for the
    arguments; `stdin`, `stdout` and `stderr` are as for `subprocess.Popen`). The caller
    talks to it through its pipes and must `close()` it; `timeout` only sets the CPU limit."""
    mode = check()
    home = Path(home).resolve()
    memory_bytes = int(memory_gb * 2**30)
    cpu_seconds = int(cpu_seconds or timeout * (os.cpu_count() or 1) + 5)
    cgroup, limits = None, ""
    if mode == "root":
        uid = uid if uid is not None else 100000 + secrets.randbelow(100000)
        for path in [home, *home.rglob("*")]:
            os.chown(path, uid, uid, follow_symlinks=False)
        try:
            cgroup = _Cgroup(memory_bytes, max_processes)
            limits = f"{cgroup.kind}: {memory_gb:g} GiB and {max_processes} processes in all"
        except OSError:
            limits = (f"no writable cgroup: {memory_gb:g} GiB per process, "
                      f"{max_processes} processes for the throwaway user")
    else:
        limits = f"no cgroup (not root): {memory_gb:g} GiB per process"
    variables = {"HOME": HOME, "USER": "student", "LOGNAME": "student", "TMPDIR": "/tmp",
                 "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
                 "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg",
                 **{k: os.environ[k] for k in PASSED_ENV if k in os.environ}, **(env or {})}
    root_folder = tempfile.TemporaryDirectory(prefix="course-sandbox-root-")
    root = root_folder.name
    if mode == "root":
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
    else:
        drop = ["setpriv", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
    inner = ["chroot", root, *drop, "env", "-i",
             *(f"{k}={v}" for k, v in variables.items()),
             "sh", "-c", f"cd {HOME} && exec \"$@\"", "sandbox", *argv]
    script = _script(root, home, _read_only_paths() + [str(p) for p in read_only])
    command = _unshare_argv() + ["sh", "-c", script + "\nexec " + shlex.join(inner)]
    try:
        process = subprocess.Popen(
            command, stdin=stdin, stdout=stdout, stderr=stderr,
            preexec_fn=_preexec(cgroup, memory_bytes, max_processes, cpu_seconds,
                                int(file_gb * 2**30), per_process_memory=cgroup is None))
    except BaseException:
        if cgroup is not None:
            cgroup.remove()
        root_folder.cleanup()
        raise
    with _LOCK:
        _RUNNING.add(process)
    return Sandbox(process, cgroup, root_folder, limits)


def run(argv, home, *, env=None, timeout=300, memory_gb=6.0, max_processes=256,
        cpu_seconds=None, file_gb=2.0, read_only=(), uid=None):
    """Runs `argv` in a new sandbox whose `HOME` is the folder `home` (read-write).

    Args:
        argv: the command, as seen inside the sandbox (paths under `/home/student`, `/tmp`,
            or the read-only Python environment).
        home: the folder the command may read and write; everything else is read-only or
            absent. As root it is handed to the throwaway user (its owner changes).
        env: extra environment variables (the rest of the grader's environment is not passed).
        timeout: wall-clock seconds before everything in the sandbox is killed.
        memory_gb: memory for the whole process tree (a cgroup), or per process without one.
        max_processes: processes and threads in the tree (or of the throwaway user).
        cpu_seconds: CPU seconds per process (default: the timeout, times the cores).
        file_gb: the largest file a process may write.
        read_only: further folders to show, read-only, at the same paths.
        uid: the throwaway user id (as root; default: a random one of 100000-199999).

    Returns:
        a `Result`; raises `SandboxUnavailable` where sandboxes cannot be made.
    """
    box = start(argv, home, env=env, timeout=timeout, memory_gb=memory_gb,
                max_processes=max_processes, cpu_seconds=cpu_seconds, file_gb=file_gb,
                read_only=read_only, uid=uid)
    output, interrupted = None, False
    try:
        output, _ = box.process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        box.result.timed_out = True
    except KeyboardInterrupt:
        interrupted = box.result.interrupted = True
    finally:
        result = box.close(output)
    if interrupted:
        raise KeyboardInterrupt
    return result
