"""Quality bars of chapter 7 (security and privacy), measured with the notebooks' recipes.

    python benchmarks/security.py [--only membership,dp,watermark,fakes,extraction]
                                  [--notebooks] [--quick]

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
- watermark (notebook 3): the DWT-DCT image watermark (`watermark.embed_image_watermark`,
  32 bits, strength 24, key 7) in 200 photo patches of 128 x 128 (`load_photo_patches`, seed
  0); bit accuracy and detection rate (>= `detection_threshold(32, 1e-3)` matching bits)
  after no attack, JPEG 75 and 50, Gaussian noise (sigma 5 grey levels), a crop to the
  top-left 75% (on the block grid) and off it (3 and 5 pixels in), and resizing by 1/2 and
  back; false positives on 1,000 unmarked patches (seed 1) read with the same key; PSNR and
  JPEG-75 accuracy at strengths 12, 16, 24 and 32. Tree-Ring on chapter 2's model in its
  normal recipe (T = 1000, v-prediction, 30 epochs; `fit_digit_diffusion`): two keys in the
  starting noise, the disc of radius 3 (zero frequency included) and the rings from radius 3
  to 5; 500 marked and 500 plain DDIM-100 samples (the plain ones from the marked ones' base
  noise, so that the FIDs are paired), each inverted with 100 DDIM steps; judge
  FID of each set and AUC of the key distance; for the rings, AUC and TPR at 1% FPR after no
  attack, noise (sigma 0.2), a one-pixel shift, a 90-degree rotation and regeneration
  (`model.edit`, strength 0.5). The green-list text watermark on a GRU character model (256
  units, 15 epochs on the first 200,000 characters of the Python help text): 200 samples of
  200 characters at delta 1, 2 and 4 (gamma 1/2), z-scores with each pair counted once; the
  threshold is the larger of 2.33 and the 99th percentile of the z-scores of 200-character
  windows of the held-out help text; TPR at that threshold, KL cost in bits per character,
  and the TPR after 20% of the characters are replaced. Provenance: Ed25519 signatures
  (`provenance.sign`/`verify`) of a generated digit, and each tampering case.
  Bars: JPEG-75 bit accuracy >= 95% and false positives <= 1%; Tree-Ring AUC >= 0.9 (the
  rings); text TPR >= 0.9 at 1% FPR on 200 characters; every tampering detected, untouched
  files verified.
- fakes (notebook 4): chapter 3's VAE (50 epochs), chapter 1's DCGAN (50 epochs) and
  chapter 2's diffusion model (30 epochs, T = 1000, sampled with DDIM-50) trained on the
  1,438 training digits (`forensics.train_generators`, seed 0); a detector
  (`forensics.train_detector`, 10 epochs) trained on 1,000 training digits against 1,000
  samples of one generator, or of two, and scored by AUC on the 359 test digits against 359
  fresh samples of each generator; over detector seeds 0, 1, 2. The same detectors on their
  own generator's test samples after blurring (resized to 8 x 8 and back), after Gaussian
  noise (sigma 0.1), and after an evasion attack (`forensics.evade`, PGD, 10 steps, at most
  0.1 per pixel) scored by the detector it was computed on and by a second detector trained
  the same way with seed + 100 (transfer; its AUC on the clean samples too). Judge FID of
  each generator's 1,000 samples against the training digits.
- extraction (notebook 4): the victim is the judge (`load_judge`); the copy
  (`extraction.extract`, about 300 steps of Adam) is trained on 30, 100, 300 or 1,000
  queries from four pools: training digits, DCGAN samples (the DCGAN of `fakes`, or one
  trained here), grey photo patches and uniform noise, answered with probabilities, the top
  label only, or probabilities rounded to 0.1; agreement with the victim on the 359 test
  digits, over copy seeds 0, 1, 2. Ownership: the judge's network and recipe trained with
  and without 50 keyed trigger images (each repeated 5 times), seeds 0, 1, 2: test accuracy
  of both, trigger accuracy of the marked victim, of copies extracted from it with 1,000
  digit, photo or noise queries (probabilities), and of its weights fine-tuned for 5 epochs
  on 300 digits (a stolen model, adapted); the binomial p-value of each.
  Bars: reported (agreement against query budget), and the marked victim's triggers found
  with p < 1e-6.
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
             for name in ("01_membership_inference", "02_differential_privacy",
                          "03_watermarks_and_provenance", "04_fakes_and_model_theft")}
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

WATERMARK = {  # notebooks/07_security/03_watermarks_and_provenance.ipynb, normal mode
    "num_bits": 32, "strength": 24.0, "patch": 128, "num_marked": 200, "num_unmarked": 1000,
    "false_positive_rate": 1e-3, "strengths": (12.0, 16.0, 24.0, 32.0),
    "diffusion_epochs": 30, "num_timesteps": 1000, "rings": (3.0, 5.0), "disc": 3.0,
    "num_trees": 500, "ddim_steps": 100, "key": 7, "char_epochs": 15, "num_chars": 200_000,
    "gamma": 0.5,
    "deltas": (1.0, 2.0, 4.0), "num_texts": 200, "text_length": 200, "substituted": 0.2}

THEFT = {  # notebooks/07_security/04_fakes_and_model_theft.ipynb, normal mode
    "vae_epochs": 50, "gan_epochs": 50, "diffusion_epochs": 30, "num_timesteps": 1000,
    "ddim_steps": 50, "num_fakes": 1000, "detector_epochs": 10, "seeds": (0, 1, 2),
    "blur_size": 8, "noise": 0.1, "epsilon": 0.1, "budgets": (30, 100, 300, 1000),
    "pools": ("digits", "generated", "photos", "noise"), "copy_steps": 300,
    "num_triggers": 50, "repeats": 5, "trigger_key": 1, "finetune_digits": 300,
    "finetune_epochs": 5}
GENERATORS = ("vae", "dcgan", "diffusion")
THEFT_PROSE = (  # the keys notebook 4's prose quotes
    {f"fakes_fid_{g}" for g in GENERATORS}
    | {f"fakes_auc_{a}_on_{b}" for a in GENERATORS for b in GENERATORS}
    | {"fakes_auc_vae_dcgan_on_diffusion", "fakes_auc_vae_diffusion_on_dcgan",
       "fakes_auc_vae_diffusion_on_dcgan_std", "fakes_auc_dcgan_diffusion_on_vae",
       "fakes_auc_dcgan_twin", "fakes_auc_diffusion_twin"}
    | {f"fakes_auc_{g}_{attack}" for g in GENERATORS
       for attack in ("blur", "noise", "evade", "evade_transfer")}
    | {f"extraction_{pool}_{mode}_{n}" for pool, mode, n in (
        ("digits", "probabilities", 30), ("digits", "probabilities", 100),
        ("digits", "probabilities", 1000), ("digits", "labels", 30), ("digits", "labels", 1000),
        ("digits", "rounded", 30), ("digits", "rounded", 1000),
        ("generated", "probabilities", 30), ("generated", "probabilities", 1000),
        ("generated", "labels", 30), ("generated", "rounded", 30),
        ("photos", "probabilities", 100), ("photos", "probabilities", 1000),
        ("photos", "labels", 100), ("photos", "labels", 1000),
        ("noise", "probabilities", 1000))}
    | {"extraction_rounded_changed", "ownership_clean_accuracy", "ownership_victim_accuracy"}
    | {f"ownership_{name}_triggers" for name in ("clean", "victim", "digits", "photos", "noise",
                                                 "finetuned")})
_GENERATED = {}  # the fakes part's samples, reused by the extraction part in the same run


def image_attacks(watermark):
    """The attacks of notebook 3 on uint8 images, by name."""
    return {"none": lambda x: x, "JPEG 75": lambda x: watermark.jpeg(x, 75),
            "JPEG 50": lambda x: watermark.jpeg(x, 50),
            "noise 5": lambda x: watermark.add_noise(x, 5.0),
            "crop on grid": lambda x: watermark.crop(x, 0.75),
            "crop off grid": lambda x: watermark.crop(x, 0.75, (3, 5)),
            "resize 1/2": lambda x: watermark.resize_back(x, 0.5)}


def tree_ring_attacks(model, seed=0):
    """The attacks of notebook 3 on samples in [-1, 1], by name."""
    rng = np.random.default_rng(seed)
    return {"none": lambda x: x,
            "noise 0.2": lambda x: np.clip(x + rng.normal(0, 0.2, x.shape), -1, 1),
            "shift 1 px": lambda x: np.roll(x, 1, axis=2),
            "rotate 90": lambda x: np.rot90(x, 1, axes=(1, 2)),
            "regenerated": lambda x: model.edit(x, strength=0.5, num_steps=25, seed=seed)}


def text_windows(ids, length):
    """Consecutive windows of `length` tokens, (n, length)."""
    count = len(ids) // length
    return np.asarray(ids[:count * length]).reshape(count, length)


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


def watermark_part(rows, values, quoted, quick=False):
    from course_lib import privacy, provenance, watermark
    from course_lib.data import load_digits, load_pydoc_text
    from course_lib.data.images import load_photo_patches
    from course_lib.data.text import CharVocabulary
    from course_lib.judge import load_judge
    from course_lib.models.diffusion import fit_digit_diffusion

    recipe = dict(WATERMARK)
    if quick:
        recipe.update(num_marked=10, num_unmarked=50, diffusion_epochs=1, num_timesteps=100,
                      num_trees=16, ddim_steps=10, char_epochs=1, num_chars=20_000,
                      num_texts=8)
    where = NOTEBOOKS["03_watermarks_and_provenance"]
    quoted[where] = {}
    bits, strength = recipe["num_bits"], recipe["strength"]

    def uint8(x):
        return np.round((x + 1) * 127.5).astype(np.uint8)

    # The image watermark
    start = time.perf_counter()
    photos = uint8(load_photo_patches(recipe["patch"], recipe["num_marked"], "all", seed=0))
    threshold = watermark.detection_threshold(bits, recipe["false_positive_rate"])
    key = recipe["key"]  # one key: the service's
    marked = [watermark.embed_image_watermark(x, key, bits, strength) for x in photos]
    values["image_psnr"] = float(np.mean([10 * np.log10(255 ** 2 / np.mean(
        (m.astype(float) - x) ** 2)) for m, x in zip(marked, photos)]))
    quoted[where]["image_psnr"] = f"{values['image_psnr']:.1f}"
    for name, attack in image_attacks(watermark).items():
        matches = np.array([watermark.bit_matches(attack(m), key, bits, strength)
                            for m in marked])
        slug = name.replace(" ", "_").replace("/", "_")
        accuracy, detected = matches.mean() / bits, np.mean(matches >= threshold)
        # percentages, the unit the notebook's table uses
        values[f"image_{slug}_bit_accuracy"] = float(100 * accuracy)
        values[f"image_{slug}_detected"] = float(100 * detected)
        quoted[where][f"image_{slug}_bit_accuracy"] = f"{100 * accuracy:.1f}"
        quoted[where][f"image_{slug}_detected"] = f"{100 * detected:.0f}"
        bar = name == "JPEG 75"
        rows.append((f"image, {name}: bits right; detected", f"{accuracy:.1%}; {detected:.1%}",
                     ">= 95% bits" if bar else "reported", accuracy >= 0.95 if bar else True,
                     0.0))
    unmarked = uint8(load_photo_patches(recipe["patch"], recipe["num_unmarked"], "all", seed=1))
    matches = np.array([watermark.bit_matches(x, key, bits, strength) for x in unmarked])
    flagged = float(np.mean(matches >= threshold))
    values["image_false_positives"], values["image_threshold"] = 100 * flagged, threshold
    quoted[where]["image_false_positives"] = f"{100 * flagged:.1f}"
    rows.append((f"image, {len(unmarked)} unmarked: flagged",
                 f"{flagged:.2%} (>= {threshold} of {bits} bits)", "<= 1%", flagged <= 0.01,
                 time.perf_counter() - start))
    for level in recipe["strengths"]:
        some = photos[:50]
        again = [watermark.embed_image_watermark(x, key, bits, level) for x in some]
        psnr = np.mean([10 * np.log10(255 ** 2 / np.mean((m.astype(float) - x) ** 2))
                        for m, x in zip(again, some)])
        accuracy = np.mean([watermark.bit_matches(watermark.jpeg(m, 75), key, bits, level)
                            for m in again]) / bits
        values[f"image_strength{level:g}_psnr"] = float(psnr)
        values[f"image_strength{level:g}_jpeg75"] = float(accuracy)
        rows.append((f"image, strength {level:g}: PSNR; JPEG-75 bits",
                     f"{psnr:.1f} dB; {accuracy:.1%}", "reported", True, 0.0))

    # Tree-Ring
    start = time.perf_counter()
    x_train, _ = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
    model = fit_digit_diffusion(x_train, recipe["diffusion_epochs"], recipe["num_timesteps"])
    train_seconds = time.perf_counter() - start
    n, steps = recipe["num_trees"], recipe["ddim_steps"]
    # the marked sets' base noise (seed 1): each plain sample has a marked twin
    noise_plain = np.random.default_rng(1).standard_normal((n, 16, 16, 1)).astype(np.float32)
    samples_plain = watermark.sample_from_noise(model, noise_plain, steps)
    inverted_plain = watermark.ddim_invert(model, samples_plain, steps)
    judge = load_judge()
    values["tree_ring_fid_plain"] = judge.fid(samples_plain, x_test)
    quoted[where]["tree_ring_fid_plain"] = f"{values['tree_ring_fid_plain']:.1f}"
    keys = {"disc": watermark.tree_ring_key((16, 16, 1), recipe["disc"], seed=0),
            "rings": watermark.tree_ring_key((16, 16, 1), recipe["rings"][1], seed=0,
                                             inner=recipe["rings"][0])}
    for name, (mask, ring_key) in keys.items():
        noise_marked = watermark.tree_ring_noise(n, (16, 16, 1), mask, ring_key, seed=1)
        samples_marked = watermark.sample_from_noise(model, noise_marked, steps)
        report = privacy.attack_report(
            watermark.tree_ring_score(watermark.ddim_invert(model, samples_marked, steps),
                                      mask, ring_key),
            watermark.tree_ring_score(inverted_plain, mask, ring_key))
        values[f"tree_ring_{name}_fid"] = judge.fid(samples_marked, x_test)
        values[f"tree_ring_{name}_none_auc"] = report["auc"]
        quoted[where][f"tree_ring_{name}_fid"] = f"{values[f'tree_ring_{name}_fid']:.1f}"
        quoted[where][f"tree_ring_{name}_none_auc"] = f"{report['auc']:.2f}"
        rows.append((f"Tree-Ring {name} ({mask.sum()} freq.): FID; AUC",
                     f"{values[f'tree_ring_{name}_fid']:.1f} (plain "
                     f"{values['tree_ring_fid_plain']:.1f}); {report['auc']:.3f} ({n} samples "
                     f"each, training {train_seconds:.0f} s)", "reported", True,
                     time.perf_counter() - start))
    # the annulus is the key the notebook keeps: attacked
    mask, ring_key = keys["rings"]
    for name, attack in tree_ring_attacks(model).items():
        start = time.perf_counter()
        scores = [watermark.tree_ring_score(watermark.ddim_invert(model, attack(x), steps),
                                            mask, ring_key)
                  for x in (samples_marked, samples_plain)]
        report = privacy.attack_report(*scores)
        slug = name.replace(" ", "_").replace(".", "")
        values[f"tree_ring_{slug}_auc"] = report["auc"]
        values[f"tree_ring_{slug}_tpr"] = 100 * report["tpr_at_low_fpr"]  # percent
        quoted[where][f"tree_ring_{slug}_auc"] = f"{report['auc']:.2f}"
        quoted[where][f"tree_ring_{slug}_tpr"] = f"{100 * report['tpr_at_low_fpr']:.0f}"
        bar = name == "none"
        rows.append((f"Tree-Ring rings, {name}: AUC; TPR 1%",
                     f"{report['auc']:.3f}; {report['tpr_at_low_fpr']:.1%}",
                     ">= 0.9" if bar else "reported", report["auc"] >= 0.9 if bar else True,
                     time.perf_counter() - start))

    # The text watermark
    start = time.perf_counter()
    train_text = load_pydoc_text("train")
    vocabulary = CharVocabulary.from_text(train_text)
    model = privacy.train_char_model(vocabulary.encode(train_text[:recipe["num_chars"]]),
                                     vocabulary.size, recipe["char_epochs"])
    green = watermark.green_lists(vocabulary.size, recipe["gamma"], key=42)
    human = np.concatenate([text_windows(vocabulary.encode(load_pydoc_text(split)),
                                         recipe["text_length"] + 1)
                            for split in ("validation", "test")])
    human_z = watermark.green_z_score(human, green)
    # 1% false positives: the standard normal's 2.33, or the help text's own 99th percentile
    # if its z-scores run higher (a fixed key colours the same common pairs in every window)
    z_threshold = max(2.326, float(np.quantile(human_z, 0.99)))
    values["text_human_z_mean"], values["text_threshold"] = float(human_z.mean()), z_threshold
    quoted[where]["text_threshold"] = f"{z_threshold:.2f}"
    rows.append((f"text: {len(human)} human texts, z mean; threshold",
                 f"{human_z.mean():.2f}; {z_threshold:.2f}", "reported", True,
                 time.perf_counter() - start))
    prompt = vocabulary.encode("The ")
    for delta in (0.0, *recipe["deltas"]):
        start = time.perf_counter()
        ids, kl = watermark.generate_text(model, prompt, recipe["text_length"],
                                          recipe["num_texts"], green, delta, seed=1)
        ids = np.concatenate([np.tile(prompt[-1:], (len(ids), 1)), ids], axis=1)
        z = watermark.green_z_score(ids, green)
        edited = watermark.green_z_score(
            watermark.substitute(ids, recipe["substituted"], vocabulary.size, seed=2), green)
        slug = f"text_delta{delta:g}"
        tpr, edited_tpr = float(np.mean(z > z_threshold)), float(np.mean(edited > z_threshold))
        values.update({f"{slug}_tpr": 100 * tpr, f"{slug}_z_mean": float(z.mean()),
                       f"{slug}_kl_bits": float(kl.mean()), f"{slug}_edited_tpr": 100 * edited_tpr})
        quoted[where].update({f"{slug}_tpr": f"{100 * tpr:.0f}",
                              f"{slug}_kl_bits": f"{kl.mean():.2f}",
                              f"{slug}_edited_tpr": f"{100 * edited_tpr:.0f}",
                              f"{slug}_z_mean": f"{z.mean():.1f}"})
        bar = delta == 2.0
        rows.append((f"text, delta {delta:g}: TPR; KL bits; edited TPR",
                     f"{tpr:.1%}; {kl.mean():.3f}; {edited_tpr:.1%}",
                     ">= 0.9 at 1% FPR" if bar else "reported", tpr >= 0.9 if bar else True,
                     time.perf_counter() - start))

    # Provenance
    start = time.perf_counter()
    image = uint8(samples_marked[0, ..., 0])
    key_pair = provenance.new_key()
    trusted = [provenance.public_key_hex(key_pair)]
    signed = provenance.sign(image, key_pair, "DiffusionModel ddim-50", seed=1,
                             settings={"num_steps": steps})
    cases = tamper_cases(provenance, image, signed, trusted)
    caught = {name: not ok for name, ok in cases.items() if name != "untouched"}
    values["provenance_caught"] = sum(caught.values())
    values["provenance_cases"] = len(caught)
    rows.append(("provenance: tampering caught; untouched ok",
                 f"{sum(caught.values())} of {len(caught)} ({', '.join(caught)}); "
                 f"{cases['untouched']}", "all; True",
                 all(caught.values()) and cases["untouched"], time.perf_counter() - start))


def tamper_cases(provenance, image, signed, trusted):
    """Whether each case verifies: the untouched image and four kinds of tampering."""
    import base64
    import copy

    def verifies(x, manifest):
        try:
            provenance.verify(x, manifest, trusted)
            return True
        except provenance.ProvenanceError:
            return False

    pixels = image.copy()
    pixels[0, 0] ^= 1
    metadata = copy.deepcopy(signed)
    metadata["manifest"]["seed"] = signed["manifest"]["seed"] + 1
    raw = bytearray(base64.b64decode(signed["signature"]))
    raw[0] ^= 1
    signature = dict(signed, signature=base64.b64encode(bytes(raw)).decode())
    forged = provenance.sign(pixels, provenance.new_key(), "someone else", seed=0)
    return {"untouched": verifies(image, signed), "pixels": verifies(pixels, signed),
            "metadata": verifies(image, metadata), "signature": verifies(image, signature),
            "key": verifies(pixels, forged)}


def theft_recipe(quick):
    recipe = dict(THEFT)
    if quick:
        recipe.update(vae_epochs=2, gan_epochs=2, diffusion_epochs=1, num_timesteps=100,
                      ddim_steps=5, num_fakes=200, detector_epochs=2, seeds=(0,),
                      budgets=(30, 300), copy_steps=50)
    return recipe


def generated_digits(recipe, x_train):
    """{generator: samples}: 1,000 + 359 samples of each of the three generators."""
    from course_lib import forensics

    if not _GENERATED:
        models = forensics.train_generators(x_train, recipe["vae_epochs"], recipe["gan_epochs"],
                                            recipe["diffusion_epochs"], recipe["num_timesteps"])
        _GENERATED.update(forensics.generate(models, recipe["num_fakes"] + 359,
                                             recipe["ddim_steps"], seed=1))
    return _GENERATED


def fakes_part(rows, values, quoted, quick=False):
    from course_lib import forensics
    from course_lib.data import load_digits
    from course_lib.judge import load_judge
    from course_lib.privacy import attack_report

    recipe = theft_recipe(quick)
    where = NOTEBOOKS["04_fakes_and_model_theft"]
    quoted.setdefault(where, {})
    x_train, _ = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
    start = time.perf_counter()
    samples = generated_digits(recipe, x_train)
    seconds = time.perf_counter() - start
    judge, n = load_judge(), recipe["num_fakes"]
    train = {name: images[:n] for name, images in samples.items()}
    test = {name: images[n:n + len(x_test)] for name, images in samples.items()}
    for name, images in train.items():
        slug = name.lower()
        values[f"fakes_fid_{slug}"] = judge.fid(images, x_train[:n])
        quoted[where][f"fakes_fid_{slug}"] = f"{values[f'fakes_fid_{slug}']:.1f}"
        rows.append((f"{name}: judge FID of {n} samples", f"{values[f'fakes_fid_{slug}']:.1f}",
                     "reported", True, seconds / 3))
    names = list(train)
    sources = [(a,) for a in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    attacks = ("blur", "noise", "evade", "evade_transfer", "twin")
    tables, laundered = [], {name: {attack: [] for attack in attacks} for name in names}
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for seed in recipe["seeds"]:
        detectors = {}
        for source in sources:
            fakes = np.concatenate([train[name] for name in source])
            detectors["+".join(source)] = forensics.train_detector(
                x_train[:n], fakes, recipe["detector_epochs"], seed=seed)
        tables.append(forensics.cross_aucs(detectors, x_test, test))
        for name in names:
            detector = detectors[name]
            twin = forensics.train_detector(x_train[:n], train[name], recipe["detector_epochs"],
                                            seed=seed + 100)  # another faker's target
            real = forensics.detector_scores(detector, x_test)
            noisy = np.clip(test[name] + rng.normal(0, recipe["noise"], test[name].shape), -1, 1)
            evaded = forensics.evade(detector, test[name], recipe["epsilon"])
            for attack, images, judge_of in (
                    ("blur", forensics.blur(test[name], recipe["blur_size"]), detector),
                    ("noise", noisy, detector), ("evade", evaded, detector),
                    ("evade_transfer", evaded, twin), ("twin", test[name], twin)):
                scores = forensics.detector_scores(judge_of, images)
                reals = real if judge_of is detector else forensics.detector_scores(twin, x_test)
                laundered[name][attack].append(attack_report(scores, reals)["auc"])
    seconds = time.perf_counter() - start
    for detector in tables[0]:
        for source in names:
            mean, std = mean_std([table[detector][source] for table in tables])
            slug = f"fakes_auc_{detector.lower().replace('+', '_')}_on_{source.lower()}"
            values[slug], values[slug + "_std"] = mean, std
            quoted[where][slug] = f"{mean:.2f}"
            quoted[where][slug + "_std"] = f"{std:.2f}"
            rows.append((f"detector trained on {detector}: AUC on {source}",
                         f"{mean:.3f} +- {std:.3f}", "reported", True,
                         seconds / len(tables[0]) / len(names)))
    for name in names:
        for attack, aucs in laundered[name].items():
            slug = f"fakes_auc_{name.lower()}_{attack}"
            values[slug], values[slug + "_std"] = mean_std(aucs)
            quoted[where][slug] = f"{values[slug]:.2f}"
            what = ("a second detector (seed + 100): AUC on its samples" if attack == "twin"
                    else f"detector for {name}, its samples after {attack}: AUC")
            rows.append((what if attack != "twin" else f"{name}: {what}",
                         f"{values[slug]:.3f} +- {values[slug + '_std']:.3f}", "reported", True,
                         0.0))
    quoted[where] = {key: text for key, text in quoted[where].items() if key in THEFT_PROSE}


def extraction_part(rows, values, quoted, quick=False):
    from course_lib import extraction
    from course_lib.data import load_digits
    from course_lib.judge import load_judge

    recipe = theft_recipe(quick)
    where = NOTEBOOKS["04_fakes_and_model_theft"]
    quoted.setdefault(where, {})
    x_train, y_train = load_digits(16, "train")
    x_test, y_test = load_digits(16, "test")
    judge = load_judge()
    largest = max(recipe["budgets"])
    rng = np.random.default_rng(0)
    pools = {"digits": x_train[rng.permutation(len(x_train))[:largest]],
             "generated": generated_digits(recipe, x_train)["DCGAN"][:largest],
             "photos": extraction.gray_photo_queries(largest, seed=0),
             "noise": rng.uniform(-1, 1, (largest, 16, 16, 1)).astype(np.float32)}
    victim_labels = judge.predict(x_test).argmax(axis=1)
    for pool in recipe["pools"]:
        for mode in extraction.MODES:
            start = time.perf_counter()
            means = []
            for budget in recipe["budgets"]:
                agreements = [extraction.agreement(
                    extraction.extract(judge.predict, pools[pool][:budget], mode,
                                       recipe["copy_steps"], seed=seed), victim_labels, x_test)
                    for seed in recipe["seeds"]]
                mean, std = mean_std(agreements)
                slug = f"extraction_{pool}_{mode}_{budget}"
                values[slug], values[slug + "_std"] = 100 * mean, 100 * std
                quoted[where][slug] = f"{100 * mean:.0f}"
                means.append(f"{mean:.1%}")
            rows.append((f"copy, {pool} queries, {mode}: agreement at "
                         + "/".join(map(str, recipe["budgets"])), " ".join(means), "reported",
                         True, time.perf_counter() - start))
    rounded = extraction.victim_answers(judge.predict(x_test), "rounded").argmax(axis=1)
    values["extraction_rounded_changed"] = 100 * float(np.mean(rounded != victim_labels))
    quoted[where]["extraction_rounded_changed"] = f"{values['extraction_rounded_changed']:.1f}"

    # Ownership: a trigger set trained into the victim
    start = time.perf_counter()
    triggers = extraction.trigger_set(recipe["num_triggers"], key=recipe["trigger_key"])
    found = {name: [] for name in ("clean", "victim", "digits", "photos", "noise",
                                   "finetuned")}
    accuracy = {"clean": [], "victim": []}
    for seed in recipe["seeds"]:
        clean = extraction.train_victim(x_train, y_train, None, seed=seed)
        victim = extraction.train_victim(x_train, y_train, triggers, recipe["repeats"],
                                         seed=seed)
        for name, model in (("clean", clean), ("victim", victim)):
            accuracy[name].append(extraction.agreement(model, y_test, x_test))
            found[name].append(extraction.trigger_accuracy(model, triggers))
        for pool in ("digits", "photos", "noise"):
            copy = extraction.extract(victim, pools[pool][:largest], "probabilities",
                                      recipe["copy_steps"], seed=seed)
            found[pool].append(extraction.trigger_accuracy(copy, triggers))
        stolen = extraction.fine_tune(victim, x_train[:recipe["finetune_digits"]],
                                      y_train[:recipe["finetune_digits"]],
                                      recipe["finetune_epochs"], seed=seed)
        found["finetuned"].append(extraction.trigger_accuracy(stolen, triggers))
    seconds = time.perf_counter() - start
    for name, rates in accuracy.items():
        mean, std = mean_std(rates)
        values[f"ownership_{name}_accuracy"] = 100 * mean
        values[f"ownership_{name}_accuracy_std"] = 100 * std
        quoted[where][f"ownership_{name}_accuracy"] = f"{100 * mean:.1f}"
    rows.append(("test accuracy without / with the trigger set",
                 f"{values['ownership_clean_accuracy']:.1f}% / "
                 f"{values['ownership_victim_accuracy']:.1f}%", "reported", True, seconds))
    for name, rates in found.items():
        matches = [round(rate * recipe["num_triggers"]) for rate in rates]
        p_values = [extraction.ownership_p_value(m, recipe["num_triggers"]) for m in matches]
        values[f"ownership_{name}_triggers"] = 100 * float(np.mean(rates))
        values[f"ownership_{name}_p_max"] = max(p_values)
        quoted[where][f"ownership_{name}_triggers"] = f"{100 * np.mean(rates):.0f}"
        bar = name == "victim"
        rows.append((f"triggers matched by the {name} model, per seed; largest p",
                     " ".join(f"{m}/{recipe['num_triggers']}" for m in matches)
                     + f"; {max(p_values):.2g}", "p < 1e-6" if bar else "reported",
                     max(p_values) < 1e-6 if bar else True, 0.0))
    quoted[where] = {key: text for key, text in quoted[where].items() if key in THEFT_PROSE}


BENCHMARKS = {"membership": membership_part, "dp": dp_part, "watermark": watermark_part,
              "fakes": fakes_part, "extraction": extraction_part}


def main():
    return bars.main(__doc__.split("\n\n")[0], BENCHMARKS, CHAPTER)


if __name__ == "__main__":
    sys.exit(main())
