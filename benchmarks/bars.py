"""What the chapters' quality-bar scripts share (`gan.py`, `diffusion.py`, `vae.py`, `text.py`).

Each script appends rows `(measure, value, bar, met, seconds)`; this module parses the
common options, runs a chapter's notebooks in normal mode, prints the table, writes the
results file, and (`main`) puts these together as a script's command line.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_LIMIT_S = 900  # each notebook, normal mode, on a 2-core CPU


def parser_for(description, benchmarks):
    """An `ArgumentParser` with `--only` (a subset of `benchmarks`) and `--notebooks`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--only", default=",".join(benchmarks),
                        help="comma-separated subset of " + ", ".join(benchmarks))
    parser.add_argument("--notebooks", action="store_true",
                        help="also run the chapter's notebooks in normal mode")
    return parser


def chosen(parser, args, benchmarks):
    """The benchmark names of `--only`, checked against `benchmarks`."""
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(benchmarks))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {sorted(benchmarks)}")
    return names


def run_notebooks(chapter, rows):
    """Runs every notebook of `notebooks/<chapter>` in normal mode, one row each."""
    for path in sorted((ROOT / "notebooks" / chapter).glob("*.ipynb")):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "course_lib.cli", "run", str(path),
                                 "--timeout", "1800", "--out", str(ROOT / ".cache" / "bench")],
                                capture_output=True, text=True)
        seconds = time.perf_counter() - start
        rows.append((f"normal-mode run of {path.name}",
                     "ran" if result.returncode == 0 else "FAILED", f"<= {NOTEBOOK_LIMIT_S} s",
                     result.returncode == 0 and seconds <= NOTEBOOK_LIMIT_S, seconds))


def print_table(summary, rows, seconds_header="secs"):
    """Prints the runtime summary and one line per row; returns the exit status (1: a miss)."""
    print(summary)
    print(f"{'measure':<48}{'value':<78}{'bar':<16}{'met':<6}{seconds_header:>8}")
    for name, value, bar, met, secs in rows:
        print(f"{name:<48}{value:<78}{bar:<16}{'yes' if met else 'NO':<6}{secs:>8.0f}")
    return 0 if all(row[3] for row in rows) else 1


RESULTS = ROOT / "benchmarks" / "results"


def write_results(chapter, values, quoted=None, command=None, summary=None):
    """Merges measured numbers into `benchmarks/results/<chapter>.json`, atomically.

    `values` maps a key to a number in the unit the prose uses (dB, FID points, a
    fraction...). `quoted` maps a notebook or README path (relative to the repository) to
    `{key: text}`: the text is the number exactly as that file's markdown writes it, e.g.
    `{"notebooks/02_diffusion/02_ddpm_and_ddim.ipynb": {"ddpm_fid": "17.7"}}`.
    `tests/test_benchmark_results.py` checks that each text rounds from its value and
    appears in that file, so prose cannot drift from what a benchmark measured. A run of a
    subset (`--only`) replaces only its own keys.
    """
    import datetime
    import json
    import os

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{chapter}.json"
    data = json.loads(path.read_text()) if path.exists() else {
        "chapter": chapter, "values": {}, "quoted": {}, "runs": {}}
    data["values"].update({key: float(value) for key, value in values.items()})
    for where, texts in (quoted or {}).items():
        data["quoted"].setdefault(where, {}).update(texts)
    run = {"command": command or "python " + " ".join(sys.argv),
           "date": datetime.date.today().isoformat(), "runtime": summary}
    for key in values:
        data["runs"][key] = run
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)
    return path


def main(description, benchmarks, chapter, before=None):
    """The command line of a chapter's script with `--only`, `--notebooks` and `--quick`.

    Each chosen benchmark runs as `benchmarks[name](*extra, rows, values, quoted,
    quick=...)`, with `extra` what `before()` returns once the runtime is set up (e.g. the
    judge: `lambda: (load_judge(),)`). Prints the table and, unless `--quick`, writes the
    results. Returns the exit status: 1 when a bar is missed.
    """
    from course_lib.runtime import setup

    parser = parser_for(description, benchmarks)
    parser.add_argument("--quick", action="store_true",
                        help="shrunken runs that only check the script works end to end "
                             "(not the bars' measurements; nothing is written)")
    args = parser.parse_args()
    names = chosen(parser, args, benchmarks)
    rt = setup(seed=0)
    extra = before() if before else ()
    rows, values, quoted = [], {}, {}
    for name in names:
        benchmarks[name](*extra, rows, values, quoted, quick=args.quick)
    if args.notebooks:
        run_notebooks(chapter, rows)
    status = print_table(rt.summary(), rows)
    if args.quick:
        print("--quick: shrunken runs; these numbers only show that the script runs.")
        return 0
    print(f"wrote {write_results(chapter, values, quoted, summary=rt.summary())}")
    return status
