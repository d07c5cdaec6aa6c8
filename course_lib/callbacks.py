"""Keras callbacks for generative models: a seeded sample grid and judge scores during training.

Both work with any model that has a `sample(num_samples, labels=None, seed=None)` method
(`GAN`, `VAE`, `DiffusionModel`; `sample_kwargs` passes further arguments, such as a diffusion
model's `num_steps`) and are kept out of `train_step`, as keras.io does with
its KID metric: sampling 1,000 images and scoring them costs far more than a training step.
To resume an interrupted run, add `keras.callbacks.BackupAndRestore(backup_dir)`: it saves
the model, both optimizers and the epoch at every epoch end and restores them in `fit`.

Example:

    grid = SampleGrid(num_samples=32, seed=0, every=5)
    scores = JudgeScore(judge, x_test, every=5)
    gan.fit(dataset, epochs=num_epochs, callbacks=[grid, scores,
            keras.callbacks.BackupAndRestore(cache_dir("runs", "dcgan"))])
    animate_frames(grid.frames, "samples during training")
    scores.history  # {"epoch": [...], "fid": [...], "kid": [...]}

`progress()` shows a long `fit` as it goes: `fit(..., verbose=0, callbacks=[progress()])`;
`progress_bar(iterable)` does the same for a loop written by hand (a sampler's 1,000 steps).
`tensorboard(run_name)` adds TensorBoard logging when `COURSE_TENSORBOARD` turns it on.
"""

import os
import re
import sys
from pathlib import Path

import keras
import numpy as np


class SampleGrid(keras.callbacks.Callback):
    """Draws the same latent vectors every `every` epochs and keeps (or shows) the samples.

    The seed is fixed, so the grids of successive epochs show the *same* z decoded by the
    generator as it learns: the sequence `frames` animates training.

    Args:
        num_samples: samples per grid.
        seed: the integer seed of the fixed latent vectors.
        every: epochs between grids (the last epoch always gets one).
        labels: for a conditional model, the label of each sample.
        show: also display each grid in the notebook (`course_lib.viz.show_images`).
        directory: also save each grid there as `epoch_XXXX.png` (None: keep in memory only).
        ncols: columns of the displayed or saved grid.
        sample_kwargs: further keyword arguments for `model.sample` (e.g. `num_steps`).

    Attributes:
        frames: the sample arrays, one per grid, (num_samples, ...) in [-1, 1].
        epochs: the epoch (1-based) of each frame.
    """

    def __init__(self, num_samples=32, seed=0, every=1, labels=None, show=False,
                 directory=None, ncols=8, sample_kwargs=None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be a positive number of epochs, got {every}")
        self.num_samples, self.seed, self.every = num_samples, seed, every
        self.labels, self.show, self.ncols = labels, show, ncols
        self.sample_kwargs = dict(sample_kwargs or {})
        self.directory = None if directory is None else Path(directory)
        self.frames, self.epochs = [], []

    def on_train_begin(self, logs=None):
        self._num_epochs = self.params.get("epochs") if self.params else None

    def on_epoch_end(self, epoch, logs=None):
        last = self._num_epochs is not None and epoch + 1 == self._num_epochs
        if (epoch + 1) % self.every and not last:
            return
        images = self.model.sample(self.num_samples, labels=self.labels, seed=self.seed,
                                   **self.sample_kwargs)
        self.frames.append(images)
        self.epochs.append(epoch + 1)
        if self.show or self.directory is not None:
            from course_lib import viz  # matplotlib only when a figure is wanted

            title = f"epoch {epoch + 1}"
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)
                image = viz.image_grid(images, ncols=self.ncols)
                import matplotlib.pyplot as plt

                plt.imsave(self.directory / f"epoch_{epoch + 1:04d}.png", np.squeeze(image),
                           cmap="gray", vmin=0.0, vmax=1.0)
            if self.show:
                viz.show_images(images, title, ncols=self.ncols, labels=self.labels)


class JudgeScore(keras.callbacks.Callback):
    """Scores the model's samples with the digit judge every `every` epochs.

    Adds `fid` and `kid` (and `label_accuracy` for a conditional model) to the epoch's logs,
    so they appear in `fit`'s history (NaN on the epochs it does not score), and keeps the
    scored epochs in `history`. `before_training=True` also scores the untrained model
    (epoch 0), the baseline that "FID fell by x%" is measured against.

    Args:
        judge: a `course_lib.judge.DigitJudge` (`load_judge()`).
        real_images: the real images to compare with (e.g. the test split).
        every: epochs between scores (the last epoch always gets one).
        num_samples: samples per score (FID is biased upwards for small sets: compare
            scores made with the same number).
        seed: the integer seed of the samples (the same z each time).
        labels: for a conditional model, the requested label of each sample.
        before_training: score once before the first epoch.
        sample_kwargs: further keyword arguments for `model.sample` (e.g. `num_steps`).

    Attributes:
        history: {"epoch": [...], "fid": [...], "kid": [...](, "label_accuracy": [...])}.

    To keep the best-scored weights, put a `keras.callbacks.ModelCheckpoint` after it in
    `callbacks`, so that it sees the epoch's score:

        ModelCheckpoint(path, monitor="fid", mode="min", save_best_only=True,
                        save_weights_only=True, initial_value_threshold=float("inf"))

    `initial_value_threshold=inf` matters: without it, Keras takes the first epoch's value as
    the best, and if that epoch was not scored (NaN) no later FID compares as lower.
    """

    def __init__(self, judge, real_images, every=1, num_samples=1000, seed=0, labels=None,
                 before_training=True, sample_kwargs=None):
        super().__init__()
        self.judge, self.real_images = judge, real_images
        self.every, self.num_samples, self.seed = every, num_samples, seed
        self.labels = None if labels is None else np.broadcast_to(labels, (num_samples,))
        self.before_training = before_training
        self.sample_kwargs = dict(sample_kwargs or {})
        self.history = {"epoch": [], "fid": [], "kid": []}
        if labels is not None:
            self.history["label_accuracy"] = []

    def score(self):
        """The judge's numbers for the model as it is now (a dict)."""
        samples = self.model.sample(self.num_samples, labels=self.labels, seed=self.seed,
                                    **self.sample_kwargs)
        report = self.judge.report(samples, self.real_images, labels=self.labels)
        return {key: float(report[key]) for key in self.history if key != "epoch"}

    def _record(self, epoch, logs):
        scores = self.score()
        self.history["epoch"].append(epoch)
        for key, value in scores.items():
            self.history[key].append(value)
        if logs is not None:
            logs.update(scores)

    def on_train_begin(self, logs=None):
        self._num_epochs = self.params.get("epochs") if self.params else None
        if self.before_training and not self.history["epoch"]:
            self._record(0, None)

    def on_epoch_end(self, epoch, logs=None):
        last = self._num_epochs is not None and epoch + 1 == self._num_epochs
        if (epoch + 1) % self.every == 0 or last:
            self._record(epoch + 1, logs)
        elif logs is not None:  # NaN on unscored epochs keeps `fit`'s history aligned
            logs.update({key: float("nan") for key in self.history if key != "epoch"})


def progress(description="training", **tqdm_kwargs):
    """A progress bar over the epochs of `fit`, with the latest logs beside it.

    Use it with `verbose=0`: Keras's own `verbose=1` writes many chunks per epoch into a
    notebook, and `verbose=2` one line per epoch (hundreds in a long run); tqdm's Keras
    callback keeps one line that updates in place. It writes plain text to stdout, so it
    looks the same in JupyterLab, Colab, executed copies and a terminal, without widgets.
    A resumed run (`keras.callbacks.BackupAndRestore`) continues the bar from its epoch.

    Args:
        description: the bar's label.
        **tqdm_kwargs: further options for `tqdm` (e.g. `mininterval`, seconds between
            redraws).

    Returns:
        a `tqdm.keras.TqdmCallback`.
    """
    from tqdm.keras import TqdmCallback
    from tqdm.std import tqdm

    options = {"mininterval": 1.0, **tqdm_kwargs}
    return TqdmCallback(verbose=0, tqdm_class=tqdm, desc=description, file=sys.stdout,
                        **options)


def progress_bar(iterable, description=None, total=None, **tqdm_kwargs):
    """`iterable`, with a text progress bar on stdout: `for t in progress_bar(timesteps):`.

    The loop-by-hand companion of `progress`, drawn the same way (plain text, redrawn at
    most once a second).
    """
    from tqdm.std import tqdm

    options = {"mininterval": 1.0, **tqdm_kwargs}
    return tqdm(iterable, desc=description, total=total, file=sys.stdout, **options)


TENSORBOARD_ENV = "COURSE_TENSORBOARD"


def tensorboard(run_name, environ=None):
    """TensorBoard logging for a long `fit`, when the learner turns it on; else nothing.

    Set `COURSE_TENSORBOARD=1` (logs under the course cache, `cache_dir("tensorboard")`) or
    `COURSE_TENSORBOARD=/some/folder` before starting JupyterLab, then watch the curves with
    `tensorboard --logdir <that folder>` (or `%load_ext tensorboard` and
    `%tensorboard --logdir <that folder>` in a notebook). Each run writes to
    `<folder>/<run_name>/<date-time>`, so reruns appear side by side.

    Use it in a list of callbacks: `callbacks=[progress("DCGAN"), *tensorboard("DCGAN")]`.

    Returns:
        `[keras.callbacks.TensorBoard(...)]` when logging is on, `[]` when it is off.
    """
    import time

    from course_lib.runtime import _FALSE, _TRUE, cache_dir

    environ = os.environ if environ is None else environ
    value = environ.get(TENSORBOARD_ENV, "").strip()
    if value.lower() in _FALSE or not value:
        return []
    root = cache_dir("tensorboard") if value.lower() in _TRUE else Path(value).expanduser()
    safe_name = re.sub(r"[^\w.=-]+", "_", str(run_name)).strip("_") or "run"
    log_dir = root / safe_name / time.strftime("%Y%m%d-%H%M%S")
    # No graph and no profiler: a custom train_step's graph is not what a learner looks for,
    # and the profiler slows the first steps down.
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, profile_batch=0)]
