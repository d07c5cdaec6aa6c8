"""Differentially private training: DP-SGD and its privacy accounting.

Taught in notebooks/07_security/02_differential_privacy.ipynb.

A randomised training algorithm M is (epsilon, delta)-differentially private (Dwork et al.
2006) if for any two training sets D and D' that differ in one record (one is the other
plus one record, in either order: "add or remove one", the adjacency `dp-accounting` assumes
by default; replacing a record would double the sensitivity to 2C), and any set S of
outcomes (trained models),

    P[M(D) in S] <= e^epsilon * P[M(D') in S] + delta.

Whatever an attacker does with the model, it can tell whether any one record was used only
as well as this allows: a membership-inference attack's true- and false-positive rates obey
TPR <= e^epsilon * FPR + delta (Kairouz et al. 2015; Humphries et al. 2023).

DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy"), one step:

    1. sample a batch: each of the N records joins with probability q (Poisson sampling);
    2. compute each example's gradient g_i;
    3. clip each to norm C: g_i * min(1, C / ||g_i||)   (the norm over all weights together);
    4. add Gaussian noise to the sum and divide by the expected batch size q N:
           g = (sum_i clipped g_i + N(0, sigma^2 C^2 I)) / (q N);
    5. hand g to any optimizer (what is computed from a private g stays private).

Clipping bounds how much one record can move the sum (by C); the noise, sigma times that
bound, hides it. Each step is the subsampled Gaussian mechanism; T steps compose. The privacy
accountant of `dp-accounting` (Google's library: Renyi DP, Mironov 2017, with the subsampled
Gaussian's bound of Mironov, Talwar & Zhang 2019, or privacy loss distributions) turns
(sigma, q, T, delta) into epsilon; it is never computed by hand here.

The seeds below make runs reproducible, which a course needs and a real release must not
have: an attacker who knows the seed can replay the sampling and the noise. A model meant to
be private is trained with fresh, secret randomness (e.g. `seed=secrets.randbits(31)`), and
two models released from the same noise would let it cancel.

    per_example_gradients   each example's gradient, with `tf.vectorized_map`
    clip_gradients          each example's gradient clipped to a global norm
    private_gradient        clip, sum, add noise, divide: one DP-SGD gradient
    epsilon                 epsilon for (noise multiplier, sampling rate, steps, delta)
    noise_for_epsilon       the noise multiplier that reaches a target epsilon
    gradient_timings        seconds of a batch gradient against per-example gradients
    vae_losses              a VAE's -ELBO per image, with the noise of z given
    mlp_vae                 a small VAE of dense layers (per-example gradients are cheap)
    train_dp_vae            a VAE trained with DP-SGD (Poisson batches)
"""

import math

import keras
import numpy as np
import tensorflow as tf


def per_example_gradients(loss_fn, variables, inputs):
    """The gradient of `loss_fn` for each example separately, with `tf.vectorized_map`.

    Args:
        loss_fn: a function of one example's inputs, each with a batch dimension of 1,
            returning a scalar loss.
        variables: the variables to differentiate.
        inputs: a tensor or a tuple of tensors whose first dimension is the batch.

    Returns:
        A list, one tensor per variable, of shape (batch, *variable.shape).
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)

    def one_example(example):
        example = [tensor[None] for tensor in example]
        with tf.GradientTape() as tape:
            loss = loss_fn(*example)
        return tape.gradient(loss, variables,
                             unconnected_gradients=tf.UnconnectedGradients.ZERO)

    return tf.vectorized_map(one_example, inputs)


def clip_gradients(gradients, clip_norm):
    """Scales each example's gradient to norm at most `clip_norm` (global over variables).

    Args:
        gradients: a list of (batch, ...) tensors, as `per_example_gradients` returns.
        clip_norm: C > 0, or None for no clipping.

    Returns:
        (clipped, norms): the list of clipped tensors, and each example's norm before
        clipping, (batch,).
    """
    squares = [tf.reduce_sum(tf.reshape(g, (tf.shape(g)[0], -1)) ** 2, axis=1)
               for g in gradients]
    norms = tf.sqrt(tf.add_n(squares))
    if clip_norm is None:
        return list(gradients), norms
    factors = tf.minimum(1.0, clip_norm / tf.maximum(norms, 1e-12))
    clipped = [g * tf.reshape(factors, (-1,) + (1,) * (len(g.shape) - 1)) for g in gradients]
    return clipped, norms


def private_gradient(clipped_sum, clip_norm, noise_multiplier, denominator, seed):
    """(sum of clipped gradients + N(0, (noise_multiplier * clip_norm)^2 I)) / denominator.

    `clipped_sum` is a list of tensors (one per variable); `seed` a stateless seed, a pair
    of integers (a fresh one every step). With `noise_multiplier` 0 nothing is added.
    """
    if noise_multiplier < 0:
        raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}.")
    if noise_multiplier > 0 and clip_norm is None:
        raise ValueError("noise needs a clip norm: without clipping one example's influence "
                         "is unbounded and no amount of noise hides it.")
    out = []
    for index, total in enumerate(clipped_sum):
        if noise_multiplier > 0:
            noise = tf.random.stateless_normal(tf.shape(total), seed=[seed[0], seed[1] + index],
                                               stddev=noise_multiplier * clip_norm,
                                               dtype=total.dtype)
            total = total + noise
        out.append(total / denominator)
    return out


def _event(noise_multiplier, sampling_rate, steps):
    import dp_accounting

    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sampling_rate,
                                            dp_accounting.GaussianDpEvent(noise_multiplier)),
        steps)


def _accountant(kind):
    import dp_accounting

    if kind == "rdp":
        return dp_accounting.rdp.RdpAccountant()
    if kind == "pld":
        return dp_accounting.pld.PLDAccountant()
    raise ValueError(f'accountant must be "rdp" or "pld", got {kind!r}.')


def _check_accounting(sampling_rate, steps, delta):
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate}.")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps}.")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta} (take it below 1 / N for N "
                         "records).")


def epsilon(noise_multiplier, sampling_rate, steps, delta, accountant="rdp"):
    """epsilon of DP-SGD for `delta`, from `dp-accounting`: `steps` steps of the Gaussian
    mechanism with `noise_multiplier`, each on a Poisson sample at `sampling_rate`.
    `accountant`: "rdp" (Renyi DP) or "pld" (privacy loss distributions, tighter). Without
    noise there is no guarantee: returns inf."""
    from absl import logging

    _check_accounting(sampling_rate, steps, delta)
    if noise_multiplier <= 0:
        return math.inf
    event = _event(noise_multiplier, sampling_rate, int(steps))
    # The RDP accountant warns when a series for one Renyi order does not converge, and then
    # leaves that order out (the bound stays valid, from the other orders): keep it quiet.
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)
    try:
        return float(_accountant(accountant).compose(event).get_epsilon(delta))
    finally:
        logging.set_verbosity(verbosity)


def noise_for_epsilon(target_epsilon, sampling_rate, steps, delta, accountant="rdp"):
    """The smallest noise multiplier whose `epsilon(...)` is at most `target_epsilon`
    (`dp_accounting.calibrate_dp_mechanism`, a bracketed search)."""
    import dp_accounting

    _check_accounting(sampling_rate, steps, delta)
    if target_epsilon <= 0:
        raise ValueError(f"target_epsilon must be > 0, got {target_epsilon}.")
    return float(dp_accounting.calibrate_dp_mechanism(
        lambda: _accountant(accountant),
        lambda sigma: _event(sigma, sampling_rate, int(steps)), target_epsilon, delta,
        bracket_interval=dp_accounting.LowerEndpointAndGuess(0.0, 1.0)))


def gradient_timings(model, images, noise, repeats=20):
    """(seconds per batch gradient, seconds per set of per-example gradients) of a VAE's
    -ELBO on `images` with z-noise `noise`, each compiled and timed over `repeats` calls
    after a warm-up call."""
    import time

    weights = model.trainable_variables

    @tf.function
    def batch_gradient(x, e):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(vae_losses(model, x, e))
        return tape.gradient(loss, weights)

    @tf.function
    def example_gradients(x, e):
        return per_example_gradients(lambda xi, ei: vae_losses(model, xi, ei)[0], weights,
                                     (x, e))

    timings = []
    for function in (batch_gradient, example_gradients):
        function(images, noise)
        start = time.perf_counter()
        for _ in range(repeats):
            function(images, noise)
        timings.append((time.perf_counter() - start) / repeats)
    return tuple(timings)


def vae_losses(vae, images, noise):
    """-ELBO per image of a course VAE (nats, (batch,)), with z = mean + sigma * noise for
    the given standard-normal `noise` (batch, latent_dim): the same loss as `VAE.loss_terms`
    with its random draw made an input, so that it can be taken per example inside
    `tf.vectorized_map` (random draws inside the map would not be per-example)."""
    from course_lib.models.vae import gaussian_kl

    mean, log_var = vae.encode(images, training=True)
    z = mean + keras.ops.exp(0.5 * log_var) * noise
    logits = vae.decode_logits(z, training=True)
    return -vae.log_likelihood(images, logits) + gaussian_kl(mean, log_var)


def mlp_vae(image_shape=(16, 16, 1), latent_dim=16, units=256, seed=0):
    """A `VAE` whose encoder and decoder each have one hidden dense layer of `units` ReLUs:
    chapter 3's model with dense layers instead of convolutions. Per-example gradients of
    dense layers are cheap to vectorise (several times cheaper than the convolutional VAE's)."""
    from course_lib.models.vae import VAE

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    images = keras.Input(image_shape)
    hidden = layers.Dense(units, activation="relu")(layers.Flatten()(images))
    encoder = keras.Model(images, [layers.Dense(latent_dim, name="mean")(hidden),
                                   layers.Dense(latent_dim, name="log_var")(hidden)],
                          name="encoder")
    z = keras.Input((latent_dim,))
    hidden = layers.Dense(units, activation="relu")(z)
    logits = layers.Reshape(image_shape)(layers.Dense(int(np.prod(image_shape)))(hidden))
    decoder = keras.Model(z, logits, name="decoder")
    return VAE(encoder, decoder, seed=seed)


def train_dp_vae(images, noise_multiplier, clip_norm, steps, sampling_rate, learning_rate=1e-3,
                 latent_dim=16, microbatch=64, seed=0, callback=None, units=256):
    """A dense VAE (`mlp_vae` with `units` hidden units) trained with DP-SGD
    (Adam on the private gradient) for `steps` steps.

    Each step draws a Poisson batch (every image joins with probability `sampling_rate`),
    computes the per-example gradients in fixed-size pieces of `microbatch` images (padding
    carries weight 0, so shapes never change and nothing recompiles), clips them to
    `clip_norm` (None: no clipping), sums, adds noise (`noise_multiplier` 0: none) and
    divides by the expected batch size. `callback(step, vae, norms)` is called after every
    step with the step number (from 1) and that step's per-example gradient norms: for
    monitoring only, as these norms (and their number, the batch size) are not private;
    publishing them, or choosing C from them, spends privacy the accountant does not count.
    `seed` fixes the weights, the batches and the noise (reproducible, hence not private:
    see the module's docstring). Returns the VAE.
    """
    images = np.asarray(images, np.float32)
    if not np.all(np.isin(images, (-1.0, 1.0))):
        raise ValueError("images must be binary with pixels -1 or 1 (the VAE's likelihood is "
                         "Bernoulli): pass course_lib.data.binarize(images).")
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate}.")
    vae = mlp_vae(images.shape[1:], latent_dim, units, seed=seed)
    vae(images[:1])
    variables = vae.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(variables)

    def example_loss(image, noise):
        return vae_losses(vae, image, noise)[0]

    @tf.function
    def clipped_sum(batch, noise, weights):
        gradients = per_example_gradients(example_loss, variables, (batch, noise))
        clipped, norms = clip_gradients(gradients, clip_norm)
        weighted = [tf.tensordot(weights, g, axes=1) for g in clipped]
        return weighted, norms

    rng = np.random.default_rng(seed)
    denominator = sampling_rate * len(images)
    for step in range(1, steps + 1):
        chosen = images[rng.random(len(images)) < sampling_rate]
        totals, norms = [tf.zeros_like(v) for v in variables], []
        for start in range(0, max(len(chosen), 1), microbatch):
            piece = chosen[start:start + microbatch]
            weights = np.zeros(microbatch, np.float32)
            weights[:len(piece)] = 1.0
            padded = np.full((microbatch, *images.shape[1:]), -1.0, np.float32)
            padded[:len(piece)] = piece
            noise = rng.standard_normal((microbatch, latent_dim)).astype(np.float32)
            weighted, piece_norms = clipped_sum(padded, noise, weights)
            totals = [t + w for t, w in zip(totals, weighted)]
            norms.append(piece_norms.numpy()[:len(piece)])
        gradient = private_gradient(totals, clip_norm, noise_multiplier, denominator,
                                    seed=(seed, 2 * step * len(variables)))
        optimizer.apply(gradient, variables)
        if callback is not None:
            callback(step, vae, np.concatenate(norms))
    return vae
