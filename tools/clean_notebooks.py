"""Keeps committed notebooks clean: no execution counts, no stray outputs or metadata.

    python tools/clean_notebooks.py [--check] [NOTEBOOK ...]   (default: every notebook)

Outputs are kept only in cells marked `# NBVAL_CHECK_OUTPUT`, whose stored output nbval
compares (`make test` runs notebooks with --nbval-lax). To refresh those stored outputs,
execute the notebook in fast mode (`course run NOTEBOOK --fast --out /tmp/run`), copy the
executed file over the original and clean it again. With --check nothing is written; the exit
status says whether any notebook needs cleaning (tests/test_notebooks.py runs this check).
"""

import argparse
import sys
from pathlib import Path

import nbformat

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
KEPT_METADATA = {"kernelspec"}


def clean(nb):
    """Returns a cleaned copy of a notebook node."""
    nb = nbformat.from_dict(nb)
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEPT_METADATA}
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
        cell.pop("id", None)
        if cell.cell_type == "code":
            if CHECK_MARKER in cell.source and cell.outputs:
                # nbval treats a cell with outputs but no execution count as never run
                cell.execution_count = cell.execution_count or 1
                for output in cell.outputs:
                    output.pop("execution_count", None)
                    output.get("metadata", {}).clear()
            else:
                cell.execution_count = None
                cell.outputs = []
    nb.nbformat, nb.nbformat_minor = 4, 4
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="only report, write nothing")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent / "notebooks"
    paths = args.notebooks or sorted(root.rglob("*.ipynb"))
    dirty = []
    for path in paths:
        if ".ipynb_checkpoints" in path.parts:
            continue
        text = path.read_text()
        cleaned = nbformat.writes(clean(nbformat.reads(text, as_version=4))) + "\n"
        if cleaned != text:
            dirty.append(path)
            if not args.check:
                path.write_text(cleaned)
    for path in dirty:
        print(f"{'needs cleaning' if args.check else 'cleaned'}: {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
