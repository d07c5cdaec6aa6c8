"""Exercises, student versions and autograding, built on otter-grader.

A chapter notebook in `notebooks/` is the full solution. Its exercises are written in
otter-grader's notebook format (raw cells `# BEGIN QUESTION`, `# BEGIN SOLUTION`,
`# BEGIN TESTS`, ...; see docs/instructors.md), so the same file is readable by a self-learner,
executed by CI (solutions and tests run as ordinary cells) and turned into an assignment:

    course assign 00_start --out handout        # student versions + autograder bundles
    course grade --assignment handout/00_start/00_getting_started/autograder \\
                 submissions/*.ipynb --out grades.csv

`assign` runs `otter assign` and then makes the student version Colab-ready (its first cell
installs `course-lib[grading]` without touching TensorFlow, before otter's own set-up cell).
`grade` rebuilds each submission from the student version (its answer cells only), runs
`otter run` on it in fast mode inside a throwaway sandbox (`course_lib.sandbox`: no Docker
needed) with a time and a memory limit, several at a time, and writes a CSV table and a
Markdown summary atomically. docs/instructors.md says what the sandbox stops and what not.
"""

import concurrent.futures
import csv
import difflib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat

from course_lib.runtime import colab_install_command

CONFIG_MARKER = "# ASSIGNMENT CONFIG"
ANSWER_TAG = "otter_answer_cell"
MANIFEST = "assignment.json"
OTTER_INIT = "# Initialize Otter"
STUDENT_VERSION = "student_version.ipynb"


def has_exercises(path):
    """True if the notebook carries an otter `# ASSIGNMENT CONFIG` cell."""
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "raw" and c.source.lstrip().startswith(CONFIG_MARKER)
               for c in nb.cells)


def _otter(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "otter", *args], capture_output=True,
                          text=True, **kwargs)


def _natural(name):
    """Sort key that puts q2 before q10."""
    return [int(part) if part.isdigit() else part
            for part in re.split(r"(\d+)", name)]


def _answers_digest(nb):
    """A fingerprint of the answer cells: equal for an untouched student version."""
    answers = [c.source.strip() for c in nb.cells
               if c.cell_type == "code" and ANSWER_TAG in c.metadata.get("tags", [])]
    return hashlib.sha256("\n\x00".join(answers).encode()).hexdigest()


def _test_points(source):
    """The points of one otter test file (`test = {"name": ..., "points": ..., ...}`)."""
    import ast

    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "test":
            test = ast.literal_eval(node.value)
            points = test.get("points")
            if isinstance(points, (int, float)):
                return float(points)
            cases = test.get("suites", [{}])[0].get("cases", [])
            return float(sum(case.get("points") or 0 for case in cases)) or None
    return None


def _colab_ready(student_path):
    """Puts a Colab install cell (with the grading extra) before otter's `import otter` cell."""
    nb = nbformat.read(student_path, as_version=4)
    command = colab_install_command().replace('course-lib @', 'course-lib[grading] @')
    install = nbformat.v4.new_code_cell(
        "# On Colab, install the course library and the grader (TensorFlow is left as it is).\n"
        "import importlib.util\n\n"
        'if importlib.util.find_spec("otter") is None:\n'
        f"    %{command}"
    )
    cells = [c for c in nb.cells if not c.source.startswith(OTTER_INIT)]
    init = [c for c in nb.cells if c.source.startswith(OTTER_INIT)]
    # Drop the solution notebook's own install cell: the new one covers both.
    cells = [c for c in cells if "importlib.util.find_spec(\"course_lib\")" not in c.source]
    first_code = next(i for i, c in enumerate(cells) if c.cell_type == "code")
    cells[first_code:first_code] = [install, *init]
    for cell in cells:
        cell.pop("id", None)
    nb.cells = cells
    nbformat.write(nb, student_path)
    return nb


def assign(notebook, out_dir, tests_url=None):
    """Builds the student version and autograder bundle of one notebook.

    Args:
        notebook: a solution notebook with an `# ASSIGNMENT CONFIG` cell.
        out_dir: where to write; gets `student/` (hand this out) and `autograder/` (keep it:
            it holds the solutions and hidden tests).
        tests_url: optional URL of the published `student/tests/` folder: the student
            notebook's checks then download `{tests_url}/{question}.py` (public tests only),
            so they work where the notebook is not on disk beside its tests (Colab).

    Returns:
        dict: the manifest written to `autograder/assignment.json`.
    """
    notebook, out_dir = Path(notebook), Path(out_dir)
    if not has_exercises(notebook):
        raise ValueError(f"{notebook} has no '{CONFIG_MARKER}' cell: it has no exercises.")
    with tempfile.TemporaryDirectory() as tmp:
        master = Path(tmp) / notebook.name
        nb = nbformat.read(notebook, as_version=4)
        if tests_url:
            config = next(c for c in nb.cells if c.source.lstrip().startswith(CONFIG_MARKER))
            config.source += f"\ntests:\n  files: true\n  url_prefix: {tests_url.rstrip('/')}/"
        nbformat.write(nb, master)
        dist = Path(tmp) / "dist"
        result = _otter("assign", "--no-pdfs", "--no-run-tests", str(master), str(dist),
                        cwd=tmp)
        if result.returncode != 0:
            raise RuntimeError(f"otter assign failed for {notebook}:\n{result.stderr[-3000:]}")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(dist, out_dir)
    student_path = out_dir / "student" / notebook.name
    student = _colab_ready(student_path)
    (zip_path,) = sorted((out_dir / "autograder").glob("*-autograder_*.zip"))
    with zipfile.ZipFile(zip_path) as bundle:
        graded = {Path(n).stem for n in bundle.namelist()
                  if n.startswith("tests/") and n.endswith(".py")}
    # In the order the notebook asks them (the order of its check cells).
    asked = re.findall(r'grader\.check\("([^"]+)"\)',
                       "\n".join(c.source for c in student.cells if c.cell_type == "code"))
    questions = [q for q in dict.fromkeys(asked) if q in graded]
    questions += sorted(graded - set(questions), key=_natural)
    with zipfile.ZipFile(zip_path) as bundle:
        points = {q: _test_points(bundle.read(f"tests/{q}.py").decode()) for q in questions}
    # The student version as handed out: grading rebuilds each submission from it.
    shutil.copy(student_path, out_dir / "autograder" / STUDENT_VERSION)
    manifest = {
        "notebook": notebook.name,
        "assignment": student.metadata.get("otter", {}).get("assignment_name"),
        "autograder_zip": zip_path.name,
        "questions": questions,
        "points": points,
        "student_version": STUDENT_VERSION,
        "student_answers_sha256": _answers_digest(student),
    }
    (out_dir / "autograder" / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ---------------------------------------------------------------------------------------
# Grading
# ---------------------------------------------------------------------------------------

def _run_otter(zip_path, submission, work, timeout, memory_gb, sandboxed=True):
    """Runs `otter run` on one submission; returns (results dict | None, note).

    In a sandbox (`course_lib.sandbox`) by default: the submission sees its own folder and
    the read-only Python environment, nothing else; when the sandbox ends, every process the
    submission started has ended, and only then are its results read.
    """
    from course_lib import sandbox

    home = work / "home"
    home.mkdir()
    shutil.copy(zip_path, home / "autograder.zip")
    shutil.copy(submission, home / submission.name)
    (home / "results").mkdir()
    env = {"COURSE_FAST": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if sandboxed:
        inside = Path(sandbox.HOME)
        env["COURSE_CACHE_DIR"] = str(inside / ".cache" / "course_lib")
        command = ["python", "-m", "otter", "run", "--no-logo", "-a",
                   str(inside / "autograder.zip"), "-o", str(inside / "results"),
                   str(inside / submission.name)]
        result = sandbox.run(command, home, env=env, timeout=timeout, memory_gb=memory_gb)
        log, timed_out, out_of_memory = result.output, result.timed_out, result.out_of_memory
    else:  # only with --no-sandbox: the submission runs as the grader, with its files
        command = [sys.executable, "-m", "otter", "run", "--no-logo", "-a",
                   str(home / "autograder.zip"), "-o", str(home / "results"),
                   str(home / submission.name)]
        process = subprocess.Popen(command, cwd=home, env=dict(os.environ, TMPDIR=str(home),
                                                              **env),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        timed_out = out_of_memory = False
        try:
            log, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            log, _ = process.communicate()
            timed_out = True
    if timed_out:
        return None, f"timeout: stopped after {timeout:.0f} s"
    if out_of_memory:
        return None, f"memory: exceeded {memory_gb:g} GiB"
    results = home / "results" / "results.json"
    if results.is_file():
        try:
            return json.loads(results.read_text()), ""
        except (ValueError, UnicodeDecodeError):
            return None, "error: otter's results file is not valid JSON"
    last = [line for line in log.strip().splitlines() if line.strip()][-1:] or ["no output"]
    if "MemoryError" in log or "Cannot allocate memory" in log:
        return None, f"memory: exceeded {memory_gb:g} GiB"
    return None, f"error: {last[0][:200]}"


def _scores(results, questions, points=None):
    """Per-question (score, possible) from otter's results.json (Gradescope format), and the
    questions whose reported maximum differs from the assignment's (a forged or broken
    results file: such a question scores 0)."""
    scores, mismatched = {q: (0.0, None) for q in questions}, []
    for test in results.get("tests", []):
        name = test.get("name")
        if name in scores and "max_score" in test:
            try:
                score, possible = float(test.get("score") or 0), float(test["max_score"])
            except (TypeError, ValueError):
                mismatched.append(name)
                continue
            expected = (points or {}).get(name)
            if expected is not None and (possible != expected or not 0 <= score <= possible):
                mismatched.append(name)
                scores[name] = (0.0, expected)
            else:
                scores[name] = (score, possible)
    return scores, mismatched


def rebuild(student_version, submission):
    """The notebook that is graded: the student version as handed out, with the submission's
    answer cells (tagged `otter_answer_cell`, in order) in place of its blank ones, up to its
    last check cell. Cells the student added, deleted or changed outside the answers are not
    graded.

    Returns:
        (notebook, notes): notes say which cells were ignored.
    """
    def answers(nb):
        return [c for c in nb.cells
                if c.cell_type == "code" and ANSWER_TAG in c.metadata.get("tags", [])]

    graded = nbformat.from_dict(json.loads(json.dumps(student_version)))
    given = answers(submission)
    blank = answers(graded)
    for cell, answer in zip(blank, given):
        cell.source = answer.source
    notes = []
    if len(given) != len(blank):
        notes.append(f"{len(blank)} answer cells expected, {len(given)} found")
    given_ids, blank_ids = {id(c) for c in given}, {id(c) for c in blank}
    others_now = [c.source for c in submission.cells if id(c) not in given_ids]
    others_then = [c.source for c in graded.cells if id(c) not in blank_ids]
    matcher = difflib.SequenceMatcher(a=others_then, b=others_now, autojunk=False)
    added = changed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "insert":
            added += j2 - j1
        elif tag in ("replace", "delete"):
            changed += max(i2 - i1, j2 - j1) if tag == "replace" else i2 - i1
    # The tests run against the notebook's state after its last check: the cells after it
    # (the rest of the chapter, its longer training) cannot change the marks and are not run.
    checks = [i for i, c in enumerate(graded.cells)
              if c.cell_type == "code" and "grader.check(" in c.source]
    if checks:
        graded.cells = graded.cells[:checks[-1] + 1]
    if added:
        notes.append(f"{added} added cell{'s' if added > 1 else ''} not graded")
    if changed:
        notes.append(f"{changed} changed or deleted cell{'s' if changed > 1 else ''} "
                     "outside the answers restored")
    return graded, notes


def grade_one(bundle, submission, timeout=300, memory_gb=6.0, label=None, sandboxed=True):
    """Grades one submitted notebook. Never raises for a bad submission: see `status`.

    Args:
        label: how the row names the submission (default: its file name).
        sandboxed: run it in `course_lib.sandbox` (False only for trusted submissions).

    Returns:
        dict with `submission`, `status` ("graded", "unchanged", "invalid", "timeout",
        "error", "memory"), one entry per question, `total`, `possible`, `seconds`, `detail`.
    """
    bundle, submission = Path(bundle).resolve(), Path(submission)
    manifest = json.loads((bundle / MANIFEST).read_text())
    questions, points = manifest["questions"], manifest.get("points") or {}
    row = {"submission": label or submission.name, "status": "graded", "detail": ""}
    start = time.perf_counter()
    notes, results = [], None
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        work = Path(tmp)
        nb = None
        if not submission.is_file():
            row["status"] = "invalid"
            row["detail"] = ("a folder, not a notebook" if submission.is_dir() else
                             "not found" if not submission.exists() else "not a regular file")
        else:
            try:
                nb = nbformat.read(submission, as_version=4)
            except Exception as error:  # not JSON, not a notebook, unreadable
                row["status"] = "invalid"
                first_line = " ".join(str(error).split())[:80]
                row["detail"] = f"not a readable notebook ({type(error).__name__}: {first_line})"
        if nb is not None:
            student_version = bundle / manifest.get("student_version", STUDENT_VERSION)
            if student_version.exists():
                nb, notes = rebuild(nbformat.read(student_version, as_version=4), nb)
            if _answers_digest(nb) == manifest["student_answers_sha256"]:
                row["status"], row["detail"] = "unchanged", "no answer was filled in"
            # Grade with the course's kernel whatever kernel the student's machine named.
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                         "language": "python"}
            copy = work / manifest["notebook"]
            nbformat.write(nb, copy)
            results, note = _run_otter(bundle / manifest["autograder_zip"], copy, work,
                                       timeout, memory_gb, sandboxed=sandboxed)
            if results is None:
                row["status"], row["detail"] = note.split(":")[0], note
    scores, mismatched = _scores(results or {}, questions, points)
    for question, (score, _) in scores.items():
        row[question] = score
    row["total"] = sum(score for score, _ in scores.values())
    known = [points.get(q) for q in questions]
    row["possible"] = sum(known) if known and None not in known else (
        sum(p for _, p in scores.values()) if all(p is not None for _, p in scores.values())
        else None)
    row["seconds"] = round(time.perf_counter() - start, 1)
    if results is not None and row["status"] == "graded":
        missing = [q for q, (_, p) in scores.items() if p is None]
        failed = [q for q, (s, p) in scores.items() if p is not None and s < p]
        parts = []
        if missing:
            parts.append("no result for " + ", ".join(missing))
        if failed:
            parts.append("lost points in " + ", ".join(failed))
        full = not parts and row["possible"] and row["total"] == row["possible"]
        row["detail"] = "full marks" if full else "; ".join(parts) or "no points"
    if mismatched:
        notes.append("results for " + ", ".join(mismatched) + " did not match the assignment's "
                     "points (scored 0)")
    if notes:
        row["detail"] = "; ".join(filter(None, [row["detail"], *notes]))
    return row


def _write_atomically(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", newline="") as file:
        file.write(text)
    os.replace(tmp, path)


def _csv_safe(value):
    """A cell a spreadsheet shows as text: one starting with = + - @ (or a tab or carriage
    return) would be read as a formula, so it gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _labels(paths):
    """Names for the rows: each path relative to the submissions' common folder."""
    resolved = [Path(os.path.abspath(p)) for p in paths]
    if len(resolved) < 2:
        return [p.name for p in resolved]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    return [p.relative_to(common).as_posix() for p in resolved]


def _summary_markdown(rows, questions, possible):
    lines = [f"# Grades ({len(rows)} submissions)", ""]
    header = ["submission", "status", *questions, "total", "seconds", "detail"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    def cell(value):
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|")

    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(h, "")) for h in header) + " |")
    lines += ["", f"Points possible: {possible:g}." if possible else ""]
    graded = [r for r in rows if r["status"] == "graded"]
    if rows:
        mean = sum(r["total"] for r in rows) / len(rows)
        lines.append(f"Mean total: {mean:.2f}; graded normally: {len(graded)} of {len(rows)}.")
    for status in sorted({r["status"] for r in rows} - {"graded"}):
        names = ", ".join(r["submission"] for r in rows if r["status"] == status)
        lines.append(f"- **{status}**: {names}")
    return "\n".join(lines) + "\n"


def grade(bundle, submissions, out_csv, timeout=300, memory_gb=6.0, workers=None,
          progress=print, sandboxed=True):
    """Grades submissions in parallel and writes `out_csv` and a Markdown summary beside it.

    Args:
        bundle: the `autograder/` folder written by `assign`.
        submissions: paths of submitted notebooks (any names; a folder or an unreadable
            path becomes a row saying so). Rows name them relative to their common folder.
        out_csv: the grade table; `<out_csv stem>.md` gets the readable summary.
        timeout: seconds allowed per submission (then it is killed: status "timeout").
        memory_gb: memory per submission (for its whole process tree where a cgroup can be
            made, else per process).
        workers: submissions graded at once (default: the number of CPU cores).
        progress: called with one line per finished submission.
        sandboxed: grade each submission in `course_lib.sandbox` (the default; False runs
            the submissions as you, with your files and network: for trusted notebooks only).

    Returns:
        list of row dicts, in the order of `submissions`.
    """
    bundle = Path(bundle)
    if not (bundle / MANIFEST).exists():
        raise FileNotFoundError(
            f"{bundle} is not an autograder bundle (no {MANIFEST}): pass the autograder/ "
            "folder that `course assign` wrote.")
    questions = json.loads((bundle / MANIFEST).read_text())["questions"]
    if sandboxed:
        from course_lib import sandbox

        sandbox.check()  # raises SandboxUnavailable, saying why, before anything is graded
    submissions = [Path(s) for s in submissions]
    labels = _labels(submissions)
    workers = workers or os.cpu_count() or 1
    rows = [None] * len(submissions)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(grade_one, bundle, s, timeout, memory_gb, label, sandboxed): i
                   for i, (s, label) in enumerate(zip(submissions, labels))}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            row = rows[futures[future]] = future.result()
            progress(f"[{done}/{len(submissions)}] {row['submission']}: {row['status']}, "
                     f"{row['total']:g} points ({row['seconds']} s)")
    except KeyboardInterrupt:
        # Queued gradings never start; running sandboxes are killed (everything in them
        # ends); the previous table is left as it was.
        pool.shutdown(wait=False, cancel_futures=True)
        if sandboxed:
            sandbox.kill_all()
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=True)
    possible = next((r["possible"] for r in rows if r["possible"]), None)
    header = ["submission", "status", *questions, "total", "possible", "seconds", "detail"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        row = {**row, "possible": possible}
        writer.writerow({key: _csv_safe(value) for key, value in row.items()})
    _write_atomically(out_csv, buffer.getvalue())
    _write_atomically(Path(out_csv).with_suffix(".md"),
                      _summary_markdown(rows, questions, possible))
    return rows
