"""Experiment 8: recovery accuracy against noise, next to the Cramér–Rao bound.

The photo is blurred with the seed's covariance ``[[1, .5], [.5, 1]]`` px² (σ₁ = 1.225,
σ₂ = 0.707 px, θ = 45°), white Gaussian noise of standard deviation s is added, and the covariance
is fitted back with Levenberg–Marquardt (``jaxconv.fit``; one compile, then a fraction of a
second per fit), many noise draws per level. For each s the spread of the estimates of σ₁, σ₂
and θ is compared with ``jaxconv.cramer_rao_bound`` (the smallest standard deviation any unbiased
estimator can reach), and the reported standard errors are checked for coverage
(|error| ≤ 1.96 stderr about 95% of the time).

Run: ``python experiments/e8_noise_vs_crb.py [--out DIR] [--seed S] [--quick]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import numpy as np
from _common import Run, enable_x64, parse_args
from tqdm.auto import tqdm

import jaxconv

NAME = "e8_noise_vs_crb"
COV = np.array([[1.0, 0.5], [0.5, 1.0]])
QUANTITIES = ("sigma1", "sigma2", "angle_deg")


def _truth() -> dict[str, float]:
    vals, vecs = np.linalg.eigh(COV)
    # Axes are (row y, column x); θ runs from x towards y, as jaxconv.Gaussian.angle reports it.
    angle = np.degrees(np.arctan2(vecs[0, 1], vecs[1, 1])) % 180
    return {"sigma1": float(np.sqrt(vals[1])), "sigma2": float(np.sqrt(vals[0])),
            "angle_deg": float(angle)}  # fmt: skip


def _quantities(derived: dict[str, Any]) -> dict[str, np.ndarray]:
    sig = np.asarray(derived["sigmas"])
    return {"sigma1": sig[..., 0], "sigma2": sig[..., 1],
            "angle_deg": np.degrees(np.asarray(derived["angle"]))}  # fmt: skip


def _stack(dicts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.array([d[k] for d in dicts]) for k in dicts[0]}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the experiment; returns the results written to ``results.json``."""
    args = parse_args(NAME, __doc__, argv)
    enable_x64()
    photo = jaxconv.default_image()
    if args.quick:
        photo = photo[40:168, 60:252]
        levels, trials = [0.01, 0.05], 4
    else:
        levels, trials = [0.001, 0.003, 0.01, 0.03, 0.1], 32
    truth = _truth()
    run = Run(NAME, args, {
        "true_covariance_px2": COV, "truth": truth, "noise_levels": levels, "trials": trials,
        "image_shape": list(photo.shape), "optimizer": "lm", "model": "GaussianBlur(radius=8)",
    })  # fmt: skip
    clean = np.asarray(jaxconv.convolve(photo, jaxconv.gaussian_kernel(COV, radius=8), "same"))
    rng = np.random.default_rng(args.seed)
    # A fixed radius (the target's) keeps one compiled fit for every draw; by default the radius
    # follows each draw's spectral start, and a new radius is a new compile.
    model = jaxconv.GaussianBlur(radius=8)
    # The bound is s (JᵀJ)^(-1/2) at the truth: computed once for s = 1, it scales with s.
    with run.timer("cramer_rao_bound"):
        unit_crb = _quantities(
            jaxconv.cramer_rao_bound(model, model.params_from(COV), photo, 1.0).derived
        )
    rows = []
    bar = tqdm(total=len(levels) * trials, desc="fits", unit="fit", leave=False)
    for s in levels:
        fits = []
        for _ in range(trials):
            target = clean + s * rng.standard_normal(photo.shape)
            with run.timer("fits"):
                fits.append(jaxconv.fit(model, photo, target, optimizer="lm", progress=False))
            bar.update()
        est = _stack([_quantities(f.derived) for f in fits])
        se = _stack([_quantities(f.stderr) for f in fits])
        bound = {q: s * v for q, v in unit_crb.items()}
        row: dict[str, Any] = {"noise_std": s, "converged": int(sum(f.success for f in fits))}
        for q in QUANTITIES:
            err = est[q] - truth[q]
            row[q] = {
                "mean": float(np.mean(est[q])),
                "bias": float(np.mean(err)),
                "std": float(np.std(est[q], ddof=1)),
                "rmse": float(np.sqrt(np.mean(err**2))),
                "crb": float(bound[q]),
                "std_over_crb": float(np.std(est[q], ddof=1) / bound[q]),
                "mean_stderr": float(np.mean(se[q])),
                "coverage_95": float(np.mean(np.abs(err) <= 1.96 * se[q])),
            }
        cov_err = np.stack([np.asarray(f.derived["covariance"]) for f in fits]) - COV
        row["mean_relative_covariance_error"] = float(
            np.mean(np.linalg.norm(cov_err, axis=(-2, -1)) / np.linalg.norm(COV))
        )
        rows.append(row)
    bar.close()
    run.metrics["levels"] = rows
    ratios = [r[q]["std_over_crb"] for r in rows for q in QUANTITIES]
    coverage = [r[q]["coverage_95"] for r in rows for q in QUANTITIES]
    run.metrics.update(
        std_over_crb_min=float(np.min(ratios)),
        std_over_crb_max=float(np.max(ratios)),
        std_over_crb_median=float(np.median(ratios)),
        coverage_95_mean=float(np.mean(coverage)),
        all_converged=bool(all(r["converged"] == trials for r in rows)),
    )

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    s_arr = np.array(levels)
    labels = {"sigma1": "σ₁ (px)", "sigma2": "σ₂ (px)", "angle_deg": "θ (degrees)"}
    for ax, q in zip(axes, QUANTITIES, strict=True):
        std = [r[q]["std"] for r in rows]
        rmse = [r[q]["rmse"] for r in rows]
        crb_q = [r[q]["crb"] for r in rows]
        ax.loglog(s_arr, crb_q, "k-", label="Cramér–Rao bound")
        ax.loglog(s_arr, std, "o", color="C0", label=f"std of {trials} fits")
        ax.loglog(s_arr, rmse, "x", color="C3", label="RMSE")
        ax.set_xlabel("noise standard deviation s")
        ax.set_ylabel(f"error in {labels[q]}")
        ax.set_title(f"{labels[q]}: truth {truth[q]:.4g}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    run.savefig(fig, "noise_vs_crb.png")
    return run.finish()


if __name__ == "__main__":
    main()
