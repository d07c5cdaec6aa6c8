"""Tests of course_lib.data: bundled sets, tf.data pipelines, image folders, TFDS fallback."""

import time

import numpy as np
import pytest
import tensorflow as tf

from course_lib import data
from course_lib.data import images as image_data


def assert_model_range(images, min_spread=1.5):
    """float32 in [-1, 1], and using most of that range (not all squashed near one value)."""
    assert images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images.max() - images.min() >= min_spread


def row_set(images):
    return {image.tobytes() for image in images}


# ---------------------------------------------------------------- value ranges


def test_range_round_trip_numpy_and_tensor():
    x = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    np.testing.assert_allclose(data.to_display_range(data.to_model_range(x)), x, atol=1e-6)
    t = data.to_display_range(tf.constant([-3.0, -1.0, 0.0, 1.0, 3.0]))
    assert tf.is_tensor(t)
    np.testing.assert_allclose(t.numpy(), [0.0, 0.0, 0.5, 1.0, 1.0])
    assert isinstance(data.to_display_range(np.array([2.0])), np.ndarray)


# ---------------------------------------------------------------- bundled sets


def test_digits_shapes_ranges_and_labels():
    images, labels = data.load_digits(image_size=12, split="all")
    assert images.shape == (1797, 12, 12, 1)
    assert labels.dtype == np.int32 and labels.shape == (1797,)
    assert set(np.unique(labels)) == set(range(10))
    assert_model_range(images)
    assert np.mean(images < -0.9) > 0.3  # mostly dark background, as in the source


def test_digits_split_is_disjoint_stratified_and_deterministic():
    x_train, y_train = data.load_digits(image_size=8, split="train")
    x_test, y_test = data.load_digits(image_size=8, split="test")
    assert len(x_train) + len(x_test) == 1797
    assert 0.18 < len(x_test) / 1797 < 0.22
    assert not row_set(x_train) & row_set(x_test)  # the 1,797 source digits are all distinct
    assert set(np.unique(y_test)) == set(range(10))
    again, again_labels = data.load_digits(image_size=8, split="test")
    np.testing.assert_array_equal(x_test, again)
    np.testing.assert_array_equal(y_test, again_labels)
    other, _ = data.load_digits(image_size=8, split="test", seed=1)
    assert row_set(other) != row_set(x_test)


def test_digits_reject_too_small_size_and_bad_split():
    with pytest.raises(ValueError, match="at least 8"):
        data.load_digits(image_size=4)
    with pytest.raises(ValueError, match="split"):
        data.load_digits(split="validation")


def test_faces_are_the_100_real_faces_split_disjointly():
    train = data.load_faces(image_size=16)
    test = data.load_faces(image_size=16, split="test")
    assert train.shape == (80, 16, 16, 1) and test.shape == (20, 16, 16, 1)
    assert_model_range(train)
    assert not row_set(train) & row_set(test)
    np.testing.assert_array_equal(test, data.load_faces(image_size=16, split="test"))


def test_photo_patches_shapes_ranges_and_determinism():
    patches = data.load_photo_patches(patch_size=8, num_patches=64, seed=3)
    assert patches.shape == (64, 8, 8, 3)
    assert_model_range(patches)
    np.testing.assert_array_equal(patches, data.load_photo_patches(8, 64, seed=3))
    assert not np.array_equal(patches, data.load_photo_patches(8, 64, seed=4))


def test_photo_test_patches_come_from_held_out_rows():
    """Every test patch lies in the bottom 20% of its photo, every train patch above it."""
    patch_size = 16
    for split, held_out in (("train", False), ("test", True)):
        patches = data.load_photo_patches(patch_size, num_patches=12, split=split)
        for patch in data.to_display_range(patches):
            rows = find_patch_rows(np.round(patch * 255).astype(np.uint8))
            assert rows is not None, "patch not found in any photo"
            top, height = rows
            boundary = height - round(0.2 * height)
            if held_out:
                assert top >= boundary
            else:
                assert top + patch_size <= boundary


def find_patch_rows(patch):
    """(top row, photo height) where `patch` occurs in one of the bundled photos, or None."""
    size = patch.shape[0]
    for _, photo in image_data._photos():
        windows = np.lib.stride_tricks.sliding_window_view(photo[..., 0], (size, size))
        for top, left in zip(*np.nonzero(windows[..., 0, 0] == patch[0, 0, 0])):
            if np.array_equal(photo[top : top + size, left : left + size], patch):
                return top, photo.shape[0]
    return None


def test_photo_patches_too_large_raise():
    with pytest.raises(ValueError, match="too large"):
        data.load_photo_patches(patch_size=200, num_patches=1, split="test")


# ---------------------------------------------------------------- make_dataset


def test_make_dataset_batches_and_is_deterministic_per_seed():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    labels = np.arange(10, dtype=np.int32)
    dataset = data.make_dataset(images, labels, batch_size=4, seed=7)
    batches = list(dataset.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(batches[0][0][:, 0, 0, 0], batches[0][1])  # pairs kept
    assert sorted(np.concatenate([b[1] for b in batches])) == list(range(10))
    same = next(iter(data.make_dataset(images, labels, batch_size=4, seed=7)))
    np.testing.assert_array_equal(same[1], batches[0][1])
    epoch2 = np.concatenate([b[1] for b in dataset.as_numpy_iterator()])
    assert not np.array_equal(epoch2, np.concatenate([b[1] for b in batches]))  # reshuffled


def test_make_dataset_drop_remainder_no_shuffle_and_flip():
    images = np.stack([np.tile(np.arange(4, dtype=np.float32), (4, 1))] * 10)[..., None]
    dataset = data.make_dataset(images, batch_size=4, shuffle=False, drop_remainder=True,
                                augment="flip")
    batches = list(dataset.as_numpy_iterator())
    assert [b.shape for b in batches] == [(4, 4, 4, 1)] * 2
    first_pixels = np.concatenate([b[:, 0, 0, 0] for b in batches])
    assert set(first_pixels) == {0.0, 3.0}  # some images flipped left-right, some not
    fresh = data.make_dataset(images, batch_size=4, shuffle=False, drop_remainder=True,
                              augment="flip")
    np.testing.assert_array_equal(  # same seed, same flips
        first_pixels, np.concatenate([b[:, 0, 0, 0] for b in fresh.as_numpy_iterator()]))
    epoch2 = np.concatenate([b[:, 0, 0, 0] for b in dataset.as_numpy_iterator()])
    assert not np.array_equal(epoch2, first_pixels)  # new flips every epoch


def test_make_dataset_applies_a_callable_augment_to_images_only():
    images = np.zeros((6, 2, 2, 1), np.float32)
    dataset = data.make_dataset(images, np.ones(6, np.int32), batch_size=3, shuffle=False,
                                augment=lambda x: x + 1.0)
    x, y = next(iter(dataset))
    assert np.all(x.numpy() == 1.0) and np.all(y.numpy() == 1)


def test_binarize_draws_binary_pixels_whose_mean_is_the_grey_image():
    grey = np.array([-1.0, -0.5, 0.0, 0.6, 1.0], np.float32).reshape(1, 1, 5, 1)
    many = np.repeat(grey, 20_000, axis=0)
    binary = data.binarize(many, seed=0)
    assert binary.dtype == np.float32 and set(np.unique(binary)) == {-1.0, 1.0}
    np.testing.assert_allclose(binary.mean(axis=0), grey[0], atol=0.02)  # E[binary] = grey
    assert np.all(binary[:, 0, 0] == -1) and np.all(binary[:, 0, 4] == 1)  # black, white stay
    np.testing.assert_array_equal(binary, data.binarize(many, seed=0))
    assert not np.array_equal(binary, data.binarize(many, seed=1))


def test_make_dataset_binarizes_anew_every_epoch_and_keeps_labels():
    images = np.zeros((8, 4, 4, 1), np.float32)  # grey 0: each pixel is 1 with probability 1/2
    labels = np.arange(8, dtype=np.int32)
    dataset = data.make_dataset(images, labels, batch_size=4, shuffle=False, binarize=True)
    epoch1 = list(dataset.as_numpy_iterator())
    x = np.concatenate([b[0] for b in epoch1])
    assert set(np.unique(x)) == {-1.0, 1.0} and 0.3 < np.mean(x == 1) < 0.7
    np.testing.assert_array_equal(np.concatenate([b[1] for b in epoch1]), labels)
    epoch2 = np.concatenate([b[0] for b in dataset.as_numpy_iterator()])
    assert not np.array_equal(epoch2, x)  # dynamic: a new draw every epoch
    fresh = data.make_dataset(images, labels, batch_size=4, shuffle=False, binarize=True)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in fresh.as_numpy_iterator()]), x)
    plain = next(iter(data.make_dataset(images, batch_size=4, shuffle=False)))
    assert np.all(plain.numpy() == 0.0)  # off by default


# ---------------------------------------------------------------- image folders


def write_png(path, value, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = tf.fill((*size, 3), tf.constant(value, tf.uint8))
    path.write_bytes(tf.io.encode_png(image).numpy())


def test_folder_yields_scaled_resized_images_from_sub_folders(tmp_path):
    write_png(tmp_path / "a.png", 0)
    write_png(tmp_path / "sub" / "b.PNG", 255, size=(9, 3))
    dataset = data.image_folder_dataset(tmp_path, image_size=4, batch_size=8, shuffle=False)
    (batch,) = list(dataset.as_numpy_iterator())
    assert batch.shape == (2, 4, 4, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0], -1.0)
    np.testing.assert_allclose(batch[1], 1.0)
    gray = data.image_folder_dataset(tmp_path, image_size=4, color_mode="grayscale")
    assert next(iter(gray)).shape == (2, 4, 4, 1)


def test_folder_missing_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        data.image_folder_dataset(tmp_path / "does_not_exist")


def test_folder_without_images_raises(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="No image files"):
        data.image_folder_dataset(tmp_path)


def test_folder_of_only_corrupt_files_raises(tmp_path):
    (tmp_path / "a.jpg").write_text("this is text, not a JPEG")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="None of the 2"):
        data.image_folder_dataset(tmp_path)


def test_folder_skips_corrupt_files_with_one_counting_warning(tmp_path):
    for i in range(3):
        write_png(tmp_path / f"good{i}.png", 40 * i)
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.warns(UserWarning, match="skipped 1 of 4 files") as record:
        dataset = data.image_folder_dataset(tmp_path, image_size=4, batch_size=2, seed=1)
    assert len(record) == 1 and str(tmp_path) in str(record[0].message)
    images = np.concatenate(list(dataset.as_numpy_iterator()))
    assert images.shape == (3, 4, 4, 3)
    assert len(np.unique(images[:, 0, 0, 0])) == 3  # every good file exactly once


def test_load_dataset_folder_returns_numpy(tmp_path):
    for i in range(5):
        write_png(tmp_path / f"{i}.png", 50 * i)
    images, labels = data.load_dataset("folder", path=tmp_path, image_size=4, split="all")
    assert images.shape == (5, 4, 4, 3) and labels is None


# ---------------------------------------------------------------- TFDS and fallback


def test_bundled_names_never_need_tfds():
    images, labels = data.load_dataset("digits", split="test", image_size=8)
    assert images.shape[1:] == (8, 8, 1) and labels is not None
    images, labels = data.load_dataset("faces", image_size=8)
    assert images.shape == (80, 8, 8, 1) and labels is None
    images, _ = data.load_dataset("photos", image_size=8, num_patches=5)
    assert images.shape == (5, 8, 8, 3)


def test_tfds_available_is_false_quickly_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(image_data, "TFDS_HOST", ("unreachable.invalid", 443))
    start = time.perf_counter()
    assert data.tfds_available("mnist", data_dir=str(tmp_path), timeout=3.0) is False
    assert time.perf_counter() - start < 10.0


def test_auto_falls_back_to_digits_quickly_with_one_line(tmp_path, capsys):
    start = time.perf_counter()
    images, labels = data.load_dataset("mnist", data_dir=str(tmp_path), image_size=8)
    elapsed = time.perf_counter() - start
    if "not available offline" not in capsys.readouterr().out:
        pytest.skip("TFDS is reachable from this machine: no fallback to test")
    assert elapsed < 10.0
    expected, expected_labels = data.load_digits(image_size=8)
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels, expected_labels)


def test_fallback_prints_exactly_one_line_and_matches_channels(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(image_data, "tfds_available", lambda *args, **kwargs: False)
    images, labels = data.load_dataset("celeb_a", data_dir=str(tmp_path), image_size=8)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "'celeb_a'" in out and "'faces'" in out
    assert images.shape == (80, 8, 8, 3) and labels is None  # gray faces as RGB
    np.testing.assert_array_equal(images[..., 0], images[..., 2])


def test_source_tfds_raises_a_clear_error_quickly(tmp_path, monkeypatch):
    monkeypatch.setattr(image_data, "TFDS_HOST", ("unreachable.invalid", 443))
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match='source="bundled"') as error:
        data.load_dataset("mnist", source="tfds", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 10.0
    assert str(tmp_path) in str(error.value) and "internet" in str(error.value)


def test_source_bundled_never_probes_the_network(tmp_path, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise AssertionError("probed TFDS")

    monkeypatch.setattr(image_data, "tfds_available", fail)
    images, _ = data.load_dataset("fashion_mnist", source="bundled", data_dir=str(tmp_path),
                                  max_examples=7)
    assert images.shape == (7, 28, 28, 1)
    assert capsys.readouterr().out == ""


def test_unknown_name_and_source_raise():
    with pytest.raises(ValueError, match="Unknown data set"):
        data.load_dataset("no_such_dataset_xyz")
    with pytest.raises(ValueError, match="source"):
        data.load_dataset("digits", source="internet")


def test_tfds_path_reads_mock_data_into_the_course_format(monkeypatch):
    """The TFDS branch, on TFDS's offline mock data (random images, labels 0..9)."""
    import tensorflow_datasets as tfds

    monkeypatch.setattr(image_data, "tfds_available", lambda *args, **kwargs: True)
    with tfds.testing.mock_data(num_examples=12):
        images, labels = data.load_dataset("mnist", image_size=8, max_examples=10)
    assert images.shape == (10, 8, 8, 1) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() <= 9
