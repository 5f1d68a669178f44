"""Experiment 5: learning a blur — recover the seed's covariance from (photo, blurred photo).

The seed blurs its photo with a Gaussian of covariance ``[[1, .5], [.5, 1]]``. Here jaxconv learns
that covariance back from the pair alone, four ways:

* ``lm``: Levenberg–Marquardt (exact JAX Jacobians) from the spectral start, noise-free, target
  made with the model's own discretisation (sampled, normalised, covariance in px², radius 8);
* ``adam``: the same problem with Adam (300 steps);
* ``adam_from_isotropic``: Adam from a deliberately wrong start (σ = 2 px, no correlation), the run
  the animation shows: the kernel and its ellipse turn and shrink onto the truth;
* ``noisy``: LM on a target with N(0, 0.01²) noise, with standard errors and the Cramér–Rao bound;
* ``seed_literal`` (full runs only): the seed's own blurred photo — its 30×30 kernel sampled on
  ``mgrid[-3:3:.2]`` (so Σ is 25 px² per unit), unnormalised, cut at ±3σ and even-sized — fitted
  with a shift and a gain. The cut tails are a model mismatch, which the recovered Σ shows.

Run: ``python experiments/e5_learn_blur.py [--out DIR] [--seed S] [--quick]``.
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
from jax.flatten_util import ravel_pytree

import jaxconv
import jaxconv.plot as jplot

NAME = "e5_learn_blur"
COV = np.array([[1.0, 0.5], [0.5, 1.0]])
NOISE = 0.01


def _at(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda v: v[i], tree)


def _summary(result: Any, truth: np.ndarray, scale: float = 1.0) -> dict[str, Any]:
    cov = np.asarray(result.derived["covariance"]) * scale
    out = {
        "covariance": cov,
        "max_abs_error": float(np.max(np.abs(cov - truth))),
        "relative_error": float(np.linalg.norm(cov - truth) / np.linalg.norm(truth)),
        "sigmas": np.asarray(result.derived["sigmas"]) * np.sqrt(scale),
        "angle_deg": float(np.degrees(result.derived["angle"])),
        "steps": int(result.steps),
        "status": str(result.status),
        "final_loss": float(result.loss),
        "wall_s": float(result.wall_time),
        "compile_s": float(result.compile_time),
    }
    if result.stderr is not None:
        out["covariance_stderr"] = np.asarray(result.stderr["covariance"]) * scale
    return out


def _entries_covariance(result: Any) -> np.ndarray:
    """3×3 covariance of the fitted (Σ₀₀, Σ₀₁, Σ₁₁) (row, column order), by the delta method."""
    x, unravel = ravel_pytree(result.params)
    rows, cols = np.array([0, 0, 1]), np.array([0, 1, 1])
    jac = np.asarray(jax.jacfwd(lambda v: unravel(v).covariance[rows, cols])(x))
    return jac @ np.asarray(result.uncertainty.covariance) @ jac.T


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the experiment; returns the results written to ``results.json``."""
    args = parse_args(NAME, __doc__, argv)
    enable_x64()
    photo = jaxconv.default_image()
    if args.quick:
        photo = photo[40:168, 60:252]
    adam_steps = 150 if args.quick else 300
    start_cov = [[4.0, 0.0], [0.0, 4.0]]
    run = Run(NAME, args, {
        "true_covariance_px2": COV, "image_shape": list(photo.shape),
        "target": "convolve(photo, gaussian_kernel(cov, radius=8), mode='same') (sampled, "
                  "normalised)",
        "adam_steps": adam_steps, "adam_start_covariance": start_cov, "noise_std": NOISE,
    })  # fmt: skip
    target = np.asarray(jaxconv.convolve(photo, jaxconv.gaussian_kernel(COV, radius=8), "same"))
    fits: dict[str, Any] = {}

    # One static radius (the target's) for the LM fits: they then share one compiled solver.
    blur = jaxconv.GaussianBlur(radius=8)
    with run.timer("lm"):
        fits["lm"] = jaxconv.fit(blur, photo, target, optimizer="lm")
    if not args.quick:
        with run.timer("adam"):
            fits["adam"] = jaxconv.fit(blur, photo, target, optimizer="adam", steps=adam_steps)
    with run.timer("adam_from_isotropic"):
        slow = jaxconv.fit(jaxconv.GaussianBlur(cov=start_cov), photo, target,
                           optimizer="adam", steps=adam_steps)  # fmt: skip
        fits["adam_from_isotropic"] = slow
    rng = np.random.default_rng(args.seed)
    noisy_target = target + NOISE * rng.standard_normal(target.shape)
    with run.timer("noisy"):
        fits["noisy"] = jaxconv.fit(blur, photo, noisy_target, optimizer="lm")
        crb = jaxconv.cramer_rao_bound(blur, blur.params_from(COV), photo, NOISE)
    summaries = {name: _summary(r, COV) for name, r in fits.items()}
    summaries["noisy"]["crb_covariance"] = np.asarray(crb.derived["covariance"])
    summaries["noisy"]["error_over_crb"] = float(
        np.max(np.abs(summaries["noisy"]["covariance"] - COV)[[0, 0, 1], [0, 1, 1]]
               / np.asarray(crb.derived["covariance"])[[0, 0, 1], [0, 1, 1]])
    )  # fmt: skip

    if not args.quick:
        grid = np.mgrid[-3:3:0.2, -3:3:0.2]
        seed_kernel = jaxconv.gaussian_kernel(COV, grid=grid, normalize=False)
        seed_target = np.asarray(jaxconv.convolve2d(photo, seed_kernel, mode="same"))
        with run.timer("seed_literal"):
            lit = jaxconv.fit(jaxconv.GaussianBlur(shift=True, gain=True), photo, seed_target,
                              optimizer="lm")  # fmt: skip
        summaries["seed_literal"] = _summary(lit, COV, scale=0.2**2)
        summaries["seed_literal"]["shift_px"] = np.asarray(lit.derived["mean"])
        summaries["seed_literal"]["gain"] = float(lit.derived["gain"])
        summaries["seed_literal"]["kernel_sum"] = float(np.sum(seed_kernel))
    run.metrics["fits"] = summaries
    for name, s in summaries.items():
        run.metrics[f"{name}_relative_error"] = s["relative_error"]

    # The animation: kernel, prediction, target, loss and ellipse converging.
    frames = jplot.frame_steps(len(slow.history) - 1, 8 if args.quick else 48)

    @jax.jit  # one compile for all frames
    def frame(p):
        k = slow.model.kernel(p)
        return k, jaxconv.convolve(photo, k, mode="same"), p.covariance

    out = [frame(_at(slow.params_history, int(i))) for i in frames]
    kernels, preds, covs = (np.stack(v) for v in zip(*out, strict=True))
    gif = jplot.animate_fit(
        kernels, preds, target, run.out / "learn_blur.gif", fps=10, steps=frames,
        losses=np.maximum(slow.history, 1e-32), covs=covs, true_cov=COV,
    )  # fmt: skip
    run.add_file(gif)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    jplot.loss_curve({name: np.maximum(r.history, 1e-32) for name, r in fits.items()},
                     ax=axes[0])  # fmt: skip
    axes[0].set_title("loss (MSE) per step")
    noisy = fits["noisy"]
    jplot.covariance_comparison(COV, summaries["noisy"]["covariance"],
                                stderr_cov=_entries_covariance(noisy), ax=axes[1])  # fmt: skip
    axes[1].set_title(f"noisy target (s = {NOISE}): true vs recovered, 95% band")
    jplot.kernel(np.asarray(slow.model.kernel(slow.params)), ax=axes[2],
                 title="learned kernel (Adam from σ = 2)")  # fmt: skip
    jplot.covariance_ellipse(COV, ax=axes[2], edgecolor="k", label="true Σ")
    axes[2].set(xlim=(-5, 5), ylim=(5, -5))
    fig.tight_layout()
    run.savefig(fig, "learn_blur.png")

    _table(run, summaries)
    return run.finish()


def _table(run: Run, summaries: dict[str, Any]) -> None:
    """recovered-vs-true as markdown (table.md) and as a figure."""
    rows = [("true", COV, None)]
    rows += [(name, s["covariance"], s.get("covariance_stderr")) for name, s in summaries.items()]
    lines = ["| fit | Σxx | Σxy | Σyy | relative error | steps |", "|---|---|---|---|---|---|"]
    cells = []
    for name, cov, se in rows:
        entries = [cov[0, 0], cov[0, 1], cov[1, 1]]
        if se is None:
            text = [f"{v:.6f}" for v in entries]
        else:
            text = [f"{v:.5f} ± {e:.1e}" for v, e in zip(entries, [se[0, 0], se[0, 1], se[1, 1]],
                                                          strict=True)]  # fmt: skip
        s = summaries.get(name)
        err = "" if s is None else f"{s['relative_error']:.2e}"
        steps = "" if s is None else str(s["steps"])
        lines.append(f"| {name} | {' | '.join(text)} | {err} | {steps} |")
        cells.append([name, *text, err, steps])
    (run.out / "table.md").write_text("\n".join(lines) + "\n")
    run.files.append("table.md")
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(cells) + 0.6))
    ax.axis("off")
    table = ax.table(cellText=cells, loc="center",
                     colLabels=["fit", "Σxx", "Σxy", "Σyy", "rel. error", "steps"])  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.3)
    run.savefig(fig, "table.png")


if __name__ == "__main__":
    main()
