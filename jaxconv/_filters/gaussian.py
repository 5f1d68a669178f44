"""Gaussian filters like scipy.ndimage's, separable or with a full covariance, differentiable in σ.

See ``_filters/ndimage.py`` for modes and the differences from scipy.ndimage.

Compiled programs are shared across σ: the kernel's static half-size is the radius' bucket (a
power of two from 8, ``_buckets.radius_bucket``), σ and the true radius are traced, and the taps
beyond the radius are exactly zero, so a sweep of σ from 0.5 to 16 compiles four programs (and
the method, direct or FFT, follows the bucket). Two cases keep the exact radius, hence a program
per radius: a traced input (the caller's program, which buckets would not spare a compilation)
and an input or read `cval` holding NaN or inf (a zero tap times NaN is NaN: it would spread
beyond scipy's reach).
"""

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv._conv.convolve import planned
from jaxconv._conv.methods import holds_nonfinite
from jaxconv._conv.plan import Built
from jaxconv._filters.ndimage import as_input, filter_axes, filter_modes, filter_plan
from jaxconv._kernels.buckets import radius_bucket
from jaxconv._kernels.derivatives import _full_cov_derivative
from jaxconv._kernels.gaussian import Gaussian, _sampled
from jaxconv._kernels.gaussian_core import (
    check_discretization,
    check_truncate,
    crop,
    discrete_fft_size,
    gaussian_taps,
    outer,
    parse_cov,
    scipy_radius,
    static_radius,
    traced_size_error,
)
from jaxconv._util import check_real, concrete, float_dtype, per_axis, per_axis_ints

_SIGMA = "a real number or one per axis"


class _Taps(NamedTuple):
    """Recipe of a filter's 1-D kernel (see ``_plan.Built``): params ``(σ, true radius)``.

    Static: the half-size `bucket` (``_buckets.radius_bucket`` of the radius for a concrete σ,
    so every σ of a bucket runs one program; the radius itself for a traced σ, whose program is
    the caller's), the derivative `order`, the `discretization` and its FFT `size`.
    """

    bucket: int
    order: int
    discretization: str
    size: int | None

    @property
    def shape(self) -> tuple[int]:
        return (2 * self.bucket + 1,)

    def build(self, params):
        sd, radius = params
        k = gaussian_taps(sd, radius, self.bucket, self.order, self.discretization, self.size)
        return k[::-1]  # scipy correlates the flip

    def crop(self, kernel, params):
        """The built kernel without its zero taps (the true radius is concrete)."""
        return crop(kernel, (self.bucket,), (int(params[1]),))


class _CovTaps(NamedTuple):
    """Recipe of the N-D kernel of a full covariance (see ``_Taps``), derivative `orders` per axis.

    Params ``(cov, Cholesky factor or None, mean or None, true radii)``; static half-sizes
    `buckets` (the radii's buckets, or the radii themselves).
    """

    buckets: tuple[int, ...]
    orders: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(2 * b + 1 for b in self.buckets)

    def build(self, params):
        arr, chol, mean, radii = params
        if any(self.orders):
            k = _full_cov_derivative(
                arr, radii, orders=self.orders, halves=self.buckets, normalize=True
            )
        else:
            offsets = [np.arange(-b, b + 1) for b in self.buckets]
            pts = jnp.asarray(np.stack(np.meshgrid(*offsets, indexing="ij"), -1), arr.dtype)
            keep = outer(
                [jnp.abs(jnp.asarray(o, jnp.int32)) <= radii[a] for a, o in enumerate(offsets)]
            )
            k = _sampled(pts, mean, arr, chol, keep, form="full", normalize=True)
        return jnp.flip(k)  # scipy correlates the flip

    def crop(self, kernel, params):
        return crop(kernel, self.buckets, [int(r) for r in params[3]])


def _cov_kernel(arr, gauss, mean, orders, radius, truncate, bucketed) -> Built:
    """The full-covariance filter's kernel (sampled, sum-normalised, as :func:`gaussian_kernel`'s
    and :func:`gaussian_derivative_kernel`'s ``"sample"``), built in the filter's program."""
    fn = "gaussian_filter"
    ndim = arr.shape[0]
    dtype = float_dtype(None, arr, mean)
    value = concrete(arr)
    shift = np.zeros(ndim) if mean is None else concrete(mean)
    if radius is not None:
        radii = static_radius(radius, ndim, fn)
    elif value is None or shift is None:
        raise traced_size_error(fn, "cov" if value is None else "mean")
    else:  # scipy's rule, as gaussian_kernel's (its mean widens the kernel)
        radii = [
            int(truncate * math.sqrt(float(value[a, a])) + abs(float(shift[a])) + 0.5)
            for a in range(ndim)
        ]
    bucketed = bucketed and value is not None and shift is not None
    buckets = tuple(radius_bucket(r) if bucketed else r for r in radii)
    chol = None if gauss is None else gauss.cholesky  # reuses the Gaussian's factor
    params = (
        arr if arr.dtype == dtype else arr.astype(dtype),
        chol,
        None if mean is None else jnp.asarray(mean, dtype),
        np.asarray(radii, np.int32),
    )
    return Built(_CovTaps(buckets, orders), params)


def _bucketed(x: jax.Array, cval: Any, modes: Sequence[str]) -> bool:
    """Whether the kernels may take their bucket's size, with zero taps beyond the radius.

    Not for an input (or a `cval` that is read) holding NaN or inf: a zero tap times NaN or inf
    is NaN, which would reach beyond scipy's radius. Nor for a traced input: it runs in the
    caller's program, which a bucket would not spare a compilation (only cost taps). Nor for a
    global array of several processes (multi-host), whose values this process cannot read.
    """
    if isinstance(x, jax.core.Tracer) or not x.is_fully_addressable:
        return False
    return not holds_nonfinite(x, cval if "constant" in modes else None)


def _gaussian_steps(bucketed, sigmas, orders, axes, modes, truncate, radius, discretization, fn):
    """1-D steps of scipy's gaussian_filter: axes with a concrete σ <= 1e-15 are skipped.

    A traced σ cannot skip its axis or raise: its kernel is a delta (the identity, as skipping)
    where σ <= 1e-15, and NaN where σ is negative, NaN or infinite. With `bucketed` (see
    :func:`_bucketed`), a concrete σ's kernel has its radius' bucket as static half-size.
    """
    radii = per_axis(radius, len(axes), "radius", fn)
    steps = []
    for s, o, a, m, r in zip(sigmas, orders, axes, modes, radii, strict=True):
        check_real(s, "sigma", fn, _SIGMA)
        value = concrete(s)
        if value is not None:
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{fn}: `sigma` must be finite and >= 0; got {float(value)}.")
            if value <= 1e-15:
                continue
        r = scipy_radius(s, truncate, fn) if r is None else static_radius(r, 1, fn)[0]
        bucket = bucketed and value is not None
        half = radius_bucket(r) if bucket else r
        size = None
        if discretization == "discrete":
            size = discrete_fft_size(half, s)
            size = radius_bucket(size) if bucket else size  # a σ-dependent length recompiles
        dtype = jnp.result_type(s, float)
        # device_put: jnp.asarray of a host value compiles a small program per shape and dtype
        sd = jnp.asarray(s, dtype) if value is None else jax.device_put(np.asarray(value, dtype))
        params = (sd, np.int32(r))
        steps.append((Built(_Taps(half, o, discretization, size), params), (a,), (m,), (0,)))
    return steps


def _sigma_list(sigma: Any, n: int, fn: str) -> tuple:
    if isinstance(sigma, (tuple, list)):
        return per_axis(sigma, n, "sigma", fn)
    check_real(sigma, "sigma", fn, _SIGMA)
    if np.ndim(sigma) == 0:
        return (sigma,) * n
    if np.shape(sigma) != (n,):
        raise ValueError(
            f"{fn}: `sigma` must be a scalar or have one entry per filtered axis "
            f"({n}); got shape {np.shape(sigma)}."
        )
    arr = sigma if isinstance(sigma, jax.Array) else np.asarray(sigma)
    return tuple(arr[i] for i in range(n))


@planned
def gaussian_filter(
    input: Any,
    sigma: Any = None,
    order: int | Sequence[int] = 0,
    *,
    cov: Any = None,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    truncate: float = 4.0,
    radius: int | Sequence[int] | None = None,
    axes: int | Sequence[int] | None = None,
    output: Any = None,
    discretization: str = "scipy",
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    r"""Gaussian filter, equal to ``scipy.ndimage.gaussian_filter``; also full covariance.

    With `sigma` (or a diagonal `cov`) it runs one 1-D pass per axis — the fast path — exactly as
    scipy does. With a non-diagonal (or traced) ``(N, N)`` `cov`, or a :class:`Gaussian`, it
    correlates once with the N-D kernel of :func:`gaussian_kernel` (sampled, sum-normalised:
    scipy's discretisation generalised) over the last N axes (or `axes`).

    Args:
      input: array ``(..., *spatial)``; ints are promoted to float.
      sigma: σ in pixels, a scalar or one per filtered axis; may be traced (then pass `radius`).
        A concrete σ must be finite and >= 0 (σ = 0 leaves its axis alone, as in scipy). A
        traced σ cannot be checked: σ <= 1e-15 gives the identity on its axis (a delta kernel,
        with a finite gradient), and a negative, NaN or infinite σ gives an all-NaN result.
      order: derivative order, an int or one per axis (as in scipy).
      cov: instead of `sigma`: variances, an ``(N, N)`` covariance or a :class:`Gaussian`
        (its mean shifts the kernel). A traced full `cov` needs `radius`.
      mode: ndimage boundary mode, or one per filtered axis.
      cval: value outside the input for ``mode="constant"``; may be traced.
      truncate: radius ``int(truncate * σ + 0.5)`` per axis, when `radius` is None: a
        concrete finite number >= 0 (not traced: it sets the kernel's size).
      radius: kernel half-size, an int or one per axis, instead of `truncate`'s (static under
        ``jit`` with a traced σ; else its bucket is, see the module notes).
      axes: axes to filter; default all (scipy), or the last N for an ``(N, N)`` `cov`.
      output: dtype of the result (default: the input's float dtype), as scipy.ndimage's
        `output`; each 1-D pass is rounded to it as in scipy (float to int truncates toward 0).
        An array is rejected: JAX arrays cannot be written in place.
      discretization: ``"scipy"`` (default), ``"sample"``, ``"integrate"`` or ``"discrete"``
        (separable path); the full path samples.
      method, precision: passed to the convolution engine (see ``jaxconv.convolve``). With
        ``"auto"``, a concrete input or `cval` holding NaN or inf runs a direct method, so the
        NaN stays local as in scipy; under ``jit`` pass ``method="direct"`` for such data (an
        FFT, which "auto" picks for large σ, makes the whole result NaN; see ``_filters``).

    Returns:
      The filtered array, same shape; float (or complex) dtype of the input, or `output`.

    Raises:
      ValueError: bad mode, shapes, negative σ, a non-PD `cov`, a traced σ without `radius`, or
        a NaN, infinite or negative `truncate`.
      TypeError: a `sigma`, `truncate` or `cval` that is not a real number, or a traced
        `truncate`.

    Examples:
      >>> import numpy as np, jaxconv
      >>> x = np.arange(50, step=2.0).reshape(5, 5)
      >>> print(np.asarray(jaxconv.gaussian_filter(x, 1.0))[0].round(2))
      [ 5.12  6.41  8.27 10.13 11.42]
    """
    fn = "gaussian_filter"
    check_discretization(discretization, fn)
    x = as_input(input, fn, output)
    check_truncate(truncate, fn)
    if (sigma is None) == (cov is None):
        raise ValueError(f"{fn}: pass exactly one of `sigma` and `cov`.")
    mean = gauss = None
    if cov is not None:
        if isinstance(cov, Gaussian):
            gauss, mean, cov = cov, cov.mean, cov.covariance
        arr, form = parse_cov(cov, fn)
        value = concrete(arr)
        diagonal = form != "full" or (
            value is not None and np.all(value == np.diag(np.diag(value)))
        )
        if mean is None and diagonal:
            n_cov = None if form == "scalar" else arr.shape[0]
            variances = arr if form != "full" else jnp.diagonal(arr)
            if axes is None and n_cov is not None:
                axes = tuple(range(x.ndim - n_cov, x.ndim))
            sigma = jnp.sqrt(variances)
            if sigma.ndim == 1:
                sigma = tuple(sigma[i] for i in range(sigma.shape[0]))
        else:
            n_cov = arr.shape[0] if form == "full" else 1
            ax = filter_axes(
                tuple(range(x.ndim - n_cov, x.ndim)) if axes is None else axes, x.ndim, fn
            )
            if len(ax) != n_cov:
                raise ValueError(
                    f"{fn}: `axes` must have one entry per dimension of `cov` "
                    f"({n_cov}); got {axes!r}."
                )
            if discretization not in ("scipy", "sample"):
                raise NotImplementedError(
                    f"{fn}: discretization={discretization!r} needs an axis-aligned `cov` "
                    "(concrete and diagonal); a full covariance is sampled ('sample')."
                )
            orders = per_axis_ints(order, n_cov, "order", fn)
            if any(orders) and mean is not None:
                raise NotImplementedError(f"{fn}: derivatives of an off-centre Gaussian.")
            modes = filter_modes(mode, n_cov, fn)
            k = _cov_kernel(arr, gauss, mean, orders, radius, truncate, _bucketed(x, cval, modes))
            step = (k, ax, modes, (0,) * n_cov)
            return filter_plan(
                x, [[step]], cval, method=method, precision=precision, output=output, fn=fn
            )
    ax = filter_axes(axes, x.ndim, fn)
    sigmas = _sigma_list(sigma, len(ax), fn)
    modes = filter_modes(mode, len(ax), fn)
    steps = _gaussian_steps(
        _bucketed(x, cval, modes),
        sigmas,
        per_axis_ints(order, len(ax), "order", fn),
        ax,
        modes,
        truncate,
        radius,
        discretization,
        fn,
    )
    return filter_plan(x, [steps], cval, method=method, precision=precision, output=output, fn=fn)


@planned
def gaussian_filter1d(
    input: Any,
    sigma: Any,
    axis: int = -1,
    order: int = 0,
    *,
    mode: str = "reflect",
    cval: Any = 0.0,
    truncate: float = 4.0,
    radius: int | None = None,
    output: Any = None,
    discretization: str = "scipy",
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """1-D Gaussian filter along `axis`, equal to ``scipy.ndimage.gaussian_filter1d``.

    Arguments as in :func:`gaussian_filter` (scalar `sigma`, `order` and `radius`).

    Examples:
      >>> import jaxconv
      >>> import numpy as np
      >>> print(np.asarray(jaxconv.gaussian_filter1d([1.0, 2.0, 3.0, 4.0, 5.0], 1.0)).round(3))
      [1.427 2.068 3.    3.932 4.573]
    """
    fn = "gaussian_filter1d"
    if np.ndim(sigma) != 0:
        raise ValueError(f"{fn}: `sigma` must be a scalar; got shape {np.shape(sigma)}.")
    check_real(sigma, "sigma", fn, "a real number")
    check_truncate(truncate, fn)
    x = as_input(input, fn, output)
    return gaussian_filter.plan(
        x,
        sigma,
        order,
        mode=mode,
        cval=cval,
        truncate=truncate,
        radius=radius,
        axes=filter_axes(axis, x.ndim, fn),
        output=output,
        discretization=discretization,
        method=method,
        precision=precision,
    )


def _gaussian_terms(
    fn, input, sigma, order, mode, cval, truncate, radius, axes, output, discretization
):
    """One term per axis a: the Gaussian with `order` on a (scipy's generic_* helpers).

    As in scipy, the term for ``axes[i]`` uses ``mode[i]`` on every axis; only `axes` are smoothed.
    """
    x = as_input(input, fn, output)
    check_truncate(truncate, fn)
    ax = filter_axes(axes, x.ndim, fn)
    modes = filter_modes(mode, len(ax), fn)
    sigmas = _sigma_list(sigma, len(ax), fn)
    bucketed = _bucketed(x, cval, modes)
    terms = []
    for i in range(len(ax)):
        orders = tuple(order if j == i else 0 for j in range(len(ax)))
        term_modes = (modes[i],) * len(ax)
        terms.append(
            _gaussian_steps(
                bucketed, sigmas, orders, ax, term_modes, truncate, radius, discretization, fn
            )
        )
    return x, terms


@planned
def gaussian_laplace(
    input: Any,
    sigma: Any,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    truncate: float = 4.0,
    radius: int | Sequence[int] | None = None,
    axes: int | Sequence[int] | None = None,
    output: Any = None,
    discretization: str = "scipy",
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Laplacian of Gaussian ``Σ_a ∂²/∂x_a² (G_σ * x)``: ``scipy.ndimage.gaussian_laplace``.

    Arguments as in :func:`gaussian_filter` (a traced σ <= 1e-15 skips the smoothing, as a
    concrete σ = 0 does: the result is then ``ndim * x``; a traced negative or NaN σ gives NaN).
    With one mode per axis, the term ``∂²/∂x_a²`` uses the mode of axis a on every axis, as
    scipy does.

    Examples:
      >>> import jaxconv
      >>> jaxconv.gaussian_laplace([[0.0] * 5] * 5, 1.0).shape
      (5, 5)
    """
    fn = "gaussian_laplace"
    x, terms = _gaussian_terms(
        fn, input, sigma, 2, mode, cval, truncate, radius, axes, output, discretization
    )
    return filter_plan(x, terms, cval, "sum", method, precision, output=output, fn=fn)


@planned
def gaussian_gradient_magnitude(
    input: Any,
    sigma: Any,
    *,
    mode: str | Sequence[str] = "reflect",
    cval: Any = 0.0,
    truncate: float = 4.0,
    radius: int | Sequence[int] | None = None,
    axes: int | Sequence[int] | None = None,
    output: Any = None,
    discretization: str = "scipy",
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """``sqrt(Σ_a (∂_a G_σ * x)²)``, equal to ``scipy.ndimage.gaussian_gradient_magnitude``.

    As in scipy, a complex input gives the complex root of the sum of squares (no conjugate); the
    gradient is defined (as 0) where the sum is 0. It is computed with scaling, as ``hypot``, so
    float32 terms beyond ~1.8e19 do not overflow (scipy's float32 result does); NaN propagates.
    Arguments as in :func:`gaussian_filter` (a traced σ as there). With `axes`, only those axes
    are smoothed and differentiated (scipy 1.17's version smooths every axis then, and rejects
    per-axis σ with `axes`).

    Examples:
      >>> import jaxconv
      >>> float(jaxconv.gaussian_gradient_magnitude([[1.0] * 5] * 5, 1.0).max()) < 1e-5
      True
    """
    fn = "gaussian_gradient_magnitude"
    x, terms = _gaussian_terms(
        fn, input, sigma, 1, mode, cval, truncate, radius, axes, output, discretization
    )
    return filter_plan(x, terms, cval, "root", method, precision, output=output, fn=fn)
