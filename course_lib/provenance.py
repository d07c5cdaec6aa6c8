"""Signed provenance: a manifest of how an image was made, bound to its pixels by a hash and
signed with Ed25519 (the `cryptography` package). Taught in
notebooks/07_security/03_watermarks_and_provenance.ipynb.

    new_key          an Ed25519 private key (keep it secret; publish its public key)
    public_key_hex   the public key, as 64 hex digits, for a list of trusted keys
    image_digest     SHA-256 of an image's pixels, shape and type
    sign             a signed manifest: generator, seed, settings and the image's digest
    verify           checks a signed manifest against an image and the trusted keys; raises
                     `ProvenanceError` saying what does not match
    save_png / load_png   an image with its signed manifest in a PNG text chunk

This is the idea of C2PA's content credentials (a signed manifest bound to the content's
hash) without its container format and certificate chains. A signature proves who signed
and that nothing changed since; it says nothing about an image without a manifest (anyone
can strip one), nor whether what the signer wrote in it is true. The hash covers the decoded
pixels, not the file's bytes (C2PA's hard binding hashes the bytes), so a lossless re-save
still verifies and any lossy one does not.
"""

import base64
import hashlib
import json

import numpy as np

MANIFEST_KEY = "course-provenance"  # the PNG text chunk that holds the signed manifest


class ProvenanceError(ValueError):
    """An image or manifest that fails verification; the message says what failed."""


def new_key():
    """A new Ed25519 private key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def public_key_hex(key):
    """The public key of a private (or public) Ed25519 key, as 64 hex digits."""
    from cryptography.hazmat.primitives import serialization

    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.Raw,
                               serialization.PublicFormat.Raw).hex()


def image_digest(image):
    """SHA-256 (hex) of an image's pixels together with its shape and dtype, so that the same
    bytes read as another shape do not match."""
    image = np.ascontiguousarray(image)
    header = f"{image.dtype.str}{image.shape}".encode()
    return hashlib.sha256(header + image.tobytes()).hexdigest()


def _canonical(manifest):
    """The bytes that are signed: sorted keys, no spaces, so that any reader gets the same."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def sign(image, key, generator, seed, settings=None):
    """A signed manifest (a dict, JSON-ready) for `image`, made by `generator` from `seed`
    with `settings` (a JSON-ready dict): {"manifest": ..., "signature": base64,
    "public_key": hex}."""
    if isinstance(seed, np.integer):
        seed = int(seed)
    if seed is not None and not isinstance(seed, int):
        raise ValueError(f"seed must be a whole number or None, got {seed!r}.")
    manifest = {"generator": str(generator), "seed": seed, "settings": settings or {},
                "image_sha256": image_digest(image)}
    try:
        payload = _canonical(manifest)
    except TypeError as error:
        raise ValueError(f"settings must hold only JSON values (numbers, strings, lists, "
                         f"dicts): {error}") from None
    return {"manifest": manifest,
            "signature": base64.b64encode(key.sign(payload)).decode(),
            "public_key": public_key_hex(key)}


def verify(image, signed, trusted_keys):
    """Returns the manifest if `signed` was signed by one of `trusted_keys` (hex public keys)
    and `image` is the image it describes; raises `ProvenanceError` otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if (not isinstance(signed, dict)
            or not {"manifest", "signature", "public_key"} <= set(signed)
            or not isinstance(signed["manifest"], dict)
            or not all(isinstance(signed[k], str) for k in ("signature", "public_key"))):
        raise ProvenanceError("not a signed manifest: expected a dict with 'manifest' (a dict), "
                              "'signature' and 'public_key' (strings), as provenance.sign "
                              "makes.")
    trusted = {str(key).lower() for key in ([trusted_keys] if isinstance(trusted_keys, str)
                                            else trusted_keys)}
    if signed["public_key"].lower() not in trusted:
        raise ProvenanceError(f"signed by the key {signed['public_key'][:16]}..., which is not "
                              "a trusted key: anyone can sign with a key of their own.")
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(signed["public_key"]))
        public.verify(base64.b64decode(signed["signature"], validate=True),
                      _canonical(signed["manifest"]))
    except (InvalidSignature, ValueError, TypeError):
        raise ProvenanceError("the signature does not match the manifest: the manifest or the "
                              "signature was changed after signing.") from None
    if signed["manifest"].get("image_sha256") != image_digest(image):
        raise ProvenanceError("the image's pixels do not match the manifest's hash: the image "
                              "was changed after signing (even one pixel changes the hash).")
    return signed["manifest"]


def save_png(path, image, signed):
    """Writes a uint8 image as a PNG with the signed manifest in a text chunk."""
    from PIL import Image, PngImagePlugin

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"save a uint8 image (PNG stores 8-bit pixels), got {image.dtype}.")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))):
        raise ValueError(f"save an (H, W) grey or (H, W, 3/4) colour image, got {image.shape}: "
                         "drop a single channel axis with image[..., 0].")
    info = PngImagePlugin.PngInfo()
    info.add_text(MANIFEST_KEY, json.dumps(signed))
    Image.fromarray(image).save(path, pnginfo=info)


def load_png(path):
    """(image uint8, signed manifest) from a PNG written by `save_png`; raises
    `ProvenanceError` if it carries no manifest (which proves nothing either way)."""
    from PIL import Image

    with Image.open(path) as file:
        image = np.asarray(file)
        text = file.info.get(MANIFEST_KEY)
    if text is None:
        raise ProvenanceError(f"{path} carries no manifest: it is unsigned, which says nothing "
                              "about where it came from (a manifest is easy to strip).")
    try:
        return image, json.loads(text)
    except json.JSONDecodeError:
        raise ProvenanceError(f"{path} carries a manifest that is not valid JSON: it was "
                              "damaged or edited.") from None
