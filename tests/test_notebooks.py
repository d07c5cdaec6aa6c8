"""Every notebook follows the course's conventions (executing them is `make notebooks`)."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.runtime import colab_install_cell

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
CHAPTERS = ["00_start", "01_gan", "02_diffusion", "03_vae", "04_text", "05_video"]


def test_chapter_folders_exist():
    for chapter in CHAPTERS:
        assert (ROOT / "notebooks" / chapter).is_dir(), chapter
    assert NOTEBOOKS, "no notebooks found"


def test_notebooks_are_committed_clean():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "clean_notebooks.py"),
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{result.stdout}run `python tools/clean_notebooks.py` to strip outputs and metadata")


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
