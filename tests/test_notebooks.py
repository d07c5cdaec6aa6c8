"""Every notebook follows the course's conventions (executing them is `make notebooks`)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.runtime import colab_install_cell

ROOT = Path(__file__).resolve().parent.parent
# JupyterLab keeps autosaved copies in .ipynb_checkpoints/: they are not course notebooks.
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
CHAPTERS = ["00_start", "01_gan", "02_diffusion", "03_vae", "04_text", "05_video",
            "06_advanced", "07_security"]


def test_chapter_folders_exist():
    for chapter in CHAPTERS:
        assert (ROOT / "notebooks" / chapter).is_dir(), chapter
    assert NOTEBOOKS, "no notebooks found"


def test_notebooks_are_committed_clean():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "clean_notebooks.py"),
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{result.stdout}run `python tools/clean_notebooks.py` to strip outputs and metadata")


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=course", "-c", "user.email=course@localhost",
                           *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_opening_and_running_a_notebook_keeps_the_tests_green(tmp_path):
    """JupyterLab rewrites a notebook's metadata when it opens it and saves outputs when it
    runs: the cleanliness check reads what git would commit, not the working copy, and the
    clean filter of .gitattributes stores the notebook clean on `git add`."""
    shutil.copytree(ROOT / "tools", tmp_path / "tools")
    shutil.copy(ROOT / ".gitattributes", tmp_path)
    notebook = tmp_path / "notebooks" / "00_start" / "00_getting_started.ipynb"
    notebook.parent.mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "00_start" / "00_getting_started.ipynb", notebook)
    # The learner may have run and saved it in JupyterLab: start from its clean form.
    subprocess.run([sys.executable, "tools/clean_notebooks.py", str(notebook)], cwd=tmp_path,
                   check=True, capture_output=True)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "clean")
    committed = notebook.read_text()
    # What JupyterLab does: its kernelspec name and language_info, counts, outputs, autosave
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata.kernelspec["display_name"] = "Python 3 (ipykernel)"
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    code = next(c for c in nb.cells if c.cell_type == "code" and "NBVAL" not in c.source)
    code.execution_count = 3
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="trained\n")]
    nbformat.write(nb, notebook)
    check = [sys.executable, "tools/clean_notebooks.py", "--check"]
    working = subprocess.run(check + ["--working"], cwd=tmp_path, capture_output=True, text=True)
    assert working.returncode == 1, "the working copy is dirty: --working must say so"
    result = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # With the filter that `make` installs, `git add` stores the notebook clean.
    _git(tmp_path, "config", "filter.course-notebook.clean",
         f"'{sys.executable}' tools/clean_notebooks.py --stdin")
    _git(tmp_path, "add", ".")
    assert _git(tmp_path, "show", ":notebooks/00_start/00_getting_started.ipynb") == committed
    assert _git(tmp_path, "status", "--porcelain") == ""
    result = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "markdown")
    assert re.match(r"# Chapter \d+ · ", first.source), (
        "a notebook opens with '# Chapter N · Topic'")
    assert "What you will learn" in first.source
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code[0].source == colab_install_cell(), (
        "the first code cell must be course_lib.runtime.colab_install_cell() (the Colab install)")
    assert "setup(seed=" in code[1].source, "the second code cell calls setup(seed=...)"
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    assert "## Summary" in text and "## Exercises" in text
    for cell in code:
        if "NBVAL_CHECK_OUTPUT" in cell.source:
            assert cell.outputs, "a checked cell needs its stored output"
            assert all(o.get("name") != "stderr" for o in cell.outputs), "stderr in a checked cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_solution_cell_marks_its_solution(path):
    """otter copies an unmarked solution cell to students as it is: every code cell inside a
    `# BEGIN SOLUTION` block must mark its solution lines (in-cell markers or `# SOLUTION`)."""
    nb = nbformat.read(path, as_version=4)
    inside = False
    for cell in nb.cells:
        text = cell.source.strip()
        if cell.cell_type == "raw" and text.upper() == "# BEGIN SOLUTION":
            inside = True
        elif cell.cell_type == "raw" and text.upper() == "# END SOLUTION":
            inside = False
        elif inside and cell.cell_type == "code":
            assert re.search(r"#\s*(BEGIN SOLUTION|SOLUTION\b)", cell.source), (
                f"unmarked solution cell would reach students:\n{cell.source[:200]}")


def test_course_index_is_up_to_date():
    """notebooks/README.md lists every notebook, with its measured fast-mode time."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "course_index.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    index = (ROOT / "notebooks" / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"]({path.parent.name}/{path.name})" in index, f"{path.name} is not in the index"
