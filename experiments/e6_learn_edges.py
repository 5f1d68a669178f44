"""Experiment 6: learning an edge map — a free 3×3 kernel started from noise becomes Sobel.

The targets are ``jaxconv.sobel(photo, axis)`` and ``jaxconv.prewitt(photo, axis)`` (equal to
scipy.ndimage's). A :class:`jaxconv.FreeKernel` of shape 3×3 (every tap a parameter) is fitted:

* with Adam (peak learning rate 1, warmup-cosine) from random N(0, 1/9) taps — the run the
  animation shows — and, in full runs, with L-BFGS from the same start. Adam is slow here
  because the photo is smooth: its 3×3 patches are strongly correlated (the condition number of
  their Gram matrix is reported), so high-frequency tap patterns barely change the loss;
* with Levenberg–Marquardt from zeros (the model is linear in its taps, so this is linear least
  squares: exact to round-off in a step or two), for both axes;
* with LM on a target with N(0, 0.01²) noise, reporting the RMS tap error next to the
  Cramér–Rao bound and the standard errors.

The learned kernels are *convolution* kernels: Sobel along x is ``[[1, 0, -1], [2, 0, -2],
[1, 0, -1]]`` (``jaxconv.sobel_kernel(axis=1)``), since ndimage's sobel correlates with
``[-1, 0, 1]``.

Run: ``python experiments/e6_learn_edges.py [--out DIR] [--seed S] [--quick]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax
import matplotlib.pyplot as plt
import numpy as np
from _common import Run, enable_x64, parse_args

import jaxconv
import jaxconv.plot as jplot

NAME = "e6_learn_edges"
NOISE = 0.01
OPERATORS = ("sobel", "prewitt")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the experiment; returns the results written to ``results.json``."""
    args = parse_args(NAME, __doc__, argv)
    enable_x64()
    photo = jaxconv.default_image()
    if args.quick:
        photo = photo[40:168, 60:252]
    steps = 300 if args.quick else 1500
    learning_rate = 1.0
    axes_lm = (1,) if args.quick else (0, 1)
    run = Run(NAME, args, {
        "image_shape": list(photo.shape), "adam_steps": steps, "noise_std": NOISE,
        "adam_learning_rate": learning_rate,
        "model": "FreeKernel((3, 3))", "adam_init": "random N(0, 1/9) taps",
    })  # fmt: skip
    rng = np.random.default_rng(args.seed)
    results: dict[str, Any] = {}
    histories: dict[str, np.ndarray] = {}
    kernels: dict[str, dict[str, np.ndarray]] = {}
    gif_fit = None
    patches = np.lib.stride_tricks.sliding_window_view(photo, (3, 3)).reshape(-1, 9)
    eig = np.linalg.eigvalsh(patches.T @ patches)
    run.metrics["patch_gram_condition_number"] = float(eig[-1] / eig[0])

    for op in OPERATORS:
        truth = np.asarray(getattr(jaxconv, f"{op}_kernel")(axis=1))
        target = np.asarray(getattr(jaxconv, op)(photo, axis=1))
        key = jax.random.PRNGKey(args.seed)
        with run.timer(f"{op}_adam"):
            adam = jaxconv.fit(jaxconv.FreeKernel((3, 3), init_kernel="random"), photo, target,
                               optimizer="adam", steps=steps, learning_rate=learning_rate,
                               key=key)  # fmt: skip
        start = np.asarray(jax.tree_util.tree_leaves(adam.params_history)[0][0])
        learned = np.asarray(adam.params)
        res = {
            "adam_max_tap_error": float(np.max(np.abs(learned - truth))),
            "adam_start_max_tap_error": float(np.max(np.abs(start - truth))),
            "adam_steps": int(adam.steps),
            "adam_kernel": learned,
        }
        histories[f"{op} (Adam)"] = adam.history
        if not args.quick:
            with run.timer(f"{op}_lbfgs"):
                lbfgs = jaxconv.fit(jaxconv.FreeKernel((3, 3), init_kernel="random"), photo,
                                    target, optimizer="lbfgs", steps=60, key=key)  # fmt: skip
            res["lbfgs_max_tap_error"] = float(np.max(np.abs(np.asarray(lbfgs.params) - truth)))
            histories[f"{op} (L-BFGS)"] = lbfgs.history
        if op == "sobel":
            gif_fit = (adam, target)
        for axis in axes_lm:
            t_axis = np.asarray(getattr(jaxconv, op)(photo, axis=axis))
            truth_axis = np.asarray(getattr(jaxconv, f"{op}_kernel")(axis=axis))
            with run.timer(f"{op}_lm"):
                lm = jaxconv.fit(jaxconv.FreeKernel((3, 3)), photo, t_axis, optimizer="lm")
            res[f"lm_axis{axis}_max_tap_error"] = float(np.max(np.abs(lm.params - truth_axis)))
            res[f"lm_axis{axis}_steps"] = int(lm.steps)
        noisy_target = target + NOISE * rng.standard_normal(target.shape)
        with run.timer(f"{op}_noisy"):
            noisy = jaxconv.fit(jaxconv.FreeKernel((3, 3)), photo, noisy_target, optimizer="lm")
            crb = jaxconv.cramer_rao_bound(noisy.model, truth, photo, NOISE)
        err = np.asarray(noisy.params) - truth
        crb_taps = np.asarray(crb.stderr)
        res.update(
            noisy_rms_tap_error=float(np.sqrt(np.mean(err**2))),
            noisy_rms_crb=float(np.sqrt(np.mean(crb_taps**2))),
            noisy_rms_stderr=float(np.sqrt(np.mean(np.asarray(noisy.stderr["kernel"]) ** 2))),
            noisy_kernel=np.asarray(noisy.params),
            crb_taps=crb_taps,
        )
        res["noisy_error_over_crb"] = res["noisy_rms_tap_error"] / res["noisy_rms_crb"]
        results[op] = res
        kernels[op] = {"start (noise)": start, "Adam": learned, "LM, noisy": res["noisy_kernel"],
                       "truth": truth}  # fmt: skip
        for key_, value in res.items():
            if np.isscalar(value):
                run.metrics[f"{op}_{key_}"] = value
    run.metrics["fits"] = results

    ks, titles = [], []
    for op, row in kernels.items():
        for label, k in row.items():
            ks.append(k)
            titles.append(f"{op}: {label}")
    fig = jplot.filter_grid(ks, titles=titles, ncols=4)
    for ax in fig.axes:
        ax.set(xlabel="", ylabel="")
    run.savefig(fig, "kernels.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    jplot.loss_curve({k: np.maximum(v, 1e-32) for k, v in histories.items()}, ax=ax)
    ax.set_title("free 3×3 kernel from noise: loss (MSE)")
    run.savefig(fig, "loss.png")

    adam, target = gif_fit
    frames = jplot.frame_steps(len(adam.history) - 1, 12 if args.quick else 48)
    taps = np.asarray(adam.params_history)[frames]
    preds = [np.asarray(jaxconv.convolve(photo, k, mode="same", boundary="symm")) for k in taps]
    gif = jplot.animate_fit(taps, preds, target, run.out / "learn_sobel.gif", fps=10,
                            steps=frames, losses=np.maximum(adam.history, 1e-32))  # fmt: skip
    run.add_file(gif)
    return run.finish()


if __name__ == "__main__":
    main()
