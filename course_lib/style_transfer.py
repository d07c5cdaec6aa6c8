"""Neural style transfer: Gram matrices, the three losses, a VGG19 feature extractor, `transfer`.

Taught in notebooks/01_gan/05_style_transfer.ipynb. Style transfer (Gatys, Ecker & Bethge
2016) is not a GAN and trains no network: it optimises the *pixels* of one image x so that
a fixed, pretrained classifier (VGG19, Simonyan & Zisserman 2015) sees the content of a
photograph p and the style of a painting a in it. With F^l(x) the (H_l, W_l, C_l) feature
map of layer l,

    content   L_c(x) = ||F^c(x) - F^c(p)||^2 / ||F^c(p)||^2              (one deep layer c)
    style     L_s(x) = 1/|S| sum_{l in S} ||G^l(x) - G^l(a)||^2 / ||G^l(a)||^2
              G^l(x) = F^l(x)^T F^l(x) / (H_l W_l)     (C_l x C_l: which channels fire together)
    smooth    L_tv(x) = mean (x[i+1, j] - x[i, j])^2 + mean (x[i, j+1] - x[i, j])^2

    x* = argmin_x  content_weight * L_c + style_weight * L_s + tv_weight * L_tv,

found with Adam, starting from x = p. Dividing each layer's squared error by the squared
norm of its target is Gatys' loss with layer weights w_l ~ 1 / ||G^l(a)||^2 (they weigh the
layers equally, w_l = 1/5, on a network whose activations they had rescaled): each term
starts near 1 whatever the network's activation scale, so the same weights work for the
pretrained VGG19 and for the random-weight fallback below. The total variation term
(Mahendran & Vedaldi 2015) is in Johnson et al. 2016, whose fast style transfer trains a
feed-forward generator with these same losses.

Pretrained weights. `load_feature_extractor()` uses the ImageNet VGG19 weights (80 MB, from
storage.googleapis.com, cached in ~/.keras/models). Without a network connection it says so
and falls back to VGG19's architecture with *random* weights (He et al. 2016, "A Powerful
Generative Model Using Random Weights for the Deep Image Representation"; Ustyuzhaninov et
al. 2017): their Gram matrices still capture colours and local textures, so the style loss
falls and the result takes the style's colours and grain, but they know nothing of objects,
so the content features and the look are cruder than with ImageNet weights.

Images are in [-1, 1], RGB, channels-last, as everywhere in the course; the extractor maps
them to what VGG19 expects (`keras.applications.vgg19.preprocess_input` of the [0, 255]
image: RGB -> BGR, minus the ImageNet mean colour).

Example:

    extractor, weights = load_feature_extractor()   # weights: "imagenet" or the fallback
    image, history = transfer(content, style, extractor, num_steps=200)
    plot_history(history, "style transfer losses", keys=["content", "style", "tv"], logy=True)
"""

import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

# A TCP probe bounded by its timeout, DNS lookup included (offline, downloads fail or hang).
from course_lib.data.images import _host_reachable

# Gatys et al. 2016: style from conv1_1 ... conv5_1, content from conv4_2.
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CONTENT_LAYER = "block4_conv2"
# keras.applications.vgg19 (mode "caffe"): BGR order, ImageNet mean colour in [0, 255].
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_HOST = ("storage.googleapis.com", 443)
IMAGENET = "imagenet"
RANDOM_FALLBACK = "random (offline fallback)"
RANDOM = "random"


# ---------------------------------------------------------------------------------------
# The maths, as functions
# ---------------------------------------------------------------------------------------


def gram_matrix(features):
    """G = F^T F / (H W): the channel co-activations of a feature map, averaged over positions.

    Args:
        features: (batch, H, W, C), any float or int dtype (computed in float32).

    Returns:
        (batch, C, C) float32, symmetric positive semi-definite; G[b, i, j] is the mean over
        the H * W positions of F[b, :, :, i] * F[b, :, :, j]. Dividing by H * W makes it
        independent of the image size, so a style image of any size gives comparable Grams.

    Example:
        >>> gram_matrix(np.ones((2, 4, 4, 3))).shape   # every entry is 1.0
        (2, 3, 3)
    """
    features = ops.cast(features, "float32")
    shape = ops.shape(features)
    flat = ops.reshape(features, (shape[0], -1, shape[3]))  # (batch, H*W, C)
    num_positions = ops.cast(ops.shape(flat)[1], "float32")
    return ops.einsum("bpi,bpj->bij", flat, flat) / num_positions


def _relative_squared_error(value, target):
    """||value - target||^2 / ||target||^2 per example, (batch,); target broadcasts."""
    value, target = ops.cast(value, "float32"), ops.cast(target, "float32")
    axes = tuple(range(1, len(value.shape)))
    error = ops.sum(ops.square(value - target), axis=axes)
    norm = ops.sum(ops.square(target), axis=tuple(range(1, len(target.shape))))
    return error / (norm + 1e-8)


def content_loss(features, target_features):
    """L_c = ||F - P||^2 / ||P||^2 per image: how far the content features moved (relative).

    Args:
        features: (batch, H, W, C), the content layer's features of the image being optimised.
        target_features: the same layer's features of the content image, (batch or 1, H, W, C).

    Returns:
        (batch,) float32; 0 when the features are identical.
    """
    return _relative_squared_error(features, target_features)


def style_loss(features, target_grams):
    """L_s = mean over layers of ||G^l - A^l||^2 / ||A^l||^2, per image.

    Args:
        features: list of feature maps (batch, H_l, W_l, C_l), one per style layer.
        target_grams: list of the style image's Gram matrices (1 or batch, C_l, C_l), same
            order (`gram_matrix` of the style image's features).

    Returns:
        (batch,) float32; 0 when every Gram matrix equals its target. Gatys et al. weigh layer
        l by w_l / (4 C_l^2) on unnormalised sums; dividing by ||A^l||^2 instead makes each
        layer's term start near 1, whatever the scale of the network's activations.
    """
    if len(features) != len(target_grams):
        raise ValueError(f"{len(features)} feature maps for {len(target_grams)} target Grams.")
    terms = [_relative_squared_error(gram_matrix(f), a) for f, a in zip(features, target_grams)]
    return ops.mean(ops.stack(terms, axis=0), axis=0)


def total_variation_loss(images):
    """L_tv = mean squared difference of vertical plus of horizontal neighbours, per image.

    Args:
        images: (batch, H, W, C) with H, W >= 2.

    Returns:
        (batch,) float32; 0 for a constant image. Penalises pixel-level noise and checkerboard
        artefacts that the classifier's features do not see (Mahendran & Vedaldi 2015).
    """
    images = ops.cast(images, "float32")
    vertical = ops.mean(ops.square(images[:, 1:] - images[:, :-1]), axis=(1, 2, 3))
    horizontal = ops.mean(ops.square(images[:, :, 1:] - images[:, :, :-1]), axis=(1, 2, 3))
    return vertical + horizontal


def preprocess(images):
    """[-1, 1] RGB images -> VGG19's input: [0, 255], BGR, minus the ImageNet mean colour.

    The same as `keras.applications.vgg19.preprocess_input((images + 1) * 127.5)`, written
    with `keras.ops` so that it also works on symbolic tensors inside a model.
    """
    pixels = (ops.cast(images, "float32") + 1.0) * 127.5
    return ops.flip(pixels, axis=-1) - ops.convert_to_tensor(IMAGENET_MEAN_BGR, "float32")


# ---------------------------------------------------------------------------------------
# The feature extractor, with an honest offline fallback
# ---------------------------------------------------------------------------------------


def cached_weights_path():
    """Where `keras.utils.get_file` keeps the VGG19 weights (whether or not they are there).

    `$KERAS_HOME/models` or `~/.keras/models`, or `/tmp/.keras/models` when that folder is not
    writable (the same rule as `keras.utils.get_file`).
    """
    home = Path(os.environ.get("KERAS_HOME", Path("~/.keras").expanduser()))
    if not os.access(home, os.W_OK):
        home = Path("/tmp/.keras")
    return home / "models" / WEIGHTS_FILE


def randomize_weights(model, seed=0):
    """Re-draws every convolution kernel with He-normal weights and zero biases (in place).

    He initialisation (variance 2 / fan_in) keeps the size of ReLU activations about the same
    from layer to layer (measured on a photo: RMS 37 at block1_conv1, 88 at block5_conv1),
    where Keras' default Glorot init shrinks them with depth (7.3 down to 0.12). With zero
    biases, ReLU and max-pooling, the two differ only by a scale per layer, which the relative
    losses of this module divide out; He init keeps the raw feature values readable.
    """
    initializer = keras.initializers.HeNormal(seed=seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            layer.set_weights([ops.convert_to_numpy(initializer(kernel.shape)),
                               np.zeros_like(bias)])
    return model


def _vgg19(weights):
    return keras.applications.VGG19(include_top=False, weights=weights, input_shape=(None, None, 3))


def load_feature_extractor(weights=IMAGENET, style_layers=STYLE_LAYERS,
                           content_layer=CONTENT_LAYER, timeout=3.0, seed=0, verbose=True):
    """A model mapping [-1, 1] RGB images to VGG19 feature maps, and the weights it holds.

    With `weights="imagenet"`: (1) the cached ImageNet weights are used if they are in
    `cached_weights_path()`; (2) otherwise the download host is probed for `timeout` seconds
    and the weights are downloaded (80 MB) if it answers; (3) otherwise, or if the download
    fails, VGG19 gets random He-normal weights (`randomize_weights`) and, with `verbose`, a
    message says in plain words what could not be downloaded and what is used instead. The
    second return value always tells which weights the model holds: never a silent fake.

    The model runs in float32 whatever the global mixed-precision policy: it is differentiated
    with respect to pixels, and float16 gradients through 16 layers under- or overflow.

    Args:
        weights: "imagenet", "random" (skip the download), or the path of a VGG19 "notop"
            weights file (copied from a machine that could download it).
        style_layers: names of the VGG19 layers whose Gram matrices define the style.
        content_layer: name of the layer whose features define the content.
        timeout: seconds to wait for the network probe.
        seed: seed of the random weights.
        verbose: print what was loaded (always printed when falling back).

    Returns:
        (extractor, weights_used): `extractor(images)` takes (batch, H, W, 3) in [-1, 1], any
        H, W >= 32, and returns {"style": [one (batch, H_l, W_l, C_l) per style layer],
        "content": (batch, H_c, W_c, C_c)}; `weights_used` is "imagenet", the weights file,
        "random" (asked for), or "random (offline fallback)".

    Example:
        >>> extractor, weights_used = load_feature_extractor()
        >>> weights_used   # offline, without a cached copy
        'random (offline fallback)'

    Reference:
        Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
        Recognition", ICLR 2015 (VGG19).
    """
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        vgg, weights_used = _build_vgg(weights, timeout, seed, verbose)
        inputs = keras.Input((None, None, 3), name="images")
        features = keras.Model(
            vgg.inputs,
            {"style": [vgg.get_layer(name).output for name in style_layers],
             "content": vgg.get_layer(content_layer).output},
            name="vgg19_features")
        extractor = keras.Model(inputs, features(preprocess(inputs)), name="style_extractor")
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    return extractor, weights_used


def _build_vgg(weights, timeout, seed, verbose):
    def say(text):
        if verbose:
            print(text)

    if weights in (RANDOM, None):
        say("VGG19 with random He-normal weights (as asked: weights='random').")
        return randomize_weights(_vgg19(None), seed), RANDOM
    if weights != IMAGENET:
        say(f"VGG19 with the weights in {weights}.")
        return _vgg19(str(weights)), str(weights)
    path = cached_weights_path()
    if path.exists():
        try:
            vgg = _vgg19(IMAGENET)  # keras.utils.get_file checks the file's hash
            say(f"VGG19 with ImageNet weights (cached in {path}).")
            return vgg, IMAGENET
        except Exception as error:  # noqa: BLE001 - a damaged copy falls back too
            reason = f"the cached copy {path} could not be used ({type(error).__name__}: {error})"
    else:
        start = time.perf_counter()
        if _host_reachable(*WEIGHTS_HOST, timeout=timeout):
            try:
                vgg = _vgg19(IMAGENET)  # keras.utils.get_file downloads and caches the file
                say(f"VGG19 with ImageNet weights (downloaded to {path}).")
                return vgg, IMAGENET
            except Exception as error:  # noqa: BLE001 - any failed download falls back
                reason = f"the download failed ({type(error).__name__}: {error})"
        else:
            waited = time.perf_counter() - start
            reason = (f"{WEIGHTS_HOST[0]} could not be reached (the probe gave up after "
                      f"{waited:.1f} s of the {timeout:g} s allowed; no internet access?)")
    print(f"Could not get the pretrained ImageNet VGG19 weights: {reason}.\n"
          f"Using VGG19's architecture with RANDOM weights instead ({RANDOM_FALLBACK}): "
          "their Gram matrices still capture the style's colours and textures, but they "
          "know nothing of objects, so expect cruder results than with ImageNet weights.\n"
          f"To use the real weights, run this on a machine with internet access (such as "
          f"Colab) or copy {WEIGHTS_FILE} into {path.parent}.")
    return randomize_weights(_vgg19(None), seed), RANDOM_FALLBACK


# ---------------------------------------------------------------------------------------
# The optimisation
# ---------------------------------------------------------------------------------------


def _as_batch(image):
    image = np.asarray(image, np.float32)
    return image[None] if image.ndim == 3 else image


@tf.function
def adam_transfer_step(extractor, image, m, v, t, targets, weights, learning_rate,
                       beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """One step of `transfer`: the losses of `image`, their gradient, one Adam update.

    Adam (Kingma & Ba 2015) is written out with its moments m, v passed in and returned, so
    that this one compiled function serves every call of `transfer` on images of the same
    size (a Keras optimizer holds its own variables and would be traced anew each call).

    Args:
        extractor: from `load_feature_extractor`.
        image: (1, H, W, 3) float32, the current pixels.
        m, v: Adam's first and second moments, same shape (zeros at the start).
        t: the 1-based step number, a float32 scalar tensor (for the bias correction).
        targets: (content features of the photo, [Gram matrices of the style]).
        weights: (content_weight, style_weight, tv_weight), a float32 tensor.
        learning_rate: a float32 scalar tensor.

    Returns:
        (image, m, v, losses): the updated pixels, clipped to [-1, 1], the new moments, and
        {"loss", "content", "style", "tv"} of the image the step started from.
    """
    content_target, style_targets = targets
    with tf.GradientTape() as tape:
        tape.watch(image)
        features = extractor(image)
        terms = {"content": content_loss(features["content"], content_target)[0],
                 "style": style_loss(features["style"], style_targets)[0],
                 "tv": total_variation_loss(image)[0]}
        loss = (weights[0] * terms["content"] + weights[1] * terms["style"]
                + weights[2] * terms["tv"])
    grad = tape.gradient(loss, image)
    m = beta_1 * m + (1.0 - beta_1) * grad
    v = beta_2 * v + (1.0 - beta_2) * tf.square(grad)
    m_hat, v_hat = m / (1.0 - beta_1**t), v / (1.0 - beta_2**t)  # bias correction
    image = tf.clip_by_value(image - learning_rate * m_hat / (tf.sqrt(v_hat) + epsilon), -1.0, 1.0)
    return image, m, v, {"loss": loss, **terms}


def transfer(content, style, extractor, num_steps=200, learning_rate=0.02, content_weight=1.0,
             style_weight=1.0, tv_weight=1.0, init=None, callback=None):
    """Optimises the pixels of an image to have `content`'s features and `style`'s Grams.

    Minimises content_weight * L_c + style_weight * L_s + tv_weight * L_tv (see the module
    docstring) with Adam, starting from the content image (or `init`), clipping the pixels to
    [-1, 1] after every step (`adam_transfer_step`). The extractor's weights never change.

    Args:
        content: (H, W, 3) or (1, H, W, 3) in [-1, 1].
        style: (h, w, 3) or (1, h, w, 3) in [-1, 1], any size (the Grams are size-free).
        extractor: from `load_feature_extractor`.
        num_steps: Adam steps.
        learning_rate: Adam's step size, in [-1, 1] pixel units.
        content_weight, style_weight, tv_weight: the weights of the three terms.
        init: the starting image (default: the content image), same shape as `content`.
        callback: called as `callback(step, image, losses)` after each step (step 1-based,
            image the updated (1, H, W, 3) tensor, losses a dict of floats), e.g. to keep
            frames of an animation.

    Returns:
        (image, history): the result (H, W, 3) float32 NumPy in [-1, 1], and a dict of lists
        with one value per step: "loss" (the weighted total), "content", "style", "tv", each
        of the image the step starts from (so the first values are the content image's).

    Example:
        >>> image, history = transfer(content, style, extractor, num_steps=100)
        >>> history["style"][-1] < history["style"][0]
        True
    """
    content, style = _as_batch(content), _as_batch(style)
    targets = (extractor(content)["content"],
               [gram_matrix(f) for f in extractor(style)["style"]])
    image = tf.constant(content if init is None else _as_batch(init))
    m, v = tf.zeros_like(image), tf.zeros_like(image)
    weights = tf.constant([content_weight, style_weight, tv_weight], tf.float32)
    learning_rate = tf.constant(learning_rate, tf.float32)
    history = {"loss": [], "content": [], "style": [], "tv": []}
    for step in range(1, num_steps + 1):
        image, m, v, losses = adam_transfer_step(extractor, image, m, v,
                                                 tf.constant(step, tf.float32), targets,
                                                 weights, learning_rate)
        losses = {key: float(value) for key, value in losses.items()}
        for key, value in losses.items():
            history[key].append(value)
        if callback is not None:
            callback(step, image, losses)
    return image.numpy()[0], history
