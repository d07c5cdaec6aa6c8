"""Exercises and student versions: `course assign`, built on `otter assign`.

A chapter notebook in `notebooks/` is the full solution. Its exercises are written in
otter-grader's notebook format (raw cells `# BEGIN QUESTION`, `# BEGIN SOLUTION`,
`# BEGIN TESTS`, ...; see docs/instructors.md), so the same file is readable by a self-learner,
executed by CI (solutions and tests run as ordinary cells) and turned into an assignment.
`assign` runs `otter assign`, makes the student version Colab-ready (its first cell installs
`course-lib[grading]` without touching TensorFlow, before otter's own set-up cell), and writes
the manifest that grading reads: the questions, their points, the answer names, the student
version as handed out.
"""

import ast
import hashlib
import io
import json
import re
import shutil
import tempfile
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


def _otter_assign(master, dist):
    """`otter assign --no-pdfs --no-run-tests master dist`, in this process (a new Python
    process would spend most of its time importing otter); returns its log, raises
    RuntimeError with it if otter fails."""
    import contextlib
    import logging

    from otter.assign import main as otter_assign

    log = io.StringIO()
    handler = logging.StreamHandler(log)
    otter_logger = logging.getLogger("otter")
    otter_logger.addHandler(handler)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            otter_assign(str(master), str(dist), no_pdfs=True, no_run_tests=True)
    except (Exception, SystemExit) as error:
        raise RuntimeError(f"otter assign failed for {master.name}: {error}\n"
                           f"{log.getvalue()[-3000:]}") from None
    finally:
        otter_logger.removeHandler(handler)
    return log.getvalue()


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


def answer_names(nb):
    """The names the answer cells define at their top level (functions, classes, variables),
    in order: what the grader looks up in a submission's kernel."""
    names = []
    for cell in nb.cells:
        if cell.cell_type != "code" or ANSWER_TAG not in cell.metadata.get("tags", []):
            continue
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in cell.source.splitlines())
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return list(dict.fromkeys(names))


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
        _otter_assign(master, dist)
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
        "answers": answer_names(student),
    }
    (out_dir / "autograder" / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
