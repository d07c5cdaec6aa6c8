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
  photo patches, and is sharper (mean gradient magnitude) than the same generator trained
  with L1 alone;
- how the discriminator sees real and fake batches (reported, the numbers notebooks 02 and 04
  quote): with BatchNorm in D, separate calls (the library's policy, as DCGAN's reference
  code and keras.io) against one call on both batches together, for the DCGAN on digits and
  for pix2pix, whose default PatchGAN has no BatchNorm.
`--notebooks` also runs every notebook of the chapter in normal mode and checks that each
finishes within 15 minutes (this takes up to an hour on a 2-core CPU).

The numbers that the notebooks' prose quotes are written to `benchmarks/results/01_gan.json`
(`bars.write_results`); `tests/test_benchmark_results.py` checks that the prose agrees.
"""

import sys
import time

import bars  # benchmarks/bars.py, next to this script
import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import metrics
from course_lib.data import load_digits, load_photo_patches, make_dataset
from course_lib.judge import load_judge
from course_lib.models.gan import (
    GAN,
    ConditionalGAN,
    build_discriminator,
    build_generator,
    discriminator_loss,
    generator_loss,
)
from course_lib.models.pix2pix import (
    Pix2Pix,
    build_patch_discriminator,
    build_unet_generator,
    degrade,
    mean_gradient,
    pix2pix_generator_loss,
)
from course_lib.runtime import setup

CHAPTER = "01_gan"
DCGAN_NOTEBOOK = "notebooks/01_gan/02_dcgan.ipynb"
ENHANCEMENT_NOTEBOOK = "notebooks/01_gan/04_image_enhancement.ipynb"

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


def _gan(recipe, num_classes=None, model_class=None):
    keras.utils.set_random_seed(recipe["seed"])
    model_class = model_class or (ConditionalGAN if num_classes else GAN)
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


def dcgan(judge, rows, values, quoted):
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


def cgan(judge, rows, values, quoted):
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


def _patches():
    """(degraded_train, x_train, degraded_test, x_test) of notebook 04's recipe."""
    r = RECIPES["enhancement"]
    x_train = load_photo_patches(r["patch_size"], r["num_train"], "train", seed=r["seed"])
    x_test = load_photo_patches(r["patch_size"], r["num_test"], "test", seed=r["seed"])
    return (degrade(x_train, r["scale"], r["noise_std"], seed=r["seed"]), x_train,
            degrade(x_test, r["scale"], r["noise_std"], seed=r["seed"] + 1), x_test)


def _scores(images, x_test):
    """(PSNR, SSIM, sharpness relative to the clean patches) of restorations."""
    return (metrics.psnr(images, x_test).mean(), metrics.ssim(images, x_test).mean(),
            mean_gradient(images).mean() / mean_gradient(x_test).mean())


def _pix2pix(model_class=Pix2Pix, with_gan=True, normalization=None):
    """Notebook 04's model, trained on its patches: (model, seconds)."""
    r = RECIPES["enhancement"]
    degraded_train, x_train, _, _ = _patches()
    shape = x_train.shape[1:]
    keras.utils.set_random_seed(r["seed"])
    discriminator = (build_patch_discriminator(shape, r["d_filters"], normalization)
                     if with_gan else None)
    model = model_class(build_unet_generator(shape, r["filters"]), discriminator,
                        l1_weight=r["l1_weight"])
    model.compile(g_optimizer=_adam(r["g_learning_rate"], r["beta_1"]),
                  d_optimizer=_adam(r["d_learning_rate"], r["beta_1"]) if with_gan else None)
    seconds = _fit(model, make_dataset(degraded_train, x_train, batch_size=r["batch_size"],
                                       seed=0), r["num_epochs"])
    return model, seconds


def enhancement(judge, rows, values, quoted):
    _, _, degraded_test, x_test = _patches()
    results = {"bicubic": _scores(degraded_test, x_test)}
    seconds = 0.0
    for name, with_gan in (("l1", False), ("pix2pix", True)):
        model, fit_seconds = _pix2pix(with_gan=with_gan)
        seconds += fit_seconds
        results[name] = _scores(model.enhance(degraded_test), x_test)
        if with_gan:
            values["enhancement_pix2pix_final_d_loss"] = model.d_loss_tracker.result()
            quoted.setdefault(ENHANCEMENT_NOTEBOOK, {})["enhancement_pix2pix_final_d_loss"] = (
                f"{float(model.d_loss_tracker.result()):.2f}")
    for name, (psnr, ssim, sharpness) in results.items():
        values[f"enhancement_{name}_psnr"] = psnr
        values[f"enhancement_{name}_ssim"] = ssim
        values[f"enhancement_{name}_sharpness"] = sharpness
    gan, l1, bicubic = results["pix2pix"], results["l1"], results["bicubic"]
    values["enhancement_psnr_cost"] = l1[0] - gan[0]  # dB that pix2pix gives up to L1
    values["enhancement_sharpness_gain"] = gan[2] / l1[2] - 1  # a fraction
    quoted.setdefault(ENHANCEMENT_NOTEBOOK, {}).update({
        "enhancement_pix2pix_psnr": f"{gan[0]:.1f}", "enhancement_l1_psnr": f"{l1[0]:.1f}",
        "enhancement_pix2pix_ssim": f"{gan[1]:.2f}", "enhancement_l1_ssim": f"{l1[1]:.2f}",
        "enhancement_pix2pix_sharpness": f"{gan[2]:.2f}",
        "enhancement_l1_sharpness": f"{l1[2]:.2f}",
        "enhancement_bicubic_psnr": f"{bicubic[0]:.1f}",
        "enhancement_psnr_cost": f"{values['enhancement_psnr_cost']:.1f}",
    })
    value = "  ".join(f"{k} {p:.2f} dB / {s:.3f} / sharpness {g:.2f}"
                      for k, (p, s, g) in results.items())
    beats = all(gan[i] > bicubic[i] for i in (0, 1))
    rows.append(("enhancement PSNR / SSIM / sharpness (held-out patches)", value,
                 "GAN > bicubic; GAN sharper than L1", beats and gan[2] > l1[2], seconds))


class _JointGAN(GAN):
    """`GAN` whose discriminator sees the real and the fake batch in one call (one set of
    BatchNorm statistics for both), in its own step and in the generator's."""

    def train_step(self, data):
        real, _ = self._unpack(data)
        n = ops.shape(real)[0]
        fake = self.generate(self.latents(n), training=True)
        with tf.GradientTape() as tape:
            logits = self.discriminate(ops.concatenate([real, fake]), training=True)
            real_logits, fake_logits = logits[:n], logits[n:]
            d_loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing)
        self._apply(self.d_optimizer, d_loss, tape, self.discriminator.trainable_variables)
        with tf.GradientTape() as tape:
            fake = self.generate(self.latents(n), training=True)
            logits = self.discriminate(ops.concatenate([real, fake]), training=True)
            g_loss = generator_loss(logits[n:])
        self._apply(self.g_optimizer, g_loss, tape, self.generator.trainable_variables)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        self.d_fake_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        return {m.name: m.result() for m in self.metrics}


class _JointPix2Pix(Pix2Pix):
    """`Pix2Pix` whose discriminator sees the real and the restored pairs in one call."""

    def train_step(self, data):
        source, target = data
        with tf.GradientTape(persistent=True) as tape:
            restored = self.generator(source, training=True)
            logits = self.discriminator(
                [ops.concatenate([source, source]), ops.concatenate([target, restored])],
                training=True)
            real_logits, fake_logits = ops.split(logits, 2)
            d_loss = discriminator_loss(real_logits, fake_logits)
            g_loss = pix2pix_generator_loss(fake_logits, target, restored, self.l1_weight,
                                            self.reconstruction_loss)
        for optimizer, loss, network in ((self.g_optimizer, g_loss, self.generator),
                                         (self.d_optimizer, d_loss, self.discriminator)):
            variables = network.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        del tape
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}


def discriminator_batches(judge, rows, values, quoted):
    """Separate calls on the real and the fake batch (the library) against one joint call."""
    recipe = RECIPES["dcgan"]
    x_train, _ = load_digits(16, "train")
    x_test, _ = load_digits(16, "test")
    for name, model_class in (("separate", GAN), ("joint", _JointGAN)):
        gan = _gan(recipe, model_class=model_class)
        seconds = _fit(gan, make_dataset(x_train, batch_size=recipe["batch_size"], seed=0),
                       recipe["num_epochs"])
        fid = judge.report(gan.sample(1000, seed=1), x_test)["fid"]
        d_real, d_fake = gan.d_real_tracker.result(), gan.d_fake_tracker.result()
        values.update({f"dcgan_{name}_fid": fid, f"dcgan_{name}_d_real": d_real,
                       f"dcgan_{name}_d_fake": d_fake})
        quoted.setdefault(DCGAN_NOTEBOOK, {}).update({
            f"dcgan_{name}_fid": f"{fid:.1f}", f"dcgan_{name}_d_real": f"{d_real:.2f}",
            f"dcgan_{name}_d_fake": f"{d_fake:.2f}"})
        rows.append((f"DCGAN, {name} calls: FID / last epoch's d_real, d_fake",
                     f"{fid:.1f} / {d_real:.2f}, {d_fake:.2f}", "(reported)", True, seconds))
    _, _, degraded_test, x_test = _patches()
    # The library's PatchGAN (no BatchNorm, separate calls) is `enhancement`'s pix2pix row.
    for name, model_class, normalization in (("batchnorm_separate", Pix2Pix, "batch"),
                                             ("batchnorm_joint", _JointPix2Pix, "batch")):
        model, seconds = _pix2pix(model_class, normalization=normalization)
        d_loss = float(model.d_loss_tracker.result())
        sharpness = _scores(model.enhance(degraded_test), x_test)[2]
        values.update({f"pix2pix_{name}_d_loss": d_loss, f"pix2pix_{name}_sharpness": sharpness})
        quoted.setdefault(ENHANCEMENT_NOTEBOOK, {}).update({
            f"pix2pix_{name}_d_loss": f"{d_loss:.2f}",
            f"pix2pix_{name}_sharpness": f"{sharpness:.2f}"})
        rows.append((f"pix2pix, {name}: last epoch's d_loss / sharpness",
                     f"{d_loss:.3f} / {sharpness:.3f}", "(reported)", True, seconds))


BENCHMARKS = {"dcgan": dcgan, "cgan": cgan, "enhancement": enhancement,
              "discriminator_batches": discriminator_batches}


def main():
    parser = bars.parser_for(__doc__.split("\n\n")[0], BENCHMARKS)
    args = parser.parse_args()
    names = bars.chosen(parser, args, BENCHMARKS)
    rt = setup(seed=0)
    judge = load_judge()
    rows, values, quoted = [], {}, {}
    for name in names:
        BENCHMARKS[name](judge, rows, values, quoted)
    if args.notebooks:
        bars.run_notebooks(CHAPTER, rows)
    status = bars.print_table(rt.summary(), rows, seconds_header="train s")
    if values:
        print(f"wrote {bars.write_results(CHAPTER, values, quoted, summary=rt.summary())}")
    return status


if __name__ == "__main__":
    sys.exit(main())
