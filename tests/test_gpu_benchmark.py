"""`benchmarks/gpu.py` runs where CI runs (no GPU): it says so, and trains every model."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(ROOT / "benchmarks" / "gpu.py")
MODELS = ("gan", "diffusion", "vae", "char_rnn", "gpt", "video_vae")


def run(*args):
    result = subprocess.run([sys.executable, SCRIPT, "--quick", *args], capture_output=True,
                            text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "FAILED" not in result.stdout, result.stdout
    return result.stdout.splitlines()


def rows(lines, model):
    return [line.split() for line in lines if line.startswith(model + " ")]


def test_gpu_check_says_there_is_no_gpu_and_trains_every_model_on_the_cpu():
    # Without XLA: compiling six models with XLA on a 2-core CPU takes minutes.
    lines = run("--xla", "off")
    assert lines[0].startswith("no GPU: CPU"), lines[:3]
    assert "setup() picks float32 here; the documented rule says float32: correct" in lines
    for model in MODELS:
        found = rows(lines, model)
        assert [row[1] for row in found] == ["float32", "mixed_bfloat16"], (model, found)
        assert all(row[-1] == "yes" for row in found), found  # every loss finite
        assert any(line.startswith(f"{model}: mixed_bfloat16 trained without NaN")
                   for line in lines), model


def test_gpu_check_compiles_with_xla():
    lines = run("--models", "vae", "--xla", "on")
    found = rows(lines, "vae")
    assert [(row[1], row[2]) for row in found] == [("float32", "on"), ("mixed_bfloat16", "on")]
