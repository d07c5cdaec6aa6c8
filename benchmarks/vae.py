"""Quality bars of chapter 3 (VAE, CVAE, restoration), measured in one normal-mode run.

    python benchmarks/vae.py [--epochs 40] [--latent-dim 16]

Trains a VAE and a CVAE on the bundled digits (16x16) exactly as the notebooks do, then
prints each bar with the measured value:
- CVAE: judge accuracy of 1,000 samples against their requested labels (bar: >= 0.95);
- VAE: the importance-weighted bound (K = 50) is tighter than the ELBO on the test set;
- restoration: latent-search inpainting beats the naive fills in PSNR on the missing pixels.
"""

import argparse
import time

import keras
import numpy as np

from course_lib.data import load_digits, make_dataset
from course_lib.inpainting import block_mask, latent_search_fill, masked_psnr, naive_fill
from course_lib.judge import load_judge
from course_lib.models.vae import CVAE, VAE, build_decoder, build_encoder
from course_lib.runtime import setup


def train(model_class, x, y, latent_dim, num_epochs, num_classes=None):
    model = model_class(build_encoder((16, 16, 1), latent_dim, num_classes),
                        build_decoder((16, 16, 1), latent_dim, num_classes), seed=0)
    model.compile(keras.optimizers.Adam(2e-3))
    start = time.perf_counter()
    model.fit(make_dataset(x, y if num_classes else None, batch_size=64, seed=0),
              epochs=num_epochs, verbose=0)
    return model, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--latent-dim", type=int, default=16)
    args = parser.parse_args()
    rt = setup(seed=0)
    x_train, y_train = load_digits(16, "train")
    x_test, y_test = load_digits(16, "test")
    judge = load_judge()
    rows = []

    cvae, seconds = train(CVAE, x_train, y_train, args.latent_dim, args.epochs, num_classes=10)
    labels = np.arange(1000) % 10
    accuracy = judge.accuracy(cvae.sample(1000, labels=labels, seed=1), labels)
    rows.append(("CVAE label accuracy (1,000 samples)", f"{accuracy:.3f}", ">= 0.95",
                 accuracy >= 0.95, seconds))

    vae, seconds = train(VAE, x_train, None, args.latent_dim, args.epochs)
    elbo = vae.elbo(x_test, num_samples=10).mean()
    iwae = vae.iwae_bound(x_test, num_samples=50).mean()
    rows.append(("test ELBO / IWAE(K=50), nats per image", f"{elbo:.2f} / {iwae:.2f}",
                 "IWAE > ELBO", iwae > elbo, seconds))
    report = judge.report(vae.sample(1000, seed=1), x_test)
    rows.append(("VAE samples: judge FID / classes covered",
                 f"{report['fid']:.1f} / {report['classes_covered']}", "(reported)", True, 0))

    mask = block_mask(x_test.shape, size=6, seed=0)
    start = time.perf_counter()
    restored = latent_search_fill(vae, x_test, mask, steps=200)
    seconds = time.perf_counter() - start
    psnr = {"VAE latent search": masked_psnr(x_test, restored, mask).mean()}
    for method in ("mean", "diffuse"):
        psnr[f"naive ({method})"] = masked_psnr(x_test, naive_fill(x_test, mask, method),
                                                mask).mean()
    best_naive = max(v for k, v in psnr.items() if k.startswith("naive"))
    rows.append(("inpainting 6x6 block, PSNR on the hole (dB)",
                 " / ".join(f"{k} {v:.2f}" for k, v in psnr.items()),
                 "VAE > naive", psnr["VAE latent search"] > best_naive, seconds))

    print(rt.summary())
    print(f"{'measure':<45}{'value':<72}{'bar':<13}{'met':<6}{'train s':>8}")
    for name, value, bar, met, secs in rows:
        print(f"{name:<45}{value:<72}{bar:<13}{'yes' if met else 'NO':<6}{secs:>8.0f}")


if __name__ == "__main__":
    main()
