"""Video data and baselines: clips from files, folders and the bundled wheel; moving digits
that stay on their canvas and bounce; windows that never cross clips; the baselines exact
where they should be."""

import numpy as np
import pytest

from course_lib import video
from course_lib.data.video import (
    BUNDLED_CLIPS,
    frame_windows,
    load_clip,
    moving_digits,
)


def _write_frames(folder, frames):
    import imageio.v3 as iio

    folder.mkdir()
    for t, frame in enumerate(frames):
        iio.imwrite(folder / f"frame_{t:03d}.png", frame)


def test_load_clip_reads_a_folder_of_frames(tmp_path):
    frames = (np.arange(5 * 8 * 10 * 3).reshape(5, 8, 10, 3) % 256).astype(np.uint8)
    _write_frames(tmp_path / "clip", frames)
    clip = load_clip(tmp_path / "clip")
    assert clip.shape == (5, 8, 10, 3) and clip.dtype == np.float32
    assert np.allclose(clip, frames / 255.0)
    grey = load_clip(tmp_path / "clip", grey=True, max_frames=3, size=(4, 5))
    assert grey.shape == (3, 4, 5, 1) and 0 <= grey.min() and grey.max() <= 1


def test_load_clip_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_clip(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="no bundled clip"):
        from course_lib.data.video import bundled_clip_path
        bundled_clip_path("cats")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image files"):
        load_clip(tmp_path / "empty")
    _write_frames(tmp_path / "one", np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 2 are needed"):
        load_clip(tmp_path / "one")
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="could not be read as a video"):
        load_clip(tmp_path / "notes.mp4")


def test_load_clip_reads_a_video_file(tmp_path):
    import imageio.v3 as iio

    frames = np.zeros((6, 32, 48, 3), np.uint8)
    for t in range(6):
        frames[t, :, 8 * t:8 * t + 8] = 255  # a white bar moving right
    path = tmp_path / "bar.mp4"
    iio.imwrite(path, frames, plugin="pyav", codec="libx264", fps=10)
    clip = load_clip(path)
    assert clip.shape == (6, 32, 48, 3)
    assert np.abs(clip - frames / 255.0).mean() < 0.05  # lossy, but close


def test_the_bundled_clips_load():
    clip = load_clip("carphone", max_frames=10)
    assert clip.shape == (10, 144, 176, 3)
    assert 0.2 < clip.mean() < 0.8 and clip.std() > 0.1  # a real picture, not blank
    assert set(BUNDLED_CLIPS) >= {"carphone", "carphone_distorted", "bikes"}


def test_moving_digits_stay_on_the_canvas_and_bounce():
    data = moving_digits(20, num_frames=30, size=32, digit_size=16, max_speed=3, seed=1)
    clips, labels, velocities = data["clips"], data["labels"], data["velocities"]
    assert clips.shape == (20, 30, 32, 32, 1) and clips.dtype == np.float32
    assert labels.shape == (20,) and set(labels) <= set(range(10))
    assert 0 <= clips.min() and clips.max() <= 1
    mass = clips.sum(axis=(2, 3, 4))  # the whole digit is drawn in every frame
    assert np.allclose(mass, mass[:, :1], rtol=1e-5)
    assert (np.abs(velocities) <= 3).all() and np.abs(velocities).sum(axis=1).min() > 0
    # 30 frames at up to 3 pixels per frame on 16 pixels of room: some digit must bounce,
    # i.e. its centre of mass moves back at some point along an axis it moved along
    rows = (clips[..., 0].sum(axis=3) * np.arange(32)).sum(axis=2) / mass
    steps = np.diff(rows, axis=1)
    assert ((steps[:, 1:] * steps[:, :-1]) < 0).any()
    again = moving_digits(20, num_frames=30, size=32, digit_size=16, max_speed=3, seed=1)
    assert np.array_equal(again["clips"], clips)  # the seed decides everything
    with pytest.raises(ValueError, match="does not fit"):
        moving_digits(2, size=16, digit_size=24)


def test_frame_windows_never_cross_clips():
    clips = np.zeros((2, 7, 2, 2, 1), np.float32)
    clips[0] += np.arange(7).reshape(7, 1, 1, 1)
    clips[1] += 100 + np.arange(7).reshape(7, 1, 1, 1)
    windows = list(frame_windows(clips, past=3, future=2))
    assert len(windows) == 2 * 3  # starts 0, 1, 2 in each clip
    for past, future in windows:
        values = np.concatenate([past.numpy()[:, 0, 0, 0], future.numpy()[:, 0, 0, 0]])
        assert np.array_equal(np.diff(values), np.ones(4))  # consecutive frames of one clip
    batches = list(frame_windows(clips, 3, 2, batch_size=4, stride=2, shuffle=True))
    assert [len(b[0]) for b in batches] == [4]  # starts 0, 2 in each clip
    with pytest.raises(ValueError, match="a window needs 9 frames"):
        frame_windows(clips, 5, 4)


def test_the_baselines():
    ramp = np.linspace(0, 0.6, 6, dtype=np.float32).reshape(1, 6, 1, 1, 1) * np.ones(
        (1, 6, 12, 12, 1), np.float32)  # every pixel brightens at a constant rate
    past, future = ramp[:, :4], ramp[:, 4:]
    assert np.allclose(video.linear_extrapolation(past, 2), future)  # exact on a ramp
    assert np.allclose(video.copy_last(past, 2), past[:, [3, 3]])
    assert np.allclose(video.frame_average(past, 2), past.mean(axis=1, keepdims=True))
    assert video.linear_extrapolation(np.ones((1, 2, 2, 2, 1)) * [[[[[0.5]]], [[[0.9]]]]],
                                      3).max() == 1.0  # clipped to the valid range
    scores = video.horizon_scores(future, future)
    assert np.allclose(scores["psnr"], video.MAX_PSNR) and np.allclose(scores["ssim"], 1.0)
    from course_lib import metrics

    rng = np.random.default_rng(0)
    target = rng.uniform(size=(3, 2, 16, 16, 1)).astype(np.float32)
    noisy = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1).astype(np.float32)
    expected = metrics.ssim(noisy.reshape(-1, 16, 16, 1), target.reshape(-1, 16, 16, 1),
                            value_range=(0, 1)).reshape(3, 2).mean(axis=0)
    assert np.allclose(video.horizon_scores(noisy, target)["ssim"], expected, atol=1e-5)
    worse = video.horizon_scores(video.copy_last(past, 2), future)
    assert worse["psnr"][0] > worse["psnr"][1]  # the error grows with the horizon
    with pytest.raises(ValueError, match="at least 2 past"):
        video.linear_extrapolation(past[:, :1], 2)
    with pytest.raises(ValueError, match="horizon must be"):
        video.copy_last(past, 0)


def test_the_residual_predictor_learns_a_motion_copy_last_misses():
    import keras

    from course_lib.models.video import residual_frame_predictor

    keras.utils.set_random_seed(0)
    clips = np.zeros((64, 5, 12, 12, 1), np.float32)
    rng = np.random.default_rng(0)
    for n in range(64):  # a bright square moving one pixel right per frame
        y, x = rng.integers(0, 8, 2)
        for t in range(5):
            clips[n, t, y:y + 3, x + t - 2 if x + t >= 2 else 0:x + t + 1, 0] = 1.0
    past, future = clips[:, :4], clips[:, 4:]
    model = residual_frame_predictor(past_frames=4, filters=16, depth=2)
    assert model(past[:2]).shape == (2, 1, 12, 12, 1)
    assert np.allclose(model(past), video.copy_last(past, 1))  # untrained: copy-last
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    model.fit(past, future, epochs=60, batch_size=16, verbose=0)
    learned = video.horizon_scores(np.clip(model.predict(past, verbose=0), 0, 1), future)
    copied = video.horizon_scores(video.copy_last(past, 1), future)
    assert learned["psnr"][0] > copied["psnr"][0] + 3, (learned, copied)
    with pytest.raises(ValueError, match="at least 1"):
        residual_frame_predictor(past_frames=0)


def _randomise(model, seed=0):
    """Random weights everywhere, the zero-initialised change layer included, so that a test
    of what an output depends on does not pass only because the change is zero."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32)
                       for w in model.get_weights()])


def test_the_causal_predictor_never_sees_the_frame_it_predicts():
    from course_lib.models.video import causal_conv_predictor

    rng = np.random.default_rng(0)
    clip = rng.uniform(size=(1, 6, 10, 10, 1)).astype(np.float32)
    causal = causal_conv_predictor(filters=4, depth=2, kernel_time=3)
    assert np.allclose(causal(clip), clip)  # untrained: output t is frame t (copy-last)
    leaky = causal_conv_predictor(filters=4, depth=2, kernel_time=3, causal=False)
    for model in (causal, leaky):
        _randomise(model)
    changed = clip.copy()
    changed[:, 4] += 0.5  # change frame 4 only
    for model, outputs_that_may_change in ((causal, [4, 5]), (leaky, [2, 3, 4, 5])):
        moved = np.abs(np.asarray(model(changed)) - np.asarray(model(clip))).max(axis=(0, 2, 3, 4))
        assert set(np.flatnonzero(moved > 1e-6)) == set(outputs_that_may_change), (model.name,
                                                                                     moved)
    # the causal model sees depth * (kernel_time - 1) + 1 = 5 frames: output 5 sees frames 1..5
    earlier = clip.copy()
    earlier[:, 0] += 0.5
    moved = np.abs(np.asarray(causal(earlier)) - np.asarray(causal(clip))).max(axis=(0, 2, 3, 4))
    assert np.flatnonzero(moved > 1e-6).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="odd kernel"):
        causal_conv_predictor(kernel_time=2, causal=False)


def test_the_convlstm_predictor_is_causal_and_starts_at_copy_last():
    from course_lib.models.video import convlstm_predictor

    rng = np.random.default_rng(1)
    clip = rng.uniform(size=(2, 5, 8, 8, 1)).astype(np.float32)
    model = convlstm_predictor((8, 8), filters=4, depth=2)
    assert np.allclose(model(clip), clip)
    _randomise(model)
    changed = clip.copy()
    changed[:, 3] += 0.5
    moved = np.abs(np.asarray(model(changed)) - np.asarray(model(clip))).max(axis=(0, 2, 3, 4))
    assert np.flatnonzero(moved > 1e-6).tolist() == [3, 4]


def test_rollout_feeds_each_prediction_back():
    past = np.zeros((2, 3, 4, 4, 1), np.float32)
    past[:, 2] = 0.5
    assert np.allclose(video.rollout(lambda w: w[:, -1:], past, 4), 0.5)  # copy-last
    seen = []

    def brighten(window):
        seen.append(window.shape[1])
        return window[:, -1] + 0.2  # (batch, H, W, C) is accepted too

    out = video.rollout(brighten, past, 4)
    assert out.shape == (2, 4, 4, 4, 1) and seen == [3] * 4  # the window keeps its length
    assert np.allclose(out[0, :, 0, 0, 0], [0.7, 0.9, 1.0, 1.0])  # clipped to [0, 1]
    with pytest.raises(ValueError, match="horizon must be"):
        video.rollout(brighten, past, 0)


def test_moving_box_masks_and_the_temporal_fill():
    mask = video.moving_box_mask((3, 10, 20, 20, 1), size=6, max_speed=3, seed=0)
    assert mask.shape == (3, 10, 20, 20, 1) and set(np.unique(mask)) <= {0.0, 1.0}
    assert np.all((1 - mask).sum(axis=(2, 3, 4)) == 36)  # the whole square, every frame
    assert np.array_equal(mask, video.moving_box_mask((3, 10, 20, 20, 1), 6, seed=0))
    # a static scene behind a moving occluder comes back exactly where the box ever moved off
    scene = np.random.default_rng(0).uniform(size=(1, 1, 8, 8, 1)).astype(np.float32)
    frames = np.repeat(scene, 4, axis=1)
    box = np.ones_like(frames)
    for t in range(4):
        box[0, t, 2:5, t:t + 3] = 0  # a 3 x 3 box moving right by one pixel a frame
    filled = video.temporal_fill(frames * box, box)
    assert np.allclose(filled, frames)
    # the nearest frame wins, the earlier one on a tie
    clip = np.arange(5, dtype=np.float32).reshape(1, 5, 1, 1, 1)
    seen = np.ones_like(clip)
    seen[0, [1, 2, 3]] = 0
    assert video.temporal_fill(clip * seen, seen)[0, :, 0, 0, 0].tolist() == [0, 0, 0, 4, 4]
    never = np.zeros_like(clip)  # missing everywhere: the frame's (empty) visible mean, 0
    assert np.all(video.temporal_fill(clip, never) == 0)
    with pytest.raises(ValueError, match="must both be"):
        video.temporal_fill(clip[0], seen[0])


def test_masked_clip_psnr_counts_the_missing_pixels_only():
    target = np.zeros((2, 3, 4, 4, 1))
    mask = np.ones_like(target)
    mask[:, 1, :2] = 0  # 8 missing pixels per clip
    predicted = target + 0.5 * mask  # wrong only where visible: not counted
    predicted[0, 1, :2] = 0.1  # clip 0: error 0.1 on the missing pixels, 20 dB
    assert np.allclose(video.masked_clip_psnr(predicted, target, mask), [20.0, video.MAX_PSNR])


def test_the_interpolator_and_inpainter_start_and_keep_what_they_should():
    from course_lib.models.video import frame_interpolator, video_inpainter

    rng = np.random.default_rng(0)
    around = rng.uniform(size=(2, 4, 6, 6, 1)).astype(np.float32)
    model = frame_interpolator(context=2, filters=4, depth=2)
    assert np.allclose(model(around), around[:, 1:3].mean(axis=1, keepdims=True), atol=1e-6)
    clip = rng.uniform(size=(1, 5, 8, 8, 1)).astype(np.float32)
    mask = video.moving_box_mask(clip.shape, 3, seed=1)
    for kernel_time, frames_moved in ((1, [2]), (3, [1, 2, 3])):
        inpainter = video_inpainter(filters=4, depth=1, kernel_time=kernel_time)
        assert np.allclose(inpainter([clip, mask]), clip)  # untrained: the first guess
        _randomise(inpainter)
        out = np.asarray(inpainter([clip, mask]))
        assert np.allclose(out * mask, clip * mask)  # the visible pixels are kept
        changed = clip.copy()
        changed[:, 2] += 0.5 * mask[:, 2]  # change what is visible in frame 2
        moved = np.abs(np.asarray(inpainter([changed, mask])) - out) * (1 - mask)
        assert np.flatnonzero(moved.max(axis=(0, 2, 3, 4)) > 1e-6).tolist() == frames_moved


def test_causal_padding_is_zero_padding_in_the_past():
    import keras

    from course_lib.models.video import _causal_pad

    clip = np.random.default_rng(0).uniform(size=(2, 4, 5, 6, 3)).astype(np.float32)
    for kernel_time in (1, 2, 3):
        expected = keras.layers.ZeroPadding3D(((kernel_time - 1, 0), (1, 1), (1, 1)))(clip)
        assert np.array_equal(np.asarray(_causal_pad(clip, kernel_time)), np.asarray(expected))


def test_blend_missing_frames_cross_fades_across_a_gap():
    clip = np.zeros((6, 2, 2, 1), np.float32)
    clip[0], clip[4], clip[5] = 0.0, 0.8, 0.1
    clip[1:4] = 99  # unknown: ignored
    known = np.array([True, False, False, False, True, True])
    out = video.blend_missing_frames(clip, known)
    assert np.allclose(out[:, 0, 0, 0], [0.0, 0.2, 0.4, 0.6, 0.8, 0.1])
    with pytest.raises(ValueError, match="first and last frames must be known"):
        video.blend_missing_frames(clip, ~known)


def test_directed_digits_move_the_way_their_caption_says():
    from course_lib.data.video import DIRECTIONS, directed_digits

    data = directed_digits(200, num_frames=8, size=32, digit_size=16, speed=2, seed=1)
    clips, directions = data["clips"], data["directions"]
    assert clips.shape == (200, 8, 32, 32, 1) and set(directions) == set(range(4))
    assert data["labels"].shape == (200,) and set(data["labels"]) <= set(range(10))
    # every frame holds the whole digit: the same brightness in every frame of a clip
    totals = clips.sum(axis=(2, 3, 4))
    assert np.allclose(totals, totals[:, :1], rtol=1e-5)
    # the brightest window finds the digit, and it moves 2 pixels a frame in its direction
    # for the first half of the clip
    positions = video.digit_positions(clips)
    steps = np.diff(positions[:, :5], axis=1)
    expected = {"right": (0, 2), "left": (0, -2), "down": (2, 0), "up": (-2, 0)}
    for n, d in enumerate(directions):
        assert (steps[n] == expected[DIRECTIONS[d]]).all(), (n, DIRECTIONS[d], steps[n])
    assert (video.motion_direction(clips) == directions).all()
    crops = video.digit_crops(clips)
    assert crops.shape == (200, 8, 16, 16, 1)
    assert np.allclose(crops.sum(axis=(2, 3, 4)), totals, rtol=1e-5)
    with pytest.raises(ValueError, match="larger size"):
        directed_digits(2, num_frames=20, size=32, digit_size=16, speed=2)


def test_temporal_consistency_scores():
    still = np.ones((2, 4, 3, 3, 1), np.float32) * 0.5
    assert np.allclose(video.frame_change(still), 0.0)
    flicker = still.copy()
    flicker[:, 1::2] = 0.0  # every other frame black: a change of 0.5 every frame
    assert np.allclose(video.frame_change(flicker), 0.5)
    assert np.allclose(video.label_agreement(np.array([[3, 3, 3, 3], [3, 5, 3, 1]])),
                       [1.0, 0.5])
    with pytest.raises(ValueError, match="integers"):
        video.label_agreement(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 frames"):
        video.frame_change(still[:, :1])


def test_the_video_vae_networks_fit_the_vae_contract():
    from course_lib.models.vae import CVAE
    from course_lib.models.video import video_decoder, video_encoder

    encoder = video_encoder((4, 16, 16, 1), latent_dim=3, num_classes=(10, 4),
                            filters=(4, 8))
    decoder = video_decoder((4, 16, 16, 1), latent_dim=3, num_classes=(10, 4),
                            filters=(8, 4))
    vae = CVAE(encoder, decoder, seed=0)
    clips = np.zeros((2, 4, 16, 16, 1), np.float32) - 1
    mean, log_var = vae.encode(clips, np.array([0, 39]))
    assert mean.shape == (2, 3) and log_var.shape == (2, 3)
    assert vae.sample(3, labels=np.array([5, 6, 7]), seed=1).shape == (3, 4, 16, 16, 1)
    # the packed label's two conditions reach the decoder as two one-hot vectors: a label
    # and the label with only its direction changed share the digit's part of the code
    from course_lib.models.video import _label_code

    code = np.asarray(_label_code(np.array([3 * 4 + 1, 3 * 4 + 2]), (10, 4), "float32"))
    assert code.shape == (2, 14) and (code[:, 3] == 1).all() and code[:, :10].sum() == 2
    assert code[0, 10 + 1] == 1 and code[1, 10 + 2] == 1
    with pytest.raises(ValueError, match="divisible"):
        video_encoder((4, 12, 12, 1), filters=(4, 8, 16))


def test_independent_frames_keep_each_frame_and_mix_clips_within_a_group():
    clips = np.arange(6 * 3, dtype=np.float32).reshape(6, 3, 1, 1, 1)
    groups = np.array([0, 0, 0, 1, 1, 1])
    mixed = video.independent_frames(clips, groups, seed=0)
    for t in range(3):  # every frame t is a frame t of a clip of the same group
        assert sorted(mixed[:3, t, 0, 0, 0]) == sorted(clips[:3, t, 0, 0, 0])
        assert sorted(mixed[3:, t, 0, 0, 0]) == sorted(clips[3:, t, 0, 0, 0])
    assert not np.array_equal(mixed, clips)


def test_the_frame_enhancer_starts_by_doing_nothing():
    from course_lib.models.video import frame_enhancer

    frames = np.random.default_rng(0).uniform(size=(2, 5, 12, 10, 3)).astype(np.float32)
    model = frame_enhancer(context=2, channels=3, filters=4, depth=2)
    assert np.allclose(model.predict(frames, verbose=0), frames[:, 2], atol=1e-6)
    single = frame_enhancer(context=0, channels=3, filters=4, depth=2)
    assert single.name == "frame_enhancer" and single.input_shape[1] == 1
    with pytest.raises(ValueError, match="context"):
        frame_enhancer(context=-1)


def test_window_change_follows_the_digit():
    from course_lib.data.video import directed_digits

    clips = directed_digits(20, seed=3)["clips"]
    assert np.allclose(video.window_change(clips), 0.0)  # a rigid digit that only moves
    assert (video.frame_change(clips) > 0.02).all()
    mixed = video.independent_frames(clips, np.zeros(20, int), seed=0)
    assert video.window_change(mixed).mean() > 0.05  # other digits in other frames
