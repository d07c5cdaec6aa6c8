import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_lib import cli


def _write(path, *sources):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)
    return path


@pytest.fixture
def course(tmp_path, monkeypatch):
    root = tmp_path / "notebooks"
    _write(root / "00_start" / "good.ipynb", "import os\nx = 6 * 7",
           "print(x, os.environ.get('COURSE_FAST'))")
    _write(root / "01_gan" / "bad.ipynb", "print('before')", "1 / 0", "print('never')")
    monkeypatch.setenv("COURSE_NOTEBOOKS", str(root))
    return tmp_path


def test_resolve_targets_by_chapter_name_number_and_path(course):
    root = course / "notebooks"
    assert cli.resolve_targets(["00_start"]) == [root / "00_start" / "good.ipynb"]
    assert cli.resolve_targets(["01"]) == [root / "01_gan" / "bad.ipynb"]
    assert len(cli.resolve_targets([])) == 2
    assert cli.resolve_targets([str(root / "01_gan")]) == [root / "01_gan" / "bad.ipynb"]
    with pytest.raises(FileNotFoundError, match="chapters: 00_start, 01_gan"):
        cli.resolve_targets(["07_music"])


def test_course_run_reports_pass_and_fail(course):
    out = course / "executed"
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.cli", "run", "--fast", "--out", str(out),
         "--timeout", "60"],
        capture_output=True, text=True, timeout=240, cwd=course,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    good = next(line for line in lines if line.startswith("00_start/good.ipynb"))
    bad = next(line for line in lines if line.startswith("01_gan/bad.ipynb"))
    assert " ok " in good and " failed " in bad and "ZeroDivisionError" in bad
    assert "1 passed, 1 failed" in result.stdout
    executed = nbformat.read(out / "00_start" / "good.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "42 1\n"  # fast mode reached the kernel
    failed = nbformat.read(out / "01_gan" / "bad.ipynb", as_version=4)
    assert failed.cells[0].outputs[0]["text"] == "before\n"  # executed copy kept up to the error


def test_course_run_passes_when_all_pass(course, capsys):
    code = cli.main(["run", "00_start", "--out", str(course / "out")])
    assert code == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out


def test_course_run_unknown_target_exits_2(course, capsys):
    assert cli.main(["run", "no_such_chapter"]) == 2
    assert "not a notebook, a folder or a chapter" in capsys.readouterr().err


def test_course_check_reports_runtime_and_data_offline(capsys):
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("TensorFlow ") and "policy " in out
    for name in ("bundled digits", "bundled faces", "bundled photo patches"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert " ok " in line
    tfds_line = next(line for line in out.splitlines() if line.startswith("TFDS 'mnist'"))
    assert ("offline" in tfds_line) or ("reachable" in tfds_line)
    assert float(tfds_line.split()[3]) < 10  # seconds: never the minutes tfds.load would retry


def test_workbook_gives_blank_exercises_and_never_overwrites_a_learners_work(tmp_path, capsys):
    out = tmp_path / "workbook"
    assert cli.main(["workbook", "00_start", "--out", str(out)]) == 0
    path = out / "00_start" / "00_getting_started.ipynb"
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(cell.source for cell in nb.cells)
    for marker in ("BEGIN SOLUTION", "BEGIN QUESTION", "BEGIN TESTS", "# HIDDEN",
                   "ASSIGNMENT CONFIG", "2.0**-14"):  # the last: a line of a solution
        assert marker not in text, marker
    answers = [c for c in nb.cells if "otter_answer_cell" in c.metadata.get("tags", [])]
    assert answers and all("..." in c.source for c in answers)
    assert "grader.check(" in text
    cases = [case for test in nb.metadata["otter"]["tests"].values()
             for suite in test["suites"] for case in suite["cases"]]
    assert cases and not any(case["hidden"] for case in cases)  # public checks only
    # A learner's answer survives the next `make lab`.
    path.write_text(path.read_text().replace("...", "my answer", 1))
    capsys.readouterr()
    assert cli.main(["workbook", "00_start", "--out", str(out)]) == 0
    assert "my answer" in path.read_text()
    assert "kept (yours)" in capsys.readouterr().out


def test_a_notebook_can_be_named_as_the_course_index_names_it():
    from course_lib import cli

    (path,) = cli.resolve_targets(["01_gan/02_dcgan"])
    assert path == cli.notebooks_root() / "01_gan" / "02_dcgan.ipynb"
