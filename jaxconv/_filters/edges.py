r"""Classic finite-difference kernels: Sobel, Prewitt, Scharr, Laplace and box.

They are *convolution* kernels, like every kernel in jaxconv: ``scipy.ndimage.convolve(x, k)``
(or ``jaxconv.convolve(x, k, mode="same")`` in the interior) equals the matching
scipy.ndimage filter, e.g. ``scipy.ndimage.sobel(x, axis)``. scipy.ndimage's sobel is a
*correlation* with ``[-1, 0, 1]``, which is a convolution with ``[1, 0, -1]``; so the 2-D
``sobel_kernel(axis=-1)`` is Wikipedia's ``Gx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]``, and a
positive response means the signal increases along `axis`. Flip the kernel (``k[::-1, ::-1]``)
to use it with a correlation (CNN layers, ``cv2.filter2D``).

Each kernel is separable: a derivative ``[1, 0, -1]`` along `axis` times a smoothing on every
other axis: ``[1, 2, 1]`` (Sobel: binomial, variance 1/2), ``[1, 1, 1]`` (Prewitt: box) or
``[3, 10, 3]`` (Scharr: optimised for rotation invariance of the gradient direction).
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv._conv.convolve import planned
from jaxconv._conv.plan import real_dtype
from jaxconv._filters.ndimage import as_input, filter_axes, filter_modes, filter_plan

_SMOOTHING = {"sobel": (1.0, 2.0, 1.0), "prewitt": (1.0, 1.0, 1.0), "scharr": (3.0, 10.0, 3.0)}
_DERIVATIVE = (1.0, 0.0, -1.0)


def _dtype(dtype: Any, fn: str) -> Any:
    if dtype is None:
        return jnp.result_type(float)  # float64 when x64 is enabled, else float32
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(f"{fn}: `dtype` must be a floating dtype; got {dtype}.")
    return dtype


def _ndim(ndim: Any, fn: str) -> int:
    if isinstance(ndim, bool) or not isinstance(ndim, (int, np.integer)) or ndim < 1:
        raise ValueError(f"{fn}: `ndim` must be a positive int; got {ndim!r}.")
    return int(ndim)


def _axis(axis: Any, ndim: int, fn: str) -> int:
    if (
        isinstance(axis, bool)
        or not isinstance(axis, (int, np.integer))
        or not (-ndim <= axis < ndim)
    ):
        raise ValueError(f"{fn}: `axis` must be an int in [-{ndim}, {ndim}); got {axis!r}.")
    return int(axis) % ndim


def separable_weights(name: str, ndim: int, axis: int, normalize: bool) -> list[np.ndarray]:
    """The 1-D convolution factors of a derivative kernel, one per axis (numpy, float64)."""
    smooth = np.asarray(_SMOOTHING[name])
    deriv = np.asarray(_DERIVATIVE)
    if normalize:
        smooth, deriv = smooth / smooth.sum(), deriv / 2.0
    return [deriv if a == axis else smooth for a in range(ndim)]


def _derivative_kernel(name, ndim, axis, normalize, dtype):
    fn = f"{name}_kernel"
    ndim = _ndim(ndim, fn)
    axis = _axis(axis, ndim, fn)
    factors = separable_weights(name, ndim, axis, normalize)
    k = factors[0]
    for f in factors[1:]:
        k = np.multiply.outer(k, f)
    return jnp.asarray(k, _dtype(dtype, fn))


def sobel_kernel(
    ndim: int = 2, axis: int = -1, *, normalize: bool = False, dtype: Any = None
) -> jax.Array:
    """Sobel derivative kernel along `axis`, N-D, as a convolution kernel.

    ``scipy.ndimage.convolve(x, sobel_kernel(x.ndim, axis), mode=m)`` equals
    ``scipy.ndimage.sobel(x, axis, mode=m)``.

    Args:
      ndim: number of dimensions.
      axis: the derivative axis (default the last, "x").
      normalize: if True, divide so the result estimates the gradient (``/ 8`` in 2-D):
        ``[1, 2, 1] / 4`` smoothing and ``[1, 0, -1] / 2`` central difference.
      dtype: default float (float64 when x64 is enabled).

    Returns:
      A ``(3,) * ndim`` kernel.

    Examples:
      >>> import jaxconv
      >>> jaxconv.sobel_kernel().tolist()
      [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]
    """
    return _derivative_kernel("sobel", ndim, axis, normalize, dtype)


def prewitt_kernel(
    ndim: int = 2, axis: int = -1, *, normalize: bool = False, dtype: Any = None
) -> jax.Array:
    """Prewitt derivative kernel (box smoothing ``[1, 1, 1]``), like ``scipy.ndimage.prewitt``.

    Arguments as in :func:`sobel_kernel` (`normalize` divides by 6 in 2-D).

    Examples:
      >>> import jaxconv
      >>> jaxconv.prewitt_kernel(axis=0).tolist()
      [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]]
    """
    return _derivative_kernel("prewitt", ndim, axis, normalize, dtype)


def scharr_kernel(
    ndim: int = 2, axis: int = -1, *, normalize: bool = False, dtype: Any = None
) -> jax.Array:
    """Scharr derivative kernel (smoothing ``[3, 10, 3]``), as in OpenCV's ``cv2.Scharr``.

    scipy.ndimage has no scharr; ``jaxconv.scharr`` applies this kernel with ndimage's modes and
    ``skimage.filters.scharr`` uses the normalised version (``normalize=True``: ``/ 32``).
    Arguments as in :func:`sobel_kernel`.

    Examples:
      >>> import jaxconv
      >>> jaxconv.scharr_kernel()[:, 0].tolist()
      [3.0, 10.0, 3.0]
    """
    return _derivative_kernel("scharr", ndim, axis, normalize, dtype)


def laplace_kernel(ndim: int = 2, points: int | None = None, *, dtype: Any = None) -> jax.Array:
    """Discrete Laplacian stencil, a ``(3,) * ndim`` kernel.

    ``points=None`` (or 5 in 2-D, 3 in 1-D, 7 in 3-D) is the sum of ``[1, -2, 1]`` along every axis,
    what ``scipy.ndimage.laplace`` applies. ``points=9`` (2-D only) is the isotropic stencil
    ``[[1, 4, 1], [4, -20, 4], [1, 4, 1]] / 6``, which also approximates ∇² to second order but
    with an error that does not depend on direction. (The sometimes-quoted
    ``[[1, 1, 1], [1, -8, 1], [1, 1, 1]]`` approximates 3∇².)

    Examples:
      >>> import jaxconv
      >>> jaxconv.laplace_kernel().tolist()
      [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]
    """
    fn = "laplace_kernel"
    ndim = _ndim(ndim, fn)
    dtype = _dtype(dtype, fn)
    if points is None or points == 2 * ndim + 1:
        k = np.zeros((3,) * ndim)
        centre = (1,) * ndim
        for a in range(ndim):
            for j, w in zip((0, 1, 2), (1.0, -2.0, 1.0), strict=True):
                index = list(centre)
                index[a] = j
                k[tuple(index)] += w
        return jnp.asarray(k, dtype)
    if points == 9 and ndim == 2:
        return jnp.asarray(
            np.array([[1.0, 4.0, 1.0], [4.0, -20.0, 4.0], [1.0, 4.0, 1.0]]) / 6.0, dtype
        )
    raise ValueError(
        f"{fn}: `points` must be None, {2 * ndim + 1} or (in 2-D) 9; got {points!r} "
        f"for ndim={ndim}."
    )


def box_kernel(size: int | Sequence[int], ndim: int | None = None, *, dtype: Any = None):
    """Normalised box (mean) kernel of `size` (an int, or one per axis), like uniform_filter's.

    Even sizes are allowed; ``ndimage_correlate(x, box_kernel(size))`` then reproduces
    ``scipy.ndimage.uniform_filter``'s centring (``size // 2``) — a convolution centres an even
    kernel one sample earlier.

    Args:
      size: positive int or one per axis.
      ndim: number of dimensions for an int `size`; default 2 (or ``len(size)``).
      dtype: default float.

    Examples:
      >>> import jaxconv
      >>> jaxconv.box_kernel(2).tolist()
      [[0.25, 0.25], [0.25, 0.25]]
    """
    fn = "box_kernel"
    if isinstance(size, (tuple, list)):
        sizes = tuple(size)
        if ndim is not None and _ndim(ndim, fn) != len(sizes):
            raise ValueError(f"{fn}: `size` has {len(sizes)} entries but `ndim`={ndim}.")
    else:
        sizes = (size,) * _ndim(2 if ndim is None else ndim, fn)
    if not sizes or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes
    ):
        raise ValueError(f"{fn}: `size` must be a positive int or one per axis; got {size!r}.")
    return jnp.full(sizes, 1.0 / np.prod(sizes), _dtype(dtype, fn))


# --- filters -------------------------------------------------------------------------------------
def _derivative_steps(name, x, axis, ax, modes, fn):
    if (
        isinstance(axis, bool)
        or not isinstance(axis, (int, np.integer))
        or not (-x.ndim <= axis < x.ndim)
    ):
        raise ValueError(
            f"{fn}: `axis` must be an axis of an array with {x.ndim} dimensions; got {axis!r}."
        )
    axis = int(axis) % x.ndim
    if axis not in ax:
        raise ValueError(f"{fn}: `axis` ({axis}) must be one of `axes` {ax}.")
    factors = separable_weights(name, x.ndim, axis, normalize=False)
    dtype = real_dtype(x)
    # ndimage correlates with [-1, 0, 1]: the flip of the convolution factor [1, 0, -1].
    order = [axis] + [a for a in ax if a != axis]
    return [
        (jnp.asarray(factors[a][::-1], dtype), (a,), (modes[ax.index(a)],), (0,)) for a in order
    ]


def _edge_filter(name, input, axis, mode, cval, axes, output, method, precision):
    fn = name
    x = as_input(input, fn, output)
    ax = filter_axes(axes, x.ndim, fn)
    steps = _derivative_steps(name, x, axis, ax, filter_modes(mode, len(ax), fn), fn)
    return filter_plan(x, [steps], cval, method=method, precision=precision, output=output, fn=fn)


@planned
def sobel(
    input: Any,
    axis: int = -1,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    axes: Sequence[int] | None = None,
    output: Any = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Sobel derivative along `axis`, equal to ``scipy.ndimage.sobel``.

    A correlation with ``[-1, 0, 1]`` along `axis` and ``[1, 2, 1]`` along the other axes (all
    others, as in scipy, or those in `axes`, e.g. ``(-2, -1)`` for a batch of images); the same
    as convolving with :func:`sobel_kernel`. Unnormalised (divide by 8 in 2-D for a gradient).

    Args:
      input: array; ints are promoted to float.
      axis: derivative axis.
      mode: ndimage mode, or one per axis in `axes` (default: per input axis).
      cval: value outside for ``mode="constant"``.
      axes: axes to smooth/differentiate; default all.
      output: dtype of the result (default: the input's float dtype), as scipy.ndimage's
        `output`; each 1-D pass is rounded to it as in scipy (float to int truncates toward 0).
        An array is rejected: JAX arrays cannot be written in place.
      method, precision: passed to the convolution engine.

    Examples:
      >>> import jaxconv
      >>> jaxconv.sobel([[0.0, 1.0, 2.0, 3.0]] * 3)[1].tolist()
      [4.0, 8.0, 8.0, 4.0]
    """
    return _edge_filter("sobel", input, axis, mode, cval, axes, output, method, precision)


@planned
def prewitt(
    input: Any,
    axis: int = -1,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    axes: Sequence[int] | None = None,
    output: Any = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Prewitt derivative along `axis` (smoothing ``[1, 1, 1]``): ``scipy.ndimage.prewitt``.

    Arguments as in :func:`sobel`.

    Examples:
      >>> import jaxconv
      >>> jaxconv.prewitt([[0.0, 1.0, 2.0, 3.0]] * 3)[1].tolist()
      [3.0, 6.0, 6.0, 3.0]
    """
    return _edge_filter("prewitt", input, axis, mode, cval, axes, output, method, precision)


@planned
def scharr(
    input: Any,
    axis: int = -1,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    axes: Sequence[int] | None = None,
    output: Any = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Scharr derivative along `axis` (smoothing ``[3, 10, 3]``), like ``cv2.Scharr``.

    scipy.ndimage has none; this is ``scipy.ndimage.convolve(x, scharr_kernel(x.ndim, axis))``
    (unnormalised; skimage's ``scharr`` divides by 32), except with ``mode="constant"`` and a
    non-zero `cval`, where, like ndimage's sobel, it runs one 1-D pass per axis. Arguments as in
    :func:`sobel`.

    Examples:
      >>> import jaxconv
      >>> jaxconv.scharr([[0.0, 1.0, 2.0, 3.0]] * 3)[1].tolist()
      [16.0, 32.0, 32.0, 16.0]
    """
    return _edge_filter("scharr", input, axis, mode, cval, axes, output, method, precision)


@planned
def edge_magnitude(
    input: Any,
    operator: str = "sobel",
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    axes: Sequence[int] | None = None,
    output: Any = None,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Gradient magnitude ``sqrt(Σ_a op(x, a)²)`` of a finite-difference operator.

    Equals ``np.hypot(scipy.ndimage.sobel(x, 0), scipy.ndimage.sobel(x, 1))`` in 2-D (and the
    same with prewitt); unnormalised. Computed with scaling, as ``hypot`` (``s · sqrt(Σ (o/s)²)``,
    ``s = max |o|``), so float32 gradients beyond ~1.8e19 do not overflow; NaN gives NaN (missing
    data is not "no edge"), an infinite term gives inf (as ``hypot``, even beside a NaN). The
    gradient is 0 where the magnitude is 0.

    Args:
      input: array; ints are promoted to float.
      operator: ``"sobel"``, ``"prewitt"`` or ``"scharr"``.
      mode, cval, axes, output, method, precision: as in :func:`sobel`; `axes` are
        differentiated.

    Examples:
      >>> import jaxconv
      >>> jaxconv.edge_magnitude([[0.0, 1.0, 2.0, 3.0]] * 3)[1].tolist()
      [4.0, 8.0, 8.0, 4.0]
    """
    fn = "edge_magnitude"
    if operator not in ("sobel", "prewitt", "scharr"):
        raise ValueError(
            f"{fn}: `operator` must be 'sobel', 'prewitt' or 'scharr'; got {operator!r}."
        )
    x = as_input(input, fn, output)
    ax = filter_axes(axes, x.ndim, fn)
    modes = filter_modes(mode, len(ax), fn)
    terms = [_derivative_steps(operator, x, a, ax, modes, fn) for a in ax]
    return filter_plan(x, terms, cval, "norm", method, precision, output=output, fn=fn)
