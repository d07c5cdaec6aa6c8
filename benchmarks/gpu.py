"""The course on a GPU: each chapter's main model, float32 against mixed precision, with and
without XLA.

    python benchmarks/gpu.py [--steps 50] [--batch-size 128] [--models gan,vae] [--xla both]
                             [--quick]

For every chapter's main model (chapter 1's DCGAN, chapter 2's diffusion U-Net, chapter 3's VAE,
chapter 4's character GRU and mini-GPT, chapter 5's video VAE) it trains `--steps` steps with
`fit` under float32 and under mixed precision, each with and without `jit_compile` (XLA), and
prints examples per second, the speed-up over float32 without XLA measured in the same run,
peak accelerator memory, and whether any logged loss went NaN or infinite. The first epoch
(tracing and XLA compilation) is not timed.

It first checks the policy `setup()` picks for this machine against the rule it documents
(bfloat16 on compute capability 8.0 and up and on TPUs, float16 with loss scaling on 7.x,
float32 on a CPU), and at the end whether that policy trained without NaN and faster than
float32. On a GPU the mixed policies are the one picked and, for comparison, the other one
(float16 is what a T4, Colab's free GPU, runs). With no GPU it says so on its first line and
runs the same checks on the CPU with mixed_bfloat16 standing in (slowly: a CPU without
bfloat16 instructions emulates it), so that CI can check that the script runs.

Exit status 1 when a model fails to train or its loss goes NaN under the picked policy.
"""

import argparse
import math
import resource
import sys
import time

import numpy as np

MODELS = ("gan", "diffusion", "vae", "char_rnn", "gpt", "video_vae")


def expected_policy(device):
    """The documented rule, written out again here so that `pick_policy` is checked against
    it rather than against itself."""
    if device.kind == "tpu":
        return "mixed_bfloat16"
    if device.kind == "gpu":
        major = (device.compute_capability or (0, 0))[0]
        return "mixed_bfloat16" if major >= 8 else "mixed_float16" if major == 7 else "float32"
    return "float32"


def build(name, batch_size, steps):
    """(model compiled by `compile_fn`, dataset of `steps` batches, examples per batch)."""
    import keras
    import tensorflow as tf

    from course_lib.data import load_digits, make_dataset

    def images(size):
        x, _ = load_digits(image_size=size, split="all")
        x = np.concatenate([x] * math.ceil(batch_size * 4 / len(x)))[:batch_size * 4]
        return make_dataset(x, batch_size=batch_size, drop_remainder=True).repeat()

    if name == "gan":
        from course_lib.models.gan import GAN, build_discriminator, build_generator

        model = GAN(build_generator(64, (32, 32, 1)), build_discriminator((32, 32, 1)), seed=0)
        compile_fn = lambda jit: model.compile(keras.optimizers.Adam(2e-4, beta_1=0.5),  # noqa: E731
                                               keras.optimizers.Adam(2e-4, beta_1=0.5),
                                               jit_compile=jit)
        return model, compile_fn, images(32)
    if name == "diffusion":
        from course_lib.models.diffusion import DiffusionModel
        from course_lib.models.unet import build_unet

        model = DiffusionModel(build_unet((16, 16, 1)))
        return model, lambda jit: model.compile(keras.optimizers.Adam(2e-4),
                                                jit_compile=jit), images(16)
    if name == "vae":
        from course_lib.models.vae import VAE, build_decoder, build_encoder

        model = VAE(build_encoder((16, 16, 1), 16), build_decoder((16, 16, 1), 16), seed=0)
        return model, lambda jit: model.compile(keras.optimizers.Adam(1e-3),
                                                jit_compile=jit), images(16)
    if name in ("char_rnn", "gpt"):
        from course_lib.data import CharVocabulary, char_windows, load_pydoc_text
        from course_lib.models.char_rnn import CharRNN
        from course_lib.models.gpt import MiniGPT

        text = load_pydoc_text("train")
        vocabulary = CharVocabulary.from_text(text)
        ids = vocabulary.encode(text)[:(batch_size * 4) * 129]
        dataset = char_windows(ids, 128, batch_size).repeat()
        model = (CharRNN(vocabulary.size, units=256) if name == "char_rnn"
                 else MiniGPT(vocabulary.size, max_length=128, width=128, num_layers=2))
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return model, lambda jit: model.compile(keras.optimizers.Adam(1e-3, clipnorm=1.0), loss,
                                                jit_compile=jit), dataset
    if name == "video_vae":
        from course_lib.data.video import directed_digits
        from course_lib.models.vae import CVAE
        from course_lib.models.video import video_decoder, video_encoder

        clips = directed_digits(batch_size * 2, seed=0)
        labels = clips["labels"] * 4 + clips["directions"]
        model = CVAE(video_encoder(num_classes=(10, 4)), video_decoder(num_classes=(10, 4)),
                     seed=0)
        dataset = tf.data.Dataset.from_tensor_slices((clips["clips"], labels))
        return model, lambda jit: model.compile(keras.optimizers.Adam(2e-3), jit_compile=jit), \
            dataset.batch(batch_size, drop_remainder=True).repeat()
    raise ValueError(f"unknown model {name!r}: choose from {', '.join(MODELS)}.")


def measure(name, policy, jit, batch_size, steps, device_kind):
    """Trains `name` under `policy` for two epochs of `steps` steps (the second is timed) and
    returns {per_second, peak_mib, finite}, or {error} if it could not train."""
    import keras
    import tensorflow as tf

    from course_lib.runtime import seed_everything

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(policy)
    seed_everything(0)
    if device_kind == "gpu":
        tf.config.experimental.reset_memory_stats("GPU:0")
    times = []
    clock = keras.callbacks.LambdaCallback(on_epoch_begin=lambda *_: times.append(
        time.perf_counter()), on_epoch_end=lambda *_: times.append(time.perf_counter()))
    try:
        model, compile_fn, dataset = build(name, batch_size, steps)
        compile_fn(jit)
        history = model.fit(dataset, steps_per_epoch=steps, epochs=2, verbose=0,
                            callbacks=[clock]).history
    except Exception as error:  # reported in the table, and the exit status
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:60]}"}
    finally:
        keras.mixed_precision.set_global_policy("float32")
    losses = [v for key, values in history.items() if "loss" in key for v in values]
    seconds = times[3] - times[2]  # the second epoch: traced and compiled already
    peak = (tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
            if device_kind == "gpu" else float("nan"))
    return {"per_second": steps * batch_size / seconds, "peak_mib": peak,
            "finite": bool(np.all(np.isfinite(losses)))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per setting")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated subset of " + ", ".join(MODELS))
    parser.add_argument("--xla", choices=("both", "off", "on"), default="both",
                        help="train without XLA, with it, or both (the default)")
    parser.add_argument("--quick", action="store_true",
                        help="2 steps of batch 8: only checks that everything runs")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    steps, batch_size = (2, 8) if args.quick else (args.steps, args.batch_size)

    from course_lib.runtime import detect_device, native_stderr_silenced, pick_policy, setup

    rt = setup(seed=0, verbose=False)
    with native_stderr_silenced():
        device = detect_device()
    picked, expected = pick_policy(device), expected_policy(device)
    if device.kind != "gpu":
        print(f"no GPU: {device.kind.upper()} {device.name}; running the checks there with "
              "mixed_bfloat16 standing in (slow where bfloat16 is emulated)")
    print(rt.summary())
    print(f"setup() picks {picked} here; the documented rule says {expected}: "
          f"{'correct' if picked == expected else 'WRONG'}")
    mixed = picked if picked != "float32" else "mixed_bfloat16"
    policies = ["float32", mixed]
    if device.kind == "gpu":
        policies.append("mixed_float16" if mixed == "mixed_bfloat16" else "mixed_bfloat16")
    print(f"{steps} timed steps of batch {batch_size} per setting\n")
    print(f"{'model':<11}{'policy':<16}{'XLA':<5}{'examples/s':>12}{'vs float32':>12}"
          f"{'peak MiB':>10}  loss finite")
    status = 0
    summary = {}
    for name in models:
        base = None
        for policy in policies:
            for jit in {"both": (False, True), "off": (False,), "on": (True,)}[args.xla]:
                result = measure(name, policy, jit, batch_size, steps, device.kind)
                if "error" in result:
                    print(f"{name:<11}{policy:<16}{'on' if jit else 'off':<5}  FAILED "
                          f"{result['error']}")
                    status = 1 if policy in ("float32", picked) else status
                    continue
                base = base or (result["per_second"] if policy == "float32" and not jit
                                else None)
                ratio = result["per_second"] / base if base else float("nan")
                summary[name, policy, jit] = (ratio, result["finite"])
                print(f"{name:<11}{policy:<16}{'on' if jit else 'off':<5}"
                      f"{result['per_second']:>12.0f}{ratio:>11.2f}x{result['peak_mib']:>10.0f}"
                      f"  {'yes' if result['finite'] else 'NO (NaN or inf)'}")
                if not result["finite"] and policy in ("float32", picked):
                    status = 1
    print()
    for name in models:
        runs = [(ratio, finite) for (model, policy, _), (ratio, finite) in summary.items()
                if model == name and policy == mixed]
        if runs:
            best = max(ratio for ratio, _ in runs)
            nan = "without NaN" if all(finite for _, finite in runs) else "WITH NaN"
            print(f"{name}: {mixed} trained {nan}, best {best:.2f}x float32 "
                  f"({'faster' if best > 1 else 'not faster'})")
    if device.kind != "gpu":
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"no GPU memory to report; this process peaked at {rss:.0f} MiB of RAM")
    return status


if __name__ == "__main__":
    sys.exit(main())
