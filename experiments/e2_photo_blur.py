"""Experiment 2: the seed's photo blur with a 30×30 Gaussian kernel, against scipy.

The kernel is the seed's ``multivariate_normal([0, 0], [[1, .5], [.5, 1]]).pdf`` on
``np.mgrid[-3:3:.2, -3:3:.2]`` (built with ``jaxconv.gaussian_kernel(..., normalize=False)``), and
the blur is ``jaxconv.convolve2d(photo, kernel, mode="same")``. The result is compared with
``scipy.signal.convolve2d`` for every convolution method jaxconv has, and both are timed (median
of repeats after a warm-up).

Run: ``python experiments/e2_photo_blur.py [--out DIR] [--seed S] [--quick]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import Run, enable_x64, parse_args
from scipy.signal import convolve2d
from scipy.stats import multivariate_normal

import jaxconv
import jaxconv.plot as jplot

NAME = "e2_photo_blur"
COV = [[1.0, 0.5], [0.5, 1.0]]
METHODS = ("auto", "direct", "shift", "fft", "os")


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up (compiles)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if hasattr(out, "block_until_ready"):
            out.block_until_ready()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the experiment; returns the results written to ``results.json``."""
    args = parse_args(NAME, __doc__, argv)
    enable_x64()
    repeats = 3 if args.quick else 15
    methods = ("auto", "fft") if args.quick else METHODS
    run = Run(NAME, args, {"cov": COV, "grid": "mgrid[-3:3:.2, -3:3:.2]", "methods": methods})

    photo = jaxconv.default_image()
    grid = np.mgrid[-3:3:0.2, -3:3:0.2]
    with run.timer("kernel"):
        kernel = np.asarray(jaxconv.gaussian_kernel(COV, grid=grid, normalize=False))
    kernel_ref = multivariate_normal([0, 0], COV).pdf(np.dstack(grid))
    with run.timer("scipy_reference"):
        blurred_ref = convolve2d(photo, kernel_ref, mode="same")

    scale = float(np.max(np.abs(blurred_ref)))
    diffs = {}
    for method in methods:
        out = np.asarray(jaxconv.convolve2d(photo, kernel, mode="same", method=method))
        diffs[method] = float(np.max(np.abs(out - blurred_ref)))
    blurred = np.asarray(jaxconv.convolve2d(photo, kernel, mode="same"))

    t_jax = _median_time(lambda: jaxconv.convolve2d(photo, kernel, mode="same"), repeats)
    t_scipy = _median_time(lambda: convolve2d(photo, kernel_ref, mode="same"), repeats)
    run.metrics.update(
        image_shape=list(photo.shape),
        kernel_shape=list(kernel.shape),
        max_abs_diff_kernel_vs_scipy_stats=float(np.max(np.abs(kernel - kernel_ref))),
        max_abs_diff_vs_scipy_convolve2d=diffs["auto"],
        max_rel_diff_vs_scipy_convolve2d=diffs["auto"] / scale,
        max_abs_diff_by_method=diffs,
        auto_method=jaxconv.choose_method(photo, kernel, "same"),
        median_s_jaxconv=t_jax,
        median_s_scipy_convolve2d=t_scipy,
        speedup_vs_scipy=t_scipy / t_jax,
    )

    fig = jplot.images([photo, blurred], titles=["Original", "Convolved"])
    run.savefig(fig, "photo_blur.png")
    ax = jplot.kernel(kernel, title="30×30 kernel, multivariate_normal(0, Σ).pdf")
    run.savefig(ax.figure, "kernel.png")
    fig = jplot.images(
        [np.abs(blurred - blurred_ref)],
        titles=["|jaxconv − scipy convolve2d|"],
        cmap="magma",
        colorbar=True,
    )
    run.savefig(fig, "difference_vs_scipy.png")
    return run.finish()


if __name__ == "__main__":
    main()
