"""scipy.ndimage's linear filters, jittable and differentiable, on jaxconv's convolution engine.

Modes are scipy.ndimage's, per axis or one for all: ``reflect`` (``d c b a | a b c d | d c b a``,
also ``grid-mirror``), ``constant`` with `cval` (also ``grid-constant``), ``nearest``, ``mirror``
(``d c b | a b c d | c b a``) and ``wrap`` (also ``grid-wrap``). Filters correlate as ndimage does,
``out[i] = Σ_j w[j] x[i + j - m // 2 - origin]``, one 1-D pass per axis for separable filters (so
even a non-zero `cval` gives scipy's result). Differences from scipy: integer inputs give float
outputs (ndimage keeps the input dtype; pass ``output=`` a dtype to choose one), `output` cannot
be an array (JAX arrays are immutable), and a negative σ is an error (scipy silently skips it;
σ = 0 skips an axis in both).

Under ``jit`` the kernel size is static: a traced (learnable) σ needs an explicit `radius`.

NaN and inf: as in scipy.ndimage, a non-finite sample (or `cval`) spoils only the outputs within
the kernel's reach, and gradient magnitudes give NaN (not 0) there. An FFT would spread it over
the whole output, so ``method="auto"`` checks a concrete input (one ``isfinite`` pass over it, only
when the shapes alone would pick ``fft`` or ``os``) and then runs ``direct`` or ``shift``
instead. A traced input (under ``jit``, ``grad`` or ``vmap``) cannot be checked: "auto" chooses
from the shapes, and an FFT choice turns one NaN into an all-NaN result; pass
``method="direct"`` for data that may hold NaN or inf. Forcing ``method="fft"`` or ``"os"`` spreads
them too. Two differences from scipy remain: ``uniform_filter`` in scipy keeps a running sum that
carries a NaN along the rest of each line (jaxconv keeps it within the box), and scipy's N-D
``correlate``/``convolve`` skip zero weights, where jaxconv computes ``NaN · 0 = NaN``.
"""

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv._conv import methods as _methods
from jaxconv._conv.boundary import canonical_boundaries
from jaxconv._conv.convolve import check_fillvalue, planned
from jaxconv._conv.methods import promote
from jaxconv._conv.plan import Built, Op, Plan, real_dtype
from jaxconv._util import device_array, per_axis

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
def as_input(x: Any, fn: str, output: Any = None) -> jax.Array:
    """The filter's `input` as a float (or complex) array, at least as precise as `output`."""
    try:
        x = device_array(x)
    except TypeError as err:
        raise TypeError(f"{fn}: `input` must be an array of numbers; got {type(x)}.") from err
    if x.ndim == 0:
        raise ValueError(f"{fn}: `input` must have >= 1 dimension; got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    dtype = output_dtype(output, x, fn)
    if dtype is not None and dtype.kind in "fc":
        # Compute (kernels included) at least as precisely as the result (scipy: in float64).
        x = x.astype(promote(x, jnp.finfo(dtype).dtype))
    return x


def filter_axes(axes: Any, ndim: int, fn: str) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    axes_t = tuple(axes) if isinstance(axes, (tuple, list, np.ndarray)) else (axes,)
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


def output_dtype(output: Any, x: jax.Array, fn: str) -> np.dtype | None:
    """scipy.ndimage's `output` argument, as a dtype only (JAX cannot write into an array)."""
    if output is None:
        return None
    if isinstance(output, (jax.Array, np.ndarray)):
        raise TypeError(
            f"{fn}: `output` must be a dtype, such as np.float32; JAX arrays are immutable, so "
            f"the result cannot be written into an array (use the returned one); got an array "
            f"of shape {output.shape}."
        )
    try:
        dtype = np.dtype(output)
    except TypeError as err:
        raise TypeError(f"{fn}: `output` must be a dtype; got {output!r}.") from err
    if dtype.kind not in "biufc" and dtype != jnp.bfloat16:
        raise TypeError(f"{fn}: `output` must be a numeric dtype; got {dtype}.")
    if jnp.iscomplexobj(x) and dtype.kind != "c":
        raise ValueError(
            f"{fn}: `output` must be a complex dtype for a complex `input`; got {dtype}."
        )
    return dtype


# --- plans ----------------------------------------------------------------------------------------
def filter_plan(x, terms, cval, combine="first", method="auto", precision=None, *, output=None,
                fn) -> Plan | jax.Array:  # fmt: skip
    """The plan of a filter: `terms` are lists of (kernel, axes, modes, origins) steps.

    A kernel may be traced, or :class:`~jaxconv._conv.plan.Built` inside the program. ndimage's
    centring, ``out[i] = Σ_j w[j] x[i + j - m // 2 - origin]``, becomes each step's pads here.
    `x` comes from ``as_input(input, fn, output)``; `output` is the filter's argument (None or a
    dtype) and `fn` its name, for the messages. An empty `x` gives the (empty) result itself.
    """
    dtype = output_dtype(output, x, fn)
    check_fillvalue(fn, "cval", cval, x.dtype)
    if x.size == 0:  # an empty result, as scipy's
        return jnp.zeros(x.shape, x.dtype if dtype is None else dtype)
    steps = tuple(tuple((tuple(a), tuple(m), tuple(o)) for _, a, m, o in t) for t in terms)
    weights = tuple(
        tuple(k if isinstance(k, Built) else device_array(k) for k, *_ in t) for t in terms
    )
    method = _methods.check_method(fn, method)
    if method == "auto":
        method = _local_method(x, weights, steps, cval)
    ops = tuple(
        tuple(
            Op(w, axes, _centred_pads(w.shape, o), canonical_boundaries(m, len(axes), "filter"))
            for (axes, m, o), w in zip(term, term_w, strict=True)
        )
        for term, term_w in zip(steps, weights, strict=True)
    )
    out_dtype = x.dtype if dtype is None else dtype
    return Plan(x, ops, device_array(cval), combine, method, precision, out_dtype, real_dtype(x),
                program=True, rounding=dtype, fn=fn)  # fmt: skip


def _centred_pads(shape: Sequence[int], origins: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """ndimage's centring of a kernel of `shape` shifted by `origins`, as (before, after) pads."""
    return tuple((m // 2 + o, m - 1 - m // 2 - o) for m, o in zip(shape, origins, strict=True))


def _local_method(x, weights, plan, cval) -> str:
    """ "auto", or the cheapest method that keeps NaN and inf local where "auto" would not.

    An FFT spreads a non-finite sample (or fill value) over the whole output, where
    scipy.ndimage's direct sums keep it within the kernel's reach. So when "auto" would pick an
    FFT method for some step (from shapes alone, as ``_convolve._plan`` does for a traced
    kernel) and the concrete input or `cval` holds NaN or inf, every step runs by ``direct`` or
    ``shift`` instead. Traced inputs cannot be inspected: "auto" stays (see the module notes).
    A :class:`Built` kernel counts with its recipe's shape (a bucket's), as the program sees it.
    """
    backend = jax.default_backend()
    shapes = []
    for term, term_w in zip(plan, weights, strict=True):
        for (axes, modes, _), w in zip(term, term_w, strict=True):
            m = w.shape
            n = [x.shape[a] + k - 1 for a, k in zip(axes, m, strict=True)]
            batch = x.size // math.prod(x.shape[a] for a in axes)
            shapes.append((n, list(m), batch, "constant" in modes))
    spreading = _methods.SPREADING
    if not any(_methods.auto_method(n, m, b, backend) in spreading for n, m, b, _ in shapes):
        return "auto"
    reads_fill = any(c for *_, c in shapes)
    if not _methods.holds_nonfinite(x, cval if reads_fill else None):
        return "auto"
    return _methods.local_method([(n, m, b) for n, m, b, _ in shapes], backend)


# --- finite differences and boxes ----------------------------------------------------------------
@planned
def laplace(
    input: Any,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    axes: int | Sequence[int] | None = None,
    output: Any = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Discrete Laplacian, the sum of ``[1, -2, 1]`` along each axis: ``scipy.ndimage.laplace``.

    Arguments as in :func:`sobel` (`output`: a dtype; each axis' term is rounded to it, as in
    scipy, before the sum).

    Examples:
      >>> import jaxconv
      >>> jaxconv.laplace([0.0, 1.0, 4.0, 9.0], mode="nearest").tolist()
      [1.0, 2.0, 2.0, -5.0]
    """
    fn = "laplace"
    x = as_input(input, fn, output)
    ax = filter_axes(axes, x.ndim, fn)
    modes = filter_modes(mode, len(ax), fn)
    w = jnp.asarray([1.0, -2.0, 1.0], real_dtype(x))
    terms = [[(w, (a,), (m,), (0,))] for a, m in zip(ax, modes, strict=True)]
    return filter_plan(x, terms, cval, "sum", method, precision, output=output, fn=fn)


@planned
def uniform_filter(
    input: Any,
    size: int | Sequence[int] = 3,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    origin: int | Sequence[int] = 0,
    axes: int | Sequence[int] | None = None,
    output: Any = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Moving average over a box of `size`, equal to ``scipy.ndimage.uniform_filter``.

    Even sizes are centred at ``size // 2`` (shifted by `origin`), as in scipy.

    Args:
      input: array; ints are promoted to float.
      size: box length, an int or one per axis (static); 1 leaves an axis alone.
      mode, cval, axes, output, method, precision: as in :func:`sobel`.
      origin: shift of the box, with ``-(size // 2) <= origin <= (size - 1) // 2``.

    Examples:
      >>> import jaxconv
      >>> jaxconv.uniform_filter([0.0, 3.0, 6.0, 9.0], 3, mode="nearest").tolist()
      [1.0, 3.0, 6.0, 8.0]
    """
    fn = "uniform_filter"
    x = as_input(input, fn, output)
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
    return filter_plan(x, [steps], cval, method=method, precision=precision, output=output, fn=fn)


def _check_origin(origin: Any, size: int, fn: str) -> None:
    if not isinstance(origin, (int, np.integer)) or not -(size // 2) <= origin <= (size - 1) // 2:
        raise ValueError(
            f"{fn}: `origin` must be an int with -(size // 2) <= origin <= "
            f"(size - 1) // 2 for size {size}; got {origin!r}."
        )


# --- generic N-D filters -------------------------------------------------------------------------
def _generic(fn, input, weights, mode, cval, origin, axes, output, method, precision, flip):
    x = as_input(input, fn, output)
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
    # As in scipy, the dimensions of `weights` (and the modes) follow the sorted `axes`, and
    # ``origin[i]`` belongs to ``axes[i]``, except when every axis is filtered: then scipy (1.17)
    # ignores the order of `axes` and ``origin[i]`` belongs to axis i.
    ax_sorted = tuple(sorted(ax))
    if len(ax) < x.ndim:
        by_axis = dict(zip(ax, origins, strict=True))
        origins = [by_axis[a] for a in ax_sorted]
    for o, m in zip(origins, w.shape, strict=True):
        _check_origin(o, m, fn)  # the same range before and after the flip below
    if flip:  # scipy: convolve = correlate with the flipped kernel, origin negated (-1 if even)
        w = jnp.flip(w)
        origins = [-o - (1 - m % 2) for o, m in zip(origins, w.shape, strict=True)]
    if jnp.iscomplexobj(w):
        raise NotImplementedError(f"{fn}: complex `weights` are not supported; got {w.dtype}.")
    step = (w.astype(real_dtype(x)), ax_sorted, filter_modes(mode, len(ax), fn), tuple(origins))
    return filter_plan(x, [[step]], cval, method=method, precision=precision, output=output, fn=fn)


@planned
def ndimage_correlate(
    input: Any,
    weights: Any,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    origin: int | Sequence[int] = 0,
    axes: int | Sequence[int] | None = None,
    output: Any = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """N-D correlation with ndimage's centring and modes: ``scipy.ndimage.correlate``.

    ``out[i] = Σ_j w[j] x[i + j - m // 2 - origin]`` with `x` extended by `mode`; the output has the
    shape of `input`. `weights` has one dimension per filtered axis (all axes by default), and
    may be traced (a learnable filter). Real weights only. As in scipy, the dimensions of
    `weights` (and per-axis modes) follow the axes in increasing order, and ``origin[i]`` shifts
    along ``axes[i]`` (along axis i when `axes` lists every axis). `output` is a dtype for the
    result, as in :func:`sobel`.

    Examples:
      >>> import jaxconv
      >>> jaxconv.ndimage_correlate([0.0, 1.0, 2.0], [1.0, 0.0, -1.0]).tolist()
      [-1.0, -2.0, -1.0]
    """
    return _generic(
        "ndimage_correlate",
        input,
        weights,
        mode,
        cval,
        origin,
        axes,
        output,
        method,
        precision,
        False,
    )


@planned
def ndimage_convolve(
    input: Any,
    weights: Any,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    origin: int | Sequence[int] = 0,
    axes: int | Sequence[int] | None = None,
    output: Any = None,
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
        "ndimage_convolve",
        input,
        weights,
        mode,
        cval,
        origin,
        axes,
        output,
        method,
        precision,
        True,
    )
