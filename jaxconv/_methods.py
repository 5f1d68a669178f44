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
"""

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxconv import _cost
from jaxconv._cost import auto_method, choose_1d, estimate_cost, kernel_grad_method, next_fast_len

__all__ = [
    "METHODS",
    "auto_method",
    "choose_1d",
    "estimate_cost",
    "next_fast_len",
    "separable_terms",
    "valid_correlate",
]

METHODS = ("auto", "direct", "shift", "separable", "fft", "oa")
_UNROLL_TAPS = 256  # shift unrolls kernels up to this many taps into one fused loop


# --- the methods (x and w share a dtype; spatial axes are the last d) ----------------------------
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
        # One kernel for the whole stack: the stack is XLA's batch dimension, in channels-last
        # layout (measured 1.5-4x faster than channels-first on XLA:CPU for every shape here).
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


def direct(x: jax.Array, w: jax.Array, d: int, precision=lax.Precision.HIGHEST) -> jax.Array:
    """XLA's convolution (cuDNN on GPU, the MXU on TPU, Eigen/oneDNN on CPU)."""
    return _split_complex(functools.partial(_direct_real, d=d, precision=precision), x, w)


def _tree_sum(terms: list[jax.Array]) -> jax.Array:
    # A balanced tree keeps the dependency chain log2(taps) long; a running sum made XLA:CPU's
    # fused loop latency-bound (2.5x slower for 7x7 on 512²).
    while len(terms) > 1:
        terms = [sum(terms[i : i + 2][1:], terms[i]) for i in range(0, len(terms), 2)]
    return terms[0]


def shift(x: jax.Array, w: jax.Array, d: int) -> jax.Array:
    """Fused shift-multiply-add: one term per kernel tap, summed in one loop over the output."""
    # The barrier materialises the (boundary-extended) input first: fused into the loop, XLA:CPU
    # evaluated the padding per tap and element and ran up to 10x slower at 2048².
    x = lax.optimization_barrier(x)
    m = w.shape[w.ndim - d :]
    out_shape = tuple(n - k + 1 for n, k in zip(x.shape[x.ndim - d :], m, strict=True))
    if d > 1 and math.prod(m) > _UNROLL_TAPS:
        # Unrolling every tap makes compile time grow with the kernel (minutes for 31x31): loop
        # over the first kernel axis and unroll the others.
        axis = x.ndim - d

        def row(a, acc):
            xa = lax.dynamic_slice_in_dim(x, a, out_shape[0], axis=axis)
            wa = lax.dynamic_index_in_dim(w, a, axis=w.ndim - d, keepdims=True)
            return acc + _shift_terms(xa, wa, d - 1, out_shape[1:])

        batch = jnp.broadcast_shapes(x.shape[:axis], w.shape[: w.ndim - d])
        acc = jnp.zeros((*batch, *out_shape), jnp.result_type(x, w))
        return lax.fori_loop(0, m[0], row, acc)
    return _shift_terms(x, w, d, out_shape)


def _shift_terms(x: jax.Array, w: jax.Array, d: int, out_shape: Sequence[int]) -> jax.Array:
    terms = []
    for tap in np.ndindex(*w.shape[w.ndim - d :]):
        window = x[(..., *(slice(t, t + o) for t, o in zip(tap, out_shape, strict=True)))]
        terms.append(window * w[(..., *tap)][(..., *(None,) * d)])
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


def _fft_valid(x: jax.Array, w: jax.Array, d: int, lengths: Sequence[int]) -> jax.Array:
    """Valid correlation through circular convolutions of the given lengths (>= input lengths)."""
    m = w.shape[w.ndim - d :]
    n = x.shape[x.ndim - d :]
    real = not jnp.iscomplexobj(x)
    w = jnp.flip(w, tuple(range(-d, 0)))
    spec = _spectrum(x, lengths, real) * _spectrum(w, lengths, real)
    # Inverse over the leading axes, keep only the valid rows, then the last axis.
    out = spec
    for i in range(d - 1):
        ax = out.ndim - d + i
        out = jnp.fft.ifft(out, lengths[i], axis=ax)
        out = lax.slice_in_dim(out, m[i] - 1, n[i], axis=ax)
    if real:
        out = jnp.fft.irfft(out, lengths[-1], axis=-1)
    else:
        out = jnp.fft.ifft(out, lengths[-1], axis=-1)
    return out[..., m[-1] - 1 : n[-1]]


def fft(x: jax.Array, w: jax.Array, d: int) -> jax.Array:
    """One FFT of each operand, padded to a fast length (no wrap-around reaches the valid part)."""
    lengths = [next_fast_len(n) for n in x.shape[x.ndim - d :]]
    return _fft_valid(x, w, d, lengths)


def oa(x: jax.Array, w: jax.Array, d: int) -> jax.Array:
    """Overlap-save: independent FFTs over blocks, so memory and FFT size stay bounded."""
    m = w.shape[w.ndim - d :]
    n = x.shape[x.ndim - d :]
    blocks = [_cost.oa_block(nn, k) for nn, k in zip(n, m, strict=True)]
    counts = [-(-(nn - k + 1) // b) for nn, k, b in zip(n, m, blocks, strict=True)]
    lead = x.shape[: x.ndim - d]
    # Cut every convolved axis into overlapping windows of `block + m - 1` samples; the block
    # indices go in front of all window axes, so that the FFTs run over the last d axes.
    for i, (nn, k, b, nb) in enumerate(zip(n, m, blocks, counts, strict=True)):
        axis = len(lead) + i + i  # earlier axes are already (block, window) pairs
        if nb == 1:
            x = lax.slice_in_dim(x, 0, b + k - 1, axis=axis)
            x = jnp.expand_dims(x, axis)
            continue
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, (nb + 1) * b - nn)
        x = jnp.pad(x, pad)
        shape = x.shape
        head = lax.slice_in_dim(x, 0, nb * b, axis=axis)
        head = head.reshape((*shape[:axis], nb, b, *shape[axis + 1 :]))
        tail = lax.slice_in_dim(x, b, (nb + 1) * b, axis=axis)
        tail = tail.reshape((*shape[:axis], nb, b, *shape[axis + 1 :]))
        tail = lax.slice_in_dim(tail, 0, k - 1, axis=axis + 1)
        x = jnp.concatenate([head, tail], axis=axis + 1)
    block_axes = [len(lead) + 2 * i for i in range(d)]
    x = jnp.moveaxis(x, block_axes, range(len(lead), len(lead) + d))
    w = w.reshape((*w.shape[: w.ndim - d], *(1,) * d, *m))
    lengths = [next_fast_len(b + k - 1) for b, k in zip(blocks, m, strict=True)]
    out = _fft_valid(x, w, d, lengths)  # (*lead, *counts, *blocks) after the valid slice
    # Stitch the blocks back together and trim the padding of the last block.
    perm = [*range(len(lead))]
    for i in range(d):
        perm += [len(lead) + i, len(lead) + d + i]
    out = out.transpose(perm)
    out = out.reshape(
        (*out.shape[: len(lead)], *(c * b for c, b in zip(counts, blocks, strict=True)))
    )
    return out[(..., *(slice(0, nn - k + 1) for nn, k in zip(n, m, strict=True)))]


def _implementation(x, w, *, d, method, precision):
    if method == "direct":
        return direct(x, w, d, precision)
    if method == "shift":
        return shift(x, w, d)
    if method == "fft":
        return fft(x, w, d)
    if method == "oa":
        return oa(x, w, d)
    raise AssertionError(method)


# --- the primitive and its differentiation rules ------------------------------------------------
_valid_p = Primitive("jaxconv_valid_correlate")
_valid_p.def_impl(jax.jit(_implementation, static_argnames=("d", "method", "precision")))
mlir.register_lowering(_valid_p, mlir.lower_fun(_implementation, multiple_results=False))


@_valid_p.def_abstract_eval
def _abstract_eval(x, w, *, d, method, precision):
    batch = jnp.broadcast_shapes(x.shape[: x.ndim - d], w.shape[: w.ndim - d])
    out = tuple(
        n - k + 1 for n, k in zip(x.shape[x.ndim - d :], w.shape[w.ndim - d :], strict=True)
    )
    return jax.core.ShapedArray((*batch, *out), x.dtype)


def _sum_to(a: jax.Array, shape: Sequence[int]) -> jax.Array:
    """Sums the batch axes that were broadcast from size 1 back to `shape`."""
    axes = tuple(i for i, (s, t) in enumerate(zip(shape, a.shape, strict=True)) if s == 1 != t)
    return jnp.sum(a, axis=axes, keepdims=True) if axes else a


def _transpose_input(ct, x, w, *, d, method, precision):
    # dx[i] = sum_j ct[i - j] w[j]: a valid correlation of ct, padded by m - 1, with flip(w).
    m = w.shape[w.ndim - d :]
    ct = jnp.pad(ct, [(0, 0)] * (ct.ndim - d) + [(k - 1, k - 1) for k in m])
    w = jnp.flip(w, tuple(range(-d, 0)))
    out = _valid_p.bind(ct, w, d=d, method=method, precision=precision)
    return _sum_to(out, x.aval.shape)


def _transpose_kernel(ct, x, w, *, d, method, precision):
    # dw[j] = sum_i x[i + j] ct[i]: the cotangent plays the kernel.
    n = x.shape[x.ndim - d :]
    m = w.aval.shape[w.aval.ndim - d :]
    batch = math.prod(ct.shape[: ct.ndim - d])
    grad_method = kernel_grad_method(method, n, m, batch, jax.default_backend())
    out = _valid_p.bind(x, ct, d=d, method=grad_method, precision=precision)
    return _sum_to(out, w.aval.shape)


ad.defbilinear(_valid_p, _transpose_input, _transpose_kernel)


def _batch_rule(args, dims, *, d, method, precision):
    x, w = (
        jnp.expand_dims(a, 0) if b is None else jnp.moveaxis(a, b, 0)
        for a, b in zip(args, dims, strict=True)
    )
    return _valid_p.bind(x, w, d=d, method=method, precision=precision), 0


batching.primitive_batchers[_valid_p] = _batch_rule


# --- separable kernels ---------------------------------------------------------------------------
def separable(x: jax.Array, terms: Sequence[Sequence[jax.Array]], d: int, precision) -> jax.Array:
    """Sum over rank-1 terms of successive 1-D valid correlations, one per axis."""
    out = None
    for factors in terms:
        y = x
        for i, f in enumerate(factors):
            y = jnp.moveaxis(y, y.ndim - d + i, -1)
            y = valid_correlate(y, f, 1, choose_1d(y.shape[-1], f.shape[-1]), precision)
            y = jnp.moveaxis(y, -1, y.ndim - d + i)
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
    x: jax.Array, w: jax.Array, d: int, method: str, precision, terms=None
) -> jax.Array:
    """Valid cross-correlation of `x` with `w` over the last `d` axes by `method`."""
    if method == "separable":
        return separable(x, terms, d, precision)
    if method not in ("direct", "shift", "fft", "oa"):
        raise AssertionError(method)  # options are validated by the public functions
    dtype = jnp.result_type(x, w)
    ndim = max(x.ndim, w.ndim)
    x = x.astype(dtype).reshape((1,) * (ndim - x.ndim) + x.shape)
    w = w.astype(dtype).reshape((1,) * (ndim - w.ndim) + w.shape)
    return _valid_p.bind(x, w, d=d, method=method, precision=precision)
