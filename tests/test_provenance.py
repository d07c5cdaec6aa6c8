import copy

import numpy as np
import pytest

from course_lib import provenance
from course_lib.provenance import ProvenanceError


@pytest.fixture()
def signed_image():
    image = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    key = provenance.new_key()
    signed = provenance.sign(image, key, "DiffusionModel/ddim-20", seed=3,
                             settings={"num_steps": 20, "guidance_scale": 1.0})
    return image, key, signed


def test_untouched_image_verifies(signed_image, tmp_path):
    image, key, signed = signed_image
    trusted = [provenance.public_key_hex(key)]
    assert provenance.verify(image, signed, trusted)["seed"] == 3
    provenance.save_png(tmp_path / "x.png", image, signed)
    loaded, manifest = provenance.load_png(tmp_path / "x.png")
    assert np.array_equal(loaded, image)
    assert provenance.verify(loaded, manifest, trusted)["generator"] == "DiffusionModel/ddim-20"


def test_every_tampering_is_caught_with_its_reason(signed_image):
    image, key, signed = signed_image
    trusted = [provenance.public_key_hex(key)]
    pixel = image.copy()
    pixel[0, 0] ^= 1
    with pytest.raises(ProvenanceError, match="pixels do not match"):
        provenance.verify(pixel, signed, trusted)
    with pytest.raises(ProvenanceError, match="pixels do not match"):  # same bytes, new shape
        provenance.verify(image.reshape(8, 32), signed, trusted)
    metadata = copy.deepcopy(signed)
    metadata["manifest"]["seed"] = 4
    with pytest.raises(ProvenanceError, match="signature does not match"):
        provenance.verify(image, metadata, trusted)
    signature = copy.deepcopy(signed)
    raw = bytearray(__import__("base64").b64decode(signature["signature"]))
    raw[0] ^= 1
    signature["signature"] = __import__("base64").b64encode(bytes(raw)).decode()
    with pytest.raises(ProvenanceError, match="signature does not match"):
        provenance.verify(image, signature, trusted)
    forger = provenance.sign(pixel, provenance.new_key(), "someone else", seed=0)
    with pytest.raises(ProvenanceError, match="not a trusted key"):
        provenance.verify(pixel, forger, trusted)
    swapped = dict(signed, public_key=forger["public_key"])  # a trusted-looking claim
    with pytest.raises(ProvenanceError, match="signature does not match"):
        provenance.verify(image, swapped, trusted + [forger["public_key"]])
    with pytest.raises(ProvenanceError, match="not a signed manifest"):
        provenance.verify(image, {"manifest": {}}, trusted)


def test_missing_manifest_and_bad_settings_are_explained(tmp_path, signed_image):
    image, key, _ = signed_image
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "plain.png")
    with pytest.raises(ProvenanceError, match="carries no manifest"):
        provenance.load_png(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="JSON values"):
        provenance.sign(image, key, "g", 0, settings={"array": np.zeros(2)})
    with pytest.raises(ValueError, match="uint8"):
        provenance.save_png(tmp_path / "f.png", image.astype(np.float32), {})
