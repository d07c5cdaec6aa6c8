"""How long each notebook takes, for the course index (notebooks/README.md).

    python benchmarks/notebooks.py [--normal] [TARGET ...]   (default: every notebook, fast mode)

Runs each notebook headless, alone, as `course run` does (a fresh kernel, the whole notebook),
in fast mode (`COURSE_FAST=1`) or with `--normal` in normal mode, and writes its wall-clock
seconds to `benchmarks/results/notebooks.json`, under `fast:<chapter>/<notebook>` or
`normal:<chapter>/<notebook>`, with the text the index quotes for it. A run of a subset
replaces only its own numbers. Seconds depend on the machine: the file records the runtime
summary of the machine that measured them, and the index says which it was.
A notebook that fails is reported and not recorded.
"""

import argparse
import os
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
    parser.add_argument("--timeout", type=int, default=2400, help="seconds allowed per cell")
    args = parser.parse_args()
    mode = "normal" if args.normal else "fast"
    os.environ["COURSE_FAST"] = "0" if args.normal else "1"
    root = cli.notebooks_root().resolve()
    values, quoted, rows, failed = {}, {}, [], 0
    with tempfile.TemporaryDirectory() as out:
        for path in cli.resolve_targets(args.targets):
            name = path.resolve().relative_to(root).with_suffix("").as_posix()
            print(f"running {name} ({mode} mode) ...", flush=True)
            status, seconds, message = cli.execute_notebook(path, Path(out) / f"{name}.ipynb",
                                                            args.timeout)
            rows.append((name, status, f"{seconds:.0f}", message[:80]))
            if status != "ok":
                failed += 1
                continue
            values[f"{mode}:{name}"] = seconds
            quoted[f"{mode}:{name}"] = f"{seconds:.0f}"
    print(cli._table(rows, ("notebook", "status", "seconds", "error")))
    if values:
        summary = setup(seed=0, verbose=False).summary()
        path = bars.write_results("notebooks", values, {INDEX: quoted}, summary=summary)
        print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
