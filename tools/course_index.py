"""Writes the table of notebooks in the course index, notebooks/README.md.

    python tools/course_index.py [--check]

Between the index markers of notebooks/README.md it lists every chapter (its README's title)
and its notebooks (each with its title and the fast- and normal-mode seconds that
`python benchmarks/notebooks.py [--normal]` wrote to benchmarks/results/notebooks.json); a chapter
without notebooks is marked as in preparation. The prose around the markers is written by
hand. With --check nothing is written: the exit status says whether the index is out of date
(tests/test_notebooks.py runs this check).
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
INDEX = NOTEBOOKS / "README.md"
TIMES = ROOT / "benchmarks" / "results" / "notebooks.json"
BEGIN = "<!-- index: begin (written by tools/course_index.py) -->"
END = "<!-- index: end -->"
CHAPTER_ZERO = "入门 Getting started"
# What a notebook needs beyond the course's environment and its bundled data.
NEEDS = {
    "01_gan/05_style_transfer": "VGG19's ImageNet weights (80 MB, downloaded once) when online; "
                                "offline it uses random weights and says what changes",
}


def _title(text):
    """'DCGAN (...)' from '# Chapter 1 · DCGAN (...)'."""
    return text.splitlines()[0].split("·", 1)[1].strip()


def table():
    times = json.loads(TIMES.read_text())["values"] if TIMES.exists() else {}
    lines = []
    for folder in sorted(p for p in NOTEBOOKS.iterdir() if p.is_dir() and p.name[0].isdigit()):
        notebooks = sorted(folder.glob("*.ipynb"))
        readme = folder / "README.md"
        title = _title(readme.read_text()) if readme.exists() else CHAPTER_ZERO
        lines += [f"## {title}", ""]
        if not notebooks:
            lines += [f"In preparation: [`{folder.name}/README.md`]({folder.name}/README.md) "
                      "holds its plan.", ""]
            continue
        if readme.exists():
            lines += [f"The chapter's overview and glossary: "
                      f"[`{folder.name}/README.md`]({folder.name}/README.md).", ""]
        lines += ["| notebook | what it teaches | fast mode | normal mode (CPU) | needs |",
                  "|---|---|---|---|---|"]
        for path in notebooks:
            cells = json.loads(path.read_text())["cells"]
            first = "".join(next(c for c in cells if c["cell_type"] == "markdown")["source"])
            key = f"{folder.name}/{path.stem}"
            fast, normal = (
                "not measured" if times.get(f"{mode}:{key}") is None
                else f"{times[f'{mode}:{key}']:.0f} s" for mode in ("fast", "normal"))
            lines.append(f"| [`{path.name}`]({key}.ipynb) | {_title(first)} | {fast} | "
                         f"{normal} | {NEEDS.get(key, '')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    text = INDEX.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{INDEX} lacks the index markers {BEGIN!r} and {END!r}")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    updated = pattern.sub(lambda _: f"{BEGIN}\n{table()}{END}", text)
    if "--check" in argv:
        if updated != text:
            print("notebooks/README.md is out of date: run `python tools/course_index.py`")
            return 1
        return 0
    INDEX.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
