"""course_lib: the reusable models, data pipelines and tools of the generative-AI course.

Each chapter notebook teaches a technique inline once; what later chapters reuse lives here,
under the same names, so a learner who read the chapter recognises the code.

Modules:
    runtime   seeds, device and precision policy, distribution strategy, fast mode
    data      offline-first `tf.data` image pipelines (bundled digits, faces, photos,
              your own image folder, TFDS)
    metrics   PSNR, SSIM, Frechet and kernel distances
    judge     a small digit classifier whose features score generated digits (FID/KID-style)
    training  the pattern for custom `train_step` models that also works across replicas
    viz       image grids, training curves, inline animations
    cli       the `course` command (`course check`, `course run`)
"""

import os as _os

# TensorFlow reads these when it is first imported; set them before any module imports it,
# but never override a choice the user made.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
