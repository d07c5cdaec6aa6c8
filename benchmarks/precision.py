"""Training throughput of a small conv net under each precision policy, against float32.

    python benchmarks/precision.py [--policies float32 mixed_bfloat16 mixed_float16]
                                   [--steps 30] [--jit]

Each policy trains the same model (on the bundled digits at 32x32) in a fresh subprocess, so
one policy's compiled graphs never help another; the first epoch (tracing) is excluded. Prints
images per second and the speed-up over float32 measured in the same run. On a GPU this is
also the check that the policy `setup()` picks trains and is faster.
"""

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import numpy as np
import keras
from course_lib.runtime import setup
from course_lib.data import load_digits
policy, steps, batch_size, jit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
rt = setup(seed=0, precision=policy, verbose=False)
x, y = load_digits(image_size=32, split="all")
reps = -(-steps * batch_size // len(x))
n = steps * batch_size
x, y = np.concatenate([x] * reps)[:n], np.concatenate([y] * reps)[:n]
with rt.strategy.scope():
    model = keras.Sequential([
        keras.Input((32, 32, 1)),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(128, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(128, 3, strides=2, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, dtype="float32"),
    ])
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit)
model.fit(x[: 2 * batch_size], y[: 2 * batch_size], batch_size=batch_size, epochs=1, verbose=0)
start = time.perf_counter()
history = model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0)
seconds = time.perf_counter() - start
print(json.dumps({"policy": policy, "device": rt.summary(), "images_per_s": 2 * len(x) / seconds,
                  "final_loss": history.history["loss"][-1]}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", nargs="+",
                        default=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--steps", type=int, default=10, help="training steps per epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--jit", action="store_true", help="compile with XLA")
    args = parser.parse_args()
    if "float32" not in args.policies:
        args.policies.insert(0, "float32")
    results = {}
    for policy in args.policies:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, policy, str(args.steps),
                              str(args.batch_size), "1" if args.jit else "0"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{policy}: failed\n{out.stderr[-2000:]}")
            continue
        results[policy] = json.loads(out.stdout.strip().splitlines()[-1])
        results[policy]["wall_s"] = time.perf_counter() - started
    if "float32" not in results:
        sys.exit("the float32 baseline failed; no ratio to report")
    print(results["float32"]["device"])
    base = results["float32"]["images_per_s"]
    print(f"{'policy':<16}{'images/s':>10}{'vs float32':>12}{'final loss':>12}")
    for policy, r in results.items():
        print(f"{policy:<16}{r['images_per_s']:>10.0f}{r['images_per_s'] / base:>11.2f}x"
              f"{r['final_loss']:>12.3f}")


if __name__ == "__main__":
    main()
