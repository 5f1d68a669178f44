"""Experiment 3: the seed's contour plot of the Gaussian density on a fine grid.

The density of ``N(0, [[1, .5], [.5, 1]])`` on ``np.mgrid[-3:3:.01, -3:3:.01]`` (600×600 points),
computed with ``jaxconv.gaussian_kernel(cov, grid=..., normalize=False)`` and compared with
``scipy.stats.multivariate_normal(...).pdf``; drawn with ``contourf`` exactly as the seed does,
plus the same density as the 30×30 kernel of experiment 2 with its 1- and 2-σ ellipses. Both are
drawn in ``jaxconv.plot``'s one orientation (rows, the grid's first coordinate, downwards).

Run: ``python experiments/e3_gaussian_contour.py [--out DIR] [--seed S] [--quick]``.
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
from scipy.stats import multivariate_normal

import jaxconv
import jaxconv.plot as jplot

NAME = "e3_gaussian_contour"
COV = [[1.0, 0.5], [0.5, 1.0]]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the experiment; returns the results written to ``results.json``."""
    args = parse_args(NAME, __doc__, argv)
    enable_x64()
    step = 0.05 if args.quick else 0.01
    run = Run(NAME, args, {"cov": COV, "grid": f"mgrid[-3:3:{step}, -3:3:{step}]"})

    x, y = np.mgrid[-3:3:step, -3:3:step]
    with run.timer("jaxconv"):
        pdf = np.asarray(jaxconv.gaussian_kernel(COV, grid=np.stack([x, y]), normalize=False))
    with run.timer("scipy"):
        pdf_ref = multivariate_normal([0, 0], COV).pdf(np.dstack((x, y)))
    mass = float(pdf.sum() * step * step)
    run.metrics.update(
        grid_shape=list(pdf.shape),
        max_abs_diff_vs_scipy_stats=float(np.max(np.abs(pdf - pdf_ref))),
        max_rel_diff_vs_scipy_stats=float(np.max(np.abs(pdf - pdf_ref) / pdf_ref)),
        peak=float(pdf.max()),
        peak_exact=float(1 / (2 * np.pi * np.sqrt(np.linalg.det(COV)))),
        mass_in_square=mass,
    )

    # jaxconv.plot's orientation: the grid's first coordinate (row, y) downwards, as the kernel
    # image below is shown; Σ's ellipses lie on the contours.
    fig, ax = plt.subplots(figsize=(5.6, 5))
    jplot.contour(pdf, np.stack([x, y]), ax=ax, title="jaxconv.gaussian_kernel(cov, grid=mgrid)")
    for n_std in (1, 2):
        jplot.covariance_ellipse(COV, ax=ax, n_std=n_std, edgecolor="w", linestyle="--")
    ax.set(xlim=(-3, 3), ylim=(3, -3))
    run.savefig(fig, "gaussian_contour.png")

    kernel = jaxconv.gaussian_kernel(COV, grid=np.mgrid[-3:3:0.2, -3:3:0.2], normalize=False)
    ax = jplot.kernel(kernel, title="the 30×30 kernel (pixel units) and Σ's ellipses")
    # The grid step is 0.2, so Σ is 25× larger in pixels; the even-sized grid puts 0 at index 15,
    # half a pixel past the centre that jaxconv.plot.kernel draws at offset 0. Σ is in the grid's
    # (first, second) = (row, column) order, the order jaxconv.plot takes.
    cov_px = np.asarray(COV) / 0.2**2
    for n_std in (1, 2):
        jplot.covariance_ellipse(cov_px, ax=ax, mean=(0.5, 0.5), n_std=n_std, edgecolor="w")
    run.savefig(ax.figure, "kernel_ellipses.png")
    return run.finish()


if __name__ == "__main__":
    main()
