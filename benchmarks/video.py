"""Quality bars of chapter 5 (video), measured in one run of the notebooks' recipes.

    python benchmarks/video.py [--only baselines] [--notebooks] [--quick]

Runs the chapter's experiments with the notebooks' hyperparameters (the RECIPES below; keep
them in step with the notebooks' hyperparameter cells), prints each result, and writes the
numbers that the notebooks' prose quotes to `benchmarks/results/05_video.json`
(`bars.write_results`):
- baselines (notebook 1): copy-last, linear extrapolation and the frame average, PSNR per
  horizon (1-4 frames ahead of 4 past frames) on carphone and bikes (grey) and on moving
  digits of held-out digits; the residual CNN trained one frame ahead on moving digits and on
  carphone's first 90 frames, scored on held-out clips and on carphone's last 30 frames.
  Bars: the CNN beats every baseline on moving digits (by > 3 dB); on carphone it is
  reported against copy-last (a tie is the honest result at this budget).
`--notebooks` also runs every notebook of the chapter in normal mode.
`--quick` shrinks the runs (1 epoch, fewer clips) only to check that the script works end to
end; it writes no results.
"""

import sys
import time

import bars  # benchmarks/bars.py, next to this script
import keras
import numpy as np

from course_lib import video
from course_lib.data.video import frame_windows, load_clip, moving_digits
from course_lib.models.video import residual_frame_predictor
from course_lib.runtime import setup

CHAPTER = "05_video"
NOTEBOOKS = {name: f"notebooks/05_video/{name}.ipynb" for name in ("01_video_as_data",)}
RECIPES = {
    "baselines": {  # notebooks/05_video/01_video_as_data.ipynb, normal mode
        "seed": 42, "past_frames": 4, "horizon": 4, "num_train_clips": 1000,
        "num_test_clips": 200, "num_epochs": 5, "bikes_size": (136, 320), "bikes_stride": 8,
        "digits_stride": 4, "test_digits": (1400, 1797)},
}


def _all_windows(frames, recipe, stride=1):
    pairs = list(frame_windows(frames, recipe["past_frames"], recipe["horizon"],
                               batch_size=256, stride=stride))
    return (np.concatenate([p.numpy() for p, _ in pairs]),
            np.concatenate([f.numpy() for _, f in pairs]))


def baselines(rows, values, quoted, quick=False):
    recipe = RECIPES["baselines"]
    setup(seed=recipe["seed"])
    past_frames, horizon = recipe["past_frames"], recipe["horizon"]
    start = time.perf_counter()
    grey = {"carphone": load_clip("carphone", grey=True),
            "bikes": load_clip("bikes", grey=True, size=recipe["bikes_size"]),
            "digits": moving_digits(recipe["num_test_clips"], num_frames=12, seed=1,
                                    digit_indices=np.arange(*recipe["test_digits"]))["clips"]}
    windows = {"carphone": _all_windows(grey["carphone"], recipe),
               "bikes": _all_windows(grey["bikes"], recipe, recipe["bikes_stride"]),
               "digits": _all_windows(grey["digits"], recipe, recipe["digits_stride"])}
    rules = {"copy": video.copy_last, "linear": video.linear_extrapolation,
             "average": video.frame_average}
    for data, (past, future) in windows.items():
        for name, predict in rules.items():
            scores = video.horizon_scores(predict(past, horizon), future)
            for h in range(horizon):
                values[f"{data}_{name}_psnr{h + 1}"] = scores["psnr"][h]
                values[f"{data}_{name}_ssim{h + 1}"] = scores["ssim"][h]
        rows.append((f"{data}: PSNR 1 ahead, copy / linear / average",
                     " / ".join(f"{values[f'{data}_{n}_psnr1']:.2f}" for n in rules),
                     "(reported)", True, 0))
    rows[-1] = (*rows[-1][:4], time.perf_counter() - start)

    def train(past, future):
        keras.utils.set_random_seed(recipe["seed"])
        model = residual_frame_predictor(past_frames, filters=32, depth=4)
        model.compile(keras.optimizers.Adam(1e-3), "mse")
        model.fit(past, future[:, :1], batch_size=32, verbose=0,
                  epochs=1 if quick else recipe["num_epochs"])
        return model

    start = time.perf_counter()
    train_digits = moving_digits(100 if quick else recipe["num_train_clips"], num_frames=8,
                                 seed=0, digit_indices=np.arange(recipe["test_digits"][0]))
    train_digits = train_digits["clips"]
    digit_model = train(train_digits[:, :past_frames], train_digits[:, past_frames:])
    car_model = train(*_all_windows(grey["carphone"][:90], recipe))
    tests = {"digits": (digit_model, windows["digits"]),
             "carphone": (car_model, _all_windows(grey["carphone"][90:], recipe))}
    for data, (model, (past, future)) in tests.items():
        predicted = np.clip(model.predict(past, verbose=0), 0, 1)
        values[f"{data}_cnn_psnr1"] = video.horizon_scores(predicted, future[:, :1])["psnr"][0]
        for name, predict in rules.items():
            values[f"{data}_test_{name}_psnr1"] = video.horizon_scores(
                predict(past, 1), future[:, :1])["psnr"][0]
    seconds = time.perf_counter() - start
    best = max(values[f"digits_test_{name}_psnr1"] for name in rules)
    values["digits_best_psnr1"] = best
    rows.append(("moving digits, 1 ahead: CNN vs best baseline",
                 f"{values['digits_cnn_psnr1']:.2f} vs {best:.2f}", "> best + 3 dB",
                 values["digits_cnn_psnr1"] > best + 3, seconds))
    rows.append(("carphone frames 91-120, 1 ahead: CNN vs copy-last",
                 f"{values['carphone_cnn_psnr1']:.2f} vs "
                 f"{values['carphone_test_copy_psnr1']:.2f}", "(reported)", True, 0))
    quoted[NOTEBOOKS["01_video_as_data"]] = {
        **{f"{data}_{name}_psnr1": f"{values[f'{data}_{name}_psnr1']:.2f}"
           for data in ("carphone", "bikes") for name in ("copy", "linear")},
        "digits_linear_psnr1": f"{values['digits_linear_psnr1']:.2f}",
        "digits_copy_psnr1": f"{values['digits_copy_psnr1']:.2f}",
        "digits_cnn_psnr1": f"{values['digits_cnn_psnr1']:.2f}",
        "digits_best_psnr1": f"{best:.2f}",
        "carphone_cnn_psnr1": f"{values['carphone_cnn_psnr1']:.2f}",
        "carphone_test_copy_psnr1": f"{values['carphone_test_copy_psnr1']:.2f}"}


BENCHMARKS = {"baselines": baselines}


def main():
    return bars.main(__doc__.split("\n\n")[0], BENCHMARKS, CHAPTER)


if __name__ == "__main__":
    sys.exit(main())
