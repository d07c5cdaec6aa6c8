"""Quality bars of chapter 2 (diffusion), measured in one normal-mode run.

    python benchmarks/diffusion.py [--only ddpm] [--notebooks] [--quick]

Trains the chapter's models with the notebooks' normal-mode hyperparameters (the RECIPES
below; keep them in step with the notebooks' hyperparameter cells) and prints each bar with
the measured value:
- DDPM on digits: judge FID of 1,000 DDIM-50 samples falls >= 80% from the untrained
  model's; all 10 classes appear among them, none above 20%;
- DDIM with 50 steps: judge FID within 10% of all-step DDPM's (500 samples each, same seed),
  with eta = 0 and with eta = 1 (a row each), and at least 10 times faster to sample; the
  eta = 0 sweep over 10 to 250 steps of notebook 2, section 7 (reported; DDIM's timesteps
  with the library's default "trailing" spacing, from t = T - 1);
- classifier-free guidance: judge accuracy of the requested labels >= 0.95 at the best of
  the notebook's guidance scales; the sweep's accuracy, FID and within-class spread at each
  scale (reported, the numbers notebook 3 quotes); the negative prompt "any digit, not a 1"
  at w = 2 reads fewer samples as a 1 than unguided sampling from the same noises;
- inpainting (RePaint): masked PSNR above the better naive fill (mean or diffuse) on
  200 test digits with an 8x8 hole each.
The last column holds the seconds of training (first row of a model) or of the sampling
that a row compares. A full run (not --quick) writes the numbers the notebooks quote to
benchmarks/results/02_diffusion.json (`bars.write_results`); tests/test_benchmark_results.py
checks that the prose says the same.
`--notebooks` also runs every notebook of the chapter in normal mode and checks that each
finishes within 15 minutes.
`--quick` shrinks the runs (2 epochs, 64 samples for the FID, 16 for the comparison) only to
check that the script works end to end: its numbers are not the bars' measurements.
"""

import math
import sys
import time

import bars  # benchmarks/bars.py, next to this script
import keras
import numpy as np

from course_lib import inpainting
from course_lib.data import load_digits, make_dataset
from course_lib.judge import load_judge
from course_lib.models.diffusion import DiffusionModel
from course_lib.models.unet import build_unet
from course_lib.runtime import setup

CHAPTER = "02_diffusion"
NOTEBOOK_DDPM = "notebooks/02_diffusion/02_ddpm_and_ddim.ipynb"
NOTEBOOK_GUIDANCE = "notebooks/02_diffusion/03_classifier_free_guidance.ipynb"

# The notebooks' normal-mode settings: notebook 2's recipe, which notebooks 3 and 4 extend.
DDPM = {  # notebooks/02_diffusion/02_ddpm_and_ddim.ipynb
    "seed": 0, "image_size": 16, "num_timesteps": 1000, "schedule": "linear",
    "widths": (32, 64, 128), "attention_at": (), "batch_size": 64, "num_epochs": 30,
    "learning_rate": 2e-3, "ema_decay": 0.995, "objective": "v",
}
RECIPES = {
    "ddpm": DDPM,
    "guidance": {**DDPM,  # notebooks/02_diffusion/03_classifier_free_guidance.ipynb
                 "num_classes": 10, "cond_dropout": 0.1, "ddim_steps": 50, "per_class": 30,
                 "guidance_scales": (0.0, 1.0, 2.0, 3.0, 5.0)},
    "editing": {**DDPM,  # notebooks/02_diffusion/04_editing.ipynb
                "num_steps": 50, "resample": 5, "hole": 8, "num_eval": 200},
}

# How many samples the bars are scored on, and the shrunken run of --quick.
SAMPLES = {"num_samples": 1000, "num_compare": 500}
DDIM_STEPS = (10, 20, 50, 100, 250)  # notebook 2's sweep (eta = 0)
QUICK = {"num_epochs": 2, "num_samples": 64, "num_compare": 16}


def _diffusion(recipe, steps_per_epoch):
    keras.utils.set_random_seed(recipe["seed"])
    size = recipe["image_size"]
    network = build_unet((size, size, 1), recipe["widths"], attention_at=recipe["attention_at"],
                         num_classes=recipe.get("num_classes"))
    model = DiffusionModel(network,
                           num_timesteps=recipe["num_timesteps"], schedule=recipe["schedule"],
                           objective=recipe.get("objective", "eps"),
                           ema_decay=recipe["ema_decay"],
                           cond_dropout=recipe.get("cond_dropout", 0.1), seed=recipe["seed"])
    learning_rate = keras.optimizers.schedules.CosineDecay(
        recipe["learning_rate"], decay_steps=recipe["num_epochs"] * steps_per_epoch)
    model.compile(keras.optimizers.Adam(learning_rate))
    return model


def _fit(model, dataset, num_epochs):
    start = time.perf_counter()
    model.fit(dataset, epochs=num_epochs, verbose=0)
    return time.perf_counter() - start


def _timed_sample(model, num_samples, **kwargs):
    start = time.perf_counter()
    samples = model.sample(num_samples, **kwargs)
    return samples, time.perf_counter() - start


def ddpm(judge, rows, results, quick=False):
    recipe = {**RECIPES["ddpm"], **({"num_epochs": QUICK["num_epochs"]} if quick else {})}
    sizes = QUICK if quick else SAMPLES
    num_samples, num_compare = sizes["num_samples"], sizes["num_compare"]
    x_train, _ = load_digits(recipe["image_size"], "train")
    x_test, _ = load_digits(recipe["image_size"], "test")
    steps_per_epoch = math.ceil(len(x_train) / recipe["batch_size"])
    model = _diffusion(recipe, steps_per_epoch)
    ddim50 = {"sampler": "ddim", "num_steps": 50}
    before = judge.report(model.sample(num_samples, **ddim50, seed=1), x_test)
    seconds = _fit(model, make_dataset(x_train, batch_size=recipe["batch_size"], seed=0),
                   recipe["num_epochs"])
    samples = model.sample(num_samples, **ddim50, seed=1)
    after = judge.report(samples, x_test)
    drop = 1 - after["fid"] / before["fid"]
    rows.append(("DDPM judge FID (DDIM-50): untrained -> trained",
                 f"{before['fid']:.1f} -> {after['fid']:.1f} ({drop:.0%} lower)", ">= 80% lower",
                 drop >= 0.8, seconds))
    histogram = judge.class_histogram(samples)
    rows.append((f"DDPM class histogram of {num_samples:,} samples",
                 f"{int(np.sum(histogram > 0))} classes, max {histogram.max():.1%}, "
                 f"min {histogram.min():.1%}", "10, max <= 20%",
                 bool(np.all(histogram > 0) and histogram.max() <= 0.2), 0))
    full, full_seconds = _timed_sample(model, num_compare, sampler="ddpm", seed=2)
    full_fid = judge.report(full, x_test)["fid"]
    sweep, sweep_seconds = {}, {}  # DDIM at eta = 0, trailing timesteps, by number of steps
    for steps in DDIM_STEPS:
        images, sweep_seconds[steps] = _timed_sample(model, num_compare, sampler="ddim",
                                                     num_steps=steps, seed=2)
        sweep[steps] = judge.report(images, x_test)["fid"]
    noisy, noisy_seconds = _timed_sample(model, num_compare, **ddim50, eta=1.0, seed=2)
    noisy_fid = judge.report(noisy, x_test)["fid"]
    for eta, fast_fid, fast_seconds in [(0.0, sweep[50], sweep_seconds[50]),
                                        (1.0, noisy_fid, noisy_seconds)]:
        rows.append((f"FID DDIM-50 (eta {eta:g}) vs DDPM-{model.num_timesteps} "
                     f"({num_compare:,} samples)",
                     f"{fast_fid:.1f} vs {full_fid:.1f} ({fast_fid / full_fid - 1:+.0%})",
                     "<= DDPM + 10%", fast_fid <= 1.1 * full_fid, fast_seconds + full_seconds))
    rows.append((f"FID DDIM (eta 0) by steps ({num_compare:,} samples)",
                 ", ".join(f"{n}: {f:.1f}" for n, f in sweep.items()), "(reported)", True,
                 sum(sweep_seconds.values())))
    fast_seconds = sweep_seconds[50]
    speedup = full_seconds / fast_seconds
    rows.append((f"sampling time DDIM-50 vs DDPM-{model.num_timesteps}",
                 f"{fast_seconds:.1f} s vs {full_seconds:.1f} s ({speedup:.1f}x faster)",
                 ">= 10x faster", speedup >= 10, fast_seconds + full_seconds))
    values = {"ddpm_fid_drop_percent": 100 * drop, "ddpm_full_fid": full_fid,
              "ddim_eta1_fid": noisy_fid, "ddpm_seconds": full_seconds,
              "ddim50_seconds": fast_seconds, "ddim50_speedup": speedup,
              **{f"ddim{n}_fid": f for n, f in sweep.items()}}
    # Seconds depend on the machine and on what else runs on it: reported, never quoted.
    quoted = {"ddpm_full_fid": f"{full_fid:.1f}", "ddim_eta1_fid": f"{noisy_fid:.1f}",
              **{f"ddim{n}_fid": f"{f:.1f}" for n, f in sweep.items()}}
    results.append((values, {NOTEBOOK_DDPM: quoted}))


def _within_class_spread(samples, labels):
    """The mean RMS distance between two samples of the same label (notebook 3's measure)."""
    flat = samples.reshape(len(samples), -1)
    spreads = []
    for label in np.unique(labels):
        group = flat[labels == label]
        distances = np.sqrt(((group[:, None] - group[None]) ** 2).mean(-1))
        spreads.append(distances.sum() / (len(group) * (len(group) - 1)))
    return float(np.mean(spreads))


def guidance(judge, rows, results, quick=False):
    recipe = {**RECIPES["guidance"], **({"num_epochs": QUICK["num_epochs"], "per_class": 5}
                                         if quick else {})}
    x_train, y_train = load_digits(recipe["image_size"], "train")
    x_test, _ = load_digits(recipe["image_size"], "test")
    steps_per_epoch = math.ceil(len(x_train) / recipe["batch_size"])
    model = _diffusion(recipe, steps_per_epoch)
    seconds = _fit(model, make_dataset(x_train, y_train, batch_size=recipe["batch_size"],
                                       seed=0), recipe["num_epochs"])
    requested = np.arange(10 * recipe["per_class"]) % 10
    accuracy, fid, spread = {}, {}, {}
    for w in recipe["guidance_scales"]:
        samples = model.sample(len(requested), num_steps=recipe["ddim_steps"], labels=requested,
                               guidance_scale=w, seed=3)
        report = judge.report(samples, x_test, labels=requested)
        accuracy[w], fid[w] = report["label_accuracy"], report["fid"]
        spread[w] = _within_class_spread(samples, requested)
    best = max(accuracy, key=accuracy.get)
    rows.append((f"guided label accuracy at the best scale ({len(requested):,} samples)",
                 f"{accuracy[best]:.3f} at w = {best:g} ("
                 + ", ".join(f"w={w:g}: {a:.2f}" for w, a in accuracy.items()) + ")",
                 ">= 0.95", accuracy[best] >= 0.95, seconds))
    rows.append(("guidance sweep: FID and within-class spread by scale",
                 "; ".join(f"w={w:g}: FID {fid[w]:.0f}, spread {spread[w]:.2f}"
                           for w in recipe["guidance_scales"]), "(reported)", True, 0))
    values, quoted = {}, {}
    for w in recipe["guidance_scales"]:
        name = f"w{w:g}"
        values.update({f"guidance_accuracy_percent_{name}": 100 * accuracy[w],
                       f"guidance_fid_{name}": fid[w], f"guidance_spread_{name}": spread[w]})
        quoted.update({f"guidance_accuracy_percent_{name}": f"{100 * accuracy[w]:.0f}",
                       f"guidance_fid_{name}": f"{fid[w]:.0f}",
                       f"guidance_spread_{name}": f"{spread[w]:.2f}"})
    # Notebook 3's negative prompt: any digit (the null label), plainly and at w = 2 "not a
    # 1", from the same noises; how many of each does the judge read as a 1?
    anything = np.full(len(requested), model.num_classes)
    for name, scale, negative in (("plain", 1.0, None), ("not_one", 2.0, 1)):
        images = model.sample(len(anything), num_steps=recipe["ddim_steps"], labels=anything,
                              guidance_scale=scale, seed=5, negative_labels=negative)
        key = f"negative_prompt_{name}_ones_percent"
        values[key] = 100 * float(np.mean(judge.predict(images).argmax(-1) == 1))
        quoted[key] = f"{values[key]:.1f}"
    rows.append(("negative prompt: % of any-digit samples read as a 1, plain / not a 1",
                 f"{values['negative_prompt_plain_ones_percent']:.1f} / "
                 f"{values['negative_prompt_not_one_ones_percent']:.1f}", "fewer",
                 values["negative_prompt_not_one_ones_percent"]
                 < values["negative_prompt_plain_ones_percent"], 0))
    results.append((values, {NOTEBOOK_GUIDANCE: quoted}))


def editing(judge, rows, results, quick=False):
    recipe = {**RECIPES["editing"], **({"num_epochs": QUICK["num_epochs"], "num_eval": 32,
                                        "num_steps": 10} if quick else {})}
    x_train, _ = load_digits(recipe["image_size"], "train")
    x_test, y_test = load_digits(recipe["image_size"], "test")
    steps_per_epoch = math.ceil(len(x_train) / recipe["batch_size"])
    model = _diffusion(recipe, steps_per_epoch)
    seconds = _fit(model, make_dataset(x_train, batch_size=recipe["batch_size"], seed=0),
                   recipe["num_epochs"])
    images = x_test[:recipe["num_eval"]]
    mask = inpainting.block_mask(images.shape, recipe["hole"], seed=1)
    naive = {method: inpainting.masked_psnr(images, inpainting.naive_fill(images, mask, method),
                                            mask).mean() for method in ("mean", "diffuse")}
    start = time.perf_counter()
    filled = model.inpaint(images, mask, recipe["num_steps"], resample=recipe["resample"], seed=0)
    inpaint_seconds = time.perf_counter() - start
    psnr = inpainting.masked_psnr(images, filled, mask).mean()
    best = max(naive, key=naive.get)
    rows.append((f"masked PSNR, RePaint x{recipe['resample']} vs naive fill "
                 f"({len(images)} digits, {recipe['hole']}x{recipe['hole']} holes)",
                 f"{psnr:.2f} vs {naive[best]:.2f} dB ({best} fill)", "> naive fill",
                 psnr > naive[best], seconds))
    accuracy = judge.accuracy(filled, y_test[:recipe["num_eval"]])
    rows.append(("judge accuracy of the inpainted digits", f"{accuracy:.3f}", "(reported)",
                 True, inpaint_seconds))


BENCHMARKS = {"ddpm": ddpm, "guidance": guidance, "editing": editing}


def main():
    parser = bars.parser_for(__doc__.split("\n\n")[0], BENCHMARKS)
    parser.add_argument("--quick", action="store_true",
                        help="shrunken runs that only check the script works end to end "
                             "(not the bars' measurements)")
    args = parser.parse_args()
    names = bars.chosen(parser, args, BENCHMARKS)
    if args.quick and args.notebooks:
        parser.error("--quick only checks that the benchmarks run; drop --notebooks")
    rt = setup(seed=0)
    judge = load_judge()
    rows, results = [], []  # results: (values, quoted) of each benchmark, for the prose
    for name in names:
        BENCHMARKS[name](judge, rows, results, quick=args.quick)
    if args.notebooks:
        bars.run_notebooks("02_diffusion", rows)
    status = bars.print_table(rt.summary(), rows)
    if args.quick:
        print(f"--quick: {QUICK['num_epochs']} epochs, {QUICK['num_samples']} samples for the "
              f"FID, {QUICK['num_compare']} for the comparison; these numbers only show that "
              "the script runs and are not the bars' measurements.")
        return 0
    for values, quoted in results:
        bars.write_results(CHAPTER, values, quoted, summary=rt.summary())
    return status


if __name__ == "__main__":
    sys.exit(main())
