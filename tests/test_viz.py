"""Tests of course_lib.viz: grid arithmetic, value ranges, titles, labels, animations."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_lib import viz  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_grid_shape_arithmetic_and_border():
    images = np.full((10, 3, 5, 1), -1.0, np.float32)  # black tiles
    grid = viz.image_grid(images, ncols=4, border=2)
    assert grid.shape == (3 * 3 + 4 * 2, 4 * 5 + 5 * 2)  # gray grids are 2-D
    assert np.all(grid[:2] == 1.0) and np.all(grid[:, :2] == 1.0)  # white outer border
    assert np.all(grid[2:5, 2:7] == 0.0)  # first tile, black
    assert np.all(grid[2:5, 7:9] == 1.0)  # border between tiles
    assert np.all(grid[12:15, 2 + 2 * 7 :] == 1.0)  # two empty cells in the last row


def test_grid_ncols_is_capped_and_rgb_and_tensors_work():
    grid = viz.image_grid(tf.zeros((3, 4, 4, 3)), ncols=8)
    assert grid.shape == (1 * 4 + 2, 3 * 4 + 4, 3)
    assert viz.image_grid(np.zeros((2, 4, 4)), ncols=2).shape == (6, 11)


def test_grid_maps_value_ranges_and_clips():
    images = np.array([-1.0, 0.0, 1.0, 2.0], np.float32).reshape(4, 1, 1, 1)
    grid = viz.image_grid(images, ncols=4, border=0)
    np.testing.assert_allclose(grid[0], [0.0, 0.5, 1.0, 1.0])
    grid01 = viz.image_grid(images, ncols=4, border=0, value_range=(0, 1))
    np.testing.assert_allclose(grid01[0], [0.0, 0.0, 1.0, 1.0])


def test_grid_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected images"):
        viz.image_grid(np.zeros((2, 4, 4, 2)))


def test_show_images_has_title_and_one_image():
    fig = viz.show_images(np.zeros((5, 4, 4, 1)), "Five digits", ncols=3)
    (ax,) = fig.axes
    assert ax.get_title() == "Five digits"
    assert ax.images[0].get_array().shape == (2 * 4 + 3, 3 * 4 + 4)


def test_show_images_with_labels_captions_each_image():
    fig = viz.show_images(np.zeros((5, 4, 4, 3)), "Labelled", ncols=3, labels=list("abcde"))
    assert fig._suptitle.get_text() == "Labelled"
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    assert not fig.axes[5].axison  # the empty sixth cell is hidden
    with pytest.raises(ValueError, match="labels"):
        viz.show_images(np.zeros((2, 4, 4, 1)), "t", labels=["a"])


def test_show_images_draws_into_a_given_axes():
    fig, ax = plt.subplots()
    assert viz.show_images(np.zeros((2, 4, 4, 1)), "In my axes", ax=ax) is fig
    assert ax.get_title() == "In my axes"


def test_compare_images_rows_are_labelled_and_aligned():
    x = np.zeros((10, 4, 4, 1))
    fig = viz.compare_images({"degraded": x, "restored": x, "original": x}, "Restoration",
                             ncols=6)
    assert fig._suptitle.get_text() == "Restoration"
    assert [ax.get_ylabel() for ax in fig.axes] == ["degraded", "restored", "original"]
    assert {ax.images[0].get_array().shape for ax in fig.axes} == {(6, 6 * 4 + 7)}


def test_plot_history_from_dict_has_labels_legend_and_title():
    history = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.7, 0.4], "acc": [0.1, 0.5, 0.9]}
    fig = viz.plot_history(history, "Training curves", logy=True)
    (ax,) = fig.axes
    assert ax.get_title() == "Training curves"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", "value")
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["loss", "val_loss", "acc"]
    loss, val_loss, acc = ax.get_lines()
    np.testing.assert_array_equal(loss.get_xdata(), [1, 2, 3])
    assert loss.get_color() == val_loss.get_color() != acc.get_color()
    assert val_loss.get_linestyle() == "--"


def test_plot_history_accepts_a_history_object_and_checks_keys():
    class History:  # what keras.callbacks.History exposes
        history = {"d_loss": [0.7, 0.6], "g_loss": [0.8, 0.9]}

    fig = viz.plot_history(History(), "GAN losses", keys=["g_loss"])
    assert len(fig.axes[0].get_lines()) == 1
    with pytest.raises(KeyError, match="nope"):
        viz.plot_history(History(), "GAN losses", keys=["nope"])


@pytest.mark.parametrize("shape", [(3, 4, 4), (3, 4, 4, 1), (3, 4, 4, 3), (3, 2, 4, 4, 1)])
def test_animate_frames_returns_html_with_every_frame(shape):
    frames = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    html = viz.animate_frames(frames, "Sampling", interval=50)
    text = html.data
    # every frame once in the script, and the first also in the image, shown before any
    # script runs (an untrusted notebook)
    assert text.count("data:image/png;base64") == shape[0] + 1
    assert "<script" in text
    assert plt.get_fignums() == []  # closed, so a notebook does not show it twice


def test_animate_frames_accepts_a_list_of_frames():
    frames = [np.zeros((4, 4)), np.ones((4, 4))]
    assert viz.animate_frames(frames, "Two frames").data.count("data:image/png") == 2 + 1


def test_animation_works_offline_and_without_scripts():
    text = viz.animate_frames(np.zeros((3, 4, 4)), "Noise <to> digits").data
    assert "http" not in text  # no icon font (or anything else) from the network
    assert "fa fa-" not in text and text.count("<svg") == 9  # one icon per button
    image = re.search(r"<img [^>]*>", text).group(0)
    assert 'src="data:image/png;base64,' in image and 'alt="Noise &lt;to&gt; digits"' in image
    # a note for a reader whose scripts are blocked, removed by a script when they run
    note_id = re.search(r'<p id="(_anim_note\w+)"', text).group(1)
    assert f'document.getElementById("{note_id}").remove()' in text


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_save_clip_writes_a_playable_file(tmp_path, suffix):
    import imageio.v3 as iio

    frames = np.zeros((6, 2, 7, 9, 1), np.float32)  # two clips side by side, odd sizes
    for t in range(6):
        frames[t, :, :, t] = 1.0  # a white column moving right
    path = viz.save_clip(frames, tmp_path / f"clip{suffix}", fps=5, value_range=(0, 1),
                         scale=2)
    back = iio.imread(path, index=None)
    assert back.shape[0] == 6 and back.shape[-1] == 3
    grid = viz.image_grid(frames[2], 8, (0, 1))
    assert back.shape[1:3] == (2 * grid.shape[0] + (2 * grid.shape[0]) % 2,
                               2 * grid.shape[1] + (2 * grid.shape[1]) % 2)
    column = back[2, 4:8, :, 0].mean(axis=0)  # inside the first clip: frame 2's white column
    assert column[2 * (1 + 2)] > 200 and column[2 * (1 + 5)] < 60
    with pytest.raises(ValueError, match=".gif or .mp4"):
        viz.save_clip(frames, tmp_path / "clip.avi")
