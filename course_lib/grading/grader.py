"""Grading a class: `course grade`.

Each submission is rebuilt from the student version as handed out (its answer cells only, up
to the last check), then graded by two processes joined by a channel that carries only data:
the student's kernel, which runs the notebook in a throwaway sandbox (`course_lib.sandbox`:
no Docker needed) with a time and a memory limit, and the scorer
(`course_lib.grading.scoring`), which runs the tests outside it and calls the answers across.
Several submissions are graded at once; the CSV table and its Markdown summary are written
atomically. docs/instructors.md says what this stops and what not.
"""

import concurrent.futures
import csv
import difflib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import nbformat

from course_lib.grading.assign import (
    ANSWER_TAG,
    MANIFEST,
    STUDENT_VERSION,
    _answers_digest,
    answer_names,
)

_SCORERS = set()  # running scorer processes, killed on Ctrl-C
_LOCK = threading.Lock()


def _kill(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _score(bundle, manifest, notebook, work, timeout, memory_gb, sandboxed=True):
    """Runs `notebook` in a kernel (sandboxed unless `sandboxed` is False) and the tests in a
    scorer outside it; returns (results, kernel log, {"exit_code", "out_of_memory",
    "limits"}) (the exit code is None when the kernel was still running at the end).

    The hidden tests go to the scorer's own folder, never into the sandbox. When the scorer
    is done (or out of time), the sandbox is killed with everything in it, and only then are
    the results read.
    """
    from course_lib import sandbox

    home, trusted = work / "home", work / "trusted"
    home.mkdir()
    trusted.mkdir()
    shutil.copy(notebook, home / notebook.name)
    with zipfile.ZipFile(bundle / manifest["autograder_zip"]) as zipped:
        zipped.extractall(trusted, [n for n in zipped.namelist()
                                    if n.startswith("tests/") and n.endswith(".py")])
    answers = manifest.get("answers")
    if answers is None:  # a bundle from before the manifest listed them
        answers = answer_names(nbformat.read(bundle / STUDENT_VERSION, as_version=4))
    env = {"COURSE_FAST": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.monotonic()
    box, kernel_log = None, work / "kernel.log"
    with open(kernel_log, "wb") as log:
        if sandboxed:
            inside = Path(sandbox.HOME)
            env["COURSE_CACHE_DIR"] = str(inside / ".cache" / "course_lib")
            box = sandbox.start(["python", "-m", "course_lib.grading.kernel",
                                 str(inside / notebook.name)], home, env=env, timeout=timeout,
                                memory_gb=memory_gb, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log)
            kernel = box.process
        else:  # only with --no-sandbox: the submission runs as the grader, with its files
            kernel = subprocess.Popen(
                [sys.executable, "-m", "course_lib.grading.kernel", str(home / notebook.name)],
                cwd=home, env=dict(os.environ, TMPDIR=str(home), **env), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    results_path = trusted / "results.json"
    scorer = None
    try:
        with open(work / "scorer.log", "wb") as log:
            scorer = subprocess.Popen(
                [sys.executable, "-m", "course_lib.grading.scoring", "--tests",
                 str(trusted / "tests"), "--questions", ",".join(manifest["questions"]),
                 "--answers", ",".join(answers), "--seconds", str(timeout),
                 "--out", str(results_path)],
                stdin=kernel.stdout, stdout=kernel.stdin, stderr=log, cwd=trusted,
                env=dict(os.environ, COURSE_FAST="1"), start_new_session=True)
        with _LOCK:
            _SCORERS.add(scorer)
        kernel.stdin.close()  # the scorer holds the channel now
        kernel.stdout.close()
        try:  # the scorer keeps the deadline itself; this is a backstop
            scorer.wait(timeout=max(timeout - (time.monotonic() - start), 0) + 60)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if scorer is not None:
            _kill(scorer)
            scorer.wait()
            with _LOCK:
                _SCORERS.discard(scorer)
        exit_code = kernel.poll()  # None: still running, so killed below
        if box is not None:
            ran = box.close(output=b"")
            kernel_info = {"exit_code": exit_code, "out_of_memory": ran.out_of_memory,
                           "limits": ran.limits}
        else:
            _kill(kernel)
            kernel.wait()
            kernel_info = {"exit_code": exit_code, "out_of_memory": False,
                           "limits": "no sandbox (--no-sandbox)"}
    try:
        results = json.loads(results_path.read_text())
    except (OSError, ValueError):
        results = None
    log = kernel_log.read_text(errors="replace")
    return results, log, kernel_info


def _last_line(log):
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no output")[:200]


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
        "error", "memory"), one entry per question, `total`, `possible`, `seconds`, `detail`,
        and `limits` (how the sandbox capped it; not in the CSV).
    """
    bundle, submission = Path(bundle).resolve(), Path(submission)
    manifest = json.loads((bundle / MANIFEST).read_text())
    questions, points = manifest["questions"], manifest.get("points") or {}
    row = {"submission": label or submission.name, "status": "graded", "detail": ""}
    start = time.perf_counter()
    notes, results, scores = [], None, {}
    nb = _read_submission(submission, row)
    if nb is not None:
        student_version = bundle / manifest.get("student_version", STUDENT_VERSION)
        if student_version.exists():
            nb, notes = rebuild(nbformat.read(student_version, as_version=4), nb)
        if _answers_digest(nb) == manifest["student_answers_sha256"]:
            row["status"], row["detail"] = "unchanged", "no answer was filled in"
        with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
            work = Path(tmp)
            copy = work / manifest["notebook"]
            nbformat.write(nb, copy)
            results, log, kernel_info = _score(bundle, manifest, copy, work, timeout,
                                               memory_gb, sandboxed=sandboxed)
        scores, more = _scores(results, questions, points)
        notes += more
        _status(row, questions, results, log, kernel_info, timeout, memory_gb, scores)
        row["limits"] = kernel_info["limits"]
    for question in questions:
        row[question] = scores.get(question, (0.0, None))[0]
    row["total"] = sum(row[q] for q in questions)
    known = [points.get(q) for q in questions]
    row["possible"] = sum(known) if known and None not in known else None
    row["seconds"] = round(time.perf_counter() - start, 1)
    if notes:
        row["detail"] = "; ".join(filter(None, [row["detail"], *notes]))
    return row


def _read_submission(submission, row):
    """The submitted notebook, or None with the row marked invalid (saying why)."""
    if not submission.is_file():
        row["status"] = "invalid"
        row["detail"] = ("a folder, not a notebook" if submission.is_dir() else
                         "not found" if not submission.exists() else "not a regular file")
        return None
    try:
        return nbformat.read(submission, as_version=4)
    except Exception as error:  # not JSON, not a notebook, unreadable
        row["status"] = "invalid"
        first_line = " ".join(str(error).split())[:80]
        row["detail"] = f"not a readable notebook ({type(error).__name__}: {first_line})"
        return None


def _scores(results, questions, points):
    """Per-question (score, possible) from the scorer's results, and notes on what it said
    (a question whose possible points differ from the manifest's scores 0)."""
    scores, notes = {}, []
    for question, result in ((results or {}).get("questions") or {}).items():
        if question not in questions:
            continue
        # otter splits a question's points over its cases: 2 / 3 + 2 / 3 + 2 / 3 != 2
        score, possible = round(float(result["score"]), 6), round(float(result["possible"]), 6)
        expected = points.get(question)
        if expected is not None and abs(possible - expected) > 1e-6:
            notes.append(f"{question}: the tests are worth {possible:g}, the manifest says "
                         f"{expected:g} (scored 0)")
            score = 0.0
        scores[question] = (score, possible)
    unread = (results or {}).get("notes") or []
    if unread:
        notes.append("not data, so not graded: " + ", ".join(unread))
    return scores, notes


def _status(row, questions, results, log, kernel_info, timeout, memory_gb, scores):
    """Sets the row's status and detail from what the kernel and the scorer did."""
    kernel = (results or {}).get("kernel") or {}
    stopped = (results or {}).get("stopped")
    out_of_memory = kernel_info["out_of_memory"] or (
        "MemoryError" in log or "Cannot allocate memory" in log)
    if results is None:
        row["status"] = "error"
        row["detail"] = f"error: the scorer did not run ({_last_line(log)})"
        return
    if stopped:
        if stopped == "timeout":
            row["status"], what = "timeout", f"timeout: stopped after {timeout:.0f} s"
        elif out_of_memory:
            row["status"], what = "memory", f"memory: exceeded {memory_gb:g} GiB"
        else:
            code = kernel_info["exit_code"]
            row["status"], what = "error", (
                f"error: the kernel exited (code {code})" if code is not None else
                f"error: the kernel stopped ({_last_line(log)})")
        if not kernel:
            what += " before the notebook had run"
        elif scores:
            what += (f" while {list(scores)[-1]} was tested; the points earned before it are "
                     "kept")
        row["detail"] = what
        return
    if not kernel.get("ready"):
        row["status"] = "error"
        row["detail"] = f"error: the notebook could not be run ({_last_line(log)})"
        return
    if row["status"] != "graded":  # "unchanged" keeps its detail
        return
    missing = [q for q in questions if q not in scores]
    failed = [q for q in questions if q in scores and scores[q][0] < scores[q][1]]
    parts = []
    if missing:
        parts.append("no result for " + ", ".join(missing))
    if failed:
        parts.append("lost points in " + ", ".join(failed))
    row["detail"] = "; ".join(parts) if parts else "full marks"
    if kernel.get("errors") and kernel.get("cells_with_errors"):
        number, error = kernel["cells_with_errors"][0]
        plural = "s" if kernel["errors"] > 1 else ""
        row["detail"] += (f"; {kernel['errors']} cell{plural} raised an error (cell {number}: "
                          f"{error})")


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
    limits = sorted({r["limits"] for r in rows if r.get("limits")})
    if limits:
        lines.append(f"Limits per submission: {'; '.join(limits)}.")
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
        with _LOCK:
            scorers = list(_SCORERS)
        for scorer in scorers:
            _kill(scorer)
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
