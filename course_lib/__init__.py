"""course_lib: the reusable models, data pipelines and tools of the generative-AI course.

Each chapter notebook teaches a technique inline once; what later chapters reuse lives here,
under the same names, so a learner who read the chapter recognises the code.

Modules:
    runtime         seeds, device and precision policy, distribution strategy, fast mode
    data            offline-first `tf.data` image pipelines (bundled digits, faces, photos,
                    your own image folder, TFDS)
    metrics         PSNR, SSIM, Frechet and kernel distances
    judge           a small digit classifier whose features score generated digits
                    (FID/KID-style)
    training        the pattern for custom `train_step` models that also works across
                    replicas
    recipes         training recipes (optimizer, schedule, weight decay, clipping, early
                    stopping) and their measured comparison over seeds
    callbacks       sample grids and judge scores during training
    schedulers      diffusion noise schedules and samplers (DDPM, DDIM, flow matching)
    models          one module per model family: gan, pix2pix, vae, unet, diffusion
    toy             2-D toy data (a ring of Gaussians) and mode coverage
    style_transfer  Gram-matrix style transfer on VGG19 features
    inpainting      masks, naive fills, VAE latent search, masked PSNR
    grading         student versions and autograding of the exercise notebooks
    privacy         membership-inference attacks and the secret sharer's canaries
    dp              DP-SGD from its pieces, and its privacy budget from dp-accounting
    watermark       image (DWT-DCT), Tree-Ring and green-list text watermarks
    provenance      Ed25519-signed manifests bound to an image's pixels
    forensics       detectors of generated images, tested on generators they never saw
    extraction      copying a model from its answers; trigger-set ownership checks
    viz             image grids, training curves, inline animations
    cli             the `course` command (`course check`, `run`, `assign`, `grade`)
"""

import os as _os

# TensorFlow reads these when it is first imported; set them before any module imports it,
# but never override a choice the user made.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
