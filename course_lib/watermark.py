"""Watermarks: hidden in an image's frequencies, in a diffusion model's starting noise, in the
choice of words. Taught in notebooks/07_security/03_watermarks_and_provenance.ipynb.

    embed_image_watermark   hide n bits in the luminance of a uint8 image (DWT-DCT, QIM)
    read_image_watermark    the bits read back, and the soft vote behind each
    bit_matches             how many read bits equal the key's message (the detection score)
    detection_threshold     the fewest matching bits that flag an image, for a false-positive
                            rate under the null hypothesis (bits of an unmarked image are coin
                            flips)
    jpeg, add_noise, crop, resize_back   the attacks of the notebook, on uint8 images

    tree_ring_key           Tree-Ring (Wen et al. 2023): a key in the Fourier spectrum of the
                            starting noise
    tree_ring_noise         starting noise that carries the key
    sample_from_noise       DDIM samples of a `DiffusionModel` from given starting noise
    ddim_invert             DDIM run backwards: image -> the noise it came from
    tree_ring_score         minus the distance between an inverted noise's spectrum and the key

    green_lists             Kirchenbauer et al. (2023): a keyed green list per previous token
    generate_text           sampling from a `CharRNN` with the green tokens' logits raised
    green_z_score           the detection statistic of a token sequence
    substitute              a random fraction of the tokens replaced: a crude paraphrase

An image watermark of this kind is a signal added to the image: anything that changes the
image enough (regenerating it, cropping off the grid, heavy compression) removes it, and a
forger who knows the key can add it. The notebook measures where it breaks.
"""

import io
import math

import numpy as np
from keras import ops

# ---------------------------------------------------------------------------------------
# An invisible image watermark: Haar DWT, then a DCT of 4x4 blocks of the low band, one
# coefficient per block quantised to carry a bit (quantisation index modulation, Chen &
# Wornell 2001), every bit repeated over many blocks and read back by a vote.
# ---------------------------------------------------------------------------------------

BLOCK = 4  # side of a block of the DWT's low band (8x8 pixels of the image)
COEFFICIENT = (0, 1)  # the DCT coefficient that carries a block's bit: low frequency survives
# JPEG, and not (0, 0), the block's mean, whose change would show as a flat patch
GRID = 256  # the block-to-bit map covers 256 x 256 blocks (images up to 2,048 pixels a side)


def _to_ycbcr(image):
    """uint8 (H, W, 3) RGB or (H, W) grey -> float luminance Y and the chroma (or None)."""
    x = np.asarray(image, np.float64)
    if x.ndim == 2:
        return x, None
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b  # JPEG's (ITU-R BT.601) luminance
    return y, np.stack([(b - y) * 0.564, (r - y) * 0.713], axis=-1)


def _from_ycbcr(y, chroma):
    if chroma is None:
        return y
    blue, red = chroma[..., 0] / 0.564 + y, chroma[..., 1] / 0.713 + y
    green = (y - 0.299 * red - 0.114 * blue) / 0.587
    return np.stack([red, green, blue], axis=-1)


def haar_dwt2(x):
    """One level of the orthonormal 2-D Haar transform of (H, W), H and W even: the bands
    (LL, LH, HL, HH), each (H/2, W/2). LL is twice the mean of each 2x2 square; LH is its
    left column minus its right (it responds to vertical edges), HL its top row minus its
    bottom (horizontal edges), HH the diagonal difference."""
    a, b, c, d = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]
    return (a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2


def haar_idwt2(ll, lh, hl, hh):
    """The inverse of `haar_dwt2`."""
    x = np.empty((2 * ll.shape[0], 2 * ll.shape[1]), ll.dtype)
    x[0::2, 0::2] = (ll + lh + hl + hh) / 2
    x[0::2, 1::2] = (ll - lh + hl - hh) / 2
    x[1::2, 0::2] = (ll + lh - hl - hh) / 2
    x[1::2, 1::2] = (ll - lh - hl + hh) / 2
    return x


def _check_image(image):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (
            image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(f"expected a uint8 image (H, W) or (H, W, 3), got {image.dtype} "
                         f"{image.shape}: convert with np.clip(x, 0, 255).astype(np.uint8).")
    rows, cols = image.shape[0] // (2 * BLOCK), image.shape[1] // (2 * BLOCK)
    if rows * cols < 8:
        raise ValueError(f"a {image.shape[0]}x{image.shape[1]} image has {rows * cols} blocks "
                         f"of {2 * BLOCK}x{2 * BLOCK} pixels: too few to carry bits (a 64x64 "
                         "image has 64).")
    return image, rows, cols


def message_bits(key, num_bits):
    """The key's message: num_bits pseudo-random bits, int (num_bits,)."""
    return np.random.default_rng([int(key), 1]).integers(0, 2, num_bits)


def _bit_map(key, num_bits, rows, cols):
    """Which bit each block carries: a keyed shuffle of the GRID x GRID blocks, each bit the
    same number of times over the whole map. It depends on the block's place counted from
    the top-left corner, so a crop that keeps that corner keeps the map; a crop that cuts
    whole blocks off the top or the left shifts it, and the bits read are coin flips."""
    if rows > GRID or cols > GRID:
        raise ValueError(f"images up to {GRID * 2 * BLOCK} pixels a side are supported.")
    table = np.arange(GRID * GRID) % num_bits
    np.random.default_rng([int(key), 2]).shuffle(table)
    return table.reshape(GRID, GRID)[:rows, :cols]


def _dither(key, rows, cols, strength):
    """A keyed offset in [0, strength) for each block (dither modulation, Chen & Wornell
    2001): each block's two lattices are shifted by its own secret amount, so that without
    the key the lattices cannot be seen in the coefficients, nor cleared from them."""
    table = np.random.default_rng([int(key), 4]).random((GRID, GRID))
    return table[:rows, :cols] * strength


def _blocks(band, rows, cols):
    """(rows*BLOCK, cols*BLOCK) -> (rows, cols, BLOCK, BLOCK)."""
    band = band[:rows * BLOCK, :cols * BLOCK]
    return band.reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)


def _unblocks(blocks):
    rows, cols = blocks.shape[:2]
    return blocks.transpose(0, 2, 1, 3).reshape(rows * BLOCK, cols * BLOCK)


def _coefficients(y, rows, cols):
    from scipy.fft import dctn

    ll, lh, hl, hh = haar_dwt2(y[:2 * rows * BLOCK, :2 * cols * BLOCK])
    return dctn(_blocks(ll, rows, cols), axes=(2, 3), norm="ortho"), (lh, hl, hh)


def embed_image_watermark(image, key, num_bits=32, strength=24.0):
    """The image with the key's `num_bits`-bit message hidden in its luminance.

    Each 8x8 pixel block's coefficient COEFFICIENT (of the DCT of its 4x4 patch of the
    Haar low band) is moved to the nearest point of the lattice strength * Z + d (bit 0) or
    strength * (Z + 1/2) + d (bit 1), with d the block's keyed dither: quantisation index
    modulation. A larger `strength` survives stronger attacks and shows more. Returns uint8,
    the shape of `image`; pixels past the last whole block are left as they were.
    """
    from scipy.fft import idctn

    image, rows, cols = _check_image(image)
    if not 1 <= num_bits <= rows * cols:
        raise ValueError(f"num_bits must be in [1, {rows * cols}] for this image, got {num_bits}.")
    y, chroma = _to_ycbcr(image)
    coefficients, details = _coefficients(y, rows, cols)
    where = _bit_map(key, num_bits, rows, cols)
    if np.unique(where).size < num_bits:
        raise ValueError(f"with {rows * cols} blocks, some of the {num_bits} bits fall in no "
                         "block of this image: use fewer bits or a larger image.")
    bits = message_bits(key, num_bits)[where]
    c = coefficients[:, :, COEFFICIENT[0], COEFFICIENT[1]]
    offset = bits * strength / 2 + _dither(key, rows, cols, strength)
    coefficients[:, :, COEFFICIENT[0], COEFFICIENT[1]] = (
        np.round((c - offset) / strength) * strength + offset)
    ll = _unblocks(idctn(coefficients, axes=(2, 3), norm="ortho"))
    marked_y = y.copy()
    marked_y[:2 * rows * BLOCK, :2 * cols * BLOCK] = haar_idwt2(ll, *details)
    return np.clip(np.round(_from_ycbcr(marked_y, chroma)), 0, 255).astype(np.uint8)


def read_image_watermark(image, key, num_bits=32, strength=24.0):
    """The bits read from `image` with `key`: (bits int (num_bits,), votes float (num_bits,)).

    Each block votes for the bit whose lattice is nearer its coefficient: its vote is the
    distance from the boundary between the two, in quarter steps (-1: on bit 0's lattice,
    +1: on bit 1's). A bit is 1 if its votes sum above 0, else 0 (a bit whose blocks were all
    cropped away reads 0).
    """
    image, rows, cols = _check_image(image)
    y, _ = _to_ycbcr(image)
    coefficients, _ = _coefficients(y, rows, cols)
    c = coefficients[:, :, COEFFICIENT[0], COEFFICIENT[1]] - _dither(key, rows, cols, strength)
    # distance to the bit-0 lattice, in [0, strength / 2]; bit 1's is strength / 2 minus it
    distance = np.abs(c / strength - np.round(c / strength)) * strength
    vote = (4 * distance / strength - 1).reshape(-1)  # +1: surely bit 1, -1: surely bit 0
    which = _bit_map(key, num_bits, rows, cols).reshape(-1)
    votes = np.bincount(which, weights=vote, minlength=num_bits)
    return (votes > 0).astype(np.int64), votes


def bit_matches(image, key, num_bits=32, strength=24.0):
    """How many of the bits read from `image` equal the key's message (0..num_bits)."""
    bits, _ = read_image_watermark(image, key, num_bits, strength)
    return int(np.sum(bits == message_bits(key, num_bits)))


def detection_threshold(num_bits, false_positive_rate=1e-3):
    """The fewest matching bits k such that P(Binomial(num_bits, 1/2) >= k) <= the rate: the
    detector that flags an image at k or more matches accuses an unmarked image, whose bits
    are fair coins, at most that often."""
    if not 1 <= num_bits <= 1000:
        raise ValueError(f"num_bits must be in [1, 1000], got {num_bits}.")
    tail = 0.0
    for k in range(num_bits, -1, -1):
        tail += math.comb(num_bits, k) / 2.0 ** num_bits
        if tail > false_positive_rate:
            return k + 1
    return 0


# The attacks ----------------------------------------------------------------------------


def jpeg(image, quality):
    """The image saved as a JPEG of this quality (1-95) and read back, uint8."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())))


def add_noise(image, sigma, seed=0):
    """Gaussian noise of standard deviation sigma (in grey levels), rounded and clipped."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def crop(image, fraction, offset=(0, 0)):
    """The top-left `fraction` of each side, starting `offset` pixels in (rows, columns)."""
    rows, cols = (int(side * fraction) for side in image.shape[:2])
    return image[offset[0]:offset[0] + rows, offset[1]:offset[1] + cols]


def resize_back(image, scale):
    """Resized by `scale` (bicubic) and back to the original size, as a verifier that knows
    the published size would read it."""
    from PIL import Image

    height, width = image.shape[:2]
    small = Image.fromarray(image).resize((max(1, round(width * scale)),
                                           max(1, round(height * scale))), Image.BICUBIC)
    return np.asarray(small.resize((width, height), Image.BICUBIC))


# ---------------------------------------------------------------------------------------
# Tree-Ring: the watermark is in the noise the sampler starts from.
# ---------------------------------------------------------------------------------------


def tree_ring_key(image_shape, radius, seed=0, inner=0.0):
    """A Tree-Ring key for images of `image_shape` (H, W, C): (mask bool (H, W), key complex
    (H, W)). The mask holds the frequencies (u, v) with inner <= sqrt(u^2 + v^2) <= radius,
    in `np.fft.fft2`'s order; the key is constant on each ring of whole-number radius (Wen et
    al.'s "rings" pattern), a value drawn from the spectrum of one Gaussian noise image. Each
    value is real and the pattern is symmetric, key(-u, -v) = key(u, v), so the spectrum it
    writes is that of a real image and the marked noise stays real."""
    height, width = image_shape[:2]
    fy, fx = np.fft.fftfreq(height) * height, np.fft.fftfreq(width) * width
    distance = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    mask = (distance <= radius) & (distance >= inner)
    reference = np.fft.fft2(np.random.default_rng(seed).standard_normal((height, width)))
    key = np.zeros((height, width), np.complex128)
    rings = np.round(distance).astype(int)
    for ring in np.unique(rings[mask]):
        key[mask & (rings == ring)] = reference[0, ring % width].real
    return mask, key


def tree_ring_noise(num_samples, image_shape, mask, key, seed=0):
    """Gaussian starting noise (num_samples, *image_shape), float32, with the key written
    into the masked frequencies of every channel."""
    noise = np.random.default_rng(seed).standard_normal((num_samples, *image_shape))
    spectrum = np.fft.fft2(noise, axes=(1, 2))
    spectrum[:, mask, :] = key[mask][None, :, None]
    return np.fft.ifft2(spectrum, axes=(1, 2)).real.astype(np.float32)


def sample_from_noise(model, noise, num_steps=50, batch_size=256):
    """DDIM (deterministic) samples of a `DiffusionModel` from the given starting noise,
    clipped to [-1, 1]: the sampler of `model.sample`, with noise chosen by the caller."""
    from course_lib.sampling import denoise, make_sampler

    sampler = make_sampler(model, "ddim")
    sampler.set_timesteps(num_steps)
    noise = np.asarray(noise, np.float32)
    return np.concatenate([np.clip(denoise(model, noise[i:i + batch_size], sampler), -1, 1)
                           for i in range(0, len(noise), batch_size)]).astype(np.float32)


def ddim_invert(model, images, num_steps=50, labels=None, guidance_scale=1.0):
    """DDIM's deterministic update run from the image up to t = T - 1: the noise that DDIM
    would turn into (nearly) this image. Each step from t to a noisier t' needs the noise
    estimate at x_t', which is not known yet; it uses eps_hat = eps_theta(x_t, t') instead
    (the convention of Tree-Ring's code and of diffusers' DDIMInverseScheduler), then
    x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) and
    x_t' = sqrt(abar_t') x0_hat + sqrt(1 - abar_t') eps_hat. The first step starts from the
    image itself (abar = 1); x0_hat is not clipped."""
    if model.objective == "flow":
        raise ValueError("ddim_invert needs a model with objective 'eps' or 'v' (DDIM); a flow "
                         "model inverts by integrating its velocity backwards.")
    scheduler = model.ddim_scheduler
    timesteps = scheduler.set_timesteps(num_steps)[::-1]  # from the least noisy up
    abar = np.asarray(scheduler.alphas_cumprod, np.float64)
    x = np.asarray(images, np.float32)
    if len(x) > 256:
        labels = None if labels is None else np.broadcast_to(np.asarray(labels), (len(x),))
        return np.concatenate([ddim_invert(
            model, x[i:i + 256], num_steps, None if labels is None else labels[i:i + 256],
            guidance_scale) for i in range(0, len(x), 256)])
    previous = None
    for t in timesteps:
        eps = np.asarray(ops.convert_to_numpy(model.guided_prediction(
            x, int(t), labels, guidance_scale)), np.float64)
        if previous is None:  # the first step starts from the image itself, t = 0
            a_from = 1.0
        else:
            a_from = abar[previous]
        x0 = (x - math.sqrt(1 - a_from) * eps) / math.sqrt(a_from)
        x = (math.sqrt(abar[t]) * x0 + math.sqrt(1 - abar[t]) * eps).astype(np.float32)
        previous = t
    return x


def tree_ring_score(noise, mask, key):
    """Minus the mean distance |FFT(noise) - key| over the masked frequencies, per image and
    averaged over channels: 0 for noise that carries the key exactly, higher (nearer 0) for
    an inverted marked sample than for an inverted plain one."""
    spectrum = np.fft.fft2(np.asarray(noise, np.float64), axes=(1, 2))
    return -np.mean(np.abs(spectrum[:, mask, :] - key[mask][None, :, None]), axis=(1, 2))


# ---------------------------------------------------------------------------------------
# A statistical text watermark: green lists (Kirchenbauer et al. 2023).
# ---------------------------------------------------------------------------------------


def green_lists(vocabulary_size, gamma=0.5, key=0):
    """bool (V, V): row p is the green list that follows token p, a keyed random fraction
    `gamma` of the vocabulary, rounded to whole tokens (the paper seeds a generator with a
    hash of the previous token and the key; with a small vocabulary the whole table fits in
    memory). `green_z_score` reads the exact fraction from the table."""
    if not 0 < gamma < 1:
        raise ValueError(f"gamma is the green fraction of the vocabulary, in (0, 1); got {gamma}.")
    size = max(1, round(gamma * vocabulary_size))
    rng = np.random.default_rng([int(key), 3])
    table = np.zeros((vocabulary_size, vocabulary_size), bool)
    for previous in range(vocabulary_size):
        table[previous, rng.permutation(vocabulary_size)[:size]] = True
    return table


def green_z_score(ids, green, gamma=None, unique=True):
    """The z-score of the green tokens in `ids` (one sequence, or (n, T) sequences): with
    T scored tokens, of which |s|_G are green, z = (|s|_G - gamma T) / sqrt(T gamma (1 -
    gamma)). Text written without the key has each token green with probability gamma, so z
    is about standard normal; watermarked text has more green tokens.

    With `unique` (the default), each (previous, token) pair is scored once however often it
    repeats: a token's colour is a function of the pair, so repeats are not independent draws,
    and at the character level they are many (" t", "th", "he" ...). Scoring them all gives
    unmarked text z-scores far wider than a standard normal (Kirchenbauer et al.'s follow-up,
    "On the Reliability of Watermarks", 2023, discusses this).
    """
    ids = np.asarray(ids)
    if ids.ndim == 1:
        return float(green_z_score(ids[None], green, gamma, unique)[0])
    if ids.shape[1] < 2:
        raise ValueError("a sequence needs at least two tokens to score one.")
    gamma = float(green[0].mean()) if gamma is None else gamma
    pairs = ids[:, :-1].astype(np.int64) * green.shape[1] + ids[:, 1:]
    scores = []
    for row in pairs:
        row = np.unique(row) if unique else row
        count, hits = row.size, green.reshape(-1)[row].sum()
        scores.append((hits - gamma * count) / math.sqrt(count * gamma * (1 - gamma)))
    return np.asarray(scores)


def generate_text(model, prompt_ids, num_tokens, num_samples, green=None, delta=0.0,
                  temperature=1.0, seed=0):
    """Samples from a `CharRNN` with delta added to the logits of the green list of each
    previous token (delta 0: no watermark).

    Returns (ids int (num_samples, num_tokens), kl float (num_samples, num_tokens)): kl is
    KL(marked || plain) in bits at each step, the watermark's cost: the extra bits needed to
    encode what the marked sampler writes with the model's own distribution instead of the
    marked one (near 0 where the model is sure of the next token).
    """
    if delta and green is None:
        raise ValueError("a watermark (delta != 0) needs the green lists: pass green=.")
    rng = np.random.default_rng(seed)
    prompt = np.tile(np.asarray(prompt_ids, np.int32)[None], (num_samples, 1))
    logits, states = model(prompt, return_state=True)
    previous = prompt[:, -1]
    chosen, kls = [], []
    for _ in range(num_tokens):
        plain = _log_softmax(np.asarray(ops.convert_to_numpy(logits[:, -1]), np.float64)
                             / temperature)
        marked = _log_softmax(plain + delta * green[previous]) if delta else plain
        p = np.exp(marked)
        token = np.minimum((p.cumsum(-1) < rng.random((num_samples, 1))).sum(-1),
                           p.shape[1] - 1)
        chosen.append(token)
        kls.append(np.sum(p * (marked - plain), axis=-1) / math.log(2))
        previous = token.astype(np.int32)
        logits, states = model(previous[:, None], states, return_state=True)
    return np.stack(chosen, 1), np.stack(kls, 1)


def substitute(ids, fraction, vocabulary_size, seed=0):
    """A copy of `ids` with a random `fraction` of its tokens replaced by random tokens: the
    crudest paraphrase, an attack that needs no model."""
    ids = np.array(ids)
    rng = np.random.default_rng(seed)
    hit = rng.random(ids.shape) < fraction
    ids[hit] = rng.integers(0, vocabulary_size, int(hit.sum()))
    return ids


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), -1, keepdims=True))
