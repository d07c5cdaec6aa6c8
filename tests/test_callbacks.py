"""The callbacks with Keras's own: the best-scored weights kept by ModelCheckpoint."""

import keras
import numpy as np
import pytest

from course_lib.callbacks import JudgeScore, SampleGrid
from course_lib.models.gan import GAN, build_discriminator, build_generator

SHAPE = (8, 8, 1)


class _ScriptedJudge:
    """Returns the FIDs of a script, one per call, in place of the digit judge."""

    def __init__(self, fids):
        self.fids = list(fids)

    def report(self, generated, real, labels=None):
        fid = self.fids.pop(0)
        return {"fid": fid, "kid": fid / 10}


def _tiny_gan():
    keras.utils.set_random_seed(0)
    gan = GAN(build_generator(4, SHAPE, filters=(8, 4)),
              build_discriminator(SHAPE, filters=(4, 8)), seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5))
    return gan


def _images(n=16):
    rng = np.random.default_rng(0)
    return np.where(rng.random((n, *SHAPE)) < 0.5, 1.0, -1.0).astype("float32")


def _fit(threshold):
    """Six epochs scored at 0 (before training), 2, 4 and 6 with FIDs 10, 4, 2, 6."""
    gan = _tiny_gan()
    scores = JudgeScore(_ScriptedJudge([10.0, 4.0, 2.0, 6.0]), _images(), every=2,
                        num_samples=4)
    grid = SampleGrid(num_samples=4, seed=3, every=2)
    return gan, scores, grid, dict(monitor="fid", mode="min", save_best_only=True,
                                   save_weights_only=True, initial_value_threshold=threshold)


def test_model_checkpoint_keeps_the_best_scored_weights(tmp_path):
    gan, scores, grid, options = _fit(float("inf"))
    path = tmp_path / "best.weights.h5"
    checkpoint = keras.callbacks.ModelCheckpoint(path, **options)
    gan.fit(_images(), batch_size=8, epochs=6, verbose=0, callbacks=[scores, grid, checkpoint])
    assert scores.history["fid"] == [10.0, 4.0, 2.0, 6.0] and checkpoint.best == 2.0
    assert not np.allclose(gan.sample(4, seed=3), grid.frames[1])  # the last weights moved on
    gan.load_weights(path)
    assert grid.epochs[1] == 4  # the epoch of the best FID
    np.testing.assert_allclose(gan.sample(4, seed=3), grid.frames[1], atol=1e-6)


def test_without_a_threshold_an_unscored_first_epoch_stops_the_checkpoint(tmp_path):
    """Why the threshold: epoch 1 logs NaN, Keras takes it as the first best, and no FID
    compares as lower than NaN, so only epoch 1's weights are ever saved."""
    gan, scores, grid, options = _fit(None)
    checkpoint = keras.callbacks.ModelCheckpoint(tmp_path / "best.weights.h5", **options)
    gan.fit(_images(), batch_size=8, epochs=6, verbose=0, callbacks=[scores, grid, checkpoint])
    assert np.isnan(checkpoint.best)


@pytest.mark.parametrize("every", [1, 3])
def test_judge_score_logs_nan_on_the_epochs_it_skips(every):
    gan = _tiny_gan()
    scores = JudgeScore(_ScriptedJudge([9.0, 8.0, 7.0, 6.0]), _images(), every=every,
                        num_samples=4, before_training=False)
    history = gan.fit(_images(), batch_size=8, epochs=3, verbose=0, callbacks=[scores])
    fids = history.history["fid"]
    assert [np.isnan(f) for f in fids] == [(e + 1) % every != 0 and e != 2 for e in range(3)]


def test_progress_shows_one_bar_over_the_epochs(capsys):
    """One text bar on stdout that reaches num_epochs/num_epochs with the last loss beside it."""
    from course_lib.callbacks import progress

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((8, 2), "float32")
    model.fit(x, x[:, :1], epochs=3, verbose=0, callbacks=[progress("tiny")])
    out = capsys.readouterr().out
    final = out.split("\r")[-1]
    assert "tiny" in final and "3/3" in final and "loss" in final, out


def test_progress_bar_passes_the_items_through_and_counts_them(capsys):
    from course_lib.callbacks import progress_bar

    assert list(progress_bar(range(5), "steps")) == [0, 1, 2, 3, 4]
    final = capsys.readouterr().out.split("\r")[-1]
    assert "steps" in final and "5/5" in final, final


def test_tensorboard_is_off_unless_the_learner_turns_it_on(tmp_path):
    from course_lib.callbacks import tensorboard

    assert tensorboard("run", environ={}) == []
    assert tensorboard("run", environ={"COURSE_TENSORBOARD": "0"}) == []
    (callback,) = tensorboard("DCGAN, resumed", environ={"COURSE_TENSORBOARD": str(tmp_path)})
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=2, verbose=0, callbacks=[callback])
    runs = list((tmp_path / "DCGAN_resumed").iterdir())
    assert len(runs) == 1, runs
    events = list(runs[0].rglob("events.out.tfevents.*"))
    assert events and all(path.stat().st_size > 0 for path in events)
