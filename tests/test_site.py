"""The course site's builder (tools/build_site.py) and the executed copies it shows."""

import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import build_site  # noqa: E402


def _ran(cell, text):
    cell = nbformat.from_dict(dict(cell))
    cell.outputs = [new_output("stream", name="stdout", text=text)]
    cell.execution_count = 1
    return cell


def test_outputs_follow_unchanged_code_and_leave_edited_code_blank():
    a, b, c = new_code_cell("a = 1"), new_code_cell("b = 2"), new_code_cell("c = 3")
    executed = new_notebook(cells=[new_markdown_cell("old prose"), _ran(a, "A"), _ran(b, "B"),
                                   _ran(c, "C")])
    now = new_notebook(cells=[new_markdown_cell("new prose"), new_code_cell("a = 1"),
                              new_code_cell("b = 20"), new_code_cell("c = 3"),
                              new_code_cell("d = 4")])
    merged, changed = build_site.merge_outputs(now, executed)
    assert merged.cells[0].source == "new prose"  # text is always today's
    assert [cell.outputs[0].text if cell.outputs else None for cell in merged.cells[1:]] == [
        "A", None, "C", None]
    assert changed == 2
    assert now.cells[1].outputs == []  # the source notebook is not modified
    _, changed = build_site.merge_outputs(now, None)
    assert changed == 4


def test_worked_solutions_drop_the_autograder_cells():
    nb = new_notebook(cells=[
        new_raw_cell("# ASSIGNMENT CONFIG\nname: x"), new_markdown_cell("Write f."),
        new_raw_cell("# BEGIN QUESTION\nname: f\npoints: 1"), new_raw_cell("# BEGIN SOLUTION"),
        new_code_cell("def f():\n    # BEGIN SOLUTION\n    return 1  # SOLUTION\n"
                      "    # END SOLUTION"),
        new_raw_cell("# END SOLUTION"), new_raw_cell("# BEGIN TESTS"),
        new_code_cell("assert f() == 1  # HIDDEN"), new_raw_cell("# END TESTS"),
        new_raw_cell("# END QUESTION"), new_code_cell("f()")])
    cells = build_site.worked_solutions(nb).cells
    assert [cell.cell_type for cell in cells] == ["markdown", "markdown", "code", "code"]
    assert "worked solution" in cells[1].source
    assert cells[2].source == "def f():\n    return 1"
    assert cells[3].source == "f()"


def test_links_between_course_files_become_links_between_pages():
    text = ('<a href="02_dcgan.ipynb#training">x</a> <a href="../02_diffusion/README.md">y</a> '
            '<a href="README.md">z</a> <a href="https://keras.io/a.ipynb">w</a> '
            '<a href="#top">v</a>')
    assert build_site.rewrite_links(text) == (
        '<a href="02_dcgan.html#training">x</a> <a href="../02_diffusion/index.html">y</a> '
        '<a href="index.html">z</a> <a href="https://keras.io/a.ipynb">w</a> '
        '<a href="#top">v</a>')


def test_figures_get_the_title_their_code_gives_them():
    cell = new_code_cell('show_images(samples, "DCGAN samples after training")')
    cell.outputs = [new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Fig>"})]
    plain = new_code_cell("plt.plot(x)")
    plain.outputs = [new_output("display_data", data={"image/png": "iVBOR"})]
    nb = build_site.add_alt_text(new_notebook(cells=[cell, plain]))
    assert nb.cells[0].outputs[0].metadata["image/png"]["alt"] == (
        "Figure: DCGAN samples after training")
    assert nb.cells[1].outputs[0].metadata["image/png"]["alt"].startswith("Figure drawn by")


@pytest.mark.parametrize("page", [p for p in build_site.course_pages()
                                  if p.source.suffix == ".ipynb"], ids=lambda p: p.source.stem)
def test_every_notebook_has_a_normal_mode_run_for_the_site(page):
    executed = build_site.EXECUTED / page.source.parent.name / page.source.name
    assert executed.exists(), (
        f"{executed} is missing: run python benchmarks/notebooks.py --normal --keep site/executed "
        f"{page.source.parent.name}/{page.source.stem}")
    ran = nbformat.read(executed, as_version=4)
    printed = "".join(output.get("text", "") for cell in ran.cells if cell.cell_type == "code"
                      for output in cell.outputs)
    assert "fast mode off" in printed, f"{executed} was not run in normal mode"
    _, changed = build_site.merge_outputs(nbformat.read(page.source, as_version=4), ran)
    code_cells = sum(cell.cell_type == "code" for cell in ran.cells)
    # A code cell edited since the run shows no output on the site: a few are tolerated,
    # more mean the run should be refreshed (the command above, for this notebook).
    assert changed <= max(2, code_cells // 10), (
        f"{changed} code cells of {page.source.name} changed since its run for the site: "
        f"refresh it with python benchmarks/notebooks.py --normal --keep site/executed "
        f"{page.source.parent.name}/{page.source.stem}")
