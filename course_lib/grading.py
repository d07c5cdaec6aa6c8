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
`grade` runs `otter run` (no Docker needed) on each submission in its own working directory
and process, in fast mode, with a time and a memory limit, several at a time, and writes a
CSV table and a Markdown summary atomically.
"""

import concurrent.futures
import csv
import hashlib
import io
import json
import os
import re
import resource
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
    manifest = {
        "notebook": notebook.name,
        "assignment": student.metadata.get("otter", {}).get("assignment_name"),
        "autograder_zip": zip_path.name,
        "questions": questions,
        "student_answers_sha256": _answers_digest(student),
    }
    (out_dir / "autograder" / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ---------------------------------------------------------------------------------------
# Grading
# ---------------------------------------------------------------------------------------

def _limit_memory(max_bytes):
    def apply():
        os.setsid()  # its own process group, so a timeout kills the kernel too
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    return apply


def _run_otter(zip_path, submission, work, timeout, memory_gb):
    """Runs `otter run` on one submission in `work`; returns (results dict | None, note)."""
    # Fast mode; temporary files (otter's own included) inside this submission's folder.
    env = dict(os.environ, COURSE_FAST="1", PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(work))
    out = work / "results"
    out.mkdir()
    command = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(zip_path),
               "-o", str(out), str(submission)]
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               preexec_fn=_limit_memory(int(memory_gb * 2**30)))
    try:
        log, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None, f"timeout: stopped after {timeout:.0f} s"
    results = out / "results.json"
    if results.exists():
        return json.loads(results.read_text()), ""
    last = [line for line in log.strip().splitlines() if line.strip()][-1:] or ["no output"]
    if "MemoryError" in log or "Cannot allocate memory" in log:
        return None, f"memory: exceeded {memory_gb:g} GiB"
    return None, f"error: {last[0][:200]}"


def _scores(results, questions):
    """Per-question (score, possible) from otter's results.json (Gradescope format)."""
    scores = {q: (0.0, None) for q in questions}
    for test in results.get("tests", []):
        if test.get("name") in scores and "max_score" in test:
            scores[test["name"]] = (float(test.get("score") or 0), float(test["max_score"]))
    return scores


def grade_one(bundle, submission, timeout=300, memory_gb=6.0):
    """Grades one submitted notebook. Never raises for a bad submission: see `status`.

    Returns:
        dict with `submission`, `status` ("graded", "unchanged", "invalid", "timeout",
        "error", "memory"), one entry per question, `total`, `possible`, `seconds`, `detail`.
    """
    # Absolute paths: otter runs in the submission's own folder.
    bundle, submission = Path(bundle).resolve(), Path(submission).resolve()
    manifest = json.loads((bundle / MANIFEST).read_text())
    questions = manifest["questions"]
    row = {"submission": submission.name, "status": "graded", "detail": ""}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        work = Path(tmp)
        try:
            nb = nbformat.read(submission, as_version=4)
        except Exception as error:  # not JSON, not a notebook, unreadable
            nb, row["status"] = None, "invalid"
            first_line = " ".join(str(error).split())[:80]
            row["detail"] = f"not a readable notebook ({type(error).__name__}: {first_line})"
        results = None
        if nb is not None:
            if _answers_digest(nb) == manifest["student_answers_sha256"]:
                row["status"], row["detail"] = "unchanged", "no answer was filled in"
            # Grade with the course's kernel whatever kernel the student's machine named.
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                         "language": "python"}
            copy = work / manifest["notebook"]
            nbformat.write(nb, copy)
            results, note = _run_otter(bundle / manifest["autograder_zip"], copy, work,
                                       timeout, memory_gb)
            if results is None:
                row["status"], row["detail"] = note.split(":")[0], note
    scores = _scores(results or {}, questions)
    for question, (score, _) in scores.items():
        row[question] = score
    row["total"] = sum(score for score, _ in scores.values())
    possible = [p for _, p in scores.values() if p is not None]
    row["possible"] = sum(possible) if len(possible) == len(questions) else None
    row["seconds"] = round(time.perf_counter() - start, 1)
    if results is not None and row["status"] == "graded":
        failed = [q for q, (s, p) in scores.items() if p is not None and s < p]
        row["detail"] = "lost points in " + ", ".join(failed) if failed else "full marks"
    return row


def _write_atomically(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", newline="") as file:
        file.write(text)
    os.replace(tmp, path)


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
          progress=print):
    """Grades submissions in parallel and writes `out_csv` and a Markdown summary beside it.

    Args:
        bundle: the `autograder/` folder written by `assign`.
        submissions: paths of submitted notebooks (any names).
        out_csv: the grade table; `<out_csv stem>.md` gets the readable summary.
        timeout: seconds allowed per submission (then it is killed: status "timeout").
        memory_gb: address-space limit per submission.
        workers: submissions graded at once (default: the number of CPU cores).
        progress: called with one line per finished submission.

    Returns:
        list of row dicts, in the order of `submissions`.
    """
    bundle = Path(bundle)
    if not (bundle / MANIFEST).exists():
        raise FileNotFoundError(
            f"{bundle} is not an autograder bundle (no {MANIFEST}): pass the autograder/ "
            "folder that `course assign` wrote.")
    questions = json.loads((bundle / MANIFEST).read_text())["questions"]
    submissions = [Path(s) for s in submissions]
    missing = [str(s) for s in submissions if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"submission(s) not found: {', '.join(missing)}")
    workers = workers or os.cpu_count() or 1
    rows = [None] * len(submissions)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(grade_one, bundle, s, timeout, memory_gb): i
                   for i, s in enumerate(submissions)}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            row = rows[futures[future]] = future.result()
            progress(f"[{done}/{len(submissions)}] {row['submission']}: {row['status']}, "
                     f"{row['total']:g} points ({row['seconds']} s)")
    possible = next((r["possible"] for r in rows if r["possible"]), None)
    header = ["submission", "status", *questions, "total", "possible", "seconds", "detail"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "possible": possible})
    _write_atomically(out_csv, buffer.getvalue())
    _write_atomically(Path(out_csv).with_suffix(".md"),
                      _summary_markdown(rows, questions, possible))
    return rows
