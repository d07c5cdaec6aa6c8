"""Keeps committed notebooks clean: no execution counts, no stray outputs or metadata.

    python tools/clean_notebooks.py [--check] [NOTEBOOK ...]   (default: every notebook)
    python tools/clean_notebooks.py --stdin < in.ipynb > out.ipynb   (a git clean filter)

Outputs are kept only in cells marked `# NBVAL_CHECK_OUTPUT`, whose stored output nbval
compares (`make test` runs notebooks with --nbval-lax). To refresh those stored outputs,
execute the notebook in fast mode (`course run NOTEBOOK --fast --out /tmp/run`), copy the
executed file over the original and clean it again.

With --check nothing is written; the exit status says whether any notebook needs cleaning
(tests/test_notebooks.py runs this check). In a git checkout it checks what git would commit
(the staged version, after the clean filter), not the working copy: JupyterLab rewrites a
notebook's metadata when it opens it and saves outputs when it runs, and using the course must
not make its tests fail. `make` installs the filter (`git config filter.course-notebook.clean`,
with `*.ipynb filter=course-notebook` in .gitattributes), so whatever a notebook looks like on
disk, git stores it clean, as nbstripout does for other projects. --working checks the files on
disk instead.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import nbformat

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
# Every notebook runs on the standard Python 3 kernel; JupyterLab renames its display name.
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def clean(nb):
    """Returns a cleaned copy of a notebook node."""
    nb = nbformat.from_dict(nb)
    nb.metadata = {"kernelspec": dict(KERNELSPEC)}
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


def clean_text(text):
    """The cleaned form of a notebook's JSON text."""
    return nbformat.writes(clean(nbformat.reads(text, as_version=4))) + "\n"


def committed_text(path):
    """What git would commit for `path` (the index, through the clean filter if installed),
    or None outside a git checkout or for a file git does not track."""
    try:
        staged = subprocess.run(["git", "show", f":./{path.name}"], cwd=path.parent,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return staged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="only report, write nothing")
    parser.add_argument("--working", action="store_true",
                        help="with --check: check the files on disk, not what git would commit")
    parser.add_argument("--stdin", action="store_true",
                        help="clean a notebook from standard input to standard output")
    args = parser.parse_args(argv)
    if args.stdin:
        sys.stdout.write(clean_text(sys.stdin.read()))
        return 0
    root = Path(__file__).resolve().parent.parent / "notebooks"
    paths = args.notebooks or sorted(root.rglob("*.ipynb"))
    dirty = []
    for path in paths:
        if ".ipynb_checkpoints" in path.parts:
            continue
        text = None if (args.working or not args.check) else committed_text(path)
        text = path.read_text() if text is None else text
        if clean_text(text) != text:
            dirty.append(path)
            if not args.check:
                path.write_text(clean_text(text))
    for path in dirty:
        print(f"{'needs cleaning' if args.check else 'cleaned'}: {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
