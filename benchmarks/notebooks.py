"""How long each notebook takes, for the course index (notebooks/README.md).

    python benchmarks/notebooks.py [--normal] [--keep DIR] [TARGET ...]
                                      (default: every notebook, fast mode)

Runs each notebook headless, alone, as `course run` does (a fresh kernel, the whole notebook),
in fast mode (`COURSE_FAST=1`) or with `--normal` in normal mode, and writes its wall-clock
seconds to `benchmarks/results/notebooks.json`, under `fast:<chapter>/<notebook>` or
`normal:<chapter>/<notebook>`, with the text the index quotes for it. A run of a subset
replaces only its own numbers. Seconds depend on the machine: the file records the runtime
summary of the machine that measured them, and the index says which it was.
A notebook that fails is reported and not recorded. `--keep DIR` keeps the executed copies
(`DIR/<chapter>/<notebook>.ipynb`); the course site is built from the normal-mode copies that

    python benchmarks/notebooks.py --normal --keep site/executed

writes (about 35 minutes on a 2-core CPU), so one run gives both the index's times and the site.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import bars  # benchmarks/bars.py, next to this script

from course_lib import cli
from course_lib.runtime import setup

INDEX = "notebooks/README.md"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="notebooks, folders or chapters (default: all)")
    parser.add_argument("--normal", action="store_true", help="normal mode instead of fast mode")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the executed copies there (a notebook that fails: not kept)")
    parser.add_argument("--timeout", type=int, default=2400, help="seconds allowed per cell")
    args = parser.parse_args()
    mode = "normal" if args.normal else "fast"
    os.environ["COURSE_FAST"] = "0" if args.normal else "1"
    root = cli.notebooks_root().resolve()
    rows, failed = [], 0
    summary = setup(seed=0, verbose=False).summary()
    with tempfile.TemporaryDirectory() as out:
        for path in cli.resolve_targets(args.targets):
            name = path.resolve().relative_to(root).with_suffix("").as_posix()
            print(f"running {name} ({mode} mode) ...", flush=True)
            status, seconds, message = cli.execute_notebook(path, Path(out) / f"{name}.ipynb",
                                                            args.timeout)
            rows.append((name, status, f"{seconds:.0f}", message[:80]))
            print(f"  {status} in {seconds:.0f} s {message[:80]}", flush=True)
            if status != "ok":
                failed += 1
                continue
            if args.keep:
                kept = Path(args.keep, f"{name}.ipynb")
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(out) / f"{name}.ipynb", kept)
            # recorded notebook by notebook: an interrupted run keeps what it measured
            key = f"{mode}:{name}"
            bars.write_results("notebooks", {key: seconds}, {INDEX: {key: f"{seconds:.0f}"}},
                               summary=summary)
    print(cli._table(rows, ("notebook", "status", "seconds", "error")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
