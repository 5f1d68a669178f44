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

OpenCV is an optional peer: without it its entries are left out and the JSON says why
(``missing_peers``). Besides the warm median, each entry's first call (a freshly jitted jaxconv
function: compile included), one call on a new image of the same shape, and (Gaussians) the first
call with a new σ (1.25 σ; for jaxconv a new jitted function, so it compiles again) are timed.

The issue's targets: at most 1.5x OpenCV's time and at most 0.3x scipy.ndimage's.

Usage::

    python benchmarks/bench_filters.py
    python benchmarks/bench_filters.py --quick --out /tmp/filters.json
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import _bench
import jax
import numpy as np
import scipy.ndimage as ndi

import jaxconv

SIGMAS = (1.0, 3.0, 8.0)
NEW_SIGMA = 1.25  # the "new σ" call uses this multiple of σ

Bind = Callable[[np.ndarray], Callable[[], Any]]  # image -> the zero-argument call on it


def _jitted(fn: Callable[[Any], Any]) -> Bind:
    f = jax.jit(fn)
    return lambda x: partial(f, _bench.to_device(x))


def gaussian(sigma: float, cv2: Any) -> dict[str, Bind]:
    """Implementation -> bind, for a Gaussian blur of σ (cv2: the module, or None)."""
    size = 2 * int(4.0 * sigma + 0.5) + 1
    out = {
        "jaxconv": _jitted(lambda a: jaxconv.gaussian_filter(a, sigma)),
        "scipy.ndimage": lambda x: partial(ndi.gaussian_filter, x, sigma, mode="reflect"),
    }
    if cv2 is not None:
        out["cv2"] = lambda x: partial(
            cv2.GaussianBlur, x, (size, size), sigma, borderType=cv2.BORDER_REFLECT
        )
    return out


def sobel(cv2: Any) -> dict[str, Bind]:
    """Implementation -> bind, for the Sobel derivative along the last axis."""
    out = {
        "jaxconv": _jitted(lambda a: jaxconv.sobel(a, axis=-1)),
        "scipy.ndimage": lambda x: partial(ndi.sobel, x, axis=-1, mode="reflect"),
    }
    if cv2 is not None:
        out["cv2"] = lambda x: partial(
            cv2.Sobel, x, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT
        )
    return out


def run_size(n: int, args: Any, rng: np.random.Generator, cv2: Any) -> list[dict]:
    x, x_new = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    x64 = x.astype(np.float64)
    problems = {
        f"gaussian σ={s:g}": (
            gaussian(s, cv2),
            gaussian(NEW_SIGMA * s, cv2),
            ndi.gaussian_filter(x64, s, mode="reflect", truncate=4.0),
        )
        for s in SIGMAS
    }
    problems["sobel"] = (sobel(cv2), {}, ndi.sobel(x64, axis=-1, mode="reflect"))
    results = []
    for name, (binds, new_sigma, ref) in problems.items():
        fns = {impl: bind(x) for impl, bind in binds.items()}
        once = {impl: {"new_values": bind(x_new)} for impl, bind in binds.items()}
        for impl, bind in new_sigma.items():
            once[impl]["new_sigma"] = bind(x)
        rec: dict[str, Any] = {"size": n, "filter": name}
        rec["entries"] = _bench.time_interleaved(fns, args.repeats, args.slow_s, once=once)
        for impl, fn in fns.items():
            rec["entries"][impl]["rel_error"] = _bench.rel_error(fn(), ref)
        med = {k: v["median_ms"] for k, v in rec["entries"].items()}
        rec["jaxconv_over_cv2"] = med["jaxconv"] / med["cv2"] if "cv2" in med else None
        rec["jaxconv_over_scipy"] = med["jaxconv"] / med["scipy.ndimage"]
        ratio = rec["jaxconv_over_cv2"]
        rec["targets"] = {
            "<= 1.5x cv2": None if ratio is None else ratio <= 1.5,
            "<= 0.3x scipy.ndimage": rec["jaxconv_over_scipy"] <= 0.3,
        }
        results.append(rec)
    return results


def print_results(results: Sequence[dict]) -> None:
    def cell(rec: dict | None, key: str, fmt: str, scale: float = 1.0) -> str:
        return "-" if rec is None else format(scale * rec[key], fmt)

    rows = []
    for r in results:
        e = r["entries"]
        jx, cv, sp = e["jaxconv"], e.get("cv2"), e["scipy.ndimage"]
        rows.append(
            [f"{r['size']}²", r["filter"], cell(jx, "median_ms", ".3f"),
             cell(cv, "median_ms", ".3f"), cell(sp, "median_ms", ".3f"),
             _bench.fmt_ratio(r["jaxconv_over_cv2"]), _bench.fmt_ratio(r["jaxconv_over_scipy"]),
             cell(jx, "first_call_s", ".3f"), cell(jx, "new_values_s", ".3f", 1e3),
             "-" if "new_sigma_s" not in jx else f"{jx['new_sigma_s']:.3f}",
             cell(jx, "rel_error", ".1e"), cell(cv, "rel_error", ".1e"),
             cell(jx, "page_faults_mib", ".1f"), cell(cv, "page_faults_mib", ".1f"),
             _bench.fmt_targets(r["targets"])]
        )  # fmt: skip
    header = ["size", "filter", "jaxconv ms", "cv2 ms", "ndimage ms", "jx/cv2", "jx/ndimage",
              "jx first s", "jx new x ms", "jx new σ s", "jx err", "cv2 err", "jx MiB",
              "cv2 MiB", "targets"]  # fmt: skip
    title = (
        "Filters, float32, medians (err: vs scipy.ndimage in float64; MiB: memory page-faulted in "
        "per call)"
    )
    _bench.print_table(title, header, rows)


def main(argv: Sequence[str] | None = None) -> dict:
    args = _bench.parse_args("bench_filters", __doc__, argv)
    rng = np.random.default_rng(args.seed)
    host = _bench.machine()
    found, missing = _bench.optional_peers()
    print(f"jaxconv {jaxconv.__version__}, jax {jax.__version__}, {jax.devices()[0]}")
    results: list[dict] = []
    payload = {
        "benchmark": "bench_filters",
        "config": {
            "sizes": args.sizes,
            "repeats": args.repeats,
            "quick": args.quick,
            "seed": args.seed,
            "sigmas": list(SIGMAS),
            "new_sigma_factor": NEW_SIGMA,
            "dtype": "float32",
        },
        "versions": _bench.versions(),
        "machine": host,
        "missing_peers": missing,
        "results": results,
    }
    for n in args.sizes:
        results += run_size(n, args, rng, found.get("cv2"))
        if args.out is not None:
            _bench.write_json(args.out, payload, argv, complete=False)
    print_results(results)
    if args.out is not None:
        _bench.write_json(args.out, payload, argv)
    return payload


if __name__ == "__main__":
    main()
