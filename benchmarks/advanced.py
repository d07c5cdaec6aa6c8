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
                          "04_efficient_architectures", "06_distributed_training")}
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


def efficiency_part(rows, values, quoted, quick=False):
    from course_lib import efficiency
    from course_lib.data import load_digits
    from course_lib.judge import load_judge

    recipe = RECIPES["efficiency"]
    epochs = 1 if quick else recipe["epochs"]
    seeds = recipe["seeds"][:1] if quick else recipe["seeds"]
    judge = load_judge()
    x_train, _ = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
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


BENCHMARKS = {"recipes": recipes_part, "search": search_part, "pieces": pieces_part,
              "efficiency": efficiency_part, "distributed": distributed_part}


def main():
    return bars.main(__doc__.split("\n\n")[0], BENCHMARKS, CHAPTER)


if __name__ == "__main__":
    sys.exit(main())
