"""Quality bars of chapter 1 (GANs), measured in one normal-mode run.

    python benchmarks/gan.py [--only dcgan,cgan,enhancement] [--notebooks]

Trains the chapter's models with the notebooks' normal-mode hyperparameters (the RECIPES
below; keep them in step with the notebooks' hyperparameter cells) and prints each bar with
the measured value:
- DCGAN on digits: judge FID of 1,000 samples falls >= 80% from the untrained generator's;
  all 10 classes appear among them, none above 20%;
- conditional GAN on digits: judge accuracy of 1,000 samples (100 per class) against their
  requested labels >= 0.90;
- enhancement (pix2pix): the GAN beats bicubic upsampling in PSNR and SSIM on held-out
  photo patches.
`--notebooks` also runs every notebook of the chapter in normal mode and checks that each
finishes within 15 minutes (this takes up to an hour on a 2-core CPU).
"""

import sys
import time

import bars  # benchmarks/bars.py, next to this script
import keras
import numpy as np

from course_lib import metrics
from course_lib.data import load_digits, load_photo_patches, make_dataset
from course_lib.judge import load_judge
from course_lib.models.gan import GAN, ConditionalGAN, build_discriminator, build_generator
from course_lib.models.pix2pix import (
    Pix2Pix,
    build_patch_discriminator,
    build_unet_generator,
    degrade,
)
from course_lib.runtime import setup

# The notebooks' normal-mode settings.
RECIPES = {
    "dcgan": {  # notebooks/01_gan/02_dcgan.ipynb
        "seed": 0, "latent_dim": 64, "num_epochs": 20, "batch_size": 64,
        "g_filters": (128, 64), "d_filters": (64, 128), "learning_rate": 2e-4, "beta_1": 0.5,
    },
    "cgan": {  # notebooks/01_gan/03_conditional_and_wgan_gp.ipynb
        "seed": 0, "latent_dim": 32, "num_epochs": 10, "batch_size": 32,
        "g_filters": (64, 32), "d_filters": (32, 64), "learning_rate": 1e-3, "beta_1": 0.5,
    },
    "enhancement": {  # notebooks/01_gan/04_image_enhancement.ipynb
        "seed": 0, "patch_size": 32, "num_train": 1600, "num_test": 300, "scale": 2,
        "noise_std": 0.2, "num_epochs": 15, "batch_size": 16, "filters": (32, 64, 128),
        "d_filters": (32, 64), "g_learning_rate": 2e-3, "d_learning_rate": 1e-3,
        "beta_1": 0.5, "l1_weight": 10.0,
    },
}


def _adam(learning_rate, beta_1):
    return keras.optimizers.Adam(learning_rate, beta_1=beta_1)


def _gan(recipe, num_classes=None):
    keras.utils.set_random_seed(recipe["seed"])
    model_class = ConditionalGAN if num_classes else GAN
    model = model_class(
        build_generator(recipe["latent_dim"], (16, 16, 1), num_classes, recipe["g_filters"]),
        build_discriminator((16, 16, 1), num_classes, recipe["d_filters"]),
        seed=recipe["seed"])
    model.compile(d_optimizer=_adam(recipe["learning_rate"], recipe["beta_1"]),
                  g_optimizer=_adam(recipe["learning_rate"], recipe["beta_1"]))
    return model


def _fit(model, dataset, num_epochs):
    start = time.perf_counter()
    model.fit(dataset, epochs=num_epochs, verbose=0)
    return time.perf_counter() - start


def dcgan(judge, rows):
    recipe = RECIPES["dcgan"]
    x_train, _ = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
    gan = _gan(recipe)
    before = judge.report(gan.sample(1000, seed=1), x_test)
    seconds = _fit(gan, make_dataset(x_train, batch_size=recipe["batch_size"], seed=0),
                   recipe["num_epochs"])
    after = judge.report(gan.sample(1000, seed=1), x_test)
    drop = 1 - after["fid"] / before["fid"]
    rows.append(("DCGAN judge FID: untrained -> trained",
                 f"{before['fid']:.1f} -> {after['fid']:.1f} ({drop:.0%} lower)", ">= 80% lower",
                 drop >= 0.8, seconds))
    histogram = judge.class_histogram(gan.sample(1000, seed=1))
    rows.append(("DCGAN class histogram of 1,000 samples",
                 f"{int(np.sum(histogram > 0))} classes, max {histogram.max():.1%}, "
                 f"min {histogram.min():.1%}", "10, max <= 20%",
                 bool(np.all(histogram > 0) and histogram.max() <= 0.2), 0))


def cgan(judge, rows):
    recipe = RECIPES["cgan"]
    x_train, y_train = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
    gan = _gan(recipe, num_classes=10)
    seconds = _fit(gan, make_dataset(x_train, y_train, batch_size=recipe["batch_size"], seed=0),
                   recipe["num_epochs"])
    labels = np.arange(1000) % 10
    report = judge.report(gan.sample(1000, labels=labels, seed=1), x_test, labels=labels)
    rows.append(("conditional GAN label accuracy (1,000 samples)",
                 f"{report['label_accuracy']:.3f} (FID {report['fid']:.1f})", ">= 0.90",
                 report["label_accuracy"] >= 0.9, seconds))


def enhancement(judge, rows):
    r = RECIPES["enhancement"]
    x_train = load_photo_patches(r["patch_size"], r["num_train"], "train", seed=r["seed"])
    x_test = load_photo_patches(r["patch_size"], r["num_test"], "test", seed=r["seed"])
    degraded_train = degrade(x_train, r["scale"], r["noise_std"], seed=r["seed"])
    degraded_test = degrade(x_test, r["scale"], r["noise_std"], seed=r["seed"] + 1)
    shape = x_train.shape[1:]
    scores = {"bicubic": (metrics.psnr(degraded_test, x_test).mean(),
                          metrics.ssim(degraded_test, x_test).mean())}
    seconds = 0.0
    for name, with_gan in (("L1 only", False), ("GAN + L1", True)):
        keras.utils.set_random_seed(r["seed"])
        model = Pix2Pix(build_unet_generator(shape, r["filters"]),
                        build_patch_discriminator(shape, r["d_filters"]) if with_gan else None,
                        l1_weight=r["l1_weight"])
        model.compile(g_optimizer=_adam(r["g_learning_rate"], r["beta_1"]),
                      d_optimizer=_adam(r["d_learning_rate"], r["beta_1"]) if with_gan else None)
        seconds += _fit(model, make_dataset(degraded_train, x_train,
                                            batch_size=r["batch_size"], seed=0),
                        r["num_epochs"])
        restored = model.enhance(degraded_test)
        scores[name] = (metrics.psnr(restored, x_test).mean(),
                        metrics.ssim(restored, x_test).mean())
    value = "  ".join(f"{k} {p:.2f} dB / {s:.3f}" for k, (p, s) in scores.items())
    beats = all(scores["GAN + L1"][i] > scores["bicubic"][i] for i in (0, 1))
    rows.append(("enhancement PSNR / SSIM (held-out patches)", value, "GAN > bicubic", beats,
                 seconds))


BENCHMARKS = {"dcgan": dcgan, "cgan": cgan, "enhancement": enhancement}


def main():
    parser = bars.parser_for(__doc__.split("\n\n")[0], BENCHMARKS)
    args = parser.parse_args()
    names = bars.chosen(parser, args, BENCHMARKS)
    rt = setup(seed=0)
    judge = load_judge()
    rows = []
    for name in names:
        BENCHMARKS[name](judge, rows)
    if args.notebooks:
        bars.run_notebooks("01_gan", rows)
    return bars.print_table(rt.summary(), rows, seconds_header="train s")


if __name__ == "__main__":
    sys.exit(main())
