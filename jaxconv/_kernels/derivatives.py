r"""Derivative-of-Gaussian kernels: any order per axis, Laplacian, difference and steerable.

Like every kernel in jaxconv these are *convolution* kernels (``k[i] = f(x_i)`` at increasing
offsets), so ``convolve(x, gaussian_derivative_kernel(σ, 1))`` is the derivative of the blurred
signal, and ``scipy.ndimage.convolve(x, k)`` equals ``scipy.ndimage.gaussian_filter(x, σ, order)``.
The default discretisation, ``"scipy"``, is ``scipy.ndimage``'s: the sampled Gaussian divided by
its sum, times the Hermite-like polynomial of the derivative.
"""

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv._kernels.buckets import radius_bucket
from jaxconv._kernels.gaussian_core import (
    check_discretization,
    crop,
    diagonal_variances,
    parse_cov,
    scipy_radius,
    separable_kernel,
    static_radius,
    traced_size_error,
)
from jaxconv._linalg import cholesky, solve_lower
from jaxconv._util import (
    check_positive,
    concrete,
    device_array,
    float_dtype,
    per_axis,
    per_axis_ints,
)


def _infer_ndim(default: int | None, *values: Any) -> int:
    for v in values:
        if isinstance(v, (tuple, list)):
            return len(v)
        if v is not None and not isinstance(v, (int, float)) and np.ndim(v) == 1:
            return int(np.shape(v)[0])
    return default or 1


def sigma_axes(sigma: Any, ndim: int, fn: str, dtype: Any) -> list[jax.Array]:
    """Per-axis standard deviations (scalar, sequence or 1-D array; may be traced).

    Concrete values are split on the host and copied as they are (no per-shape programs).
    """

    def as_sd(v):
        value = concrete(v)
        return jnp.asarray(v, dtype) if value is None else device_array(np.asarray(value, dtype))

    if isinstance(sigma, (tuple, list)):
        sig = [as_sd(s) for s in per_axis(sigma, ndim, "sigma", fn)]
    else:
        shape = np.shape(sigma)
        if len(shape) > 1 or (len(shape) == 1 and shape[0] != ndim):
            raise ValueError(
                f"{fn}: `sigma` must be a scalar or have one entry per axis ({ndim}); "
                f"got shape {shape}."
            )
        value = concrete(sigma)
        arr = jnp.asarray(sigma, dtype) if value is None else value
        sig = [as_sd(arr[a] if len(shape) else arr) for a in range(ndim)]
    for s in sig:
        check_positive(s, "sigma", fn)
    return sig


def _radii(radius: Any, sigmas: Sequence[jax.Array], truncate: float, fn: str) -> tuple[int, ...]:
    if radius is not None:
        return static_radius(radius, len(sigmas), fn)
    return tuple(scipy_radius(s, truncate, fn) for s in sigmas)


@functools.partial(jax.jit, static_argnames=("orders", "halves", "normalize"))
def _full_cov_derivative(cov, radii, *, orders, halves, normalize):
    """Sampled derivative of a full-covariance Gaussian, by nested autodiff of its density.

    Sampled at offsets ``-halves..halves``; with `radii` (traced) the points beyond them are
    zero and left out of the normalisation (a bucket's kernel, cropped by the caller).
    """
    ndim = len(orders)
    chol = cholesky(cov)

    def density(*p):
        z = solve_lower(chol, jnp.stack(p))
        return jnp.exp(-0.5 * jnp.dot(z, z))

    deriv = density
    for a, o in enumerate(orders):
        for _ in range(o):
            deriv = jax.grad(deriv, argnums=a)
    pts = np.meshgrid(*[np.arange(-r, r + 1) for r in halves], indexing="ij")
    shape = tuple(2 * r + 1 for r in halves)
    keep = None
    if radii is not None:
        keep = functools.reduce(
            jnp.logical_and,
            [np.abs(p.ravel()).astype(np.int32) <= radii[a] for a, p in enumerate(pts)],
        )
    pts = [jnp.asarray(p.ravel(), cov.dtype) for p in pts]

    def cut(v):
        return v if keep is None else jnp.where(keep, v, jnp.zeros((), v.dtype))

    k = cut(jax.vmap(deriv)(*pts)).reshape(shape)
    if normalize:
        return k / cut(jax.vmap(density)(*pts)).sum()
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return k * jnp.exp(-0.5 * (ndim * math.log(2.0 * math.pi) + logdet))


def gaussian_derivative_kernel(
    sigma: Any = None,
    order: int | Sequence[int] = 1,
    *,
    cov: Any = None,
    radius: int | Sequence[int] | None = None,
    truncate: float = 4.0,
    normalize: bool = True,
    discretization: str = "scipy",
    dtype: Any = None,
) -> jax.Array:
    r"""Kernel of the Gaussian's partial derivative ``∂^{o_1}…∂^{o_N} G`` (order per axis).

    With ``discretization="scipy"`` (the default) each axis is
    ``scipy.ndimage._filters._gaussian_kernel1d(σ, order, radius)``, so
    ``scipy.ndimage.convolve(x, k)`` equals ``scipy.ndimage.gaussian_filter(x, σ, order)``.
    ``"sample"`` gives the same values (samples of ``(-1)^n He_n(x/σ) σ^{-n} G(x)`` over the
    sum of the samples of G) and also accepts a full covariance; ``"integrate"`` averages the
    derivative over each pixel; ``"discrete"`` applies Lindeberg's central differences
    (``δx``, ``δxx``) to the discrete Gaussian. Odd orders sum to zero; even orders > 0 nearly so.

    Args:
      sigma: standard deviation(s) in pixels: a scalar (isotropic) or one per axis. May be traced
        (then pass `radius`).
      order: derivative order, an int (every axis) or one per axis, e.g. ``(0, 1)`` for ∂/∂x of
        an image whose last axis is x.
      cov: instead of `sigma`, a covariance (variance, per-axis variances or ``(N, N)``); a
        non-diagonal one needs ``discretization="sample"``.
      radius: static half-size (an int or one per axis); default ``int(truncate * σ + 0.5)``.
      truncate: see `radius`.
      normalize: divide by the sum of the order-0 kernel (scipy's scaling); if False, use the
        density's normalisation constant.
      discretization: ``"scipy"``, ``"sample"``, ``"integrate"`` or ``"discrete"``.
      dtype: output dtype; default inferred from `sigma`/`cov`.

    Returns:
      Kernel of shape ``(2 r_1 + 1, ..., 2 r_N + 1)``; N is ``len(order)``, ``len(sigma)`` or
      ``cov``'s size (1 if all are scalars).

    Raises:
      ValueError: if σ <= 0, orders are negative, shapes disagree, or `sigma` is traced without
        `radius`.

    Examples:
      >>> import jaxconv
      >>> import numpy as np
      >>> print(np.asarray(jaxconv.gaussian_derivative_kernel(1.0, 1, radius=1)).round(4))
      [ 0.2741  0.     -0.2741]
    """
    fn = "gaussian_derivative_kernel"
    check_discretization(discretization, fn)
    if (sigma is None) == (cov is None):
        raise ValueError(f"{fn}: pass exactly one of `sigma` and `cov`.")
    if cov is not None:
        arr, form = parse_cov(cov, fn)
        ndim = _infer_ndim(None if form == "scalar" else arr.shape[0], order, radius)
        dtype = float_dtype(dtype, arr)
        orders = per_axis_ints(order, ndim, "order", fn)
        if form == "full" and discretization == "sample":
            if radius is not None:
                radii = static_radius(radius, ndim, fn)
                return _full_cov_derivative(
                    arr.astype(dtype), None, orders=orders, halves=radii, normalize=bool(normalize)
                )
            value = concrete(arr)
            if value is None:
                raise traced_size_error(fn, "cov")
            radii = tuple(scipy_radius(np.sqrt(value[a, a]), truncate, fn) for a in range(ndim))
            buckets = tuple(radius_bucket(r) for r in radii)
            k = _full_cov_derivative(
                arr.astype(dtype), np.asarray(radii, np.int32), orders=orders, halves=buckets,
                normalize=bool(normalize),
            )  # fmt: skip
            return crop(k, buckets, radii)
        sigma = jnp.sqrt(diagonal_variances(arr, form, ndim, discretization, fn)).astype(dtype)
    else:
        ndim = _infer_ndim(None, order, sigma, radius)
        dtype = float_dtype(dtype, sigma)
        orders = per_axis_ints(order, ndim, "order", fn)
    sigmas = sigma_axes(sigma, ndim, fn, dtype)
    if radius is not None:
        radii = static_radius(radius, ndim, fn)
        offsets = [np.arange(-r, r + 1) for r in radii]
        return separable_kernel(
            sigmas, "sd", None, offsets, (1.0,) * ndim, orders, discretization, normalize, dtype
        )
    # The radius follows σ: computed at its bucket, zero beyond (one program per bucket), cropped.
    radii = tuple(scipy_radius(s, truncate, fn) for s in sigmas)
    buckets = tuple(radius_bucket(r) for r in radii)
    offsets = [np.arange(-b, b + 1) for b in buckets]
    k = separable_kernel(
        sigmas, "sd", None, offsets, (1.0,) * ndim, orders, discretization, normalize, dtype, radii
    )
    return crop(k, buckets, radii)


def gaussian_laplace_kernel(
    sigma: Any,
    *,
    ndim: int | None = None,
    radius: int | Sequence[int] | None = None,
    truncate: float = 4.0,
    normalize: bool = True,
    discretization: str = "scipy",
    dtype: Any = None,
) -> jax.Array:
    r"""Laplacian-of-Gaussian kernel ``Σ_a ∂²G/∂x_a²``, as used by scipy.ndimage.gaussian_laplace.

    ``scipy.ndimage.convolve(x, k)`` equals ``scipy.ndimage.gaussian_laplace(x, σ)`` (default
    discretisation). Its sum is close to zero (exactly zero for ``"discrete"``).

    Args:
      sigma: scalar or one per axis; may be traced (then pass `radius`).
      ndim: number of dimensions when `sigma` and `radius` are scalars; default 2.
      radius, truncate, normalize, discretization, dtype: as in :func:`gaussian_derivative_kernel`.

    Examples:
      >>> import jaxconv
      >>> jaxconv.gaussian_laplace_kernel(1.0, radius=1).shape
      (3, 3)
    """
    fn = "gaussian_laplace_kernel"
    nd = _infer_ndim(ndim or 2, sigma, radius)
    if ndim is not None and nd != ndim:
        raise ValueError(f"{fn}: `ndim`={ndim} disagrees with `sigma`/`radius` ({nd} axes).")
    kw = dict(truncate=truncate, normalize=normalize, discretization=discretization, dtype=dtype)
    sig = sigma if isinstance(sigma, (tuple, list)) or np.ndim(sigma) else (sigma,) * nd
    total = None
    for a in range(nd):
        order = tuple(2 if b == a else 0 for b in range(nd))
        k = gaussian_derivative_kernel(sig, order, radius=radius, **kw)
        total = k if total is None else total + k
    return total


def difference_of_gaussians_kernel(
    low_sigma: Any,
    high_sigma: Any = None,
    *,
    ndim: int | None = None,
    radius: int | Sequence[int] | None = None,
    truncate: float = 4.0,
    discretization: str = "scipy",
    dtype: Any = None,
) -> jax.Array:
    r"""Difference of Gaussians ``G_low - G_high``, a band-pass approximating the LoG.

    Each Gaussian is normalised; without `radius` each has its own scipy radius and the smaller
    kernel is zero-padded, so ``convolve(x, k)`` equals
    ``gaussian_filter(x, low_sigma) - gaussian_filter(x, high_sigma)`` exactly (as in
    ``skimage.filters.difference_of_gaussians``). The sum is zero.

    Args:
      low_sigma: the smaller σ (scalar or per axis).
      high_sigma: the larger σ; default ``1.6 * low_sigma`` (Marr–Hildreth's ratio).
      ndim: number of dimensions for scalar σ and radius; default 2.
      radius, truncate, discretization, dtype: as in :func:`gaussian_derivative_kernel`;
        `radius` defaults to the radius of `high_sigma`.

    Examples:
      >>> import jaxconv
      >>> abs(float(jaxconv.difference_of_gaussians_kernel(1.0).sum())) < 1e-6
      True
    """
    fn = "difference_of_gaussians_kernel"
    nd = _infer_ndim(ndim or 2, low_sigma, high_sigma, radius)
    if high_sigma is None:
        high_sigma = (
            [1.6 * s for s in low_sigma]
            if isinstance(low_sigma, (tuple, list))
            else 1.6 * jnp.asarray(low_sigma)
        )
    dtype = float_dtype(dtype, low_sigma, high_sigma)
    kw = dict(truncate=truncate, discretization=discretization, dtype=dtype)
    lows = sigma_axes(low_sigma, nd, fn, dtype)
    highs = sigma_axes(high_sigma, nd, fn, dtype)
    if radius is not None:
        radii = static_radius(radius, nd, fn)
        k_low = gaussian_derivative_kernel(lows, 0, radius=radii, **kw)
    else:
        radii = _radii(None, highs, truncate, fn)
        low_r = _radii(None, lows, truncate, fn)
        pad = [(r - q, r - q) if r >= q else None for r, q in zip(radii, low_r, strict=True)]
        if any(p is None for p in pad):
            raise ValueError(
                f"{fn}: `high_sigma` must be at least `low_sigma` on every axis; "
                f"got {high_sigma!r} and {low_sigma!r}."
            )
        k_low = jnp.pad(gaussian_derivative_kernel(lows, 0, radius=low_r, **kw), pad)
    return k_low - gaussian_derivative_kernel(highs, 0, radius=radii, **kw)


def oriented_derivative_kernel(
    sigma: Any,
    theta: Any,
    *,
    radius: int | Sequence[int] | None = None,
    truncate: float = 4.0,
    normalize: bool = True,
    discretization: str = "scipy",
    dtype: Any = None,
) -> jax.Array:
    r"""Steerable first derivative of a 2-D Gaussian along the angle θ: ``cos θ Gx + sin θ Gy``.

    x is the last (column) axis and y the first (row) axis, so θ = 0 differentiates along columns
    (``order=(0, 1)``) and θ = π/2 along rows (``order=(1, 0)``); the unit direction is
    ``(sin θ, cos θ)`` in (row, column) order. This is the convention of ``Gaussian.angle``.
    Differentiable in σ and θ.

    Args:
      sigma: scalar or ``(σ_y, σ_x)``; may be traced (then pass `radius`).
      theta: angle in radians; may be traced.
      radius, truncate, normalize, discretization, dtype: as in :func:`gaussian_derivative_kernel`.

    Examples:
      >>> import jaxconv
      >>> jaxconv.oriented_derivative_kernel(1.0, 0.0, radius=1).shape
      (3, 3)
    """
    dtype = float_dtype(dtype, sigma, theta)
    kw = dict(
        radius=radius,
        truncate=truncate,
        normalize=normalize,
        discretization=discretization,
        dtype=dtype,
    )
    sig = sigma if isinstance(sigma, (tuple, list)) or np.ndim(sigma) else (sigma, sigma)
    gx = gaussian_derivative_kernel(sig, (0, 1), **kw)
    gy = gaussian_derivative_kernel(sig, (1, 0), **kw)
    theta = jnp.asarray(theta, dtype)
    return jnp.cos(theta) * gx + jnp.sin(theta) * gy
