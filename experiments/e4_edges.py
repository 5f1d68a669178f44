"""Experiment 4: Sobel and Prewitt edge maps of the photo, against scipy.ndimage.

Both derivative axes and the gradient magnitude, computed three ways and compared: the filter
functions ``jaxconv.sobel/prewitt/edge_magnitude`` (scipy.ndimage semantics, ``mode="reflect"``),
a plain ``jaxconv.convolve2d`` with ``jaxconv.sobel_kernel``/``prewitt_kernel`` and
``boundary="symm"`` (the same half-sample reflection), and ``scipy.ndimage.sobel/prewitt``.

Run: ``python experiments/e4_edges.py [--out DIR] [--seed S] [--quick]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import Run, enable_x64, parse_args
from scipy import ndimage

import jaxconv
import jaxconv.plot as jplot

NAME = "e4_edges"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the experiment; returns the results written to ``results.json``."""
    args = parse_args(NAME, __doc__, argv)
    enable_x64()
    run = Run(NAME, args, {"mode": "reflect", "operators": ["sobel", "prewitt"]})
    photo = jaxconv.default_image()

    maps: dict[str, dict[str, np.ndarray]] = {}
    for op in ("sobel", "prewitt"):
        filt = getattr(jaxconv, op)
        make_kernel = getattr(jaxconv, f"{op}_kernel")
        ref_filter = getattr(ndimage, op)
        with run.timer(f"{op}_jaxconv"):
            d0 = np.asarray(filt(photo, axis=0))
            d1 = np.asarray(filt(photo, axis=1))
            mag = np.asarray(jaxconv.edge_magnitude(photo, op))
        with run.timer(f"{op}_scipy"):
            r0, r1 = ref_filter(photo, axis=0), ref_filter(photo, axis=1)
            rmag = np.hypot(r0, r1)
        c0 = np.asarray(jaxconv.convolve2d(photo, make_kernel(axis=0), "same", boundary="symm"))
        c1 = np.asarray(jaxconv.convolve2d(photo, make_kernel(axis=1), "same", boundary="symm"))
        scale = float(np.abs(rmag).max())
        run.metrics[f"{op}_max_abs_diff_axis0_vs_ndimage"] = float(np.max(np.abs(d0 - r0)))
        run.metrics[f"{op}_max_abs_diff_axis1_vs_ndimage"] = float(np.max(np.abs(d1 - r1)))
        run.metrics[f"{op}_max_abs_diff_magnitude_vs_ndimage"] = float(np.max(np.abs(mag - rmag)))
        run.metrics[f"{op}_max_abs_diff_convolve2d_kernel_vs_ndimage"] = float(
            max(np.max(np.abs(c0 - r0)), np.max(np.abs(c1 - r1)))
        )
        run.metrics[f"{op}_magnitude_max"] = scale
        maps[op] = {"∂/∂y (axis 0)": d0, "∂/∂x (axis 1)": d1, "magnitude": mag}

    images = [img for panels in maps.values() for img in panels.values()]
    titles = [f"{op.capitalize()} {label}" for op, panels in maps.items() for label in panels]
    run.savefig(jplot.images(images, titles, ncols=3, colorbar=True), "edges.png")

    kernels = [jaxconv.sobel_kernel(axis=a) for a in (0, 1)]
    kernels += [jaxconv.prewitt_kernel(axis=a) for a in (0, 1)]
    titles = ["Sobel axis 0", "Sobel axis 1", "Prewitt axis 0", "Prewitt axis 1"]
    run.savefig(jplot.filter_grid(kernels, titles=titles), "kernels.png")
    return run.finish()


if __name__ == "__main__":
    main()
