"""Builds the course site: every notebook as a web page, with the outputs of a normal-mode run.

    python tools/build_site.py [--out _site] [--executed site/executed]       (make site)

Each page is a notebook of `notebooks/` rendered by nbconvert (JupyterLab's look), carrying
the outputs of its executed copy in `site/executed/`: figures, animations and printed results
of a normal-mode run, so a reader sees what success looks like without running anything. The
course index and the chapter READMEs become the index pages; links between notebooks follow.
Everything the pages need is in the output folder: MathJax (from the jupyter-server-mathjax
package) typesets the formulas, the animations carry their own controls, and nothing is
fetched from the network. Open `_site/index.html` in a browser.

Executing every notebook in normal mode takes about 35 minutes on a 2-core CPU, so the executed
copies are kept in the repository and refreshed by

    python benchmarks/notebooks.py --normal --keep site/executed

(which also records the normal-mode times for the course index). Outputs are matched to the
current notebooks cell by cell, by their code: text edited since the run is shown as it is
now; a code cell edited (or added) since the run shows no output, and the build says which
notebooks have such cells, so you know what to refresh.
"""

import argparse
import datetime
import difflib
import html
import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "site" / "executed"
TEMPLATES = Path(__file__).resolve().parent / "site_template"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"

# A figure's alternative text: the title the code gives it, when a call names one.
_TITLE = re.compile(
    r"""(?:title\s*=\s*|suptitle\(\s*|set_title\(\s*|(?:show_images|plot_history|show_pairs|
    compare_images|animate_frames)\([^"\n]*?,\s*)f?"([^"\n]{4,})\"""", re.VERBOSE)


class Page:
    """One page of the site: its source (a notebook or a Markdown file) and where it goes."""

    def __init__(self, source, target, title):
        self.source, self.target, self.title = source, target, title

    def href_from(self, other):
        """The relative link from page `other` to this page."""
        return Path(os.path.relpath(self.target, other.target.parent)).as_posix()


def course_pages(notebooks=NOTEBOOKS):
    """The site's pages in reading order: the index, then each chapter's README and notebooks."""
    index = notebooks / "README.md"
    pages = [Page(index, Path("index.html"), _markdown_title(index))]
    for chapter in sorted(p for p in notebooks.iterdir() if p.is_dir()):
        if chapter.name.startswith("."):
            continue
        readme = chapter / "README.md"
        if readme.exists():
            pages.append(Page(readme, Path(chapter.name, "index.html"), _markdown_title(readme)))
        for notebook in sorted(chapter.glob("*.ipynb")):
            nb = nbformat.read(notebook, as_version=4)
            pages.append(Page(notebook, Path(chapter.name, notebook.stem + ".html"),
                              _notebook_title(nb, notebook.stem)))
    return pages


def _markdown_title(path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.parent.name


def _notebook_title(nb, fallback):
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def merge_outputs(source, executed):
    """The current notebook `source` with the outputs of `executed` on its unchanged code cells.

    Code cells are matched by their source text, in order (as `diff` matches lines), so text
    cells edited since the run change nothing and an edited code cell loses only its own
    outputs.

    Returns:
        (notebook, changed): the merged notebook (a copy) and the number of code cells that
        have no executed counterpart.
    """
    merged = nbformat.from_dict(json.loads(json.dumps(source)))
    code = [cell for cell in merged.cells if cell.cell_type == "code"]
    ran = [cell for cell in executed.cells if cell.cell_type == "code"] if executed else []
    matcher = difflib.SequenceMatcher(a=[c.source for c in code], b=[c.source for c in ran],
                                      autojunk=False)
    matched = set()
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            cell, run = code[block.a + offset], ran[block.b + offset]
            cell.outputs = run.outputs
            cell.execution_count = run.execution_count
            matched.add(block.a + offset)
    for index, cell in enumerate(code):
        if index not in matched:
            cell.outputs, cell.execution_count = [], None
    return merged, len(code) - len(matched)


_MARKERS = ("# ASSIGNMENT CONFIG", "# BEGIN QUESTION", "# END QUESTION", "# BEGIN SOLUTION",
            "# END SOLUTION", "# BEGIN TESTS", "# END TESTS")


def worked_solutions(nb):
    """The reader's view of an exercise notebook: the answers shown as worked solutions,
    without the autograder's marker cells and tests (`course workbook` makes the version with
    blank answers)."""
    cells, in_tests = [], False
    for cell in nb.cells:
        first = cell.source.lstrip().split("\n", 1)[0].strip()
        if cell.cell_type == "raw" and first.startswith(_MARKERS):
            if first.startswith("# BEGIN TESTS"):
                in_tests = True
            elif first.startswith("# END TESTS"):
                in_tests = False
            elif first.startswith("# BEGIN SOLUTION"):
                cells.append(nbformat.v4.new_markdown_cell(
                    "*A worked solution (in your workbook, the answer is yours to write):*"))
            continue
        if in_tests:
            continue
        if cell.cell_type == "code":
            lines = [line for line in cell.source.split("\n")
                     if line.strip() not in ("# BEGIN SOLUTION", "# END SOLUTION")]
            cell.source = "\n".join(re.sub(r"\s*# SOLUTION$", "", line) for line in lines)
        cells.append(cell)
    nb.cells = cells
    return nb


def add_alt_text(nb):
    """Gives every image output an alternative text: the title its code names, when it names
    one (in order, when a cell draws several), else a plain description."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        titles = [t.replace("{", "").replace("}", "") for t in _TITLE.findall(cell.source)]
        images = [(output, mime) for output in cell.outputs
                  if output.output_type in ("display_data", "execute_result")
                  for mime in ("image/png", "image/jpeg") if mime in output.get("data", {})]
        for number, (output, mime) in enumerate(images):
            title = titles[number] if len(titles) == len(images) else (
                titles[0] if len(titles) == 1 and len(images) == 1 else None)
            alt = f"Figure: {title}" if title else "Figure drawn by the code cell above"
            output.setdefault("metadata", {}).setdefault(mime, {}).setdefault("alt", alt)
    return nb


def rewrite_links(text):
    """Links between course files become links between pages: `x.ipynb` to `x.html` and a
    README to its folder's `index.html` (anchors kept; web links untouched)."""
    def fix(match):
        quote, href = match.group(1), match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^//", href):
            return match.group(0)
        path, _, anchor = href.partition("#")
        if path.endswith(".ipynb"):
            path = path[:-len(".ipynb")] + ".html"
        elif path == "README.md" or path.endswith("/README.md"):
            path = path[:-len("README.md")] + "index.html"
        return f"href={quote}{path}{'#' + anchor if anchor else ''}{quote}"

    return re.sub(r"""href=(["'])([^"']*)\1""", fix, text)


def _navigation(pages, index):
    page = pages[index]

    def link(other, before="", rel="", after=""):
        rel_attr = f' rel="{rel}"' if rel else ""
        return (f'<a href="{html.escape(other.href_from(page))}"{rel_attr}>'
                f"{before}{html.escape(other.title)}{after}</a>")

    def short(other, label, rel):
        return (f'<a href="{html.escape(other.href_from(page))}" rel="{rel}" '
                f'title="{html.escape(other.title)}">{label}</a>')

    parts = [short(pages[0], "Course index", "index")]
    chapter = next((p for p in reversed(pages[:index + 1])
                    if p.target.name == "index.html" and p is not pages[0]), None)
    if chapter is not None and chapter is not page and chapter.target.parent == page.target.parent:
        parts.append(short(chapter, "Chapter overview", "up"))
    if index > 0:
        parts.append(link(pages[index - 1], "&larr; previous: ", "prev"))
    if index + 1 < len(pages):
        parts.append(link(pages[index + 1], "next: ", "next", " &rarr;"))
    return '<nav class="course-nav">' + " · ".join(parts) + "</nav>"


def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(extra_template_basedirs=[str(TEMPLATES)], template_name="course")


def render(page, nb, navigation, depth, banner=""):
    """One page's HTML, from a notebook (a Markdown page is a notebook of one text cell)."""
    exporter = _exporter()
    static = "../" * depth + "_static"
    exporter.mathjax_url = f"{static}/mathjax/MathJax.js?config={MATHJAX_CONFIG}"
    resources = {"course_nav": navigation, "course_banner": banner,
                 "metadata": {"name": page.title}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return rewrite_links(body)


def copy_mathjax(out):
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (source / "MathJax.js").exists():
        raise FileNotFoundError(
            f"MathJax is missing from {source}: reinstall the jupyter-server-mathjax package")
    target = out / "_static" / "mathjax"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))


def build(out, executed=EXECUTED, notebooks=NOTEBOOKS, log=print):
    """Builds the site into `out` and returns a report: per page, the code cells that show no
    output because they changed since the executed run (or have never been run)."""
    out = Path(out)
    pages = course_pages(notebooks)
    out.mkdir(parents=True, exist_ok=True)
    copy_mathjax(out)
    report = {"built": datetime.datetime.now().isoformat(timespec="seconds"), "pages": {}}
    for index, page in enumerate(pages):
        depth = len(page.target.parts) - 1
        navigation = _navigation(pages, index)
        if page.source.suffix == ".md":
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
                page.source.read_text(encoding="utf-8"))])
            text = render(page, nb, navigation, depth)
            entry = {"source": page.source.relative_to(notebooks.parent).as_posix()}
        else:
            source = nbformat.read(page.source, as_version=4)
            ran_path = Path(executed) / page.source.parent.name / page.source.name
            ran = nbformat.read(ran_path, as_version=4) if ran_path.exists() else None
            nb, changed = merge_outputs(source, ran)
            banner = ""
            if ran is None:
                banner = ("This page shows no outputs: the notebook has not been run for the "
                          "site yet.")
            elif changed:
                banner = (f"{changed} code cell{'s' if changed > 1 else ''} changed since the "
                          "run that made this page's outputs, and show no output.")
            text = render(page, add_alt_text(worked_solutions(nb)), navigation, depth, banner)
            entry = {"source": page.source.relative_to(notebooks.parent).as_posix(),
                     "executed": ran is not None, "code_cells_without_output": changed}
            if ran is None or changed:
                log(f"  {page.target}: {banner}")
        target = out / page.target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        report["pages"][page.target.as_posix()] = entry
    (out / "site.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "_site"), help="the site's folder")
    parser.add_argument("--executed", default=str(EXECUTED),
                        help="the executed copies whose outputs the pages show")
    args = parser.parse_args(argv)
    print(f"building the course site in {args.out}/ ...", flush=True)
    report = build(args.out, args.executed)
    stale = [name for name, entry in report["pages"].items()
             if entry.get("code_cells_without_output") or entry.get("executed") is False]
    print(f"{len(report['pages'])} pages; open {Path(args.out) / 'index.html'} in a browser")
    if stale:
        print(f"{len(stale)} page(s) lack outputs (see above); refresh them with "
              "python benchmarks/notebooks.py --normal --keep site/executed CHAPTER/NOTEBOOK "
              "(e.g. 01_gan/02_dcgan)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
