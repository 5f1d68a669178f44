"""The methods that compute a *valid* cross-correlation, and the cost model that picks one.

Every public convolution reduces to one primitive: extend the input at its boundaries, then take the
valid cross-correlation ``out[i] = sum_j x[i + j] w[j]`` over the last ``d`` axes, where leading
(batch) axes of ``x`` and ``w`` broadcast against each other. Each method below computes exactly
that primitive, so each can be forced, tested against scipy, and differentiated on its own: the
gradient of a correlation is again a correlation, and JAX's transpose rules keep every method on
its own fast path (shifts stay shifts, FFTs stay FFTs, XLA convolutions stay convolutions).
"""

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

METHODS = ("auto", "direct", "shift", "separable", "fft", "oa")


@functools.lru_cache(maxsize=4096)
def next_fast_len(n: int) -> int:
    """Smallest 7-smooth integer ``>= n``: fast for pocketfft/DUCC (CPU) and cuFFT (GPU)."""
    if n <= 6:
        return max(n, 1)
    best = 2 ** math.ceil(math.log2(n))
    p7 = 1
    while p7 < best:
        p5 = p7
        while p5 < best:
            p3 = p5
            while p3 < best:
                p2 = p3
                while p2 < n:
                    p2 *= 2
                best = min(best, p2)
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return best


def _split_complex(fn, x: jax.Array, w: jax.Array) -> jax.Array:
    """Applies a real bilinear `fn(x, w)` to complex operands with real arithmetic."""
    xc, wc = jnp.iscomplexobj(x), jnp.iscomplexobj(w)
    if not (xc or wc):
        return fn(x, w)
    if not wc:
        return lax.complex(fn(x.real, w), fn(x.imag, w))
    if not xc:
        return lax.complex(fn(x, w.real), fn(x, w.imag))
    real = fn(x.real, w.real) - fn(x.imag, w.imag)
    imag = fn(x.real, w.imag) + fn(x.imag, w.real)
    return lax.complex(real, imag)


def _direct_real(x: jax.Array, w: jax.Array, d: int, precision) -> jax.Array:
    spatial_x, spatial_w = x.shape[x.ndim - d :], w.shape[w.ndim - d :]
    batch_x, batch_w = x.shape[: x.ndim - d], w.shape[: w.ndim - d]
    if all(s == 1 for s in batch_w):
        # One kernel for the whole stack: the stack is XLA's batch dimension.
        lhs = x.reshape((-1, 1, *spatial_x))
        rhs = w.reshape((1, 1, *spatial_w))
        out = lax.conv_general_dilated(lhs, rhs, (1,) * d, "VALID", precision=precision)
        batch = jnp.broadcast_shapes(batch_x, batch_w)
        return out.reshape((*batch, *out.shape[2:]))
    # One kernel per batch element: a grouped (depthwise) convolution.
    batch = jnp.broadcast_shapes(batch_x, batch_w)
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


def shift(x: jax.Array, w: jax.Array, d: int) -> jax.Array:
    """Fused shift-multiply-add: one pass per kernel tap, which XLA fuses into a single loop."""
    m = w.shape[w.ndim - d :]
    out_shape = tuple(n - k + 1 for n, k in zip(x.shape[x.ndim - d :], m, strict=True))
    acc = None
    for tap in np.ndindex(*m):
        window = x[(..., *(slice(t, t + o) for t, o in zip(tap, out_shape, strict=True)))]
        coef = w[(..., *tap)][(..., *(None,) * d)]
        term = window * coef
        acc = term if acc is None else acc + term
    return acc


def _fft_valid(x: jax.Array, w: jax.Array, d: int, lengths: Sequence[int]) -> jax.Array:
    """Valid correlation through circular convolutions of the given lengths (>= input lengths)."""
    axes = tuple(range(-d, 0))
    w = jnp.flip(w, axes)
    if jnp.iscomplexobj(x) or jnp.iscomplexobj(w):
        spec = jnp.fft.fftn(x, lengths, axes) * jnp.fft.fftn(w, lengths, axes)
        full = jnp.fft.ifftn(spec, lengths, axes)
    else:
        spec = jnp.fft.rfftn(x, lengths, axes) * jnp.fft.rfftn(w, lengths, axes)
        full = jnp.fft.irfftn(spec, lengths, axes)
    m = w.shape[w.ndim - d :]
    n = x.shape[x.ndim - d :]
    return full[(..., *(slice(k - 1, nn) for k, nn in zip(m, n, strict=True)))]


def fft(x: jax.Array, w: jax.Array, d: int) -> jax.Array:
    """One FFT of each operand, padded to a fast length (no wrap-around reaches the valid part)."""
    lengths = [next_fast_len(n) for n in x.shape[x.ndim - d :]]
    return _fft_valid(x, w, d, lengths)


def oa_block(n: int, m: int) -> int:
    """Output block length of the overlap-save method along an axis (kernel length `m`)."""
    # A block FFT of about 8 kernel lengths (at least 128) balances the wasted overlap against
    # the log factor; never larger than the whole output.
    target = next_fast_len(max(8 * m, 128))
    return max(1, min(target - m + 1, n - m + 1))


def oa(x: jax.Array, w: jax.Array, d: int) -> jax.Array:
    """Overlap-save: independent FFTs over blocks, so memory and FFT size stay bounded."""
    m = w.shape[w.ndim - d :]
    n = x.shape[x.ndim - d :]
    blocks = [oa_block(nn, k) for nn, k in zip(n, m, strict=True)]
    # Cut every convolved axis into overlapping windows of `block + m - 1` samples, so that the
    # windowed array has axes (..., nb_1, win_1, ..., nb_d, win_d).
    for i, (nn, k, b) in enumerate(zip(n, m, blocks, strict=True)):
        axis = x.ndim - (d - i)  # the unsplit spatial axes are still the last ones
        nb = -(-(nn - k + 1) // b)
        x = jnp.moveaxis(x, axis, -1)
        if nb == 1:
            x = x[..., None, : b + k - 1]
        else:  # here b >= k - 1, so each window is its block plus the head of the next one
            x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, (nb + 1) * b - nn)])
            head = x[..., : nb * b].reshape((*x.shape[:-1], nb, b))
            tail = x[..., b : (nb + 1) * b].reshape((*x.shape[:-1], nb, b))[..., : k - 1]
            x = jnp.concatenate([head, tail], axis=-1)
        x = jnp.moveaxis(x, (-2, -1), (axis, axis + 1))
    win_axes = tuple(range(-2 * d + 1, 0, 2))
    lengths = [next_fast_len(b + k - 1) for b, k in zip(blocks, m, strict=True)]
    wf = jnp.flip(w, tuple(range(-d, 0)))
    # Give the kernel a size-1 block axis in front of each window axis.
    wf = wf.reshape((*wf.shape[: wf.ndim - d], *[s for k in m for s in (1, k)]))
    if jnp.iscomplexobj(x) or jnp.iscomplexobj(wf):
        spec = jnp.fft.fftn(x, lengths, win_axes) * jnp.fft.fftn(wf, lengths, win_axes)
        full = jnp.fft.ifftn(spec, lengths, win_axes)
    else:
        spec = jnp.fft.rfftn(x, lengths, win_axes) * jnp.fft.rfftn(wf, lengths, win_axes)
        full = jnp.fft.irfftn(spec, lengths, win_axes)
    index = [slice(None)] * (full.ndim - 2 * d)
    for k, b in zip(m, blocks, strict=True):
        index += [slice(None), slice(k - 1, k - 1 + b)]
    out = full[tuple(index)]
    # Stitch the blocks back together and trim the padding of the last block.
    lead = out.shape[: out.ndim - 2 * d]
    spatial = [out.shape[out.ndim - 2 * d + 2 * i] * b for i, b in enumerate(blocks)]
    out = out.reshape((*lead, *spatial))
    return out[(..., *(slice(0, nn - k + 1) for nn, k in zip(n, m, strict=True)))]


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


def choose_1d(n: int, m: int) -> str:
    """Method for a 1-D valid correlation inside the separable path (CPU-tuned)."""
    return "shift" if m <= 24 else "fft"


def valid_correlate(
    x: jax.Array, w: jax.Array, d: int, method: str, precision, terms=None
) -> jax.Array:
    """Valid cross-correlation of `x` with `w` over the last `d` axes by `method`."""
    if method == "direct":
        return direct(x, w, d, precision)
    if method == "shift":
        return shift(x, w, d)
    if method == "fft":
        return fft(x, w, d)
    if method == "oa":
        return oa(x, w, d)
    if method == "separable":
        return separable(x, terms, d, precision)
    raise AssertionError(method)  # options are validated by the public functions


# --- The cost model ---------------------------------------------------------------------------
# Costs are in nanoseconds per unit of work, fitted to the medians of benchmarks/bench_convolve.py
# on a 2-core x86-64 CPU (XLA:CPU). Accelerators get a simpler rule: their convolution units
# (cuDNN, the TPU's MXU) beat everything but very large kernels.
_CPU_NS = {"shift": 0.35, "direct": 3.0, "fft": 1.1, "oa": 1.0, "separable": 0.35}


def estimate_cost(
    method: str, n: Sequence[int], m: Sequence[int], batch: int, rank: int | None = None
) -> float:
    """Estimated CPU run time (ns) of a valid correlation of an `n`-shaped input by an `m` kernel."""
    out = math.prod(nn - k + 1 for nn, k in zip(n, m, strict=True)) * batch
    taps = math.prod(m)
    if method in ("shift", "direct"):
        return _CPU_NS[method] * out * taps
    if method == "separable":
        return _CPU_NS[method] * out * sum(m) * (rank or 1)
    if method == "fft":
        size = math.prod(next_fast_len(nn) for nn in n)
        return _CPU_NS["fft"] * batch * 2.5 * size * math.log2(max(size, 2))
    if method == "oa":
        blocks = [oa_block(nn, k) for nn, k in zip(n, m, strict=True)]
        count = math.prod(-(-(nn - k + 1) // b) for nn, k, b in zip(n, m, blocks, strict=True))
        size = math.prod(next_fast_len(b + k - 1) for b, k in zip(blocks, m, strict=True))
        return _CPU_NS["oa"] * batch * count * 2.0 * size * math.log2(max(size, 2))
    raise AssertionError(method)


def auto_method(
    n: Sequence[int], m: Sequence[int], batch: int, backend: str, rank: int | None = None
) -> str:
    """The cheapest method for a valid correlation on `backend` ("cpu", "gpu" or "tpu")."""
    taps = math.prod(m)
    if backend != "cpu":
        # cuDNN / MXU direct convolution wins until kernels are large.
        limit = 1024 if backend == "gpu" else 4096
        return "direct" if taps <= limit else "fft"
    candidates = ["fft", "oa"]
    if taps <= 64:
        candidates.append("shift")
    else:
        candidates.append("direct")
    if rank is not None:
        candidates.append("separable")
    return min(candidates, key=lambda meth: estimate_cost(meth, n, m, batch, rank))
