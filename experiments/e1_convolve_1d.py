"""Experiment 1: the seed's 1-D convolution of a normal and a uniform density.

Reproduces the seed's first figure with jaxconv: ``f = N(0, 1)`` and ``g = U(-3, 3)`` sampled on
``linspace(-10, 10, 1000)``, ``convolve(f, g, mode="same") / 20`` (the seed's display scaling),
and checks it against ``np.convolve``. It also shows what the ``/ 20`` stands in for: multiplied
by the grid step instead, the discrete convolution approximates the integral
``(f * g)(x) = (Φ(x + 3) - Φ(x - 3)) / 6``.

Run: ``python experiments/e1_convolve_1d.py [--out DIR] [--seed S] [--quick]``.
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
from scipy.stats import norm, uniform

import jaxconv

NAME = "e1_convolve_1d"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the experiment; returns the results written to ``results.json``."""
    args = parse_args(NAME, __doc__, argv)
    enable_x64()
    n_points = 1000  # the seed's grid; cheap enough that --quick keeps it
    run = Run(NAME, args, {"n_points": n_points, "interval": [-10, 10], "scaling": 1 / 20})

    x = np.linspace(-10, 10, n_points)
    with run.timer("jaxconv"):
        f = jaxconv.normal_pdf(x)
        g = jaxconv.uniform_pdf(x, loc=-3.0, scale=6.0)
        fg = np.asarray(jaxconv.convolve(f, g, mode="same")) / 20
    with run.timer("numpy"):
        f_ref, g_ref = norm.pdf(x), uniform.pdf(x, loc=-3, scale=6)
        fg_ref = np.convolve(f_ref, g_ref, mode="same") / 20

    dx = x[1] - x[0]
    exact = (norm.cdf(x + 3) - norm.cdf(x - 3)) / 6
    riemann = fg * 20 * dx
    interior = np.abs(x) <= 5  # "same" truncates the sum near the ends of the grid
    run.metrics.update(
        max_abs_diff_pdf_normal=float(np.max(np.abs(np.asarray(f) - f_ref))),
        max_abs_diff_pdf_uniform=float(np.max(np.abs(np.asarray(g) - g_ref))),
        max_abs_diff_vs_np_convolve=float(np.max(np.abs(fg - fg_ref))),
        max_rel_diff_vs_np_convolve=float(np.max(np.abs(fg - fg_ref)) / np.max(np.abs(fg_ref))),
        peak_scaled=float(fg.max()),
        max_abs_err_dx_scaled_vs_integral=float(np.max(np.abs(riemann - exact)[interior])),
        grid_step=float(dx),
    )

    fig, ax = plt.subplots()
    ax.plot(x, f, label="f(x)")
    ax.plot(x, g, label="g(x)")
    ax.plot(x, fg, label="f(x) * g(x) / 20")
    ax.set_ylim(0, None)
    ax.set_xlabel("x")
    ax.legend()
    ax.set_title("jaxconv.convolve(f, g, mode='same') / 20")
    run.savefig(fig, "convolve_1d.png")

    fig, ax = plt.subplots()
    ax.plot(x, exact, "k", lw=3, alpha=0.4, label="(Φ(x+3) − Φ(x−3)) / 6")
    ax.plot(x, riemann, "C2--", label="convolve(f, g) · Δx")
    ax.set_xlabel("x")
    ax.legend()
    ax.set_title("scaled by the grid step, the sum is the integral")
    run.savefig(fig, "convolve_1d_integral.png")
    return run.finish()


if __name__ == "__main__":
    main()
