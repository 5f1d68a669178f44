"""2-D float32 'same' convolution: jaxconv against scipy, OpenCV and jax.scipy, side by side.

For each image size (512² and 2048² by default) and kernel (3×3, 7×7, 31×31 random normal, and the
seed's 30×30 correlated Gaussian ``multivariate_normal([0, 0], [[1, .5], [.5, 1]]).pdf`` sampled on
``np.mgrid[-3:3:.2, -3:3:.2]``) it times, in one run:

* peers: ``scipy.signal.convolve`` (method "auto"), ``scipy.signal.fftconvolve``,
  ``scipy.signal.oaconvolve``, ``scipy.ndimage.convolve`` (``mode="constant"``, origin set so that
  even kernels are centred as scipy.signal centres them), ``cv2.filter2D`` and
  ``jax.scipy.signal.convolve2d`` / ``fftconvolve``;
* jaxconv: ``convolve(x, k, "same")`` with ``method="auto"`` and with every method forced
  (``shift`` only for kernels up to 100 taps; ``separable`` only where the kernel's numerical rank
  makes it applicable, with the kernel as a compile-time constant);
* the gradient with respect to the kernel, ``jax.grad(lambda k: sum(convolve(x, k) * g))``,
  jitted, and its ratio to the forward time of the same method.

``cv2.filter2D`` computes a *correlation* and extends images with ``BORDER_REFLECT_101`` by
default; for a like-for-like comparison it is given the flipped kernel and ``BORDER_CONSTANT``
(zeros), which makes its output equal scipy's 'same' convolution (the default anchor, the kernel
centre, then matches scipy's centring for odd and even sizes). Every output is checked against a
float64 ``scipy.signal.fftconvolve`` reference and the error is recorded.

All JAX functions are jitted, warmed up and timed with ``block_until_ready``; times are medians,
and the entries of one table are timed interleaved (see ``_bench.py``).
The library sets no XLA flags; run it as a user would (``XLA_FLAGS`` is recorded if set).

Usage::

    python benchmarks/bench_convolve.py                      # full table, 512² and 2048²
    python benchmarks/bench_convolve.py --quick              # 128², 3 repeats, seconds
    python benchmarks/bench_convolve.py --sizes 512 --repeats 31 --out results/conv.json
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import _bench
import cv2
import jax
import jax.numpy as jnp
import jax.scipy.signal as jss
import numpy as np
import scipy.ndimage as ndi
import scipy.signal as ss
import scipy.stats

import jaxconv

METHODS = ("direct", "shift", "separable", "fft", "oa")
SHIFT_MAX_TAPS = 100


def seed_gaussian() -> np.ndarray:
    """The seed's 30×30 kernel: a correlated Gaussian pdf sampled with step 0.2 on [-3, 3)²."""
    grid = np.dstack(np.mgrid[-3:3:0.2, -3:3:0.2])
    return scipy.stats.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]]).pdf(grid)


def kernels(rng: np.random.Generator, quick: bool) -> dict[str, np.ndarray]:
    out = {
        "3x3": rng.standard_normal((3, 3)),
        "7x7": rng.standard_normal((7, 7)),
        "31x31": rng.standard_normal((31, 31)),
        "gauss30x30": seed_gaussian(),
    }
    if quick:
        out.pop("31x31")
    return {name: k.astype(np.float32) for name, k in out.items()}


def _ndimage_origin(k: np.ndarray) -> tuple[int, ...]:
    # scipy.signal's 'same' starts at index (m - 1) // 2 of the full output; ndimage centres the
    # kernel at m // 2, so even sizes need origin -1 there.
    return tuple(-1 if m % 2 == 0 else 0 for m in k.shape)


def peers(x: np.ndarray, k: np.ndarray) -> dict[str, Any]:
    """Name -> zero-argument callable for every non-jaxconv implementation."""
    kf = np.ascontiguousarray(k[::-1, ::-1])
    origin = _ndimage_origin(k)
    xj, kj = jnp.asarray(x), jnp.asarray(k)
    jsc_direct = jax.jit(lambda a, b: jss.convolve2d(a, b, mode="same"))
    jsc_fft = jax.jit(lambda a, b: jss.fftconvolve(a, b, mode="same"))
    return {
        "scipy.signal.convolve": lambda: ss.convolve(x, k, mode="same"),
        "scipy.signal.fftconvolve": lambda: ss.fftconvolve(x, k, mode="same"),
        "scipy.signal.oaconvolve": lambda: ss.oaconvolve(x, k, mode="same"),
        "scipy.ndimage.convolve": lambda: ndi.convolve(x, k, mode="constant", origin=origin),
        "cv2.filter2D": lambda: cv2.filter2D(x, -1, kf, borderType=cv2.BORDER_CONSTANT),
        "jax.scipy.signal.convolve2d": lambda: jsc_direct(xj, kj),
        "jax.scipy.signal.fftconvolve": lambda: jsc_fft(xj, kj),
    }


def jaxconv_entries(x: np.ndarray, k: np.ndarray, quick: bool) -> dict[str, Any]:
    """Name -> (forward callable, gradient callable or None) for jaxconv's methods."""
    xj, kj = jnp.asarray(x), jnp.asarray(k)
    g = jnp.asarray(np.random.default_rng(1).standard_normal(x.shape).astype(np.float32))
    out: dict[str, Any] = {}
    for method in ("auto", *METHODS):
        if method == "shift" and k.size > SHIFT_MAX_TAPS:
            continue
        if method == "separable":
            # Needs a concrete kernel: close over it (a compile-time constant).
            fwd = jax.jit(lambda a, m=method: jaxconv.convolve(a, k, "same", method=m))
            try:
                jax.eval_shape(fwd, xj)
            except NotImplementedError:
                continue
            out[f"jaxconv {method} (const k)"] = (lambda f=fwd: f(xj), None)
            continue
        fwd = jax.jit(lambda a, b, m=method: jaxconv.convolve(a, b, "same", method=m))

        def loss(b, a, gg, m=method):
            return jnp.sum(jaxconv.convolve(a, b, "same", method=m) * gg)

        grad = jax.jit(jax.grad(loss))
        out[f"jaxconv {method}"] = (
            lambda f=fwd: f(xj, kj),
            None if (quick and method != "auto") else (lambda f=grad: f(kj, xj, g)),
        )
    const = jax.jit(lambda a: jaxconv.convolve(a, k, "same"))
    out["jaxconv auto (const k)"] = (lambda: const(xj), None)
    return out


def run_case(n: int, name: str, k: np.ndarray, args: Any, rng: np.random.Generator) -> dict:
    x = rng.standard_normal((n, n)).astype(np.float32)
    ref = ss.fftconvolve(x.astype(np.float64), k.astype(np.float64), mode="same")
    impls = {name_: (fn, None) for name_, fn in peers(x, k).items()}
    impls.update(jaxconv_entries(x, k, args.quick))
    fns = {impl: fwd for impl, (fwd, _) in impls.items()}
    fns.update({f"{impl} grad": grad for impl, (_, grad) in impls.items() if grad is not None})
    timed = _bench.time_interleaved(fns, args.repeats, args.slow_s)
    entries: dict[str, dict] = {}
    for impl, (fwd, grad) in impls.items():
        rec = timed[impl]
        rec["rel_error"] = _bench.rel_error(fwd(), ref)
        if grad is not None:
            rec["grad"] = timed[f"{impl} grad"]
            rec["grad_over_forward"] = rec["grad"]["median_ms"] / rec["median_ms"]
        entries[impl] = rec
    auto = jaxconv.choose_method(x, k, "same")
    case = {"size": n, "kernel": name, "kernel_shape": list(k.shape), "auto_method": auto}
    case["entries"] = entries
    case["summary"] = summarize(entries)
    return case


def summarize(entries: dict[str, dict]) -> dict[str, Any]:
    med = {k: v["median_ms"] for k, v in entries.items()}
    cv = med["cv2.filter2D"]
    scipy_best = min(v for k, v in med.items() if k.startswith("scipy."))
    best_peer = min(cv, scipy_best)
    auto = med["jaxconv auto"]
    grad = entries["jaxconv auto"].get("grad", {}).get("median_ms")
    return {
        "auto_ms": auto,
        "cv2_ms": cv,
        "best_scipy_ms": scipy_best,
        "auto_over_cv2": auto / cv,
        "auto_over_best_scipy_cv2": auto / best_peer,
        "jsc_convolve2d_over_auto": med["jax.scipy.signal.convolve2d"] / auto,
        "jsc_fftconvolve_over_auto": med["jax.scipy.signal.fftconvolve"] / auto,
        "grad_ms": grad,
        "grad_over_forward": None if grad is None else grad / auto,
    }


def targets(case: dict) -> dict[str, bool | None]:
    """The issue's targets for the 2-core CPU, evaluated on this case."""
    s, name, n = case["summary"], case["kernel"], case["size"]
    out: dict[str, bool | None] = {}
    if name in ("3x3", "7x7"):
        out["auto <= 1.5x cv2"] = s["auto_over_cv2"] <= 1.5
        out["auto >= 10x faster than jax.scipy convolve2d"] = s["jsc_convolve2d_over_auto"] >= 10
    else:
        limit = 1.0 if n >= 2048 else 0.8
        out[f"auto <= {limit}x best(scipy, cv2)"] = s["auto_over_best_scipy_cv2"] <= limit
    if s["grad_over_forward"] is not None:
        out["grad <= 2.5x forward"] = s["grad_over_forward"] <= 2.5
    return out


def print_case(case: dict) -> None:
    cv = case["entries"]["cv2.filter2D"]["median_ms"]
    best = min(cv, case["summary"]["best_scipy_ms"])
    rows = []
    for impl, rec in case["entries"].items():
        grad = rec.get("grad")
        rows.append(
            [
                impl,
                f"{rec['median_ms']:.3f}",
                _bench.fmt_ratio(rec["median_ms"] / cv),
                _bench.fmt_ratio(rec["median_ms"] / best),
                "-" if grad is None else f"{grad['median_ms']:.3f}",
                _bench.fmt_ratio(rec.get("grad_over_forward")),
                f"{rec['rel_error']:.1e}",
                f"{rec['page_faults_mib']:.1f}",
            ]
        )
    title = (
        f"{case['size']}² float32, kernel {case['kernel']} (auto -> {case['auto_method']}); "
        "ratios are time / time of the peer"
    )
    header = ["implementation", "median ms", "/cv2", "/best", "grad ms", "grad/fwd", "rel err",
              "faulted MiB"]  # fmt: skip
    _bench.print_table(title, header, rows)


def print_summary(cases: Sequence[dict]) -> None:
    rows = []
    for c in cases:
        s = c["summary"]
        met = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in c["targets"].items())
        rows.append(
            [
                f"{c['size']}²",
                c["kernel"],
                c["auto_method"],
                f"{s['auto_ms']:.3f}",
                f"{s['cv2_ms']:.3f}",
                f"{s['best_scipy_ms']:.3f}",
                _bench.fmt_ratio(s["auto_over_cv2"]),
                _bench.fmt_ratio(s["auto_over_best_scipy_cv2"]),
                _bench.fmt_ratio(s["jsc_convolve2d_over_auto"]),
                _bench.fmt_ratio(s["grad_over_forward"]),
                met,
            ]
        )
    header = [
        "size",
        "kernel",
        "auto",
        "auto ms",
        "cv2 ms",
        "scipy ms",
        "auto/cv2",
        "auto/best",
        "jsc.c2d/auto",
        "grad/fwd",
        "targets",
    ]
    _bench.print_table("Summary (jaxconv auto; best = fastest of scipy and cv2)", header, rows)


def main(argv: Sequence[str] | None = None) -> dict:
    args = _bench.parse_args("bench_convolve", __doc__, argv)
    rng = np.random.default_rng(args.seed)
    ks = kernels(rng, args.quick)
    host = _bench.machine()
    print(f"jaxconv {jaxconv.__version__}, jax {jax.__version__}, {jax.devices()[0]}")
    cases = []
    for n in args.sizes:
        for name, k in ks.items():
            if min(k.shape) > n:
                continue
            case = run_case(n, name, k, args, rng)
            case["targets"] = targets(case)
            print_case(case)
            cases.append(case)
    print_summary(cases)
    payload = {
        "benchmark": "bench_convolve",
        "config": {
            "sizes": args.sizes,
            "repeats": args.repeats,
            "quick": args.quick,
            "seed": args.seed,
            "slow_s": args.slow_s,
            "dtype": "float32",
            "mode": "same",
        },
        "versions": _bench.versions(),
        "machine": host,
        "cases": cases,
    }
    if args.out is not None:
        _bench.write_json(args.out, payload)
    return payload


if __name__ == "__main__":
    main()
