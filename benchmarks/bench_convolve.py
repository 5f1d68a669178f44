"""2-D float32 'same' convolution: jaxconv against scipy, OpenCV and jax.scipy, side by side.

For each image size (512² and 2048² by default) and kernel (3×3, 7×7, 31×31 random normal, and the
seed's 30×30 correlated Gaussian ``multivariate_normal([0, 0], [[1, .5], [.5, 1]]).pdf`` sampled on
``np.mgrid[-3:3:.2, -3:3:.2]``) it times, in one run:

* peers: ``scipy.signal.convolve`` (method "auto"), ``scipy.signal.fftconvolve``,
  ``scipy.signal.oaconvolve``, ``scipy.ndimage.convolve`` (``mode="constant"``, origin set so that
  even kernels are centred as scipy.signal centres them), ``cv2.filter2D`` (if OpenCV is
  installed: an optional peer, recorded under ``missing_peers`` when it is not),
  ``jax.scipy.signal.convolve2d`` / ``fftconvolve`` and ``jax.lax.conv_general_dilated`` (XLA's
  convolution, cuDNN on a GPU; ``precision=HIGHEST`` as jaxconv's default, the kernel flipped);
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

All JAX functions are jitted; each entry's first call (compile included) and one call on a new
image of the same shape are timed on their own, then warm calls are timed with
``block_until_ready``; times are medians, and the entries of one table are timed interleaved (see
``_bench.py``). Headline ratios compare with each peer library's *fastest* entry for the case
(``summary["best"]``), not with a chosen one.
The library sets no XLA flags; run it as a user would (``XLA_FLAGS`` is recorded if set).

Usage::

    python benchmarks/bench_convolve.py                      # full table, 512² and 2048²
    python benchmarks/bench_convolve.py --quick              # 128², 3 repeats, seconds
    python benchmarks/bench_convolve.py --sizes 512 --repeats 31 --out /tmp/conv.json
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import _bench
import jax
import jax.numpy as jnp
import jax.scipy.signal as jss
import numpy as np
import scipy.ndimage as ndi
import scipy.signal as ss
import scipy.stats
from jax import lax

import jaxconv

METHODS = ("direct", "shift", "separable", "fft", "os")
SHIFT_MAX_TAPS = 100
# Peer libraries, by the prefix of their entries' names: headline ratios use each one's fastest.
LIBRARIES = {"scipy": "scipy.", "OpenCV": "cv2.", "jax.scipy": "jax.scipy.", "lax": "lax."}

Bind = Callable[[np.ndarray], Callable[[], Any]]  # image -> the zero-argument call on it


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


def _on_device(fn: Callable[..., Any], *consts: Any) -> Bind:
    return lambda x: partial(fn, _bench.to_device(x), *consts)


def lax_same(x: jax.Array, k_flipped: jax.Array) -> jax.Array:
    """scipy's 'same' convolution as XLA's convolution (a correlation) with the flipped kernel."""
    pad = [(m // 2, (m - 1) // 2) for m in k_flipped.shape]
    out = lax.conv_general_dilated(
        x[None, None], k_flipped[None, None], (1, 1), pad, precision=lax.Precision.HIGHEST
    )
    return out[0, 0]


def peers(k: np.ndarray, cv2: Any) -> dict[str, Bind]:
    """Name -> bind for every non-jaxconv implementation (cv2: the module, or None)."""
    kf = np.ascontiguousarray(k[::-1, ::-1])
    origin = _ndimage_origin(k)
    kj, kfj = _bench.to_device(k), _bench.to_device(kf)
    out: dict[str, Bind] = {
        "scipy.signal.convolve": lambda x: partial(ss.convolve, x, k, mode="same"),
        "scipy.signal.fftconvolve": lambda x: partial(ss.fftconvolve, x, k, mode="same"),
        "scipy.signal.oaconvolve": lambda x: partial(ss.oaconvolve, x, k, mode="same"),
        "scipy.ndimage.convolve": lambda x: partial(
            ndi.convolve, x, k, mode="constant", origin=origin
        ),
    }
    if cv2 is not None:
        out["cv2.filter2D"] = lambda x: partial(
            cv2.filter2D, x, -1, kf, borderType=cv2.BORDER_CONSTANT
        )
    out["jax.scipy.signal.convolve2d"] = _on_device(
        jax.jit(partial(jss.convolve2d, mode="same")), kj
    )
    out["jax.scipy.signal.fftconvolve"] = _on_device(
        jax.jit(partial(jss.fftconvolve, mode="same")), kj
    )
    out["lax.conv_general_dilated"] = _on_device(jax.jit(lax_same), kfj)
    return out


def jaxconv_entries(k: np.ndarray, shape: tuple[int, ...], quick: bool) -> dict[str, Any]:
    """Name -> (forward bind, gradient bind or None) for jaxconv's methods."""
    kj = _bench.to_device(k)
    g = _bench.to_device(np.random.default_rng(1).standard_normal(shape).astype(np.float32))
    image = jax.ShapeDtypeStruct(shape, jnp.float32)
    out: dict[str, Any] = {}
    for method in ("auto", *METHODS):
        if method == "shift" and k.size > SHIFT_MAX_TAPS:
            continue
        if method == "separable":
            # Needs a concrete kernel: close over it (a compile-time constant).
            fwd = jax.jit(lambda a, m=method: jaxconv.convolve(a, k, "same", method=m))
            try:
                jax.eval_shape(fwd, image)
            except NotImplementedError:
                continue
            out[f"jaxconv {method} (const k)"] = (_on_device(fwd), None)
            continue
        fwd = jax.jit(lambda a, b, m=method: jaxconv.convolve(a, b, "same", method=m))

        def loss(b, a, gg, m=method):
            return jnp.sum(jaxconv.convolve(a, b, "same", method=m) * gg)

        grad = jax.jit(jax.grad(loss))
        with_grad = not quick or method == "auto"
        out[f"jaxconv {method}"] = (
            _on_device(fwd, kj),
            (lambda x, f=grad: partial(f, kj, _bench.to_device(x), g)) if with_grad else None,
        )
    const = jax.jit(lambda a: jaxconv.convolve(a, k, "same"))
    out["jaxconv auto (const k)"] = (_on_device(const), None)
    return out


def run_case(
    n: int, name: str, k: np.ndarray, args: Any, rng: np.random.Generator, cv2: Any
) -> dict:
    x, x_new = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    ref = ss.fftconvolve(x.astype(np.float64), k.astype(np.float64), mode="same")
    impls = {impl: (bind, None) for impl, bind in peers(k, cv2).items()}
    impls.update(jaxconv_entries(k, x.shape, args.quick))
    binds = {impl: fwd for impl, (fwd, _) in impls.items()}
    binds.update({f"{impl} grad": grad for impl, (_, grad) in impls.items() if grad is not None})
    fns = {impl: bind(x) for impl, bind in binds.items()}
    once = {impl: {"new_values": bind(x_new)} for impl, bind in binds.items()}
    timed = _bench.time_interleaved(fns, args.repeats, args.slow_s, once=once)
    entries: dict[str, dict] = {}
    for impl, (_, grad) in impls.items():
        rec = timed[impl]
        rec["rel_error"] = _bench.rel_error(fns[impl](), ref)
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
    """jaxconv auto against each peer library's fastest entry (and the targets' figures)."""
    med = {k: v["median_ms"] for k, v in entries.items()}
    best = {}
    for lib, prefix in LIBRARIES.items():
        names = [k for k in med if k.startswith(prefix)]
        if names:
            fastest = min(names, key=med.__getitem__)
            best[lib] = {"entry": fastest, "median_ms": med[fastest]}
    auto = entries["jaxconv auto"]
    grad = auto.get("grad", {}).get("median_ms")
    scipy_cv2 = min(best[lib]["median_ms"] for lib in ("scipy", "OpenCV") if lib in best)
    return {
        "auto_ms": auto["median_ms"],
        "auto_first_call_s": auto["first_call_s"],
        "auto_new_values_s": auto["new_values_s"],
        "best": best,
        # time of jaxconv auto / time of the library's fastest entry (< 1: jaxconv is faster)
        "auto_over_best": {lib: auto["median_ms"] / b["median_ms"] for lib, b in best.items()},
        "auto_over_best_scipy_cv2": auto["median_ms"] / scipy_cv2,
        "jsc_convolve2d_over_auto": med["jax.scipy.signal.convolve2d"] / auto["median_ms"],
        "grad_ms": grad,
        "grad_over_forward": None if grad is None else grad / auto["median_ms"],
    }


def targets(case: dict) -> dict[str, bool | None]:
    """The issue's targets for the 2-core CPU, evaluated on this case (None: peer missing)."""
    s, name, n = case["summary"], case["kernel"], case["size"]
    out: dict[str, bool | None] = {}
    if name in ("3x3", "7x7"):
        cv2 = s["auto_over_best"].get("OpenCV")
        out["auto <= 1.5x cv2"] = None if cv2 is None else cv2 <= 1.5
        out["auto >= 10x faster than jax.scipy convolve2d"] = s["jsc_convolve2d_over_auto"] >= 10
    else:
        limit = 1.0 if n >= 2048 else 0.8
        out[f"auto <= {limit}x best(scipy, cv2)"] = s["auto_over_best_scipy_cv2"] <= limit
    if s["grad_over_forward"] is not None:
        out["grad <= 2.5x forward"] = s["grad_over_forward"] <= 2.5
    return out


def print_case(case: dict) -> None:
    best = min(b["median_ms"] for b in case["summary"]["best"].values())
    rows = []
    for impl, rec in case["entries"].items():
        grad = rec.get("grad")
        rows.append(
            [
                impl,
                f"{rec['median_ms']:.3f}",
                _bench.fmt_ratio(rec["median_ms"] / best),
                f"{rec['first_call_s']:.3f}",
                f"{1e3 * rec['new_values_s']:.3f}",
                "-" if grad is None else f"{grad['median_ms']:.3f}",
                _bench.fmt_ratio(rec.get("grad_over_forward")),
                f"{rec['rel_error']:.1e}",
                f"{rec['page_faults_mib']:.1f}",
            ]
        )
    title = (
        f"{case['size']}² float32, kernel {case['kernel']} (auto -> {case['auto_method']}); "
        "/best: time / the fastest peer's"
    )
    header = ["implementation", "median ms", "/best", "first call s", "new x ms", "grad ms",
              "grad/fwd", "rel err", "faulted MiB"]  # fmt: skip
    _bench.print_table(title, header, rows)


def print_summary(cases: Sequence[dict]) -> None:
    libs = list(LIBRARIES)
    rows = []
    for c in cases:
        s = c["summary"]
        ratios = [_bench.fmt_ratio(s["auto_over_best"].get(lib)) for lib in libs]
        rows.append(
            [f"{c['size']}²", c["kernel"], c["auto_method"], f"{s['auto_ms']:.3f}",
             f"{s['auto_first_call_s']:.2f}", *ratios, _bench.fmt_ratio(s["grad_over_forward"]),
             _bench.fmt_targets(c["targets"])]
        )  # fmt: skip
    header = ["size", "kernel", "auto", "auto ms", "first s", *[f"/{lib}" for lib in libs],
              "grad/fwd", "targets"]  # fmt: skip
    title = "Summary: jaxconv auto's time / each peer library's fastest entry (< 1: jaxconv faster)"
    _bench.print_table(title, header, rows)


def main(argv: Sequence[str] | None = None) -> dict:
    args = _bench.parse_args("bench_convolve", __doc__, argv)
    rng = np.random.default_rng(args.seed)
    ks = kernels(rng, args.quick)
    host = _bench.machine()
    found, missing = _bench.optional_peers()
    print(f"jaxconv {jaxconv.__version__}, jax {jax.__version__}, {jax.devices()[0]}")
    cases: list[dict] = []
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
        "missing_peers": missing,
        "cases": cases,
    }
    for n in args.sizes:
        for name, k in ks.items():
            if min(k.shape) > n:
                continue
            case = run_case(n, name, k, args, rng, found.get("cv2"))
            case["targets"] = targets(case)
            print_case(case)
            cases.append(case)
            if args.out is not None:
                _bench.write_json(args.out, payload, argv, complete=False)
    print_summary(cases)
    if args.out is not None:
        _bench.write_json(args.out, payload, argv)
    return payload


if __name__ == "__main__":
    main()
