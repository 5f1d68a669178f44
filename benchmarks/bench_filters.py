"""Gaussian blur and Sobel on 2-D float32 images: jaxconv against scipy.ndimage and OpenCV.

For each image size (512² and 2048² by default) it times, side by side in one run:

* Gaussian blur, σ = 1, 3 and 8: ``jaxconv.gaussian_filter(x, σ)`` against
  ``scipy.ndimage.gaussian_filter(x, σ)`` (``truncate=4``, ``mode="reflect"``) and
  ``cv2.GaussianBlur(x, (s, s), σ, borderType=cv2.BORDER_REFLECT)`` with
  ``s = 2 int(4 σ + 0.5) + 1``, the same support as scipy's;
* Sobel along the last axis: ``jaxconv.sobel(x)`` against ``scipy.ndimage.sobel(x)`` and
  ``cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)``.

scipy.ndimage's ``"reflect"`` (``d c b a | a b c d | d c b a``) is OpenCV's ``BORDER_REFLECT``;
OpenCV's default, ``BORDER_REFLECT_101``, is ndimage's ``"mirror"``, so the border is set
explicitly. Every output is compared with scipy.ndimage's (computed in float64) and the error is
recorded; OpenCV samples its Gaussian itself, so its error shows that difference too.

The issue's targets: at most 1.5x OpenCV's time and at most 0.3x scipy.ndimage's.

Usage::

    python benchmarks/bench_filters.py
    python benchmarks/bench_filters.py --quick --out results/filters.json
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import _bench
import cv2
import jax
import numpy as np
import scipy.ndimage as ndi

import jaxconv

SIGMAS = (1.0, 3.0, 8.0)


def cases(x: np.ndarray) -> dict[str, dict[str, Any]]:
    """Filter name -> {"ref": float64 reference, implementation name -> callable}."""
    xj = jax.numpy.asarray(x)
    x64 = x.astype(np.float64)
    out: dict[str, dict[str, Any]] = {}
    gaussian = getattr(jaxconv, "gaussian_filter", None)
    sobel = getattr(jaxconv, "sobel", None)
    for sigma in SIGMAS:
        size = 2 * int(4.0 * sigma + 0.5) + 1
        entry: dict[str, Any] = {
            "ref": ndi.gaussian_filter(x64, sigma, mode="reflect", truncate=4.0),
            "scipy.ndimage": lambda s=sigma: ndi.gaussian_filter(x, s, mode="reflect"),
            "cv2": lambda s=sigma, k=size: cv2.GaussianBlur(
                x, (k, k), s, borderType=cv2.BORDER_REFLECT
            ),
        }
        if gaussian is not None:
            f = jax.jit(lambda a, s=sigma: gaussian(a, s))
            entry["jaxconv"] = lambda f=f: f(xj)
        out[f"gaussian σ={sigma:g}"] = entry
    entry = {
        "ref": ndi.sobel(x64, axis=-1, mode="reflect"),
        "scipy.ndimage": lambda: ndi.sobel(x, axis=-1, mode="reflect"),
        "cv2": lambda: cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT),
    }
    if sobel is not None:
        f = jax.jit(lambda a: sobel(a, axis=-1))
        entry["jaxconv"] = lambda f=f: f(xj)
    out["sobel"] = entry
    return out


def run_size(n: int, args: Any, rng: np.random.Generator) -> list[dict]:
    x = rng.standard_normal((n, n)).astype(np.float32)
    results = []
    for name, entry in cases(x).items():
        ref = entry.pop("ref")
        rec: dict[str, Any] = {"size": n, "filter": name}
        rec["entries"] = _bench.time_interleaved(entry, args.repeats, args.slow_s)
        for impl, fn in entry.items():
            rec["entries"][impl]["rel_error"] = _bench.rel_error(fn(), ref)
        med = {k: v["median_ms"] for k, v in rec["entries"].items()}
        if "jaxconv" in med:
            rec["jaxconv_over_cv2"] = med["jaxconv"] / med["cv2"]
            rec["jaxconv_over_scipy"] = med["jaxconv"] / med["scipy.ndimage"]
            rec["targets"] = {
                "<= 1.5x cv2": rec["jaxconv_over_cv2"] <= 1.5,
                "<= 0.3x scipy.ndimage": rec["jaxconv_over_scipy"] <= 0.3,
            }
        results.append(rec)
    return results


def print_results(results: Sequence[dict]) -> None:
    rows = []
    for r in results:
        e = r["entries"]
        jx = e.get("jaxconv")
        met = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in r.get("targets", {}).items())
        rows.append(
            [
                f"{r['size']}²",
                r["filter"],
                "-" if jx is None else f"{jx['median_ms']:.3f}",
                f"{e['cv2']['median_ms']:.3f}",
                f"{e['scipy.ndimage']['median_ms']:.3f}",
                _bench.fmt_ratio(r.get("jaxconv_over_cv2")),
                _bench.fmt_ratio(r.get("jaxconv_over_scipy")),
                "-" if jx is None else f"{jx['rel_error']:.1e}",
                f"{e['cv2']['rel_error']:.1e}",
                "-" if jx is None else f"{jx['page_faults_mib']:.1f}",
                f"{e['cv2']['page_faults_mib']:.1f}",
                met or "jaxconv filters not available",
            ]
        )
    header = [
        "size",
        "filter",
        "jaxconv ms",
        "cv2 ms",
        "ndimage ms",
        "jx/cv2",
        "jx/ndimage",
        "jx err",
        "cv2 err",
        "jx MiB",
        "cv2 MiB",
        "targets",
    ]
    title = (
        "Filters, float32, medians (err: vs scipy.ndimage in float64; MiB: memory page-faulted in "
        "per call)"
    )
    _bench.print_table(title, header, rows)


def main(argv: Sequence[str] | None = None) -> dict:
    args = _bench.parse_args("bench_filters", __doc__, argv)
    rng = np.random.default_rng(args.seed)
    host = _bench.machine()
    print(f"jaxconv {jaxconv.__version__}, jax {jax.__version__}, {jax.devices()[0]}")
    results = [rec for n in args.sizes for rec in run_size(n, args, rng)]
    print_results(results)
    payload = {
        "benchmark": "bench_filters",
        "config": {
            "sizes": args.sizes,
            "repeats": args.repeats,
            "quick": args.quick,
            "seed": args.seed,
            "sigmas": list(SIGMAS),
            "dtype": "float32",
        },
        "versions": _bench.versions(),
        "machine": host,
        "results": results,
    }
    if args.out is not None:
        _bench.write_json(args.out, payload)
    return payload


if __name__ == "__main__":
    main()
