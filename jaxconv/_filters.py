"""scipy.ndimage's linear filters, jittable and differentiable, on jaxconv's convolution engine.

Modes are scipy.ndimage's, per axis or one for all: ``reflect`` (``d c b a | a b c d | d c b a``,
also ``grid-mirror``), ``constant`` with `cval` (also ``grid-constant``), ``nearest``, ``mirror``
(``d c b | a b c d | c b a``) and ``wrap`` (also ``grid-wrap``). Filters correlate as ndimage does,
``out[i] = Σ_j w[j] x[i + j - m // 2 - origin]``, one 1-D pass per axis for separable filters (so
even a non-zero `cval` gives scipy's result). Differences from scipy: integer inputs give float
outputs (ndimage keeps the input dtype), there is no `output=` argument, and a negative σ is an
error (scipy silently skips it; σ = 0 skips an axis in both).

Under ``jit`` the kernel size is static: a traced (learnable) σ needs an explicit `radius`.
"""

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv._convolve import correlate_padded
from jaxconv._gaussian_core import per_axis

MODES = (
    "reflect",
    "constant",
    "nearest",
    "mirror",
    "wrap",
    "grid-mirror",
    "grid-constant",
    "grid-wrap",
)
_ENGINE_MODE = {"grid-mirror": "reflect", "grid-constant": "constant", "grid-wrap": "wrap"}


# --- arguments -----------------------------------------------------------------------------------
def as_input(x: Any, fn: str) -> jax.Array:
    try:
        x = jnp.asarray(x)
    except TypeError as err:
        raise TypeError(f"{fn}: `input` must be an array of numbers; got {type(x)}.") from err
    if x.ndim == 0 or x.size == 0:
        raise ValueError(
            f"{fn}: `input` must be a non-empty array with >= 1 dimension; got shape {x.shape}."
        )
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def real_dtype(x: jax.Array) -> Any:
    """Dtype of the kernel weights: float32 for complex64 and for half precisions, whose weights
    the engine would compute in float32 anyway (rounding them to bfloat16 loses 3 digits)."""
    dtype = jnp.finfo(x.dtype).dtype
    return jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype


def filter_axes(axes: Any, ndim: int, fn: str) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    axes_t = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    if not all(isinstance(a, (int, np.integer)) and -ndim <= a < ndim for a in axes_t):
        raise ValueError(
            f"{fn}: `axes` must be axes of an array with {ndim} dimensions; got {axes!r}."
        )
    norm = tuple(int(a) % ndim for a in axes_t)
    if len(set(norm)) != len(norm):
        raise ValueError(f"{fn}: `axes` must be distinct; got {axes!r}.")
    return norm


def filter_modes(mode: Any, n: int, fn: str) -> tuple[str, ...]:
    if isinstance(mode, jax.core.Tracer):
        raise TypeError(f"{fn}: `mode` must be a static string; got a traced value.")
    modes = per_axis(mode, n, "mode", fn) if not isinstance(mode, str) else (mode,) * n
    for m in modes:
        if not isinstance(m, str) or m not in MODES:
            raise ValueError(
                f"{fn}: `mode` must be one of {MODES} (or one per axis); got {mode!r}."
            )
    return tuple(_ENGINE_MODE.get(m, m) for m in modes)


# --- execution -----------------------------------------------------------------------------------
def _correlate(x, w, axes, modes, origins, cval, method, precision):
    """ndimage correlation of `x` with `w` (one dimension per axis in `axes`)."""
    pads = tuple((m // 2 + o, m - 1 - m // 2 - o) for m, o in zip(w.shape, origins, strict=True))
    return correlate_padded(
        x,
        w,
        axes=axes,
        pads=pads,
        boundary=modes,
        fillvalue=cval,
        method=method,
        precision=precision,
    )


@functools.partial(jax.jit, static_argnames=("plan", "combine", "method", "precision"))
def _run(x, weights, cval, *, plan, combine, method, precision):
    """Runs terms of successive correlations and combines them ("first", "sum" or "norm").

    ``plan[t][s] = (axes, modes, origins)`` is step s of term t, with kernel ``weights[t][s]``.
    One jitted function per filter structure: eager calls compile once per shape.
    """
    outs = []
    for term, term_w in zip(plan, weights, strict=True):
        y = x
        for (axes, modes, origins), w in zip(term, term_w, strict=True):
            y = _correlate(
                y, w.astype(real_dtype(y)), axes, modes, origins, cval, method, precision
            )
        outs.append(y)
    if combine == "first":
        out = outs[0]
    elif combine == "sum":
        out = sum(outs[1:], outs[0])
    else:
        sq = sum(jnp.real(o * jnp.conj(o)) for o in outs)
        # Double `where` so the gradient at a zero magnitude is 0, not NaN.
        pos = sq > 0
        out = jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)
    # Half-precision inputs are computed in float32 (by the engine) and returned as given.
    return out.astype(x.dtype) if x.dtype.itemsize < 4 else out


def execute(x, terms, cval, combine="first", method="auto", precision=None):
    """`terms`: lists of (kernel, axes, modes, origins) steps; kernels may be traced."""
    plan = tuple(tuple((tuple(a), tuple(m), tuple(o)) for _, a, m, o in t) for t in terms)
    weights = tuple(tuple(jnp.asarray(k) for k, *_ in t) for t in terms)
    return _run(
        x,
        weights,
        jnp.asarray(cval),
        plan=plan,
        combine=combine,
        method=method,
        precision=precision,
    )


# --- finite differences and boxes ----------------------------------------------------------------
def laplace(
    input: Any,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    axes: int | Sequence[int] | None = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Discrete Laplacian, the sum of ``[1, -2, 1]`` along each axis: ``scipy.ndimage.laplace``.

    Examples:
      >>> import jaxconv
      >>> jaxconv.laplace([0.0, 1.0, 4.0, 9.0], mode="nearest").tolist()
      [1.0, 2.0, 2.0, -5.0]
    """
    fn = "laplace"
    x = as_input(input, fn)
    ax = filter_axes(axes, x.ndim, fn)
    modes = filter_modes(mode, len(ax), fn)
    w = jnp.asarray([1.0, -2.0, 1.0], real_dtype(x))
    terms = [[(w, (a,), (m,), (0,))] for a, m in zip(ax, modes, strict=True)]
    return execute(x, terms, cval, "sum", method, precision)


def uniform_filter(
    input: Any,
    size: int | Sequence[int] = 3,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    origin: int | Sequence[int] = 0,
    axes: int | Sequence[int] | None = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Moving average over a box of `size`, equal to ``scipy.ndimage.uniform_filter``.

    Even sizes are centred at ``size // 2`` (shifted by `origin`), as in scipy.

    Args:
      input: array; ints are promoted to float.
      size: box length, an int or one per axis (static); 1 leaves an axis alone.
      mode, cval, axes, method, precision: as in :func:`sobel`.
      origin: shift of the box, with ``-(size // 2) <= origin <= (size - 1) // 2``.

    Examples:
      >>> import jaxconv
      >>> jaxconv.uniform_filter([0.0, 3.0, 6.0, 9.0], 3, mode="nearest").tolist()
      [1.0, 3.0, 6.0, 8.0]
    """
    fn = "uniform_filter"
    x = as_input(input, fn)
    ax = filter_axes(axes, x.ndim, fn)
    sizes = per_axis(size, len(ax), "size", fn)
    origins = per_axis(origin, len(ax), "origin", fn)
    modes = filter_modes(mode, len(ax), fn)
    steps = []
    for a, s, o, m in zip(ax, sizes, origins, modes, strict=True):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"{fn}: `size` must be a positive int or one per axis; got {size!r}.")
        _check_origin(o, s, fn)
        if s > 1:
            steps.append((jnp.full((int(s),), 1.0 / s, real_dtype(x)), (a,), (m,), (int(o),)))
    return execute(x, [steps], cval, method=method, precision=precision)


def _check_origin(origin: Any, size: int, fn: str) -> None:
    if not isinstance(origin, (int, np.integer)) or not -(size // 2) <= origin <= (size - 1) // 2:
        raise ValueError(
            f"{fn}: `origin` must be an int with -(size // 2) <= origin <= "
            f"(size - 1) // 2 for size {size}; got {origin!r}."
        )


# --- generic N-D filters -------------------------------------------------------------------------
def _generic(fn, input, weights, mode, cval, origin, axes, method, precision, flip):
    x = as_input(input, fn)
    ax = filter_axes(axes, x.ndim, fn)
    w = jnp.asarray(weights)
    if w.ndim != len(ax) or w.size == 0:
        raise ValueError(
            f"{fn}: `weights` must have one dimension per filtered axis "
            f"({len(ax)}); got shape {w.shape}."
        )
    origins = [
        int(o) if isinstance(o, (int, np.integer)) else o
        for o in per_axis(origin, len(ax), "origin", fn)
    ]
    if flip:  # scipy: convolve = correlate with the flipped kernel, origin negated (-1 if even)
        w = jnp.flip(w)
        origins = [
            -o - (1 - m % 2) if isinstance(o, int) else o
            for o, m in zip(origins, w.shape, strict=True)
        ]
    for o, m in zip(origins, w.shape, strict=True):
        _check_origin(o, m, fn)
    if jnp.iscomplexobj(w):
        raise NotImplementedError(f"{fn}: complex `weights` are not supported; got {w.dtype}.")
    step = (w.astype(real_dtype(x)), ax, filter_modes(mode, len(ax), fn), tuple(origins))
    return execute(x, [[step]], cval, method=method, precision=precision)


def ndimage_correlate(
    input: Any,
    weights: Any,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    origin: int | Sequence[int] = 0,
    axes: int | Sequence[int] | None = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """N-D correlation with ndimage's centring and modes: ``scipy.ndimage.correlate``.

    ``out[i] = Σ_j w[j] x[i + j - m // 2 - origin]`` with `x` extended by `mode`; the output has the
    shape of `input`. `weights` has one dimension per filtered axis (all axes by default), and
    may be traced (a learnable filter). Real weights only.

    Examples:
      >>> import jaxconv
      >>> jaxconv.ndimage_correlate([0.0, 1.0, 2.0], [1.0, 0.0, -1.0]).tolist()
      [-1.0, -2.0, -1.0]
    """
    return _generic(
        "ndimage_correlate", input, weights, mode, cval, origin, axes, method, precision, False
    )


def ndimage_convolve(
    input: Any,
    weights: Any,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    origin: int | Sequence[int] = 0,
    axes: int | Sequence[int] | None = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """N-D convolution with ndimage's centring and modes: ``scipy.ndimage.convolve``.

    Applies any jaxconv kernel with boundary handling and the shape of `input`, e.g.
    ``ndimage_convolve(x, sobel_kernel())`` equals ``scipy.ndimage.sobel(x)``.

    Examples:
      >>> import jaxconv
      >>> jaxconv.ndimage_convolve([0.0, 1.0, 2.0], [1.0, 0.0, -1.0]).tolist()
      [1.0, 2.0, 1.0]
    """
    return _generic(
        "ndimage_convolve", input, weights, mode, cval, origin, axes, method, precision, True
    )
