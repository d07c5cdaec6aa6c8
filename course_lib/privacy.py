"""What a generative model leaks about its training data, measured.

Taught in notebooks/07_security/01_membership_inference.ipynb.

Membership inference (Shokri et al. 2017; Yeom et al. 2018): an attacker holds a record x
and asks whether it was in the training set. A model fits its training records better than
unseen ones, so a score s(x) that measures the fit (a VAE's ELBO, a discriminator's logit)
is higher for members; the attack says "member" when s(x) > t. Sweeping the threshold t
traces the ROC curve (true-positive rate against false-positive rate); its area (AUC) is
the probability that a random member scores higher than a random non-member: 0.5 is
guessing, 1 is certain. Because an attacker is hurt most by false accusations, the rate of
true positives at a low false-positive rate (1%) says more than the AUC about the records
that are exposed (Carlini et al. 2022, "Membership Inference Attacks From First Principles").

    attack_report         AUC, TPR at a low FPR and the best accuracy of a threshold attack
    discriminator_scores  a GAN's discriminator logits: the white-box attack on a GAN
                          (Hayes et al. 2019, "LOGAN")
    distance_scores       minus the distance to the nearest generated sample: the black-box
                          attack that needs only samples (Chen et al. 2020, "GAN-Leaks")
    split_members         members, non-members and validation records from one set
    MemberVAE, train_member_vae   the VAE of chapter 3 trained on a few members, kept both
                          at its last epoch and at its best validation epoch

The secret sharer (Carlini et al. 2019): insert a random secret ("canary") such as
"ada's pin is 12345" into the training text, train, and rank the true secret among all the
candidates of its format by the model's log-perplexity. Its exposure,

    exposure = log2 |R| - log2 rank,

is 0 bits when the secret is the least likely candidate, log2 |R| when it is the most
likely (the model will write it out when prompted), and log2 e = 1.44 bits on average
(1 bit the median) for a secret the model never saw, whose rank is uniform.

    make_canaries         random secrets in the format "<name>'s pin is <digits>"
    insert_canaries       put each canary into a text a given number of times
    candidate_log2_probs  log2 P(d_1..d_n | prefix) for every string of n digits
    exposure              the exposure of one secret among its candidates
    train_char_model      chapter 4's character model, trained for a fixed number of epochs
"""

import math

import keras
import numpy as np

DIGITS = "0123456789"


# ---------------------------------------------------------------------------------------
# Threshold attacks and their ROC curves
# ---------------------------------------------------------------------------------------


def _scores(values, name):
    values = np.asarray(values, np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError(f"{name} is empty: score at least one record.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} has {np.sum(~np.isfinite(values))} non-finite score(s): "
                         "an attack score must be a finite number for every record.")
    return values


def attack_report(member_scores, nonmember_scores, low_fpr=0.01):
    """How well "member if score > t" separates members from non-members, over all t.

    Args:
        member_scores: (n,) scores of records that were in the training set.
        nonmember_scores: (m,) scores of records that were not (same distribution).
        low_fpr: the false-positive rate at which to read the true-positive rate.

    Returns:
        dict with `auc` (area under the ROC curve: P(member scores higher), ties count half),
        `tpr_at_low_fpr` (the highest true-positive rate whose false-positive rate is
        <= `low_fpr`), `accuracy` (the best balanced accuracy of any threshold,
        (1 + TPR - FPR) / 2), and the curve itself, `fpr` and `tpr` (scikit-learn's
        `roc_curve`).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    members = _scores(member_scores, "member_scores")
    nonmembers = _scores(nonmember_scores, "nonmember_scores")
    if not 0 <= low_fpr < 1:
        raise ValueError(f"low_fpr must be in [0, 1), got {low_fpr}.")
    labels = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    scores = np.r_[members, nonmembers]
    fpr, tpr, _ = roc_curve(labels, scores)
    return {"auc": float(roc_auc_score(labels, scores)),
            "tpr_at_low_fpr": float(tpr[fpr <= low_fpr].max()),
            "accuracy": float(np.max(1 + tpr - fpr) / 2), "fpr": fpr, "tpr": tpr}


def discriminator_scores(gan, images, batch_size=256):
    """The discriminator's logit for each image (inference mode), NumPy (N,). Higher: more
    "real". A discriminator that memorised its training images gives them higher logits
    than unseen images of the same kind."""
    out = [keras.ops.convert_to_numpy(gan.discriminate(images[start:start + batch_size]))
           for start in range(0, len(images), batch_size)]
    return np.concatenate(out).reshape(-1).astype(np.float64)


def distance_scores(samples, images):
    """Minus each image's RMS distance to its nearest sample, NumPy (N,): high when the
    generator draws something close to the image. Needs only the model's samples."""
    from course_lib.metrics import nearest_neighbors

    return -nearest_neighbors(images, samples)[1]


# ---------------------------------------------------------------------------------------
# A VAE trained on a few members
# ---------------------------------------------------------------------------------------


def split_members(num_records, sizes=(100, 100, 200), seed=0):
    """Disjoint random index sets of `sizes` (members, non-members, validation...) drawn from
    range(num_records) (seeded): members and non-members come from the same distribution, so
    membership is the only thing that tells them apart."""
    if sum(sizes) > num_records or min(sizes) < 1:
        raise ValueError(f"cannot draw disjoint sets of sizes {sizes} (each >= 1) from "
                         f"{num_records} records.")
    order = np.random.default_rng(seed).permutation(num_records)
    return tuple(order[start:start + size]
                 for start, size in zip(np.cumsum((0, *sizes[:-1])), sizes))


class MemberVAE:
    """What `train_member_vae` returns: the VAE at its last epoch (`last`), the same VAE at
    the epoch of its best validation loss (`best`, early stopping), that epoch (1-based),
    and the Keras `history` (train and validation -ELBO per epoch)."""

    def __init__(self, last, best, best_epoch, history):
        self.last, self.best, self.best_epoch, self.history = last, best, best_epoch, history


def _new_vae(latent_dim, seed):
    from course_lib.models.vae import VAE, build_decoder, build_encoder

    keras.utils.set_random_seed(seed)
    return VAE(build_encoder(latent_dim=latent_dim), build_decoder(latent_dim=latent_dim),
               seed=seed)


def train_member_vae(members, validation, num_epochs, latent_dim=16, batch_size=32,
                     learning_rate=1e-3, seed=0, workdir=None):
    """Chapter 3's VAE trained on the binary images `members` for `num_epochs` epochs.

    Adam; the validation loss (-ELBO on `validation`) is computed every epoch, and
    `keras.callbacks.ModelCheckpoint(save_best_only=True)` keeps the weights of the best
    epoch, loaded into a second VAE. Returns a `MemberVAE`.
    """
    import tempfile
    from pathlib import Path

    from course_lib.data import make_dataset

    members, validation = np.asarray(members, np.float32), np.asarray(validation, np.float32)
    if not (np.all(np.isin(members, (-1.0, 1.0))) and np.all(np.isin(validation, (-1.0, 1.0)))):
        raise ValueError("members and validation must be binary images with pixels -1 or 1 "
                         "(the VAE's likelihood is Bernoulli): pass "
                         "course_lib.data.binarize(images).")
    workdir = Path(workdir or tempfile.mkdtemp(prefix="member_vae_"))
    checkpoint = workdir / "best.weights.h5"
    vae = _new_vae(latent_dim, seed)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
    history = vae.fit(
        make_dataset(members, batch_size=batch_size, seed=seed), epochs=num_epochs, verbose=0,
        validation_data=make_dataset(validation, batch_size=256, shuffle=False),
        callbacks=[keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss",
                                                   save_best_only=True,
                                                   save_weights_only=True)]).history
    best = _new_vae(latent_dim, seed)
    best(members[:1])  # build the weights
    best.load_weights(checkpoint)
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    return MemberVAE(vae, best, best_epoch, history)


# ---------------------------------------------------------------------------------------
# The secret sharer
# ---------------------------------------------------------------------------------------


def make_canaries(counts, num_digits=5, seed=0):
    """{canary text: count} for `counts` = {name: count}: each name gets its own random
    secret of `num_digits` digits (seeded), as "<name>'s pin is <digits>". The prefix of a
    canary is everything before the digits (`canary[:-num_digits]`)."""
    rng = np.random.default_rng(seed)
    return {f"{name}'s pin is " + "".join(rng.choice(list(DIGITS), num_digits)): count
            for name, count in counts.items()}


def insert_canaries(text, canaries, seed=0, separator="\n\n"):
    """`text` with each canary inserted as its own paragraph, `canaries[c]` times, at random
    paragraph boundaries (seeded). `canaries` maps a canary string to a count >= 0."""
    rng = np.random.default_rng(seed)
    paragraphs = text.split(separator)
    for canary, count in canaries.items():
        if int(count) != count or count < 0:
            raise ValueError(f"the count of canary {canary!r} must be a whole number >= 0, "
                             f"got {count}.")
        if separator in canary:
            raise ValueError(f"canary {canary!r} contains the separator {separator!r}.")
        for _ in range(int(count)):
            paragraphs.insert(int(rng.integers(len(paragraphs) + 1)), canary)
    return separator.join(paragraphs)


def candidate_log2_probs(model, vocabulary, prefix, num_digits):
    """log2 P(d_1 .. d_n | prefix) under a `CharRNN` for all 10^n digit strings, NumPy
    (10^n,) float64, indexed by the number the digits spell ("00042" is index 42).

    The prefix is read once; the digits then extend a tree of states one level at a
    time (1, 10, 100, ... states, one batched call per level): n calls over about
    1.11 * 10^(n-1) states in all, instead of 10^n sequences of n steps.
    """
    if not 1 <= num_digits <= 6:
        raise ValueError(f"num_digits must be 1..6 (10^n candidates), got {num_digits}.")
    digits = vocabulary.encode(DIGITS)
    ids = vocabulary.encode(prefix)
    if ids.size == 0:
        raise ValueError("the prefix is empty: the model needs a context to score digits in.")
    logits, states = model(ids[None], return_state=True)
    total = np.zeros(1)
    for depth in range(num_digits):
        log_p = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits[:, -1], axis=-1))
        total = (total[:, None] + log_p[:, digits].astype(np.float64) / math.log(2)).reshape(-1)
        if depth < num_digits - 1:
            states = [keras.ops.repeat(state, 10, axis=0) for state in states]
            logits, states = model(np.tile(digits, len(log_p))[:, None], states,
                                   return_state=True)
    return total


def exposure(log2_probs, secret_index):
    """Carlini et al.'s exposure of the candidate `secret_index`: log2 |R| - log2 rank, where
    rank 1 is the most likely of the |R| = len(log2_probs) candidates (ties rank the secret
    first)."""
    log2_probs = np.asarray(log2_probs, np.float64).reshape(-1)
    if int(secret_index) != secret_index or not 0 <= secret_index < log2_probs.size:
        raise ValueError(f"secret_index must be in [0, {log2_probs.size}), got {secret_index}.")
    rank = 1 + int(np.sum(log2_probs > log2_probs[int(secret_index)]))
    return math.log2(log2_probs.size) - math.log2(rank)


def train_char_model(ids, vocabulary_size, num_epochs, units=256, seq_len=100, batch_size=32,
                     learning_rate=3e-3, seed=0, callbacks=()):
    """A `CharRNN` (GRU, no dropout) trained on `ids` for `num_epochs` epochs with Adam and
    gradients clipped to norm 1: chapter 4's character model, without the early stopping
    that would hide how memorisation grows. Returns the model."""
    from course_lib.data import char_windows
    from course_lib.models.char_rnn import CharRNN

    keras.utils.set_random_seed(seed)
    model = CharRNN(vocabulary_size, units=units)
    model.compile(keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(char_windows(ids, seq_len, batch_size, seed=seed), epochs=num_epochs, verbose=0,
              callbacks=list(callbacks))
    return model
