"""The `course` command.

    course check              the runtime summary; are the bundled data and TFDS reachable?
    course run [TARGET ...]   execute notebooks headless (--fast for fast mode), write the
                              executed copies and print a table of results
    course workbook [TARGET ...]   your own copies of the notebooks in workbook/, exercises
                              blank with their checks (`make lab` makes them; never overwritten)
    course assign TARGET ... --out DIR
                              student versions and autograder bundles of notebooks with exercises
    course grade --assignment BUNDLE SUBMISSION ... --out grades.csv
                              grade submitted notebooks into a table (see docs/instructors.md)

A TARGET is a notebook path, a folder, or a chapter name such as `01_gan` (or just `01`),
looked up under the course's `notebooks/` folder. With no target, every notebook runs.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

NOTEBOOKS_ENV = "COURSE_NOTEBOOKS"


def notebooks_root():
    """The course's `notebooks/` folder: $COURSE_NOTEBOOKS, ./notebooks, or beside the package."""
    candidates = [os.environ.get(NOTEBOOKS_ENV), Path.cwd() / "notebooks",
                  Path(__file__).resolve().parent.parent / "notebooks"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError(
        "cannot find the course's notebooks/ folder: run `course` from the course repository "
        f"or set {NOTEBOOKS_ENV}=/path/to/notebooks."
    )


def _notebooks_in(folder):
    return sorted(p for p in Path(folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def resolve_targets(targets):
    """Turns notebook paths, folders, chapter names and `chapter/notebook` names (as the course
    index writes them: `01_gan/02_dcgan`) into a list of notebook paths."""
    if not targets:
        return _notebooks_in(notebooks_root())
    found = []
    for target in targets:
        path = Path(target)
        if path.is_file() and path.suffix == ".ipynb":
            found.append(path)
        elif path.is_dir():
            found.extend(_notebooks_in(path))
        elif (notebooks_root() / Path(target).with_suffix(".ipynb")).is_file():
            # a notebook named as in the course index: 01_gan/02_dcgan
            found.append(notebooks_root() / Path(target).with_suffix(".ipynb"))
        else:
            root = notebooks_root()
            chapters = [d for d in sorted(root.iterdir()) if d.is_dir()
                        and (d.name == target or d.name.split("_")[0] == target)]
            if not chapters:
                names = ", ".join(d.name for d in sorted(root.iterdir()) if d.is_dir())
                raise FileNotFoundError(
                    f"{target!r} is not a notebook, a folder or a chapter; chapters: {names}")
            for chapter in chapters:
                found.extend(_notebooks_in(chapter))
    if not found:
        raise FileNotFoundError(f"no notebooks found in {', '.join(map(str, targets))}")
    return list(dict.fromkeys(found))


def execute_notebook(path, out_path, timeout=600, kernel_name="python3"):
    """Executes one notebook in its own folder and writes the executed copy to `out_path`.

    Returns:
        (status, seconds, message): status is "ok", "failed" or "timeout"; message names the
        failing cell's error.
    """
    import nbformat
    from jupyter_client.manager import KernelManager
    from jupyter_core.paths import jupyter_runtime_dir
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    # IPC sockets, not TCP: the kernel stays on this machine (and does not warn that TCP is
    # unencrypted). The socket path must be absolute: the kernel runs in the notebook's folder.
    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True)
    kernel = KernelManager(kernel_name=kernel_name, transport="ipc",
                           ip=str(runtime / f"course-{os.getpid()}"))
    client = NotebookClient(nb, km=kernel, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(Path(path).parent)}})
    start = time.perf_counter()
    status, message = "ok", ""
    try:
        # The kernel's own stderr (TensorFlow's C++ log lines) would reach this terminal too;
        # what a cell prints is in the executed copy.
        client.execute(stderr=subprocess.DEVNULL)
    except CellTimeoutError:
        status, message = "timeout", f"a cell ran longer than {timeout} s"
    except CellExecutionError as error:
        status, message = "failed", f"{error.ename}: {error.evalue}"
    except DeadKernelError as error:
        status, message = "failed", f"the kernel died: {error}"
    finally:  # a kernel manager passed in is ours to shut down, not nbclient's
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=status != "ok")
    seconds = time.perf_counter() - start
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, out_path)
    _trust(out_path)
    return status, seconds, message


def _trust(path):
    """Signs an executed copy as this user's own, as Jupyter does with what it runs and saves,
    so that JupyterLab shows its outputs as they were made (the animations' controls work).
    `jupyter trust` runs in its own process: in this one, its logging would keep hold of
    whatever `sys.stderr` is at the time (a test's captured stream, closed later)."""
    result = subprocess.run([sys.executable, "-m", "nbformat.sign", "--log-level=ERROR",
                             str(path)], capture_output=True, text=True)
    # No writable Jupyter data folder: the copy opens untrusted, its outputs still shown.
    return result.returncode == 0


def _table(rows, headers):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*map(str, row)) for row in rows]
    return "\n".join(text.rstrip() for text in out)


def cmd_run(args):
    if args.fast:
        os.environ["COURSE_FAST"] = "1"
    notebooks = resolve_targets(args.targets)
    root = notebooks_root().resolve()
    out_dir = Path(args.out)
    rows, failed = [], 0
    for path in notebooks:
        resolved = path.resolve()
        relative = resolved.relative_to(root) if resolved.is_relative_to(root) else Path(path.name)
        print(f"running {relative} ...", flush=True)
        status, seconds, message = execute_notebook(path, out_dir / relative, args.timeout)
        failed += status != "ok"
        rows.append((relative, status, f"{seconds:.1f}", message[:100]))
    print()
    print(_table(rows, ("notebook", "status", "seconds", "error")))
    print(f"\n{len(rows) - failed} passed, {failed} failed; executed copies in {out_dir}/")
    return 1 if failed else 0


def cmd_check(args):
    from course_lib.runtime import setup

    runtime = setup(seed=0, verbose=False)  # imports TensorFlow quietly
    print(runtime.summary())

    from course_lib import data

    rows, ok = [], True
    checks = [
        ("bundled digits (scikit-learn)", lambda: data.load_digits(split="all")[0].shape),
        ("bundled faces (scikit-image lfw_subset)", lambda: data.load_faces(split="all").shape),
        ("bundled photo patches", lambda: data.load_photo_patches(num_patches=16).shape),
    ]
    for name, check in checks:
        start = time.perf_counter()
        try:
            result, status = f"shape {check()}", "ok"
        except Exception as error:  # report every failure, then exit non-zero
            result, status, ok = f"{type(error).__name__}: {error}", "FAILED", False
        rows.append((name, status, f"{time.perf_counter() - start:.1f}", result))
    start = time.perf_counter()
    reachable = data.tfds_available(args.tfds_name)
    rows.append((f"TFDS {args.tfds_name!r}", "reachable" if reachable else "offline",
                 f"{time.perf_counter() - start:.1f}",
                 "tfds.load will work" if reachable else "notebooks use the bundled data"))
    print(_table(rows, ("data", "status", "seconds", "detail")))
    return 0 if ok else 1


def cmd_assign(args):
    from course_lib import grading

    notebooks = [nb for nb in resolve_targets(args.targets) if grading.has_exercises(nb)]
    if not notebooks:
        raise FileNotFoundError(f"no notebook with exercises in {' '.join(args.targets)}")
    root = notebooks_root().resolve()
    rows = []
    for path in notebooks:
        resolved = path.resolve()
        chapter = resolved.parent.name if resolved.is_relative_to(root) else "."
        target = Path(args.out) / chapter / path.stem
        print(f"assigning {path} ...", flush=True)
        manifest = grading.assign(path, target, tests_url=args.tests_url)
        rows.append((f"{chapter}/{path.name}", ", ".join(manifest["questions"]),
                     target / "student", target / "autograder"))
    print()
    print(_table(rows, ("notebook", "questions", "hand out", "keep (solutions, hidden tests)")))
    return 0


def cmd_workbook(args):
    """Exercise versions of the notebooks for a self-learner; never overwrites their work."""
    import tempfile

    from course_lib import grading

    root = notebooks_root().resolve()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if (root / "README.md").exists():  # the course index; READMEs are the course's, refreshed
        shutil.copy(root / "README.md", out / "README.md")
    rows = []
    for path in resolve_targets(args.targets):
        resolved = path.resolve()
        chapter = resolved.parent.name if resolved.is_relative_to(root) else "."
        target = out / chapter / path.name
        readme = resolved.parent / "README.md"
        if readme.exists():
            (out / chapter).mkdir(parents=True, exist_ok=True)
            shutil.copy(readme, out / chapter / "README.md")
        if target.exists():
            rows.append((f"{chapter}/{path.name}", "kept (yours)", ""))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if grading.has_exercises(path):
            print(f"writing the exercise version of {chapter}/{path.name} ...", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                manifest = grading.assign(path, Path(tmp) / "assignment")
                shutil.copy(Path(tmp) / "assignment" / "student" / path.name, target)
            rows.append((f"{chapter}/{path.name}", "exercises",
                         ", ".join(manifest["questions"])))
        else:
            shutil.copy(path, target)
            rows.append((f"{chapter}/{path.name}", "copied (no exercises)", ""))
    print()
    print(_table(rows, ("notebook", "workbook copy", "exercises")))
    print(f"\nyour notebooks: {out}/ (answers blank, checks included; an existing file is "
          f"never overwritten: delete it to start an exercise again)\n"
          f"the worked solutions: {root}/")
    return 0


def cmd_grade(args):
    from course_lib import grading, sandbox

    if args.no_sandbox:
        print("warning: --no-sandbox grades each submission as you, with your files, your "
              "environment and the network: use it only for notebooks you trust", file=sys.stderr)
    try:
        rows = grading.grade(args.assignment, args.submissions, args.out, timeout=args.timeout,
                             memory_gb=args.memory_gb, workers=args.workers,
                             sandboxed=not args.no_sandbox)
    except sandbox.SandboxUnavailable as error:
        print(f"course grade: cannot make the grading sandbox here: {error}. Grade on Linux "
              "(a lab machine, a VM or a container), or pass --no-sandbox for submissions you "
              "trust.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"course grade: interrupted; nothing written ({args.out} is as it was).",
              file=sys.stderr)
        return 130
    manifest = json.loads((Path(args.assignment) / grading.MANIFEST).read_text())
    questions = manifest["questions"]
    table = [(r["submission"], r["status"], *(f"{r[q]:g}" for q in questions),
              f"{r['total']:g}", r["detail"][:60]) for r in rows]
    print()
    print(_table(table, ("submission", "status", *questions, "total", "detail")))
    print(f"\nwrote {args.out} and {Path(args.out).with_suffix('.md')}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="course", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="runtime summary and data reachability")
    check.add_argument("--tfds-name", default="mnist", help="TFDS dataset to probe")
    check.set_defaults(func=cmd_check)
    run = commands.add_parser("run", help="execute notebooks headless")
    run.add_argument("targets", nargs="*", help="notebooks, folders or chapters (default: all)")
    run.add_argument("--fast", action="store_true", help="fast mode (COURSE_FAST=1)")
    run.add_argument("--out", default="outputs/executed", help="folder for executed copies")
    run.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    run.set_defaults(func=cmd_run)
    assign = commands.add_parser("assign", help="student versions and autograder bundles")
    assign.add_argument("targets", nargs="+", help="notebooks, folders or chapters")
    assign.add_argument("--out", required=True, help="folder for the generated assignments")
    assign.add_argument("--tests-url", help="URL where the student/tests/ folder will be "
                        "published; checks download public tests from it (needed on Colab)")
    assign.set_defaults(func=cmd_assign)
    workbook = commands.add_parser(
        "workbook", help="your own copies of the notebooks, exercises blank (make lab does it)")
    workbook.add_argument("targets", nargs="*", help="notebooks, folders or chapters "
                          "(default: all)")
    workbook.add_argument("--out", default="workbook", help="folder for your copies")
    workbook.set_defaults(func=cmd_workbook)
    grade = commands.add_parser("grade", help="grade submitted notebooks")
    grade.add_argument("--assignment", required=True, help="the autograder/ folder from assign")
    grade.add_argument("submissions", nargs="+", help="submitted notebooks")
    grade.add_argument("--out", default="grades.csv", help="the CSV grade table to write")
    grade.add_argument("--timeout", type=float, default=300, help="seconds per submission")
    grade.add_argument("--memory-gb", type=float, default=6.0, help="memory per submission")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run submissions without the sandbox (as you: trusted notebooks only)")
    grade.add_argument("--workers", type=int, default=None, help="parallel gradings "
                       "(default: CPU cores)")
    grade.set_defaults(func=cmd_grade)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FileNotFoundError as error:
        print(f"course: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
