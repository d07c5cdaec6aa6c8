"""Quality bars of chapter 7 (security and privacy), measured with the notebooks' recipes.

    python benchmarks/security.py [--only membership] [--notebooks] [--quick]

- membership (notebook 1): 100 member digits, 100 non-member digits and 200 validation
  digits drawn from the 1,438 training digits (`privacy.split_members`, seeds 0, 1, 2).
  Chapter 3's VAE (latent 16) trained on the binarised members for 300 epochs; the
  membership score is the ELBO (8 draws of z); the attack is scored at the last epoch and at
  the epoch of the best validation loss (early stopping). Chapter 1's DCGAN trained on the
  grey members for 300 epochs; scores: the discriminator's logit (white box) and minus the
  distance to the nearest of 2,000 samples (black box). AUC, TPR at 1% FPR. Then the secret
  sharer on seed 0: a GRU character model (256 units) trained for 30 epochs on the first
  60,000 characters of the Python help text with four canaries "<name>'s pin is <5 digits>"
  inserted 0, 1, 4 and 16 times; exposure of each (out of log2 10^5 = 16.6 bits).
  Bar: the VAE attack's AUC at the last epoch >= 0.7 on average over the seeds.
- dp (notebook 2): 1,000 member digits and 400 non-members (`privacy.split_members`, seed 0),
  binarised; the dense VAE (`dp.mlp_vae`) trained with `dp.train_dp_vae` for 1,500 steps of
  Poisson batches (q = 64 / 1,000), Adam 1e-3: without privacy, with clipping only (C = 10),
  and with DP-SGD at epsilon 100, 10, 3 and 1 (delta 1e-5; noise from `dp.noise_for_epsilon`, RDP);
  each scored by its ELBO on the 359 test digits, the judge FID of 1,000 samples against
  them, and the ELBO attack (400 members against the 400 non-members); training seconds;
  per-example against batch gradients (20 compiled calls each, 64 images) for the dense and
  the convolutional VAE.
  Bars: the attack's AUC <= 0.6 under DP-SGD at every epsilon (epsilon and delta reported);
  the epsilon-utility curve has >= 3 points, each with its judge FID and epsilon from
  dp-accounting.
`--notebooks` also runs every notebook of the chapter in normal mode.
`--quick` shrinks the runs (a few epochs, one seed) only to check that the script works end
to end; it writes no results.
"""

import sys
import time

import bars  # benchmarks/bars.py, next to this script
import numpy as np

CHAPTER = "07_security"
NOTEBOOKS = {name: f"notebooks/07_security/{name}.ipynb"
             for name in ("01_membership_inference", "02_differential_privacy")}
MEMBERSHIP = {  # notebooks/07_security/01_membership_inference.ipynb, normal mode
    "sizes": (100, 100, 200), "vae_epochs": 300, "elbo_draws": 8, "gan_epochs": 300,
    "num_samples": 2000, "char_epochs": 30, "num_chars": 60_000,
    "canaries": {"ada": 0, "bob": 1, "eve": 4, "max": 16}, "num_digits": 5}
DP = {  # notebooks/07_security/02_differential_privacy.ipynb, normal mode
    "sizes": (1000, 400), "steps": 1500, "expected_batch": 64, "clip_norm": 10.0,
    "delta": 1e-5, "epsilons": (100.0, 10.0, 3.0, 1.0), "num_samples": 1000}

PROSE = [(f"{attack}_auc_{part}", 2) for attack in ("vae_last", "vae_best", "gan_d", "gan_distance")
         for part in ("mean", "std")] + [(f"{attack}_tpr_mean", 0) for attack in (
             "vae_last", "vae_best", "gan_d", "gan_distance")] + [("vae_best_epoch_mean", 0)]


def mean_std(numbers):
    return float(np.mean(numbers)), float(np.std(numbers, ddof=1) if len(numbers) > 1 else 0.0)


def membership_part(rows, values, quoted, quick=False):
    import keras

    from course_lib import augment, privacy
    from course_lib.data import binarize, load_digits, load_pydoc_text
    from course_lib.data.text import CharVocabulary

    recipe = MEMBERSHIP
    seeds = (0,) if quick else (0, 1, 2)
    vae_epochs, gan_epochs = (5, 5) if quick else (recipe["vae_epochs"], recipe["gan_epochs"])
    where = NOTEBOOKS["01_membership_inference"]
    quoted[where] = {}
    x_train, _ = load_digits(16, "train")
    x_binary = binarize(x_train, seed=0)
    runs = []
    start = time.perf_counter()
    for seed in seeds:
        members, nonmembers, validation = privacy.split_members(len(x_train), recipe["sizes"],
                                                                seed)
        vae = privacy.train_member_vae(x_binary[members], x_binary[validation], vae_epochs,
                                       seed=seed)
        run = {"vae_best_epoch": vae.best_epoch}
        for name, model in (("last", vae.last), ("best", vae.best)):
            report = privacy.attack_report(
                model.elbo(x_binary[members], num_samples=recipe["elbo_draws"]),
                model.elbo(x_binary[nonmembers], num_samples=recipe["elbo_draws"]))
            run[f"vae_{name}_auc"] = report["auc"]
            run[f"vae_{name}_tpr"] = 100 * report["tpr_at_low_fpr"]  # percent
        gan = augment.train_few_shot_gan(x_train[members], "none", gan_epochs, seed)
        samples = keras.ops.convert_to_numpy(gan.sample(recipe["num_samples"], seed=1))
        for name, score, model in (("gan_d", privacy.discriminator_scores, gan),
                                   ("gan_distance", privacy.distance_scores, samples)):
            report = privacy.attack_report(score(model, x_train[members]),
                                           score(model, x_train[nonmembers]))
            run[f"{name}_auc"] = report["auc"]
            run[f"{name}_tpr"] = 100 * report["tpr_at_low_fpr"]
        runs.append(run)
    for stat in runs[0]:
        values[f"membership_{stat}_mean"], values[f"membership_{stat}_std"] = mean_std(
            [run[stat] for run in runs])
    quoted[where].update({f"membership_{key}": f"{values[f'membership_{key}']:.{digits}f}"
                          for key, digits in PROSE})
    seconds = (time.perf_counter() - start) / len(seeds)

    def auc(name):
        return (f"{values[f'membership_{name}_auc_mean']:.2f} +- "
                f"{values[f'membership_{name}_auc_std']:.2f}")

    rows.append(("VAE, ELBO attack: AUC last epoch / early-stopped",
                 f"{auc('vae_last')} / {auc('vae_best')} ({len(seeds)} seeds, best epoch "
                 f"{values['membership_vae_best_epoch_mean']:.0f} of {vae_epochs})", ">= 0.7",
                 values["membership_vae_last_auc_mean"] >= 0.7, seconds))
    rows.append(("GAN: AUC discriminator (white box) / distance",
                 f"{auc('gan_d')} / {auc('gan_distance')}", "reported", True, 0.0))

    start = time.perf_counter()
    text = load_pydoc_text("train")[:recipe["num_chars"]]
    canaries = privacy.make_canaries(recipe["canaries"], recipe["num_digits"], seed=0)
    text = privacy.insert_canaries(text, canaries, seed=0)
    vocabulary = CharVocabulary.from_text(text + privacy.DIGITS)
    model = privacy.train_char_model(vocabulary.encode(text), vocabulary.size,
                                     2 if quick else recipe["char_epochs"])
    found, first_choices = [], []
    digits = recipe["num_digits"]
    for (canary, count), name in zip(canaries.items(), recipe["canaries"]):
        log2_probs = privacy.candidate_log2_probs(model, vocabulary, canary[:-digits], digits)
        key = f"canary_exposure_{name}"
        values[key] = privacy.exposure(log2_probs, int(canary[-digits:]))
        quoted[where][key] = f"{values[key]:.1f}"
        found.append(f"{count}x: {values[key]:.1f}")
        first_choices.append(int(np.argmax(log2_probs)))
    # how many names' prompts answer with the secret inserted most often
    most = int(max(canaries, key=canaries.get)[-digits:])
    values["canary_names_answering_most_repeated"] = sum(c == most for c in first_choices)
    quoted[where]["canary_names_answering_most_repeated"] = (
        f"{values['canary_names_answering_most_repeated']:.0f}")
    rows.append(("secret sharer: exposure (bits of 16.6) by copies",
                 ", ".join(found) + f"; {values['canary_names_answering_most_repeated']} of "
                 f"{len(canaries)} prompts answer the most repeated secret", "reported", True,
                 time.perf_counter() - start))


def dp_part(rows, values, quoted, quick=False):
    from course_lib import dp, privacy
    from course_lib.data import binarize, load_digits
    from course_lib.judge import load_judge
    from course_lib.models.vae import VAE, build_decoder, build_encoder

    recipe = DP
    steps = 20 if quick else recipe["steps"]
    where = NOTEBOOKS["02_differential_privacy"]
    quoted[where] = {}
    x_train, _ = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
    x_binary, test_binary = binarize(x_train, seed=0), binarize(x_test, seed=0)
    members, nonmembers = privacy.split_members(len(x_train), recipe["sizes"], seed=0)
    rate = recipe["expected_batch"] / len(members)
    delta, clip = recipe["delta"], recipe["clip_norm"]

    batch = x_binary[members[:64]]
    noise = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    for key, model in (("dense", dp.mlp_vae(latent_dim=16, seed=0)),
                       ("conv", VAE(build_encoder(latent_dim=16), build_decoder(latent_dim=16)))):
        model(batch[:1])
        plain, separate = dp.gradient_timings(model, batch, noise)
        values[f"dp_slowdown_{key}"] = separate / plain
        quoted[where][f"dp_slowdown_{key}"] = f"{values[f'dp_slowdown_{key}']:.1f}"
    rows.append(("per-example / batch gradient time, dense; conv",
                 f"{values['dp_slowdown_dense']:.1f}x; {values['dp_slowdown_conv']:.1f}x",
                 "reported", True, 0.0))

    judge = load_judge()
    runs = {"none": (0.0, None), "clip": (0.0, clip)}
    for target in recipe["epsilons"]:
        runs[f"eps{target:g}"] = (dp.noise_for_epsilon(target, rate, steps, delta), clip)
    for name, (sigma, clip_norm) in runs.items():
        start = time.perf_counter()
        model = dp.train_dp_vae(x_binary[members], sigma, clip_norm, steps, rate, seed=0)
        seconds = time.perf_counter() - start
        attack = privacy.attack_report(model.elbo(x_binary[members[:400]], num_samples=8),
                                       model.elbo(x_binary[nonmembers], num_samples=8))
        measured = {"epsilon": dp.epsilon(sigma, rate, steps, delta) if sigma > 0 else np.inf,
                    "sigma": sigma, "test_elbo": float(np.mean(model.elbo(test_binary))),
                    "fid": judge.fid(model.sample(recipe["num_samples"], seed=1), x_test),
                    "auc": attack["auc"], "seconds": seconds}
        for stat, value in measured.items():
            if np.isfinite(value):
                values[f"dp_{name}_{stat}"] = value
        for stat, digits in (("test_elbo", 1), ("fid", 1), ("auc", 2), ("epsilon", 2)):
            if np.isfinite(measured[stat]) and (name, stat) != ("clip", "test_elbo"):
                quoted[where][f"dp_{name}_{stat}"] = f"{measured[stat]:.{digits}f}"
        rows.append((f"DP VAE, {name}: epsilon; test ELBO; FID; AUC",
                     f"{measured['epsilon']:.2f} (sigma {sigma:.2f}, delta {delta:g}); "
                     f"{measured['test_elbo']:.1f}; {measured['fid']:.1f}; "
                     f"{measured['auc']:.2f}", "AUC <= 0.6" if sigma > 0 else "reported",
                     measured["auc"] <= 0.6 if sigma > 0 else True, seconds))
    private = [f"eps{target:g}" for target in recipe["epsilons"]]
    rows.append(("epsilon-utility curve: points with FID and epsilon",
                 ", ".join(f"eps {values[f'dp_{n}_epsilon']:.2f}: FID {values[f'dp_{n}_fid']:.1f}"
                           for n in private), ">= 3 points", len(private) >= 3, 0.0))


BENCHMARKS = {"membership": membership_part, "dp": dp_part}


def main():
    return bars.main(__doc__.split("\n\n")[0], BENCHMARKS, CHAPTER)


if __name__ == "__main__":
    sys.exit(main())
