"""The classroom workflow: assign a notebook, then grade a class's worth of submissions."""

import csv
import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from course_lib import grading
from course_lib.runtime import REPOSITORY_URL

SAMPLE = Path(__file__).parent / "fixtures" / "exercise_sample.ipynb"
SOLUTIONS = {  # answer cells of the sample, in order
    "correct": [
        "def psnr(x, y):\n    mse = np.mean((x - y) ** 2, axis=(1, 2, 3))\n"
        "    return 10 * np.log10(4.0 / mse)",
        "def to_model_range(images):\n    return np.asarray(images, np.float32) / 127.5 - 1",
        'policy = "mixed_float16"',
    ],
    # Passes every public test, fails the hidden ones: averages over the whole batch,
    # returns float64, and picks the wrong policy.
    "wrong": [
        "def psnr(x, y):\n    return np.array([10 * np.log10(4.0 / np.mean((x - y) ** 2))])",
        "def to_model_range(images):\n    return np.asarray(images) / 127.5 - 1",
        'policy = "mixed_bfloat16"',
    ],
}


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignment")
    manifest = grading.assign(SAMPLE, out)
    return out, manifest


def _solutions(notebook):
    """The solution notebook's answers, in order: its code cells between `# BEGIN SOLUTION`
    and `# END SOLUTION`, without the marker lines."""
    answers, inside = [], False
    for cell in nbformat.read(notebook, as_version=4).cells:
        first = cell.source.strip().split("\n", 1)[0]
        if cell.cell_type == "raw" and first.startswith("# BEGIN SOLUTION"):
            inside = True
        elif cell.cell_type == "raw" and first.startswith("# END SOLUTION"):
            inside = False
        elif inside and cell.cell_type == "code":
            lines = [line for line in cell.source.split("\n")
                     if line.strip() not in ("# BEGIN SOLUTION", "# END SOLUTION")]
            answers.append("\n".join(line.replace("  # SOLUTION", "") for line in lines))
    return answers


def _answered(student_path, answers, path):
    nb = nbformat.read(student_path, as_version=4)
    cells = [c for c in nb.cells if grading.ANSWER_TAG in c.metadata.get("tags", [])]
    assert len(cells) == len(answers)
    for cell, answer in zip(cells, answers):
        cell.source = answer
    nbformat.write(nb, path)
    return path


def test_student_version_has_no_solutions_or_hidden_tests(assignment):
    out, manifest = assignment
    assert manifest["questions"] == ["q1", "q2", "q3"]
    student_files = [p for p in (out / "student").rglob("*") if p.is_file()]
    assert [p.name for p in student_files] == ["exercise_sample.ipynb"]
    text = student_files[0].read_text()
    for secret in ("np.isinf", "== np.float32", 'policy == \\"mixed_float16\\"', "127.5"):
        assert secret not in text, secret
    # ...while the instructor's bundle has the hidden tests.
    (zip_path,) = (out / "autograder").glob("*.zip")
    with zipfile.ZipFile(zip_path) as bundle:
        assert "np.isinf" in bundle.read("tests/q1.py").decode()


def test_student_version_is_colab_ready(assignment):
    out, _ = assignment
    nb = nbformat.read(out / "student" / "exercise_sample.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "course-lib[grading] @ git+" + REPOSITORY_URL in code[0]
    assert "tensorflow" not in code[0].split("\n")[-1]  # the pip line leaves TensorFlow alone
    assert code[1].startswith("# Initialize Otter")  # after the install, before any check
    assert 'grader.check("q1")' in code


def test_assign_refuses_a_notebook_without_exercises(tmp_path):
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), plain)
    with pytest.raises(ValueError, match="no '# ASSIGNMENT CONFIG' cell"):
        grading.assign(plain, tmp_path / "out")


def test_grading_a_class(assignment, tmp_path, monkeypatch):
    out, _ = assignment
    monkeypatch.chdir(out.parent)  # relative paths, as an instructor types them
    student = out / "student" / "exercise_sample.ipynb"
    subs = tmp_path / "submissions"
    subs.mkdir()
    correct = _answered(student, SOLUTIONS["correct"], subs / "alice.ipynb")
    _answered(student, SOLUTIONS["wrong"], subs / "bob.ipynb")
    _answered(student, ["def psnr(x, y):\n    raise RuntimeError('oops')\npsnr(1, 2)",
                        *SOLUTIONS["correct"][1:]], subs / "carol.ipynb")
    _answered(student, ["import time\ntime.sleep(10_000)", *SOLUTIONS["correct"][1:]],
              subs / "dave.ipynb")
    (subs / "erin.ipynb").write_text(correct.read_text()[:-40])  # truncated: broken JSON
    (subs / "frank.ipynb").write_text(student.read_text())  # the untouched student version
    # the kernel dies while q2 is tested: q1's points are kept
    _answered(student, [SOLUTIONS["correct"][0], "import os\n\n\ndef to_model_range(images):\n"
                        "    os._exit(3)", SOLUTIONS["correct"][2]], subs / "grace.ipynb")
    table = tmp_path / "grades.csv"
    table.write_text("previous table\n")
    lines = []
    rows = grading.grade(Path(out.name) / "autograder", sorted(subs.iterdir()), table, timeout=30,
                         workers=2, progress=lines.append)
    by_name = {row["submission"]: row for row in rows}
    assert len(lines) == 7 and lines[-1].startswith("[7/7]")

    alice, bob = by_name["alice.ipynb"], by_name["bob.ipynb"]
    assert (alice["status"], alice["total"], alice["possible"]) == ("graded", 5, 5)
    assert alice["detail"] == "full marks"
    # Bob passes the public tests (half of each question here) and fails the hidden ones.
    assert bob["status"] == "graded" and 0 < bob["total"] < 5
    assert (bob["q1"], bob["q2"], bob["q3"]) == (1, 1, 0.5)
    carol = by_name["carol.ipynb"]  # q1 raises; the rest of the notebook still counts
    assert carol["status"] == "graded" and carol["q1"] == 0 and carol["total"] == 3
    dave = by_name["dave.ipynb"]
    assert dave["status"] == "timeout" and dave["total"] == 0 and "30 s" in dave["detail"]
    erin = by_name["erin.ipynb"]
    assert erin["status"] == "invalid" and erin["total"] == 0 and "notebook" in erin["detail"]
    frank = by_name["frank.ipynb"]
    assert frank["status"] == "unchanged" and frank["total"] == 0
    grace = by_name["grace.ipynb"]
    assert (grace["status"], grace["q1"], grace["q2"], grace["q3"]) == ("error", 2, 0, 0), grace
    assert "while q2 was tested" in grace["detail"] and "kept" in grace["detail"], grace

    with table.open() as file:
        written = list(csv.DictReader(file))
    assert [r["submission"] for r in written] == sorted(by_name)
    assert written[0].keys() >= {"q1", "q2", "q3", "total", "possible", "status"}
    assert {r["submission"]: float(r["total"]) for r in written} == {
        "alice.ipynb": 5, "bob.ipynb": 2.5, "carol.ipynb": 3, "dave.ipynb": 0,
        "erin.ipynb": 0, "frank.ipynb": 0, "grace.ipynb": 2}
    summary = table.with_suffix(".md").read_text()
    assert "| alice.ipynb | graded |" in summary and "**timeout**: dave.ipynb" in summary


def test_an_interrupted_run_keeps_the_previous_table(assignment, tmp_path):
    out, _ = assignment
    table = tmp_path / "grades.csv"
    table.write_text("previous table\n")
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{")

    def interrupt(line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        grading.grade(out / "autograder", [bad], table, progress=interrupt)
    assert table.read_text() == "previous table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ipynb", "grades.csv"]


def test_grade_names_a_wrong_bundle(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an autograder bundle"):
        grading.grade(tmp_path, [], tmp_path / "grades.csv")


def test_manifest_is_json(assignment):
    out, manifest = assignment
    assert json.loads((out / "autograder" / grading.MANIFEST).read_text()) == manifest


COURSE_NOTEBOOKS = sorted(
    p for p in (Path(__file__).parent.parent / "notebooks").rglob("*.ipynb")
    if ".ipynb_checkpoints" not in p.parts and grading.has_exercises(p))


def test_some_course_notebooks_have_exercises():
    assert COURSE_NOTEBOOKS


# Exercises whose answer is also a library function: an answer that only calls the library,
# under its own name or another, must not earn the points.
LIBRARY_CALLS = {
    "ownership_p_value": [
        "from course_lib import extraction\n\n\ndef ownership_p_value(matches, num_triggers, "
        "num_classes=10):\n    return extraction.ownership_p_value(matches, num_triggers, "
        "num_classes)\n",
        "from course_lib.extraction import ownership_p_value\n",
        "from course_lib.extraction import ownership_p_value as _tail\n\n\n"
        "def ownership_p_value(*args, **kwargs):\n    return _tail(*args, **kwargs)\n"],
    "ring_mask": [
        "from course_lib import watermark\n\n\ndef ring_mask(height, width, radius):\n"
        "    return watermark.tree_ring_key((height, width, 1), radius)[0]\n",
        "from course_lib.watermark import tree_ring_key as _key\n\n\n"
        "def ring_mask(height, width, radius, key=_key):\n"
        "    return key((height, width, 1), radius)[0]\n"],
    "green_z": [
        "from course_lib import watermark\n\n\ndef green_z(ids, green):\n"
        "    return watermark.green_z_score(ids, green)\n",
        "from course_lib.watermark import green_z_score as green_z\n"],
}


@pytest.mark.exercises
@pytest.mark.parametrize("notebook", COURSE_NOTEBOOKS, ids=lambda p: p.name)
def test_course_notebook_assigns_and_its_tests_tell_answers_apart(notebook, tmp_path):
    """The student version with the solutions in its answer cells, rebuilt as the grader
    rebuilds a submission, runs without an error and earns full marks from the scorer; then,
    with the blank answers run in the same kernel, every question fails a test (hidden ones
    included). One kernel serves both (the grader's own path, sandbox and all, is tested on
    the sample above: this checks the chapter's tests)."""
    import subprocess
    import sys
    import time

    from course_lib.grading import scoring, wire

    manifest = grading.assign(notebook, tmp_path / "out")
    questions = manifest["questions"]
    assert questions
    if notebook.name == "00_getting_started.ipynb":  # the template chapters copy
        assert len(questions) >= 3
    bundle = tmp_path / "out" / "autograder"
    student = nbformat.read(bundle / grading.STUDENT_VERSION, as_version=4)
    blank_answers = [c.source for c in student.cells
                     if grading.ANSWER_TAG in c.metadata.get("tags", [])]
    solved = _answered(tmp_path / "out" / "student" / notebook.name, _solutions(notebook),
                       tmp_path / "solved.ipynb")
    graded, notes = grading.rebuild(student, nbformat.read(solved, as_version=4))
    assert not notes, notes
    graded_path = tmp_path / "graded" / notebook.name
    graded_path.parent.mkdir()
    nbformat.write(graded, graded_path)
    with zipfile.ZipFile(bundle / manifest["autograder_zip"]) as zipped:
        zipped.extractall(tmp_path / "trusted", [n for n in zipped.namelist()
                                                 if n.startswith("tests/")])
    tests = tmp_path / "trusted" / "tests"
    log = open(tmp_path / "kernel.log", "wb")
    kernel = subprocess.Popen(
        [sys.executable, "-m", "course_lib.grading.kernel", str(graded_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=graded_path.parent,
        env={**os.environ, "COURSE_FAST": "1"})
    try:
        session = scoring.Session(wire.Receiver(kernel.stdout), kernel.stdin,
                                  time.monotonic() + 300)
        report = scoring._kernel_report(session.ready())
        assert report["ready"] and not report["errors"], (
            report, (tmp_path / "kernel.log").read_text()[-3000:])
        solved_results, notes = scoring.run_questions(session, tests, questions,
                                                      manifest["answers"])
        assert not notes and not session.stopped, (notes, session.stopped)
        lost = {q: [c["message"] for c in r["cases"] if not c["passed"]]
                for q, r in solved_results.items() if r["score"] < r["possible"]}
        assert not lost and list(solved_results) == questions, lost
        for source in blank_answers:
            session.request({"op": "run", "source": source})
        blank_results, _ = scoring.run_questions(session, tests, questions, manifest["answers"])
        blank_passes = [q for q, r in blank_results.items() if r["score"] >= r["possible"]]
        assert not blank_passes, (
            f"the unanswered `...` passes every test of {blank_passes}: add a test that a blank "
            "answer fails")
        for question in set(LIBRARY_CALLS) & set(questions):
            for source in LIBRARY_CALLS[question]:
                session.request({"op": "run", "source": source})
                result = scoring.run_questions(session, tests, [question],
                                               manifest["answers"])[0][question]
                assert result["score"] < result["possible"], (
                    f"an answer that calls the library passes {question}:\n{source}")
    finally:
        kernel.kill()
        kernel.wait()
        log.close()


def test_tests_url_publishes_public_tests_only(tmp_path):
    url = "https://example.org/handout/exercise_sample/student/tests"
    grading.assign(SAMPLE, tmp_path, tests_url=url)
    tests = sorted((tmp_path / "student" / "tests").glob("*.py"))
    assert [p.stem for p in tests] == ["q1", "q2", "q3"]
    text = "".join(p.read_text() for p in tests)
    assert "'hidden': True" not in text and "np.isinf" not in text
    nb = nbformat.read(tmp_path / "student" / "exercise_sample.ipynb", as_version=4)
    init = next(c.source for c in nb.cells if c.source.startswith("# Initialize Otter"))
    assert f'tests_url_prefix="{url}/"' in init
