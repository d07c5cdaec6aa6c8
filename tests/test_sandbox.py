"""The sandbox that course grade runs each submission in (course_lib.sandbox)."""

import os
import socket
import textwrap
import threading
import time

import pytest

from course_lib import sandbox

try:
    MODE = sandbox.check()
except sandbox.SandboxUnavailable as error:  # macOS, Windows, namespaces disabled
    pytest.skip(f"no sandbox on this machine: {error}", allow_module_level=True)


def _python(code, home, **kwargs):
    return sandbox.run(["python", "-c", textwrap.dedent(code)], home, **kwargs)


def test_the_sandbox_sees_its_home_and_the_python_environment_only(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRUCTOR_SECRET", "s3cret")
    home = tmp_path / "home"
    home.mkdir()
    (home / "answer.txt").write_text("42")
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = _python(f"""
        import os, sys
        print("answer", open("answer.txt").read())
        print("env", "INSTRUCTOR_SECRET" in os.environ, os.environ["HOME"])
        for path in ({repository + "/notebooks"!r}, {repository + "/tests"!r},
                     {repository + "/README.md"!r}, {str(tmp_path)!r}, "/root/.ssh",
                     "/root/.bashrc", "/root/.cache", "/home/student/../../root/.gitconfig"):
            print("visible" if os.path.exists(path) else "hidden", path)
        open("written.txt", "w").write("ok")
        try:
            open(os.path.join(sys.prefix, "planted.pth"), "w")
        except OSError as error:
            print("environment", error.strerror)
        """, home)
    assert result.returncode == 0, result.output
    assert "answer 42" in result.output
    assert "env False /home/student" in result.output
    assert "visible" not in result.output, result.output
    assert "environment Read-only file system" in result.output
    assert (home / "written.txt").read_text() == "ok"


def test_the_sandbox_reaches_no_network_not_even_the_graders_loopback(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    result = _python(f"""
        import socket
        for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 443), ("10.0.0.1", 80)):
            try:
                socket.create_connection((host, port), timeout=2)
                print("reached", host)
            except OSError as error:
                print("refused", host, error.errno)
        """, tmp_path)
    server.close()
    assert result.returncode == 0 and "reached" not in result.output, result.output


def test_nothing_outlives_the_sandbox(tmp_path):
    # A detached grandchild in its own session, as a cheat that rewrites results later.
    result = _python("""
        import os, subprocess
        subprocess.Popen(["sh", "-c", "sleep 2; echo late > late.txt"], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                import time
                time.sleep(2)
                open("daemon.txt", "w").write("still here")
            os._exit(0)
        print("parent done")
        """, tmp_path, timeout=30)
    assert "parent done" in result.output
    time.sleep(3)
    assert not (tmp_path / "late.txt").exists() and not (tmp_path / "daemon.txt").exists()


def test_a_timeout_kills_the_whole_tree(tmp_path):
    start = time.perf_counter()
    result = _python("""
        import subprocess, time
        subprocess.Popen(["sleep", "1000"])
        time.sleep(1000)
        """, tmp_path, timeout=3)
    assert result.timed_out and time.perf_counter() - start < 20


@pytest.mark.skipif(MODE != "root", reason="process-tree limits need a cgroup (root)")
def test_memory_and_process_limits_hold_for_the_process_tree(tmp_path):
    # Three children of 400 MiB each under a 1 GiB limit: a per-process limit would let
    # them all live.
    result = _python("""
        import subprocess, sys
        code = ("import time; b = bytearray(400 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
                "time.sleep(5)")
        children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
        print("exit codes", [child.wait() for child in children])
        """, tmp_path, memory_gb=1.0, timeout=60)
    assert result.out_of_memory or "-9" in result.output, result
    forks = _python("""
        import subprocess
        started = 0
        try:
            for _ in range(100):
                subprocess.Popen(["sleep", "30"])
                started += 1
        except OSError as error:
            print("stopped at", started, error.strerror)
        """, tmp_path, max_processes=20, timeout=60)
    assert "stopped at" in forks.output, forks.output
    assert int(forks.output.split("stopped at")[1].split()[0]) < 20


def test_kill_all_ends_running_sandboxes(tmp_path):
    results = []
    thread = threading.Thread(target=lambda: results.append(
        _python("import time; time.sleep(1000)", tmp_path, timeout=600)))
    thread.start()
    time.sleep(1.5)
    sandbox.kill_all()
    thread.join(timeout=20)
    assert not thread.is_alive() and results and results[0].returncode != 0
