"""The methods that compute a *valid* cross-correlation, and the cost model that picks one.

Every public convolution reduces to one primitive: extend the input at its boundaries, then take the
valid cross-correlation ``out[i] = sum_j x[i + j] w[j]`` over the last ``d`` axes, where leading
(batch) axes of ``x`` and ``w`` broadcast against each other. Each method below computes exactly
that primitive, so each can be forced, tested against scipy, and differentiated on its own.

The primitive is a JAX primitive (``jaxconv_valid_correlate``), bilinear like ``lax.conv``: its
JVP is itself, and its transposes are again valid correlations, each computed by the method the
cost model picks for *its* shape. That matters for the gradient with respect to the kernel,
``dw = valid_correlate(x, dy)``: its "kernel" ``dy`` is as large as the image, so the shifted
sums that make ``shift`` fast forward would become millions of reductions under autodiff; here it
runs as an XLA convolution or an FFT instead. The gradient with respect to the input is a valid
correlation of the padded cotangent with the flipped kernel, by the forward method.

A kernel that reaches far past its input (a box of 10⁶ taps over 64 samples) is first folded,
exactly, to at most ``out + 2 n + 1`` taps (:func:`fold_plan`), so the cost model, the memory check
(``jaxconv/_conv/memory.py``) and the program all see the small problem.
"""

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxconv._conv import cost as _cost
from jaxconv._conv.cost import (
    auto_method,
    choose_1d,
    estimate_cost,
    kernel_grad_method,
    next_fast_len,
)

__all__ = [
    "METHODS",
    "auto_method",
    "check_method",
    "choose_1d",
    "estimate_cost",
    "fold_kernel",
    "fold_plan",
    "next_fast_len",
    "promote",
    "separable_terms",
    "valid_correlate",
]

METHODS = ("auto", "direct", "shift", "separable", "fft", "os")
# Old names still accepted, with a DeprecationWarning: "oa" ran overlap-*save* blocks (scipy's
# oaconvolve is overlap-add), so it is "os" since 0.1.
RENAMED = {"oa": "os"}
_UNROLL_TAPS = 256  # shift unrolls kernels up to this many taps into one fused loop


def check_method(fn: str, method: Any) -> str:
    """`method` checked against :data:`METHODS`; a renamed one warns and gives its new name."""
    if isinstance(method, str) and method in RENAMED:
        new = RENAMED[method]
        warnings.warn(
            f"{fn}: method={method!r} is deprecated and will be removed: it is overlap-save "
            f"(scipy's oaconvolve is overlap-add), now method={new!r}.",
            DeprecationWarning,
            stacklevel=4,
        )
        return new
    if method not in METHODS:
        raise ValueError(f"{fn}: `method` must be one of {METHODS}; got {method!r}.")
    return method


def promote(*args) -> np.dtype:
    """``jnp.result_type`` under JAX's standard rules, whatever ``jax_numpy_dtype_promotion`` is.

    jaxconv then casts every operand to this dtype explicitly, so it also runs when a user has
    chosen ``jax.numpy_dtype_promotion("strict")`` (a real image with a complex kernel is a valid
    input, as in scipy, not an accidental promotion).
    """
    with jax.numpy_dtype_promotion("standard"):
        return jnp.result_type(*args)


# --- the methods (x and w share a dtype and a rank; `axes` are the correlated axes) ------------
def _last(fn):
    """Runs a method written for trailing spatial axes on operands with spatial `axes` anywhere."""

    def wrapped(x, w, axes, *args):
        d = len(axes)
        last = tuple(range(x.ndim - d, x.ndim))
        if axes == last:
            return fn(x, w, d, *args)
        x, w = jnp.moveaxis(x, axes, last), jnp.moveaxis(w, axes, last)
        return jnp.moveaxis(fn(x, w, d, *args), last, axes)

    return wrapped


def _split_complex(fn, x: jax.Array, w: jax.Array) -> jax.Array:
    """Applies a real bilinear `fn(x, w)` to complex operands with real arithmetic."""
    if not jnp.iscomplexobj(x):
        return fn(x, w)
    real = fn(x.real, w.real) - fn(x.imag, w.imag)
    imag = fn(x.real, w.imag) + fn(x.imag, w.real)
    return lax.complex(real, imag)


def _direct_real(x: jax.Array, w: jax.Array, d: int, precision) -> jax.Array:
    spatial_x, spatial_w = x.shape[x.ndim - d :], w.shape[w.ndim - d :]
    batch = jnp.broadcast_shapes(x.shape[: x.ndim - d], w.shape[: w.ndim - d])
    spatial = tuple(range(1, d + 1))
    if all(s == 1 for s in w.shape[: w.ndim - d]):
        # One kernel for the whole stack: the stack is XLA's batch dimension, channels-last
        # (on XLA:CPU 1.5-4x faster than channels-first for the kernel-gradient shapes).
        lhs = x.reshape((-1, *spatial_x, 1))
        rhs = w.reshape((*spatial_w, 1, 1))
        dims = lax.ConvDimensionNumbers(
            (0, d + 1, *spatial), (d + 1, d, *range(d)), (0, d + 1, *spatial)
        )
        out = lax.conv_general_dilated(
            lhs, rhs, (1,) * d, "VALID", dimension_numbers=dims, precision=precision
        )
        return out.reshape((*batch, *out.shape[1 : d + 1]))
    # One kernel per batch element: a grouped (depthwise) convolution.
    groups = math.prod(batch)
    lhs = jnp.broadcast_to(x, (*batch, *spatial_x)).reshape((1, groups, *spatial_x))
    rhs = jnp.broadcast_to(w, (*batch, *spatial_w)).reshape((groups, 1, *spatial_w))
    out = lax.conv_general_dilated(
        lhs, rhs, (1,) * d, "VALID", feature_group_count=groups, precision=precision
    )
    return out.reshape((*batch, *out.shape[2:]))


@_last
def direct(x: jax.Array, w: jax.Array, d: int, precision=lax.Precision.HIGHEST) -> jax.Array:
    """XLA's convolution (cuDNN on GPU, the MXU on TPU, Eigen/oneDNN on CPU)."""
    return _split_complex(functools.partial(_direct_real, d=d, precision=precision), x, w)


def _tree_sum(terms: list[jax.Array]) -> jax.Array:
    # A balanced tree keeps the dependency chain log2(taps) long; a running sum made XLA:CPU's
    # fused loop latency-bound (2.5x slower for 7x7 on 512²).
    while len(terms) > 1:
        terms = [sum(terms[i + 1 : i + 2], terms[i]) for i in range(0, len(terms), 2)]
    return terms[0]


def shift(x: jax.Array, w: jax.Array, axes: Sequence[int]) -> jax.Array:
    """Fused shift-multiply-add: one term per kernel tap, summed in one loop over the output.

    Works in place on any `axes`. Along a leading axis each output row reads `taps` whole input
    rows; once those fall out of L1/L2 (2048-float rows: from ~9 taps on) the pass runs several
    times slower than along the last axis (measured 4-8x for 9-65 taps on 2048²). Cutting the
    columns into blocks did not help reliably, as XLA re-laid the blocks out or split the loop.
    """
    # The barrier makes XLA materialise the (boundary-extended) input first. Without it, XLA:CPU
    # split jaxconv's per-axis padding into pieces evaluated inside the loop, per tap and element
    # (2048², 3x3: 33 ms instead of 7-10 ms). It does not stop XLA from fusing the loop into its
    # consumers (a filter's next padding, a transpose), which can still make chained passes slow.
    x = lax.optimization_barrier(x)
    out = [x.shape[a] - w.shape[a] + 1 for a in axes]
    taps = math.prod(w.shape[a] for a in axes)
    if len(axes) > 1 and taps > _UNROLL_TAPS:
        # Unrolling every tap makes compile time grow with the kernel (minutes for 31x31): loop
        # over the first kernel axis and unroll the others.
        first = axes[0]

        def row(a, acc):
            xa = lax.dynamic_slice_in_dim(x, a, out[0], axis=first)
            wa = lax.dynamic_slice_in_dim(w, a, 1, axis=first)
            return acc + _shift_terms(xa, wa, axes[1:], out[1:])

        acc = jnp.zeros(_out_shape(x.shape, w.shape, axes), x.dtype)
        return lax.fori_loop(0, w.shape[first], row, acc)
    return _shift_terms(x, w, axes, out)


def _shift_terms(x: jax.Array, w: jax.Array, axes: Sequence[int], out: Sequence[int]):
    terms = []
    for tap in np.ndindex(*(w.shape[a] for a in axes)):
        xi, wi = [slice(None)] * x.ndim, [slice(None)] * w.ndim
        for a, t, o in zip(axes, tap, out, strict=True):
            xi[a], wi[a] = slice(t, t + o), slice(t, t + 1)
        terms.append(x[tuple(xi)] * w[tuple(wi)])
    return _tree_sum(terms)


def _spectrum(a: jax.Array, lengths: Sequence[int], real: bool) -> jax.Array:
    """d-dimensional (r)FFT of `a`, zero-padded to `lengths`, transforming the short axes last.

    Transforming axis by axis, each axis is padded only when it is transformed, so a small kernel
    costs a fraction of a full-size transform.
    """
    d = len(lengths)
    axes = range(a.ndim - d, a.ndim)
    order = sorted(axes, key=lambda ax: a.shape[ax], reverse=True)
    if real:  # the real transform must be along the last axis
        a = jnp.fft.rfft(a, lengths[-1], axis=-1)
        order = [ax for ax in order if ax != a.ndim - 1]
    for ax in order:
        a = jnp.fft.fft(a, lengths[ax - (a.ndim - d)], axis=ax)
    return a


def _inverse_valid(spec, lengths, m, n, real: bool) -> jax.Array:
    """Inverse transform of a product spectrum, keeping the valid part ``[m - 1, n)`` per axis."""
    d = len(lengths)
    out = spec
    # Inverse over the leading axes, keep only the valid rows, then the last axis.
    for i in range(d - 1):
        ax = out.ndim - d + i
        out = jnp.fft.ifft(out, lengths[i], axis=ax)
        out = lax.slice_in_dim(out, m[i] - 1, n[i], axis=ax)
    if real:
        out = jnp.fft.irfft(out, lengths[-1], axis=-1)
    else:
        out = jnp.fft.ifft(out, lengths[-1], axis=-1)
    return out[..., m[-1] - 1 : n[-1]]


def _fft_valid(x: jax.Array, w: jax.Array, d: int, lengths: Sequence[int]) -> jax.Array:
    """Valid correlation through circular convolutions of the given lengths (>= input lengths)."""
    real = not jnp.iscomplexobj(x)
    spec = _spectrum(x, lengths, real) * _spectrum(jnp.flip(w, tuple(range(-d, 0))), lengths, real)
    return _inverse_valid(spec, lengths, w.shape[w.ndim - d :], x.shape[x.ndim - d :], real)


@_last
def fft(x: jax.Array, w: jax.Array, d: int) -> jax.Array:
    """One FFT of each operand, padded to a fast length (no wrap-around reaches the valid part)."""
    lengths = [next_fast_len(n) for n in x.shape[x.ndim - d :]]
    return _fft_valid(x, w, d, lengths)


def _bands(x: jax.Array, axis: int, b: int, overlap: int, count: int) -> jax.Array:
    """Splits `axis` into `count` windows of ``b + overlap`` samples starting every `b`."""
    if count == 1:
        x = lax.slice_in_dim(x, 0, b + overlap, axis=axis)
        return jnp.expand_dims(x, axis)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, (count + 1) * b - x.shape[axis])
    x = jnp.pad(x, pad)
    split = (*x.shape[:axis], count, b, *x.shape[axis + 1 :])
    head = lax.slice_in_dim(x, 0, count * b, axis=axis).reshape(split)
    tail = lax.slice_in_dim(x, b, (count + 1) * b, axis=axis).reshape(split)
    return jnp.concatenate([head, lax.slice_in_dim(tail, 0, overlap, axis=axis + 1)], axis + 1)


@_last
def overlap_save(x: jax.Array, w: jax.Array, d: int) -> jax.Array:
    """Overlap-save along the first axis: FFTs over bands of rows, full-length along the others.

    Bands of ``block + m - 1`` rows (see :func:`jaxconv._conv.cost.os_block`) bound the FFT size and
    keep each transform in cache; cutting only the outermost axis needs no transposes (blocking
    every axis was 1.3-1.7x slower on XLA:CPU, which spent the difference moving blocks). When the
    kernel is longer than the output (the kernel gradient), the kernel is cut into bands instead,
    and the products of the bands' spectra are summed before a single inverse transform.
    """
    m = w.shape[w.ndim - d :]
    n = x.shape[x.ndim - d :]
    axis = x.ndim - d
    out0 = n[0] - m[0] + 1
    batch = math.prod(jnp.broadcast_shapes(x.shape[:axis], w.shape[: w.ndim - d]))
    rest = tuple(next_fast_len(k) for k in n[1:])
    if m[0] > out0:
        b = _cost.os_block(n[0], out0, rest, batch)  # kernel rows per band
        count = -(-m[0] // b)
        w = jnp.pad(w, [(0, 0)] * axis + [(0, count * b - m[0])] + [(0, 0)] * (d - 1))
        w = w.reshape((*w.shape[:axis], count, b, *w.shape[axis + 1 :]))
        x = _bands(x, axis, b, out0 - 1, count)
        lengths = [next_fast_len(b + out0 - 1), *rest]
        real = not jnp.iscomplexobj(x)
        spec = _spectrum(x, lengths, real) * _spectrum(jnp.flip(w, range(-d, 0)), lengths, real)
        spec = _tree_sum([lax.index_in_dim(spec, i, axis, keepdims=False) for i in range(count)])
        return _inverse_valid(spec, lengths, (b, *m[1:]), (b + out0 - 1, *n[1:]), real)
    b = _cost.os_block(n[0], m[0], rest, batch)
    count = -(-out0 // b)
    x = _bands(x, axis, b, m[0] - 1, count)
    lengths = [next_fast_len(b + m[0] - 1), *rest]
    out = _fft_valid(x, jnp.expand_dims(w, axis), d, lengths)  # (..., count, b, *out[1:])
    out = out.reshape((*out.shape[:axis], count * b, *out.shape[axis + 2 :]))
    return lax.slice_in_dim(out, 0, out0, axis=axis)


def _implementation(x, w, *, axes, method, precision):
    if method == "direct":
        return direct(x, w, axes, precision)
    if method == "shift":
        return shift(x, w, axes)
    if method == "fft":
        return fft(x, w, axes)
    if method == "os":
        return overlap_save(x, w, axes)
    raise AssertionError(method)


# --- the primitive and its differentiation rules ------------------------------------------------
_valid_p = Primitive("jaxconv_valid_correlate")
_valid_p.def_impl(jax.jit(_implementation, static_argnames=("axes", "method", "precision")))
mlir.register_lowering(_valid_p, mlir.lower_fun(_implementation, multiple_results=False))


def _out_shape(xs: Sequence[int], ws: Sequence[int], axes: Sequence[int]) -> tuple[int, ...]:
    return tuple(
        a - b + 1 if i in axes else max(a, b) if 1 in (a, b) else a
        for i, (a, b) in enumerate(zip(xs, ws, strict=True))
    )


@_valid_p.def_abstract_eval
def _abstract_eval(x, w, *, axes, method, precision):
    return jax.core.ShapedArray(_out_shape(x.shape, w.shape, axes), x.dtype)


def _sum_to(a: jax.Array, shape: Sequence[int]) -> jax.Array:
    """Sums the batch axes that were broadcast from size 1 back to `shape`."""
    axes = tuple(i for i, (s, t) in enumerate(zip(shape, a.shape, strict=True)) if s == 1 != t)
    return jnp.sum(a, axis=axes, keepdims=True) if axes else a


def _transpose_input(ct, x, w, *, axes, method, precision):
    # dx[i] = sum_j ct[i - j] w[j]: a valid correlation of ct, padded by m - 1, with flip(w).
    pads = [(w.shape[a] - 1,) * 2 if a in axes else (0, 0) for a in range(ct.ndim)]
    out = _valid_p.bind(
        jnp.pad(ct, pads), jnp.flip(w, axes), axes=axes, method=method, precision=precision
    )
    return _sum_to(out, x.aval.shape)


def _transpose_kernel(ct, x, w, *, axes, method, precision):
    # dw[j] = sum_i x[i + j] ct[i]: the cotangent plays the kernel.
    n = [x.shape[a] for a in axes]
    m = [w.aval.shape[a] for a in axes]
    batch = math.prod(s for i, s in enumerate(ct.shape) if i not in axes)
    grad_method = kernel_grad_method(method, n, m, batch, jax.default_backend())
    out = _valid_p.bind(x, ct, axes=axes, method=grad_method, precision=precision)
    return _sum_to(out, w.aval.shape)


ad.defbilinear(_valid_p, _transpose_input, _transpose_kernel)


def _batch_rule(args, dims, *, axes, method, precision):
    x, w = (
        jnp.expand_dims(a, 0) if b is None else jnp.moveaxis(a, b, 0)
        for a, b in zip(args, dims, strict=True)
    )
    axes = tuple(a + 1 for a in axes)
    return _valid_p.bind(x, w, axes=axes, method=method, precision=precision), 0


batching.primitive_batchers[_valid_p] = _batch_rule


# --- kernels longer than the input they can reach ------------------------------------------------
# --- methods that keep NaN and inf local ---------------------------------------------------------
SPREADING = ("fft", "os")  # a non-finite sample reaches every output of an FFT


@jax.jit
def _all_finite_jit(x: jax.Array) -> jax.Array:
    return jnp.isfinite(x).all()


def holds_nonfinite(x: Any, fill: Any = None) -> bool:
    """Whether concrete `x` (or a concrete `fill` value that is read) holds NaN or inf.

    Traced values, and arrays spread over processes (this one cannot read them all), cannot be
    inspected and count as finite: "auto" then chooses from shapes alone.
    """
    if fill is not None and not isinstance(fill, jax.core.Tracer):
        if not np.isfinite(np.asarray(fill)).all():
            return True
    if isinstance(x, jax.core.Tracer):
        return False
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return False
    if jax.default_backend() == "cpu":  # numpy on a zero-copy view: 0.03 ms, not 0.3 (on 512²)
        return not bool(np.isfinite(np.asarray(x)).all())
    return not bool(_all_finite_jit(x))


def local_method(shapes: Sequence[tuple], backend: str) -> str:
    """The cheapest of ``direct`` and ``shift`` for steps ``(n, m, batch)``: sums that keep a
    non-finite sample within the kernel's reach, as scipy's direct sums do."""
    candidates = ["direct"]
    if backend == "cpu" and all(
        math.prod(m) <= _cost.CPU_NS["SHIFT_MAX_TAPS"] for _, m, _ in shapes
    ):
        candidates.append("shift")
    return min(candidates, key=lambda meth: sum(estimate_cost(meth, *shape) for shape in shapes))


def fold_plan(
    n: Sequence[int], m: Sequence[int], pads: Sequence[tuple[int, int]], boundaries: Sequence[str]
) -> tuple[tuple, tuple[tuple[int, int], ...]]:
    """How to shrink a kernel that reaches far beyond the input, exactly, and the new pads.

    Per axis (input length `n`, kernel length `m`, extension ``(lo, hi)``, canonical boundary),
    ``out = n + lo + hi - m + 1`` outputs each read ``xpad[i : i + m]``. Two exact reductions:

    * ``wrap``, ``symmetric`` and ``mirror`` extend the input periodically (period ``n``, ``2 n``
      and ``2 n - 2``; every mode has period 1 when ``n == 1``), so taps ``p`` apart read the same
      sample for every output: the kernel folds modulo ``p`` (``("period", p, lo)``) and the input
      is extended by ``(0, out + p - 1 - n)`` instead.
    * ``constant`` and ``edge`` read the same value (the fill value, or the edge sample) for every
      output from the taps that reach past the input for every output (``j <= lo - out`` on the
      left, ``j >= lo + n`` on the right): each such run of taps becomes one tap holding their
      sum (``("ends", left, right)``: the lengths of the runs folded).

    Either leaves at most ``out + 2 n + 1`` taps, so a box of 10⁶ taps over 64 samples costs what
    a box of 128 does. Returns ``None`` for an axis left as it is.
    """
    specs, new_pads = [], []
    for nn, mm, (lo, hi), mode in zip(n, m, pads, boundaries, strict=True):
        out = nn + lo + hi - mm + 1
        period = 1 if nn == 1 and mode != "constant" else None
        period = period or {"wrap": nn, "symmetric": 2 * nn, "mirror": 2 * nn - 2}.get(mode)
        if period is not None and mm > period:
            specs.append(("period", period, lo))
            new_pads.append((0, out + period - 1 - nn))
            continue
        left, right = lo - out + 1, mm - lo - nn
        left, right = (left if left > 1 else 0), (right if right > 1 else 0)
        if mode in ("constant", "edge") and (left or right):
            specs.append(("ends", left, right))
            new_pads.append((lo - max(left - 1, 0), hi - max(right - 1, 0)))
            continue
        specs.append(None)
        new_pads.append((lo, hi))
    return tuple(specs), tuple(new_pads)


def fold_kernel(k: jax.Array, axes: Sequence[int], specs: Sequence) -> jax.Array:
    """Applies :func:`fold_plan`'s `specs` to kernel `k` (traced or concrete; linear in `k`)."""
    for a, spec in zip(axes, specs, strict=True):
        if spec is None:
            continue
        m = k.shape[a]
        if spec[0] == "period":
            _, p, lo = spec
            count = -(-m // p)
            widths = [(0, 0)] * k.ndim
            widths[a] = (0, count * p - m)
            k = jnp.pad(k, widths).reshape((*k.shape[:a], count, p, *k.shape[a + 1 :]))
            k = jnp.roll(jnp.sum(k, axis=a), -(lo % p), axis=a)
            continue
        _, left, right = spec
        pieces = [lax.slice_in_dim(k, left, m - right, axis=a)]
        if left:
            pieces.insert(0, jnp.sum(lax.slice_in_dim(k, 0, left, axis=a), a, keepdims=True))
        if right:
            pieces.append(jnp.sum(lax.slice_in_dim(k, m - right, m, axis=a), a, keepdims=True))
        k = jnp.concatenate(pieces, axis=a)
    return k


# --- separable kernels ---------------------------------------------------------------------------
def separable(x: jax.Array, terms, axes: Sequence[int], precision) -> jax.Array:
    """Sum over rank-1 terms of successive 1-D valid correlations, one per axis."""
    out = None
    for factors in terms:
        y = x
        for a, f in zip(axes, factors, strict=True):
            f = f.reshape([-1 if i == a else 1 for i in range(y.ndim)])
            batch = math.prod(y.shape) // y.shape[a]
            method = auto_method([y.shape[a]], [f.shape[a]], batch, jax.default_backend())
            y = valid_correlate(y, f, 1, method, precision, axes=(a,))
        out = y if out is None else out + y
    return out


def separable_terms(w: np.ndarray, rtol: float) -> list[list[np.ndarray]] | None:
    """Exact (to `rtol`) sum of rank-1 terms of a concrete kernel, or None if none is cheap.

    2-D kernels use the SVD and keep singular values above ``rtol * s_max``; N-D kernels are
    accepted when every unfolding has rank 1. Returns None when the rank is too high to pay off.
    """
    d = w.ndim
    if d == 1:
        return [[w]]
    if d == 2:
        u, s, vt = np.linalg.svd(w)
        rank = int(np.sum(s > rtol * s[0])) if s[0] > 0 else 1
        if rank > min(w.shape) // 2:
            return None
        return [[u[:, r] * s[r], vt[r]] for r in range(rank)]
    # N-D: rank 1 through the largest entry, checked against the kernel itself.
    pivot = np.unravel_index(np.argmax(np.abs(w)), w.shape)
    if w[pivot] == 0:
        return [[np.zeros(k, w.dtype) for k in w.shape]]
    factors = []
    for axis in range(d):
        index = list(pivot)
        index[axis] = slice(None)
        factors.append(w[tuple(index)] / (w[pivot] if axis else 1))
    approx = functools.reduce(np.multiply.outer, factors)
    if np.max(np.abs(approx - w)) > rtol * np.max(np.abs(w)):
        return None
    return [factors]


def valid_correlate(
    x: jax.Array,
    w: jax.Array,
    d: int,
    method: str,
    precision,
    terms=None,
    *,
    axes: Sequence[int] | None = None,
) -> jax.Array:
    """Valid cross-correlation of `x` with `w` over `axes` (default: the last `d`) by `method`.

    Axes of `x` and `w` not in `axes` broadcast against each other (`w` is left-padded with size-1
    axes to the rank of `x`). Passing the convolved axes in place, rather than moving them last,
    lets ``shift`` run without transposes.
    """
    ndim = max(x.ndim, w.ndim)
    axes = tuple(range(ndim - d, ndim)) if axes is None else tuple(sorted(a % ndim for a in axes))
    if method == "separable":
        return separable(x, terms, axes, precision)
    if method not in ("direct", "shift", "fft", "os"):
        raise AssertionError(method)  # options are validated by the public functions
    dtype = promote(x, w)
    x = x.astype(dtype).reshape((1,) * (ndim - x.ndim) + x.shape)
    w = w.astype(dtype).reshape((1,) * (ndim - w.ndim) + w.shape)
    return _valid_p.bind(x, w, axes=axes, method=method, precision=precision)
