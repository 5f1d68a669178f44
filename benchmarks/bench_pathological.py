"""Pathological sizes (issue 17): kernels far larger than the image, against scipy.

Three cases that took jaxconv 100-700x scipy's time (or did not finish) before kernels that reach
past the input were folded and ``mode="full"`` learned to swap its operands:

* ``uniform_filter(x, size=10**6)`` on a 64² image (every mode folds the box exactly);
* ``convolve(a, b)`` of a 100² image with a 3000² kernel (``full``: the 3000² input plays the
  signal);
* ``gaussian_filter(x, sigma=1e6)`` on a 16² image (scipy builds a kernel of radius 4·10⁶).

Each prints the first call (compile included), the warm median, scipy's median, their ratio and
the largest error relative to scipy's largest output. ``--quick`` shrinks every case ~10x.

Usage::

    python benchmarks/bench_pathological.py --out /tmp/pathological.json
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import _bench
import jax
import numpy as np
import scipy.ndimage as ndi
import scipy.signal as ss

import jaxconv


def _time(fn, repeats: int) -> tuple[float, list[float], np.ndarray]:
    t = time.perf_counter()
    out = np.asarray(jax.block_until_ready(fn()))
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return first, times, out


def cases(quick: bool, rng: np.random.Generator) -> list[tuple[str, object, object]]:
    s = 10 if quick else 1
    x = rng.standard_normal((64 // s, 64 // s)).astype(np.float32)
    a = rng.standard_normal((100 // s, 100 // s)).astype(np.float32)
    b = rng.standard_normal((3000 // s, 3000 // s)).astype(np.float32)
    g = rng.standard_normal((16, 16)).astype(np.float32)
    size, sigma = 10**6 // s, 1e6 / s
    return [
        (f"uniform_filter {x.shape} size={size}", lambda: jaxconv.uniform_filter(x, size=size),
         lambda: ndi.uniform_filter(x, size=size)),
        (f"convolve {a.shape} with {b.shape}", lambda: jaxconv.convolve(a, b),
         lambda: ss.convolve(a, b)),
        (f"gaussian_filter {g.shape} sigma={sigma:g}", lambda: jaxconv.gaussian_filter(g, sigma),
         lambda: ndi.gaussian_filter(g, sigma)),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict:
    args = _bench.parse_args("bench_pathological", __doc__, argv)
    repeats = 1 if args.quick else 3
    payload = {"benchmark": "bench_pathological", "machine": _bench.machine(), "cases": []}
    payload["versions"] = _bench.versions()
    for name, ours, scipy_fn in cases(args.quick, np.random.default_rng(args.seed)):
        first, times, out = _time(ours, repeats)
        _, ref_times, ref = _time(scipy_fn, repeats)
        entry = {
            "case": name,
            "jaxconv_first_s": first,
            "jaxconv_median_s": statistics.median(times),
            "scipy_median_s": statistics.median(ref_times),
            "max_rel_error": float(np.max(np.abs(out - ref)) / np.max(np.abs(ref))),
        }
        entry["ratio_vs_scipy"] = entry["jaxconv_median_s"] / entry["scipy_median_s"]
        payload["cases"].append(entry)
        print(
            f"{name:48s} first {first:8.3f} s  warm {entry['jaxconv_median_s']:8.3f} s  "
            f"scipy {entry['scipy_median_s']:8.3f} s  ratio {entry['ratio_vs_scipy']:6.2f}  "
            f"err {entry['max_rel_error']:.1e}"
        )
        if args.out is not None:
            _bench.write_json(Path(args.out), payload, argv, complete=False)
    if args.out is not None:
        _bench.write_json(Path(args.out), payload, argv)
    return payload


if __name__ == "__main__":
    main()
