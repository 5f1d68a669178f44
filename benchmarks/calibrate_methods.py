"""Times every convolution method over a grid of shapes and fits the CPU cost-model constants.

The constants in ``jaxconv/_conv/cost.py`` (``CPU_NS``) come from this script: for each method it
times ``jaxconv.convolve(x, k, "same", method=...)`` (float32, square images and kernels, and 1-D
kernels along one axis as the separable filters use them) and the kernel gradient, then fits
each constant as the median of measured time / modelled work. It prints the fitted constants,
how often ``auto`` picked the fastest method, and its worst slowdown against the fastest.

Usage::

    python benchmarks/calibrate_methods.py --out results/calibration.json
    python benchmarks/calibrate_methods.py --quick
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import _bench
import jax
import jax.numpy as jnp
import numpy as np

import jaxconv
from jaxconv import _cost  # the model under calibration(not public API)

SHIFT_MAX = 15  # kernels up to this size are timed with "shift"


KINDS = ("2d", "axis0", "axis1")  # a k x k kernel, or a 1-D kernel along axis 0 or 1


def grid(quick: bool) -> list[tuple[int, int, str]]:
    """(image size, kernel size, kind) triples."""
    sizes = [128, 256] if quick else [256, 512, 1024, 2048]
    ks = [3, 7, 15] if quick else [3, 5, 7, 11, 15, 21, 31, 45, 65]
    return [(n, k, kind) for n in sizes for k in ks for kind in KINDS if k < n]


def methods_for(k: int, kind: str) -> list[str]:
    out = ["fft", "os"]
    if (k * k if kind == "2d" else k) <= SHIFT_MAX * SHIFT_MAX:
        out.append("shift")
    if k <= 7 and kind == "2d":
        out.append("direct")
    return out


def time_case(n: int, k: int, kind: str, args, rng) -> dict:
    x = jnp.asarray(rng.standard_normal((n, n)).astype(np.float32))
    w = jnp.asarray(rng.standard_normal((k, k) if kind == "2d" else (k,)).astype(np.float32))
    g = jnp.asarray(rng.standard_normal((n, n)).astype(np.float32))
    axes = None if kind == "2d" else int(kind[-1])
    auto = jaxconv.choose_method(x, w, "same", axes=axes)
    rec = {"n": n, "k": k, "kind": kind, "auto": auto, "fwd": {}}
    for method in [*methods_for(k, kind), "auto"]:
        f = jax.jit(lambda a, b, m=method: jaxconv.convolve(a, b, "same", method=m, axes=axes))
        rec["fwd"][method] = _bench.time_call(lambda f=f: f(x, w), args.repeats, args.slow_s)
    if kind == "2d":

        def loss(b, a, gg):
            return jnp.sum(jaxconv.convolve(a, b, "same") * gg)

        grad = jax.jit(jax.grad(loss))
        rec["grad_auto"] = _bench.time_call(lambda: grad(w, x, g), args.repeats, args.slow_s)
    return rec


def model_shapes(rec: dict) -> tuple[list[int], list[int], int]:
    """(n, m, batch) of the valid correlation behind a 'same' convolution of this record."""
    k, n = rec["k"], rec["n"]
    if rec["kind"] == "2d":
        return [n + k - 1, n + k - 1], [k, k], 1
    return [n + k - 1], [k], n


def fit(records: Sequence[dict]) -> dict[str, float]:
    """Median of time / work per constant (each method's dominant term)."""
    ratios: dict[str, list[float]] = {"SHIFT_TAP": [], "FFT": [], "OS": []}
    c = _cost.CPU_NS
    for rec in records:
        n, m, batch = model_shapes(rec)
        out = batch * math.prod(a - b + 1 for a, b in zip(n, m, strict=True))
        size = batch * math.prod(n)
        for method, t in rec["fwd"].items():
            ns = t["median_ms"] * 1e6
            if method == "shift":
                rest = ns - c["SHIFT_IN"] * size
                ratios["SHIFT_TAP"].append(max(rest, 0.0) / (out * math.prod(m)))
            elif method == "fft":
                length = math.prod(_cost.next_fast_len(a) for a in n)
                work = batch * length * math.log2(length)
                ratios["FFT"].append((ns - c["FFT_FIXED"]) / work)
            elif method == "os":
                model = _cost.estimate_cost("os", n, m, batch)
                work = model - c["FFT_FIXED"] - c["OS_COPY"] * size
                ratios["OS"].append((ns - c["FFT_FIXED"] - c["OS_COPY"] * size) / work * c["FFT"])
    return {k: statistics.median(v) for k, v in ratios.items() if v}


def auto_quality(records: Sequence[dict]) -> dict:
    hits, worst, rows = 0, 1.0, []
    for rec in records:
        timed = {m: t["median_ms"] for m, t in rec["fwd"].items() if m != "auto"}
        best = min(timed, key=timed.get)
        slow = rec["fwd"]["auto"]["median_ms"] / timed[best]
        hits += rec["auto"] == best
        worst = max(worst, slow)
        rows.append(
            [
                rec["n"],
                f"{rec['k']}x{rec['k']}" if rec["kind"] == "2d" else f"{rec['k']} {rec['kind']}",
                *(f"{timed.get(m, float('nan')):.3f}" for m in ("shift", "fft", "os", "direct")),
                rec["auto"],
                best,
                f"{slow:.2f}",
                "-" if "grad_auto" not in rec else f"{rec['grad_auto']['median_ms']:.3f}",
            ]
        )
    header = ["n", "kernel", "shift", "fft", "os", "direct", "auto", "fastest", "auto/best", "grad"]
    _bench.print_table("Method times (ms, median), 'same' float32", header, rows)
    return {"auto_is_fastest": hits, "cases": len(records), "worst_auto_over_best": worst}


def main(argv: Sequence[str] | None = None) -> dict:
    args = _bench.parse_args("calibrate_methods", __doc__, argv)
    if args.repeats == 15:
        args.repeats = 7
    rng = np.random.default_rng(args.seed)
    host = _bench.machine()
    records = [time_case(n, k, dims, args, rng) for n, k, dims in grid(args.quick)]
    quality = auto_quality(records)
    fitted = fit(records)
    print("\nfitted constants (ns):", {k: round(v, 4) for k, v in fitted.items()})
    print("current constants (ns):", _cost.CPU_NS)
    print("auto quality:", quality)
    payload = {
        "benchmark": "calibrate_methods",
        "config": {"repeats": args.repeats, "quick": args.quick, "seed": args.seed},
        "versions": _bench.versions(),
        "machine": host,
        "records": records,
        "fitted": fitted,
        "current": dict(_cost.CPU_NS),
        "auto_quality": quality,
    }
    if args.out is not None:
        _bench.write_json(args.out, payload, argv)
    return payload


if __name__ == "__main__":
    main()
