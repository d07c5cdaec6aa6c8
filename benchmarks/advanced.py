"""Quality bars of chapter 6 (advanced practice), measured with the notebooks' recipes.

    python benchmarks/advanced.py [--only recipes] [--notebooks] [--quick]

- recipes (notebook 1): chapter 3's VAE on 300 binarised digits (`course_lib.recipes`),
  scored by its negative ELBO on the 359 held-out digits (nats per image, lower is better);
  every recipe of `recipes.COMPARED` once per seed (0, 1, 2), 80 epochs at most; then plain
  SGD at rate 0.05 without and with clipping at global norm 10, 40 epochs, same seeds.
  Bars: the best recipe beats the plain one by more than the two spreads (standard deviations
  over seeds) together; the unclipped run diverges (its training loss ends above the
  256 ln 2 nats of a coin flip per pixel) in every seed where the clipped one trains.
- search (notebook 2): the same VAE and training digits; grid, random, Bayesian and Hyperband
  search (`course_lib.search`, KerasTuner) over AdamW's learning rate and weight decay and the
  latent dimension, choosing by the negative ELBO on 359 validation digits, each at the budget
  in epochs that Hyperband uses with max_epochs 9, once per seed (0, 1, 2); the chosen model
  is then scored on the 359 test digits.
  Bar: Bayesian optimisation or Hyperband finds, on average over the seeds, a validation score
  at least as low as random search's (all four reported).
- pieces (notebook 2): one point that three searches chose, trained for 9 epochs in one
  piece and in Hyperband's three pieces (1, 2 and 6 epochs, a new AdamW for each), seeds 0,
  1, 2. Bar: the pieces score lower by more than the two spreads together (what the notebook
  says of why Hyperband won).
- distributed (notebook 6): the VAE with Adam at batch 32 and rate 1e-3 against batch 128 at
  the same rate and at the rates of the square-root and linear scaling rules, and batch 32 at
  the linear rule's rate (a control), 10 epochs,
  seeds 0, 1, 2 (validation -ELBO, reported); then the worker program of
  `course_lib.distributed` for 20 epochs in one process, in two MultiWorkerMirroredStrategy
  processes, and in two processes of which one is killed after epoch 10 and the cluster
  restarted. Bars: the two workers' final training loss within 2% of one process's; the
  killed run records every epoch exactly once.
- efficiency (notebook 4): chapter 1's DCGAN on the digits with four generators
  (`course_lib.efficiency.VARIANTS`: transposed convolutions, resize-convolutions, separable
  resize-convolutions, and those with a narrow projection), 20 epochs, seeds 0, 1, 2: weights,
  FLOPs (TensorFlow's profiler), seconds per epoch and per 1,000 samples (a compiled call, best
  of 5), judge FID of 1,000
  samples against the test digits. Bar: the lightest generator has at least 3x fewer weights
  than DCGAN's (its FID reported beside it).
- augmentation (notebook 3): chapter 1's DCGAN on 50 training digits (5 per class) for
  1,200 epochs (batches of 32) with no augmentation, with DiffAugment's translation and
  cutout applied to the real images only, and with DiffAugment (`course_lib.augment`), seeds
  0, 1, 2: judge FID of 1,000 samples against the test digits (every 200 epochs), the
  discriminator's D(x) on its training digits and on held-out ones, and the spread of the
  samples' centres of ink. Bar: DiffAugment's final FID is lower than no augmentation's on
  average over the seeds (the spreads reported beside it).
- speed (notebook 5): the 1,438 training digits as PNG files read by `tf.data`
  (`course_lib.speed.PIPELINES`: plain, a parallel map, a cache, a prefetch, all three),
  seconds per epoch of reading (first epoch and the mean of two more); chapter 1's DCGAN
  trained from the plain pipeline and from the cached one under float32, mixed_bfloat16 and
  mixed_float16, and with XLA (`jit_compile`): median seconds per step after 3 warm-up
  steps, every setting timed in 3 rounds taken in turns, the fastest round kept (the spread
  over the rounds is the measurement's noise); the share of
  profiled steps spent waiting for the plain pipeline; a chain of elementwise operations on
  a 64 MB tensor with and without XLA. Reported (no bar: the ratios depend on the processor;
  the CPU line says what this one has).
`--notebooks` also runs every notebook of the chapter in normal mode.
`--quick` shrinks the runs (2 epochs, one seed) only to check that the script works end to
end; it writes no results.
"""

import re
import sys
import time

import bars  # benchmarks/bars.py, next to this script
import numpy as np

from course_lib import recipes

CHAPTER = "06_advanced"
NOTEBOOKS = {name: f"notebooks/06_advanced/{name}.ipynb"
             for name in ("01_training_recipes", "02_hyperparameter_search",
                          "03_data_augmentation", "04_efficient_architectures",
                          "05_speed", "06_distributed_training")}
RECIPES = {
    "recipes": {  # notebooks/06_advanced/01_training_recipes.ipynb, normal mode
        "num_train": 300, "num_epochs": 80, "seeds": (0, 1, 2), "clip_epochs": 40,
        "clip_rate": 0.05, "clip_norm": 10.0},
    "search": {"max_epochs": 9, "seeds": (0, 1, 2)},  # notebook 2, normal mode
    # Notebook 2's "points or pieces" cell: the point random search, Bayesian optimisation
    # and Hyperband all chose at seed 2, trained in one piece and in Hyperband's pieces.
    "pieces": {"point": {"learning_rate": 0.0028, "weight_decay": 0.73, "latent_dim": 4},
               "pieces": (1, 2, 6), "seeds": (0, 1, 2)},
    # notebooks/06_advanced/06_distributed_training.ipynb, normal mode
    "distributed": {"base_batch": 32, "batch": 128, "learning_rate": 1e-3, "epochs": 10,
                    "seeds": (0, 1, 2), "worker_epochs": 20, "kill_after": 10},
    # notebooks/06_advanced/04_efficient_architectures.ipynb, normal mode
    "efficiency": {"epochs": 20, "seeds": (0, 1, 2), "num_samples": 1000},
    # notebooks/06_advanced/05_speed.ipynb, normal mode
    "speed": {"num_steps": 40, "warmup": 3, "read_epochs": 3, "repeats": 10, "rounds": 3},
    # notebooks/06_advanced/03_data_augmentation.ipynb, normal mode
    "augmentation": {"per_class": 5, "epochs": 1200, "every": 200, "seeds": (0, 1, 2),
                     "num_samples": 1000},
}
# The numbers notebook 1's prose quotes, by recipe (mean and spread of the held-out score).
RECIPE_QUOTES = ("Adam (plain)", "cosine + warm-up", "SGD + momentum", "RMSprop",
                 "L2 in the loss", "AdamW (decoupled decay)", "early stopping",
                 "AdamW + cosine + early stopping")


def slug(name):
    """"AdamW + cosine + early stopping" -> "adamw_cosine_early_stopping"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def recipes_part(rows, values, quoted, quick=False):
    recipe = RECIPES["recipes"]
    num_epochs = 2 if quick else recipe["num_epochs"]
    seeds = recipe["seeds"][:1] if quick else recipe["seeds"]
    x_train, x_validation = recipes.small_digits(recipe["num_train"])
    start = time.perf_counter()
    results = recipes.compare_recipes(recipes.COMPARED, x_train, x_validation, num_epochs,
                                      seeds)
    table = recipes.spread(results)
    seconds = (time.perf_counter() - start) / len(table)
    for name, (mean, std) in table.items():
        epochs = np.mean([run.epochs for run in results[name]])
        values[f"recipes_{slug(name)}_mean"] = mean
        values[f"recipes_{slug(name)}_std"] = std
        rows.append((f"held-out -ELBO, {name}",
                     f"{mean:.2f} +- {std:.2f} nats ({len(seeds)} seeds, {epochs:.0f} epochs)",
                     "reported", True, seconds))
    best = min(table, key=lambda name: table[name][0])
    plain = table["Adam (plain)"]
    margin = plain[0] - table[best][0]
    values["recipes_best_margin"] = margin
    rows.append(("best recipe against plain Adam",
                 f"{best}: {margin:.2f} nats better; spreads {plain[1]:.2f} + "
                 f"{table[best][1]:.2f}",
                 "> spreads", margin > plain[1] + table[best][1], 0.0))

    clip_epochs = 2 if quick else recipe["clip_epochs"]
    sgd = recipes.Recipe("sgd", recipe["clip_rate"], momentum=0.0)
    start = time.perf_counter()
    clipping = recipes.compare_recipes(
        {"unclipped": sgd, "clipped": sgd.replace(clipnorm=recipe["clip_norm"])},
        x_train, x_validation, clip_epochs, seeds)
    seconds = (time.perf_counter() - start) / 2
    final = {name: [run.history["loss"][-1] for run in runs] for name, runs in clipping.items()}
    for name in clipping:
        values[f"clipping_{name}_train_loss"] = float(np.mean(final[name]))
    values["clipping_clipped_score"] = float(np.mean([run.score for run in clipping["clipped"]]))
    diverged = all(run.diverged for run in clipping["unclipped"])
    trained = not any(run.diverged for run in clipping["clipped"])
    rows.append((f"SGD {recipe['clip_rate']:g}, unclipped / clipped at {recipe['clip_norm']:g}",
                 f"final training loss {np.mean(final['unclipped']):.1f} / "
                 f"{np.mean(final['clipped']):.1f} nats (coin flip "
                 f"{recipes.COIN_FLIP_NATS:.1f}); clipped held-out "
                 f"{values['clipping_clipped_score']:.2f}",
                 "diverges / trains", diverged and trained, seconds))
    quoted[NOTEBOOKS["01_training_recipes"]] = {
        f"recipes_{slug(name)}_{part}": f"{values[f'recipes_{slug(name)}_{part}']:.{digits}f}"
        for name in RECIPE_QUOTES for part, digits in (("mean", 1), ("std", 1))}


def search_part(rows, values, quoted, quick=False):
    from course_lib import search

    recipe = RECIPES["search"]
    max_epochs = 2 if quick else recipe["max_epochs"]
    seeds = recipe["seeds"][:1] if quick else recipe["seeds"]
    budget = search.hyperband_epochs(max_epochs)[0]
    x_train, x_validation, x_test = search.search_digits()
    table = {}
    for name in search.TUNERS:
        runs = [search.run_search(name, x_train, x_validation, x_test, max_epochs, budget, seed)
                for seed in seeds]
        for part, scores in (("validation", [r.best_score for r in runs]),
                             ("test", [r.test_score for r in runs])):
            values[f"search_{name}_{part}_mean"] = float(np.mean(scores))
            values[f"search_{name}_{part}_std"] = float(np.std(scores, ddof=1)
                                                        if len(scores) > 1 else 0.0)
        epochs = np.mean([r.epochs for r in runs])
        seconds = np.mean([r.seconds for r in runs])
        values[f"search_{name}_seconds_per_epoch"] = float(seconds / epochs)
        table[name] = values[f"search_{name}_validation_mean"]
        rows.append((f"{name}: best validation / test -ELBO",
                     f"{table[name]:.2f} +- {values[f'search_{name}_validation_std']:.2f} / "
                     f"{values[f'search_{name}_test_mean']:.2f} +- "
                     f"{values[f'search_{name}_test_std']:.2f} nats ({len(seeds)} seeds, "
                     f"{epochs:.0f} epochs, {np.mean([len(r.trials) for r in runs]):.0f} trials)",
                     "reported", True, seconds))
    smarter = min(table["bayesian"], table["hyperband"])
    rows.append(("Bayesian or Hyperband against random search",
                 f"{smarter:.2f} against {table['random']:.2f} nats (validation, mean)",
                 "<= random", smarter <= table["random"], 0.0))
    quoted[NOTEBOOKS["02_hyperparameter_search"]] = {
        f"search_{name}_{part}_{stat}": f"{values[f'search_{name}_{part}_{stat}']:.1f}"
        for name in search.TUNERS for part in ("validation", "test") for stat in ("mean", "std")}


def pieces_part(rows, values, quoted, quick=False):
    from course_lib import search

    recipe = RECIPES["pieces"]
    pieces = (1, 1) if quick else recipe["pieces"]
    seeds = recipe["seeds"][:1] if quick else recipe["seeds"]
    x_train, x_validation, _ = search.search_digits()
    start = time.perf_counter()
    scores = {name: [search.train_in_pieces(recipe["point"], split, x_train, x_validation,
                                            seed=seed)[-1] for seed in seeds]
              for name, split in (("one", (sum(pieces),)), ("pieces", pieces))}
    for name, runs in scores.items():
        values[f"pieces_{name}_mean"] = float(np.mean(runs))
        values[f"pieces_{name}_std"] = float(np.std(runs, ddof=1) if len(runs) > 1 else 0.0)
    gain = values["pieces_one_mean"] - values["pieces_pieces_mean"]
    spread = values["pieces_one_std"] + values["pieces_pieces_std"]
    rows.append(("one point, in one piece / in Hyperband's pieces",
                 f"{values['pieces_one_mean']:.2f} +- {values['pieces_one_std']:.2f} / "
                 f"{values['pieces_pieces_mean']:.2f} +- {values['pieces_pieces_std']:.2f} nats "
                 f"({len(seeds)} seeds, pieces {pieces})", "pieces better beyond the spreads",
                 gain > spread, time.perf_counter() - start))
    quoted.setdefault(NOTEBOOKS["02_hyperparameter_search"], {}).update({
        f"pieces_{name}_{stat}": f"{values[f'pieces_{name}_{stat}']:.1f}"
        for name in ("one", "pieces") for stat in ("mean", "std")})


def distributed_part(rows, values, quoted, quick=False):
    import tempfile

    from course_lib import distributed, recipes

    recipe = RECIPES["distributed"]
    epochs = 2 if quick else recipe["epochs"]
    seeds = recipe["seeds"][:1] if quick else recipe["seeds"]
    x_train, x_validation = recipes.small_digits()
    start = time.perf_counter()
    runs = {"base": (recipe["base_batch"], "none")}
    runs.update({rule: (recipe["batch"], rule) for rule in ("none", "sqrt", "linear")})
    runs["control"] = (recipe["base_batch"], "control")  # the base batch at the linear rate
    for name, (batch, rule) in runs.items():
        rate = distributed.scale_learning_rate(
            recipe["learning_rate"], recipe["base_batch"],
            recipe["batch"] if rule == "control" else batch,
            "linear" if rule == "control" else rule)
        scores = [recipes.train_recipe(recipes.Recipe("adam", rate), x_train, x_validation,
                                       epochs, seed, batch_size=batch).score for seed in seeds]
        values[f"scaling_{name}_mean"] = float(np.mean(scores))
        values[f"scaling_{name}_std"] = float(np.std(scores, ddof=1) if len(scores) > 1 else 0)
    rows.append(("batch 32; 128 at rates x1, x2, x4; 32 at x4: validation -ELBO",
                 " / ".join(f"{values[f'scaling_{name}_mean']:.2f}" for name in runs)
                 + f" nats ({len(seeds)} seeds, {epochs} epochs)", "reported", True,
                 time.perf_counter() - start))

    worker_epochs = 3 if quick else recipe["worker_epochs"]
    kill_after = 1 if quick else recipe["kill_after"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        one = distributed.run_workers(f"{folder}/one", 1, worker_epochs)
        two = distributed.run_workers(f"{folder}/two", 2, worker_epochs)
        killed = distributed.run_workers(f"{folder}/killed", 2, worker_epochs,
                                         kill_after=kill_after)
    for name, records in (("one", one), ("two", two), ("killed", killed)):
        values[f"workers_{name}_loss"] = records[-1]["loss"]
        values[f"workers_{name}_seconds"] = records[-1]["seconds"]
    gap = abs(values["workers_two_loss"] - values["workers_one_loss"]) / values["workers_one_loss"]
    values["workers_gap_percent"] = 100 * gap
    rows.append(("two workers against one process: final training loss",
                 f"{values['workers_two_loss']:.2f} against {values['workers_one_loss']:.2f} "
                 f"nats ({100 * gap:.2f}%)", "within 2%", gap < 0.02,
                 time.perf_counter() - start))
    epochs_seen = [record["epoch"] for record in killed]
    values["workers_killed_lost_epochs"] = len(set(range(worker_epochs)) - set(epochs_seen))
    rows.append((f"a worker killed after epoch {kill_after}, the cluster restarted",
                 f"epochs recorded {epochs_seen[0]}..{epochs_seen[-1]} ({len(epochs_seen)}), "
                 f"final loss {values['workers_killed_loss']:.2f}",
                 "every epoch once", epochs_seen == list(range(worker_epochs)), 0.0))
    where = "notebooks/06_advanced/06_distributed_training.ipynb"
    quoted[where] = {f"scaling_{name}_{stat}": f"{values[f'scaling_{name}_{stat}']:.1f}"
                     for name in runs for stat in ("mean", "std")}
    quoted[where].update({f"workers_{name}_loss": f"{values[f'workers_{name}_loss']:.2f}"
                          for name in ("one", "two", "killed")})


def judged_digits(part, quick, quick_epochs):
    """What the GAN parts share: their recipe, epochs and seeds (shrunk by --quick), the
    judge, and the training and test digits with their labels."""
    from course_lib.data import load_digits
    from course_lib.judge import load_judge

    recipe = RECIPES[part]
    epochs = quick_epochs if quick else recipe["epochs"]
    seeds = recipe["seeds"][:1] if quick else recipe["seeds"]
    return (recipe, epochs, seeds, load_judge(), load_digits(16, "train"),
            load_digits(16, "test")[0])


def efficiency_part(rows, values, quoted, quick=False):
    from course_lib import efficiency

    recipe, epochs, seeds, judge, (x_train, _), x_test = judged_digits("efficiency", quick, 1)
    where = NOTEBOOKS["04_efficient_architectures"]
    quoted[where] = {}
    for index, name in enumerate(efficiency.VARIANTS):
        key = f"efficiency_{index}"
        generator = efficiency.build_variant(name)
        values[f"{key}_weights"] = generator.count_params()
        values[f"{key}_mflops"] = efficiency.count_flops(generator, (1, 64))[0] / 1e6
        fids, seconds, sampling = [], [], []
        for seed in seeds:
            gan, spent = efficiency.train_variant(name, x_train, epochs, seed)
            sampling.append(efficiency.sampling_seconds(gan.generator, recipe["num_samples"]))
            fids.append(judge.fid(gan.sample(recipe["num_samples"], seed=1), x_test))
            seconds.append(spent / epochs)
        values[f"{key}_fid_mean"] = float(np.mean(fids))
        values[f"{key}_fid_std"] = float(np.std(fids, ddof=1) if len(fids) > 1 else 0.0)
        values[f"{key}_seconds_per_epoch"] = float(np.mean(seconds))
        values[f"{key}_sampling_seconds"] = float(np.mean(sampling))
        rows.append((f"{name}: weights, MFLOPs, s/epoch, FID",
                     f"{values[f'{key}_weights']:,.0f}, {values[f'{key}_mflops']:.2f}, "
                     f"{values[f'{key}_seconds_per_epoch']:.2f}, "
                     f"{values[f'{key}_fid_mean']:.1f} +- {values[f'{key}_fid_std']:.1f}",
                     "reported", True, float(np.sum(seconds) * epochs)))
        quoted[where].update({f"{key}_fid_mean": f"{values[f'{key}_fid_mean']:.1f}",
                              f"{key}_fid_std": f"{values[f'{key}_fid_std']:.1f}",
                              f"{key}_sampling_seconds":
                                  f"{values[f'{key}_sampling_seconds']:.3f}"})
    last = len(efficiency.VARIANTS) - 1
    ratio = values["efficiency_0_weights"] / values[f"efficiency_{last}_weights"]
    values["efficiency_weight_ratio"] = ratio
    values["efficiency_flop_ratio"] = (values["efficiency_0_mflops"]
                                       / values[f"efficiency_{last}_mflops"])
    rows.append(("DCGAN's generator against the lightest: weights",
                 f"{ratio:.1f}x fewer (FLOPs {values['efficiency_flop_ratio']:.1f}x fewer)",
                 ">= 3x", ratio >= 3, 0.0))
    quoted[where].update({"efficiency_weight_ratio": f"{ratio:.1f}",
                          "efficiency_flop_ratio": f"{values['efficiency_flop_ratio']:.1f}"})


def augmentation_part(rows, values, quoted, quick=False):
    from course_lib import augment
    from course_lib.callbacks import JudgeScore

    recipe, epochs, seeds, judge, (x_all, y_all), x_test = judged_digits("augmentation", quick,
                                                                         2)
    x_train, _ = augment.few_per_class(x_all, y_all, recipe["per_class"])
    where = NOTEBOOKS["03_data_augmentation"]
    values["augmentation_real_spread"] = augment.centroid_spread(x_test)
    values["augmentation_train_spread"] = augment.centroid_spread(x_train)
    quoted[where] = {key: f"{values[key]:.2f}"
                     for key in ("augmentation_real_spread", "augmentation_train_spread")}
    for mode in augment.MODES:
        key = f"augmentation_{slug(mode)}"
        runs, curves = [], []
        start = time.perf_counter()
        for seed in seeds:
            score = JudgeScore(judge, x_test, every=min(epochs, recipe["every"]),
                               num_samples=recipe["num_samples"], seed=1,
                               before_training=False)
            gan = augment.train_few_shot_gan(x_train, mode, epochs, seed, callbacks=[score])
            samples = gan.sample(recipe["num_samples"], seed=1)
            runs.append({"fid": score.history["fid"][-1],
                         "d_train": augment.discriminator_belief(gan, x_train),
                         "d_held_out": augment.discriminator_belief(gan, x_test),
                         "spread": augment.centroid_spread(samples)})
            curves.append(score.history["fid"])
        for epoch, fids in zip(score.history["epoch"], np.mean(curves, axis=0)):
            values[f"{key}_fid_at_{epoch}"] = float(fids)  # the mean over the seeds
        for stat in runs[0]:
            numbers = [run[stat] for run in runs]
            values[f"{key}_{stat}_mean"] = float(np.mean(numbers))
            values[f"{key}_{stat}_std"] = float(np.std(numbers, ddof=1) if len(runs) > 1
                                                else 0.0)
        rows.append((f"{mode}: FID; D(x) train / held-out; ink spread",
                     f"{values[f'{key}_fid_mean']:.1f} +- {values[f'{key}_fid_std']:.1f}; "
                     f"{values[f'{key}_d_train_mean']:.2f} / "
                     f"{values[f'{key}_d_held_out_mean']:.2f}; "
                     f"{values[f'{key}_spread_mean']:.2f} px (real: test "
                     f"{values['augmentation_real_spread']:.2f}, training "
                     f"{values['augmentation_train_spread']:.2f})",
                     "reported", True, (time.perf_counter() - start) / len(seeds)))
        prose = [("fid_mean", 1), ("fid_std", 1), ("spread_mean", 2),  # what notebook 3 says
                 ("d_train_mean", 2), ("d_held_out_mean", 2)]
        quoted[where].update({f"{key}_{stat}": f"{values[f'{key}_{stat}']:.{digits}f}"
                              for stat, digits in prose})
    none, diff = values["augmentation_none_fid_mean"], values["augmentation_diffaugment_fid_mean"]
    rows.append(("DiffAugment against no augmentation, FID",
                 f"{diff:.1f} against {none:.1f} ({len(seeds)} seeds, {epochs} epochs)",
                 "lower", diff < none, 0.0))


def speed_part(rows, values, quoted, quick=False):
    import os
    import tempfile

    import tensorflow as tf

    from course_lib import profiling, speed
    from course_lib.data import load_digits

    recipe = RECIPES["speed"]
    num_steps = 3 if quick else recipe["num_steps"]
    where = NOTEBOOKS["05_speed"]
    quoted[where] = {}
    x_train, _ = load_digits(16, "train")
    with tempfile.TemporaryDirectory() as folder:
        paths = speed.write_png_files(x_train, folder)
        for name, kwargs in speed.PIPELINES.items():
            key = f"speed_read_{slug(name)}"
            start = time.perf_counter()
            seconds = speed.iterate_seconds(speed.png_pipeline(paths, **kwargs),
                                            recipe["read_epochs"])
            values[f"{key}_first"] = seconds[0]
            values[f"{key}_later"] = float(np.mean(seconds[1:]))
            rows.append((f"reading {len(paths)} PNG files, {name}: s/epoch first, later",
                         f"{seconds[0]:.3f}, {values[f'{key}_later']:.3f}", "reported", True,
                         time.perf_counter() - start))
        # what notebook 5's prose says of reading
        quoted[where].update({key: f"{values[key]:.3f}" for key in (
            "speed_read_plain_first", "speed_read_parallel_map_first", "speed_read_plain_later",
            "speed_read_parallel_map_later", "speed_read_cache_later")})
        logdir = os.path.join(folder, "profile")
        speed.build_dcgan().fit(speed.png_pipeline(paths), epochs=1, verbose=0,
                                callbacks=[profiling.ProfileSteps(logdir, 3, 8)])
        steps = profiling.step_times(logdir)
        values["speed_profile_waiting_percent"] = 100 * (sum(wait for _, _, wait in steps)
                                                         / sum(total for _, total, _ in steps))
        rows.append(("DCGAN steps 3-8 from the plain pipeline: waiting for tf.data",
                     f"{values['speed_profile_waiting_percent']:.1f}% of the step", "reported",
                     True, 0.0))
        memory = speed.png_pipeline(paths, **speed.PIPELINES["all three"])
        speed.iterate_seconds(memory, 1)  # fill its cache: the settings below read memory
        settings = {"plain pipeline": {"dataset": speed.png_pipeline(paths)},
                    "float32": {}, "mixed_bfloat16": {"policy": "mixed_bfloat16"},
                    "mixed_float16": {"policy": "mixed_float16"}, "XLA": {"jit_compile": True}}
        timed = speed.compare_speeds(speed.build_dcgan, memory, settings, num_steps,
                                     recipe["warmup"], recipe["rounds"])
    for name, result in timed.items():
        values[f"speed_{slug(name)}_ms"] = 1e3 * result["seconds_per_step"]
        values[f"speed_{slug(name)}_spread"] = result["spread"]
        values[f"speed_{slug(name)}_warmup"] = result["warmup_seconds"]
        values[f"speed_{slug(name)}_finite"] = float(np.isfinite(result["final_loss"]))
        ratio = timed["float32"]["seconds_per_step"] / result["seconds_per_step"]
        values[f"speed_{slug(name)}_speedup"] = ratio
        rows.append((f"DCGAN step, {name} (best of {recipe['rounds']} rounds)",
                     f"{values[f'speed_{slug(name)}_ms']:.1f} ms ({ratio:.2f}x float32's speed;"
                     f" rounds {', '.join(f'{1e3 * t:.1f}' for t in result['rounds'])})",
                     "reported", True, 0.0))
    values["speed_noise_percent"] = 100 * max(result["spread"] for name, result in timed.items()
                                              if name != "mixed_float16")
    tensor = tf.random.normal((4096, 64, 64), seed=0)  # 64 MB: more than the caches hold
    for jit in (False, True):
        first, median = speed.call_seconds(tf.function(speed.gelu_chain, jit_compile=jit),
                                           tensor, repeats=recipe["repeats"])
        values[f"speed_gelu_{'on' if jit else 'off'}_ms"] = 1e3 * median
    values["speed_xla_gelu_speedup"] = values["speed_gelu_off_ms"] / values["speed_gelu_on_ms"]
    rows.append(("GELU chain, XLA against none",
                 f"{values['speed_gelu_on_ms']:.2f} against {values['speed_gelu_off_ms']:.2f} ms: "
                 f"{values['speed_xla_gelu_speedup']:.2f}x", "reported", True, 0.0))
    quoted[where].update({key: f"{values[key]:.1f}" for key in (
        "speed_plain_pipeline_ms", "speed_float32_ms", "speed_mixed_bfloat16_ms",
        "speed_mixed_float16_ms", "speed_xla_ms", "speed_xla_warmup", "speed_float32_warmup")})
    quoted[where].update({key: f"{values[key]:.0f}"
                          for key in ("speed_profile_waiting_percent", "speed_noise_percent")})
    quoted[where].update({key: f"{values[key]:.2f}" for key in (
        "speed_plain_pipeline_speedup", "speed_mixed_bfloat16_speedup",
        "speed_mixed_float16_speedup", "speed_xla_speedup", "speed_xla_gelu_speedup")})


BENCHMARKS = {"recipes": recipes_part, "search": search_part, "pieces": pieces_part,
              "augmentation": augmentation_part,
              "speed": speed_part,
              "efficiency": efficiency_part, "distributed": distributed_part}


def main():
    return bars.main(__doc__.split("\n\n")[0], BENCHMARKS, CHAPTER)


if __name__ == "__main__":
    sys.exit(main())
