"""Quality bars of chapter 3 (VAE, CVAE, restoration), measured in one normal-mode run.

    python benchmarks/vae.py [--only likelihood,cvae,restoration] [--notebooks] [--quick]

Trains the chapter's models with the notebooks' normal-mode hyperparameters (the RECIPES
below; keep them in step with the notebooks' hyperparameter cells), prints each bar with the
measured value, and writes the numbers that the notebooks' prose quotes to
`benchmarks/results/03_vae.json` (`bars.write_results`):
- likelihood (notebook 2): a VAE trained on dynamically binarised digits; its ELBO and
  importance-weighted bounds (IWAE) on a fixed binarisation of the test digits, in nats per
  image and bits per dimension, next to the data's own floor (the entropy of the coin flips
  of the binarisation); bar: IWAE(K=50) > ELBO, and both below the floor;
- cvae (notebook 3): judge accuracy of 1,000 samples against their requested labels
  (bar: >= 0.95);
- restoration (notebook 4): latent-search (MAP) inpainting against the naive fills, PSNR on
  the missing pixels; bar: the VAE beats the mean fill on both masks and the diffusion fill
  on the digits' block hole (the claims the notebook makes); the other comparisons are
  reported as measured.
`--notebooks` also runs every notebook of the chapter in normal mode.
`--quick` shrinks the runs (2 epochs, 20 search steps) only to check that the script works end
to end; it writes no results.
"""

import sys
import time

import bars  # benchmarks/bars.py, next to this script
import keras
import numpy as np

from course_lib import inpainting
from course_lib.data import binarize, load_digits, load_faces, make_dataset
from course_lib.judge import load_judge
from course_lib.models.vae import CVAE, VAE, bernoulli_entropy, build_decoder, build_encoder
from course_lib.runtime import setup

CHAPTER = "03_vae"
NOTEBOOKS = {name: f"notebooks/03_vae/{name}.ipynb" for name in
             ("02_how_good_is_the_model", "03_conditional_vae", "04_restoration")}
RECIPES = {
    "likelihood": {  # notebooks/03_vae/02_how_good_is_the_model.ipynb
        "seed": 42, "latent_dim": 8, "batch_size": 32, "learning_rate": 3e-3,
        "num_epochs": 40, "iwae_ks": (5, 50), "binarize_seed": 0},
    "cvae": {  # notebooks/03_vae/03_conditional_vae.ipynb
        "seed": 3, "latent_dim": 8, "batch_size": 64, "learning_rate": 2e-3,
        "num_epochs": 30, "num_judged": 1000},
    "restoration": {  # notebooks/03_vae/04_restoration.ipynb
        "seed": 4, "latent_dim": 8, "batch_size": 64, "learning_rate": 2e-3,
        "num_epochs": 30, "face_epochs": 300, "face_latent_dim": 16, "num_restored": 200,
        "block_size": 8, "face_block_size": 12, "missing_fraction": 0.5,
        "search_steps": 300, "search_learning_rate": 0.05, "prior_weight": 1.0},
}
QUICK = {"num_epochs": 2, "face_epochs": 2, "search_steps": 20}


def _train(model_class, images, labels, recipe, image_size=16, latent_dim=None,
           num_epochs=None, batch_size=None, seed=None, binary=False):
    """Builds and fits a (C)VAE as the notebooks do; returns (model, seconds)."""
    latent_dim = latent_dim or recipe["latent_dim"]
    seed = recipe["seed"] if seed is None else seed
    num_classes = 10 if model_class is CVAE else None
    shape = (image_size, image_size, 1)
    model = model_class(build_encoder(shape, latent_dim, num_classes),
                        build_decoder(shape, latent_dim, num_classes), seed=seed)
    model.compile(keras.optimizers.Adam(recipe["learning_rate"]))
    dataset = make_dataset(images, labels, batch_size=batch_size or recipe["batch_size"],
                           seed=seed, binarize=binary)
    start = time.perf_counter()
    model.fit(dataset, epochs=num_epochs or recipe["num_epochs"], verbose=0)
    return model, time.perf_counter() - start


def likelihood(judge, rows, values, quoted, quick=False):
    recipe = {**RECIPES["likelihood"], **({"num_epochs": QUICK["num_epochs"]} if quick else {})}
    setup(seed=recipe["seed"])
    x_train, _ = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
    x_eval = binarize(x_test, seed=recipe["binarize_seed"])  # the notebook's fixed test set
    vae, seconds = _train(VAE, x_train, None, recipe, seed=0, binary=True)
    num_dims = float(np.prod(x_test.shape[1:]))
    to_bits = 1.0 / (num_dims * np.log(2))
    floor = bernoulli_entropy(x_test).mean()  # nats per image no model can beat
    mean_ink = np.clip((x_train.mean(axis=0) + 1) / 2, 1e-3, 1 - 1e-3)
    ink = (x_eval + 1) / 2
    independent = (ink * np.log(mean_ink) + (1 - ink) * np.log(1 - mean_ink)).reshape(
        len(x_eval), -1).sum(axis=1).mean()
    elbo = vae.elbo(x_eval, num_samples=10).mean()
    iwae = {k: vae.iwae_bound(x_eval, num_samples=k).mean() for k in recipe["iwae_ks"]}
    k_max = max(iwae)
    floor8 = bernoulli_entropy(load_digits(8, "test")[0]).mean()  # the scans' own resolution
    # Costs (negated bounds), as the prose writes them: "an ELBO of -99.3 nats"
    costs = {"neg_elbo_nats": -elbo, "elbo_bits_per_dim": -elbo * to_bits,
             f"neg_iwae{k_max}_nats": -iwae[k_max],
             f"iwae{k_max}_bits_per_dim": -iwae[k_max] * to_bits,
             "entropy_floor_nats": floor, "entropy_floor_bits_per_dim": floor * to_bits,
             "entropy_floor_8x8_nats": floor8, "neg_independent_pixels_nats": -independent}
    values.update(costs)
    quoted[NOTEBOOKS["02_how_good_is_the_model"]] = {
        key: f"{value:.3f}" if key.endswith("bits_per_dim") else f"{value:.1f}"
        for key, value in costs.items()}
    rows.append(("test ELBO / IWAE(K=50) / floor, nats per image",
                 f"{elbo:.2f} / {iwae[k_max]:.2f} / {-floor:.2f}", "ELBO<IWAE<floor",
                 elbo < iwae[k_max] < -floor, seconds))
    rows.append(("the same in bits per dimension",
                 f"{-elbo * to_bits:.4f} / {-iwae[k_max] * to_bits:.4f} / {floor * to_bits:.4f}",
                 "(reported)", True, 0))


def cvae(judge, rows, values, quoted, quick=False):
    recipe = {**RECIPES["cvae"], **({"num_epochs": QUICK["num_epochs"]} if quick else {})}
    setup(seed=recipe["seed"])
    x_train, y_train = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
    model, seconds = _train(CVAE, x_train, y_train, recipe, binary=True)
    labels = np.arange(recipe["num_judged"]) % 10
    report = judge.report(model.sample(len(labels), labels=labels, seed=1), x_test, labels=labels)
    values.update({"cvae_label_accuracy": report["label_accuracy"], "cvae_fid": report["fid"]})
    quoted[NOTEBOOKS["03_conditional_vae"]] = {
        "cvae_label_accuracy": f"{report['label_accuracy']:.2f}",
        "cvae_fid": f"{report['fid']:.1f}"}
    rows.append(("CVAE label accuracy / FID (1,000 samples)",
                 f"{report['label_accuracy']:.3f} / {report['fid']:.1f}", ">= 0.95",
                 report["label_accuracy"] >= 0.95, seconds))


def _restoration_table(vae, images, masks, recipe):
    """{(mask, method): mean masked PSNR} for the naive fills and the latent search."""
    table = {}
    for mask_name, mask in masks.items():
        fills = {"mean": inpainting.naive_fill(images, mask, "mean"),
                 "diffusion": inpainting.naive_fill(images, mask, "diffuse"),
                 "vae": inpainting.latent_search_fill(
                     vae, images, mask, steps=recipe["search_steps"],
                     learning_rate=recipe["search_learning_rate"],
                     prior_weight=recipe["prior_weight"])}
        for method, filled in fills.items():
            table[mask_name, method] = float(inpainting.masked_psnr(images, filled, mask).mean())
    return table


def restoration(judge, rows, values, quoted, quick=False):
    recipe = {**RECIPES["restoration"], **(QUICK if quick else {})}
    setup(seed=recipe["seed"])
    x_train, _ = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
    x_test = x_test[:recipe["num_restored"]]
    vae, seconds = _train(VAE, x_train, None, recipe)
    masks = {"block": inpainting.block_mask(x_test.shape, size=recipe["block_size"], seed=0),
             "random": inpainting.random_mask(x_test.shape, recipe["missing_fraction"], seed=1)}
    digits = _restoration_table(vae, x_test, masks, recipe)
    faces_train, faces_test = load_faces(32, "train"), load_faces(32, "test")
    face_vae, face_seconds = _train(VAE, faces_train, None, recipe, image_size=32,
                                    latent_dim=recipe["face_latent_dim"],
                                    num_epochs=recipe["face_epochs"], batch_size=16, seed=5)
    face_masks = {
        "block": inpainting.block_mask(faces_test.shape, size=recipe["face_block_size"], seed=2),
        "random": inpainting.random_mask(faces_test.shape, recipe["missing_fraction"], seed=3)}
    faces = _restoration_table(face_vae, faces_test, face_masks, recipe)
    texts = {}
    for subject, table in (("digits", digits), ("faces", faces)):
        for (mask_name, method), psnr in table.items():
            key = f"{subject}_{mask_name}_{method}_psnr"
            values[key] = psnr
            texts[key] = f"{psnr:.1f}"
    quoted[NOTEBOOKS["04_restoration"]] = texts
    for subject, table, secs in (("digits", digits, seconds), ("faces", faces, face_seconds)):
        for mask_name in ("block", "random"):
            vae_psnr = table[mask_name, "vae"]
            best = max(table[mask_name, "mean"], table[mask_name, "diffusion"])
            claimed = mask_name == "block" and subject == "digits"
            rows.append((f"{subject}, {mask_name} mask: PSNR on the hole (dB)",
                         f"VAE {vae_psnr:.2f} / diffusion {table[mask_name, 'diffusion']:.2f}"
                         f" / mean {table[mask_name, 'mean']:.2f}",
                         "VAE > both" if claimed else "VAE > mean",
                         vae_psnr > (best if claimed else table[mask_name, "mean"]), secs))


BENCHMARKS = {"likelihood": likelihood, "cvae": cvae, "restoration": restoration}


def main():
    return bars.main(__doc__.split("\n\n")[0], BENCHMARKS, CHAPTER, before=lambda: (load_judge(),))


if __name__ == "__main__":
    sys.exit(main())
