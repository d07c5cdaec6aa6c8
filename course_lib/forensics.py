"""Telling generated images from real ones, and how far that generalises.

Taught in notebooks/07_security/04_fakes_and_model_theft.ipynb.

A detector of generated images is a binary classifier: real images are labelled 0, one
generator's samples 1, and its logit is a score "generated" to be thresholded as any attack
score is (`course_lib.privacy.attack_report` gives its AUC and its true-positive rate at a
low false-positive rate). Trained on one generator, it learns that generator's artefacts,
which other generators need not share (Wang et al. 2020, "CNN-generated images are
surprisingly easy to spot... for now"; Ojha et al. 2023, "Towards Universal Fake Image
Detectors that Generalize Across Generative Models"). The test that matters is therefore on
a generator the detector never saw.

    train_generators   chapter 3's VAE, chapter 1's DCGAN and chapter 2's diffusion model,
                       trained on the same real images
    generate           samples of each
    small_cnn          two conv blocks and a dense layer (the detector, and extraction's copy)
    build_detector     a small CNN with one logit
    train_detector     trains one on real images against generated ones (balanced)
    detector_scores    its logits ("generated" is high), NumPy
    cross_aucs         AUC of each detector on each generator's held-out samples
    blur               images shrunk and brought back: a faker's cheap post-processing
    evade              a small perturbation that lowers a detector's score (PGD, Madry et
                       al. 2018): a faker who holds the detector, or one like it
"""

import keras
import numpy as np


def train_generators(images, vae_epochs, gan_epochs, diffusion_epochs, num_timesteps=1000,
                     seed=0):
    """The three kinds of generator of the course, each trained on the same `images`
    ((N, H, W, 1) in [-1, 1]) with its chapter's recipe:

        "VAE"        chapter 3's VAE (latent 16, Adam 1e-3, batch 32) on the images
                     binarised once (`binarize`), as chapter 3 trains it
        "DCGAN"      chapter 1's DCGAN (`augment.train_few_shot_gan`, no augmentation)
        "diffusion"  chapter 2's model (`fit_digit_diffusion`, v-prediction)

    Returns {name: trained model}; `generate` samples them.
    """
    from course_lib.augment import train_few_shot_gan
    from course_lib.data import binarize, make_dataset
    from course_lib.models.diffusion import fit_digit_diffusion
    from course_lib.models.vae import VAE, build_decoder, build_encoder

    images = _images(images, "images")
    keras.utils.set_random_seed(seed)
    vae = VAE(build_encoder(images.shape[1:], latent_dim=16),
              build_decoder(images.shape[1:], latent_dim=16), seed=seed)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(make_dataset(binarize(images, seed=seed), batch_size=32, seed=seed),
            epochs=vae_epochs, verbose=0)
    return {"VAE": vae, "DCGAN": train_few_shot_gan(images, "none", gan_epochs, seed=seed),
            "diffusion": fit_digit_diffusion(images, diffusion_epochs, num_timesteps,
                                             seed=seed)}


def generate(models, num_samples, ddim_steps=50, seed=0):
    """{name: (num_samples, H, W, 1) samples in [-1, 1], NumPy} from `train_generators`'
    models: the VAE's decoded means (the pixels' probabilities of ink, rescaled), the
    DCGAN's generator, and the diffusion model with deterministic DDIM in `ddim_steps`."""
    samples = {}
    for name, model in models.items():
        if name == "diffusion":
            out = model.sample(num_samples, sampler="ddim", num_steps=ddim_steps, seed=seed)
        else:
            out = model.sample(num_samples, seed=seed)
        samples[name] = np.clip(keras.ops.convert_to_numpy(out), -1, 1).astype(np.float32)
    return samples


def small_cnn(image_shape, num_outputs, activation=None, filters=(16, 32), units=64, seed=0,
              name="small_cnn"):
    """Two conv blocks (3x3, ReLU, 2x2 max-pooling), a dense ReLU layer and `num_outputs`
    float32 outputs with `activation`: the detector here and the attacker's copy in
    `course_lib.extraction`. Seeded, so that the same seed gives the same initial weights."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(image_shape)
    x = inputs
    for width in filters:
        x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Dense(units, activation="relu")(layers.Flatten()(x))
    outputs = layers.Dense(num_outputs, activation=activation, dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_detector(image_shape=(16, 16, 1), filters=(16, 32), units=64, seed=0):
    """A `small_cnn` with one logit. Small on purpose: it must not need more images than a
    generator can spare."""
    return small_cnn(image_shape, 1, None, filters, units, seed, name="detector")


def _images(images, name):
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"{name} must be a non-empty batch of images (N, H, W[, C]), got "
                         f"shape {images.shape}.")
    return images


def train_detector(real, generated, num_epochs=10, batch_size=64, learning_rate=1e-3, seed=0):
    """A detector trained to give `generated` images a high logit and `real` ones a low one.

    The larger set is subsampled to the size of the smaller (seeded), so that both classes
    weigh the same. Adam, binary cross-entropy on the logit. Returns the Keras model.
    """
    real, generated = _images(real, "real"), _images(generated, "generated")
    if real.shape[1:] != generated.shape[1:]:
        raise ValueError(f"real {real.shape[1:]} and generated {generated.shape[1:]} images "
                         "differ in shape: resize one set first.")
    rng = np.random.default_rng(seed)
    size = min(len(real), len(generated))
    real = real[rng.permutation(len(real))[:size]]
    generated = generated[rng.permutation(len(generated))[:size]]
    detector = build_detector(real.shape[1:], seed=seed)
    detector.compile(keras.optimizers.Adam(learning_rate),
                     keras.losses.BinaryCrossentropy(from_logits=True))
    images = np.concatenate([real, generated])
    labels = np.r_[np.zeros(size), np.ones(size)].astype(np.float32)
    detector.fit(images, labels, batch_size=batch_size, epochs=num_epochs, shuffle=True,
                 verbose=0)
    return detector


def detector_scores(detector, images, batch_size=256):
    """The detector's logit for each image, NumPy float64 (N,): high means "generated"."""
    images = _images(images, "images")
    return np.asarray(detector.predict(images, batch_size=batch_size, verbose=0),
                      np.float64).reshape(-1)


def cross_aucs(detectors, real_test, generated_test):
    """{detector name: {generator name: AUC}}: each detector's AUC of "generated" against
    the held-out `real_test` images, on each generator's held-out samples."""
    from course_lib.privacy import attack_report

    table = {}
    for name, detector in detectors.items():
        real_scores = detector_scores(detector, real_test)
        table[name] = {source: attack_report(detector_scores(detector, images),
                                             real_scores)["auc"]
                       for source, images in generated_test.items()}
    return table


def blur(images, size=8):
    """Each image shrunk to `size` x `size` (antialiased) and resized back to its own size:
    the fine detail a detector may key on is gone. NumPy (N, H, W, C)."""
    import tensorflow as tf

    images = _images(images, "images")
    small = tf.image.resize(images, (size, size), antialias=True)
    return tf.image.resize(small, images.shape[1:3]).numpy()


def evade(detector, images, epsilon=0.03, num_steps=10, step_size=None):
    """Projected gradient descent on the detector's logit (Madry et al. 2018): each image
    moves by at most `epsilon` per pixel (on the [-1, 1] scale; 0.03 is about 4 grey levels
    of 255) in the direction that makes it look real, in `num_steps` signed-gradient steps
    of `step_size` (default 2.5 epsilon / num_steps), kept in [-1, 1]. NumPy, same shape."""
    import tensorflow as tf

    if not epsilon > 0 or num_steps < 1:
        raise ValueError(f"epsilon must be positive and num_steps >= 1, got {epsilon} and "
                         f"{num_steps}.")
    original = tf.constant(_images(images, "images"))
    step_size = step_size or 2.5 * epsilon / num_steps
    x = original
    for _ in range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tf.reduce_sum(detector(x, training=False))
        x = x - step_size * tf.sign(tape.gradient(logits, x))
        x = tf.clip_by_value(x, original - epsilon, original + epsilon)
        x = tf.clip_by_value(x, -1.0, 1.0)
    return x.numpy()
