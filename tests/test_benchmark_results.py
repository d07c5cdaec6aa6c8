"""Numbers that the prose quotes come from a file a benchmark wrote, and agree with it.

Each `benchmarks/results/<chapter>.json` (written by `benchmarks/bars.write_results`) holds
measured `values` and, under `quoted`, the text each notebook or README uses for them.
"""

import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULT_FILES = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
QUOTES = [(path, where, key, text)
          for path in RESULT_FILES
          for where, texts in json.loads(path.read_text())["quoted"].items()
          for key, text in texts.items()]


def prose(path):
    """The markdown of a notebook, or the text of any other file."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return path.read_text()


def rounds_to(text, value):
    """True if `text` ("17.7", "-3", "1,000", "0.885") is `value` rounded to its digits."""
    number = text.replace(",", "").replace("\u2212", "-")
    digits = len(number.split(".")[1]) if "." in number else 0
    return abs(float(number) - value) <= 0.5 * 10 ** -digits + 1e-9


def test_result_files_are_well_formed():
    for path in RESULT_FILES:
        data = json.loads(path.read_text())
        assert data["chapter"] == path.stem
        assert set(data["runs"]) == set(data["values"]), f"{path.name}: a value without its run"
        for run in data["runs"].values():
            assert run["command"].startswith("python benchmarks/"), run


@pytest.mark.parametrize("path,where,key,text", QUOTES,
                         ids=[f"{q[0].stem}:{q[2]}" for q in QUOTES])
def test_quoted_number_matches_the_measurement(path, where, key, text):
    values = json.loads(path.read_text())["values"]
    assert key in values, f"{path.name} quotes {key!r} but has no value for it"
    assert rounds_to(text, values[key]), (
        f"{where} quotes {key} as {text}, but {path.name} measured {values[key]}")
    body = prose(ROOT / where)
    assert re.search(rf"(?<![\d.]){re.escape(text)}(?![\d])", body), (
        f"{where} no longer says {text} for {key} ({path.name}): update the prose or the "
        "quote list of the benchmark that writes it")


def test_rounding_rule():
    assert rounds_to("17.7", 17.71) and not rounds_to("17.7", 17.76)
    assert rounds_to("1,000", 1000.2) and rounds_to("0.885", 0.8851)
