r"""Gaussian kernels from a covariance: probability densities and four discretisations.

Every kernel in jaxconv is a *convolution* kernel: ``k[i]`` is the function sampled (or averaged)
at the increasing offsets ``-r, ..., r``, so ``jaxconv.convolve(x, k, mode="same")`` applies it,
as ``scipy.signal.convolve2d`` does with the seed's ``multivariate_normal(...).pdf`` kernel.

Discretisations (``discretization=``):

=============  =========================================================================  ==========
name           kernel and when to use it                                                  covariance
=============  =========================================================================  ==========
``sample``     the density sampled at pixel centres, divided by its sum. What              full
               scipy.ndimage, OpenCV and kornia use; accurate for σ ≳ 0.8 px, below that
               it collapses (effective std 0.46 at σ = 0.5, 0.09 at σ = 0.3).
``integrate``  the density integrated over each pixel (differences of the normal CDF).    diagonal
               Models sensors that average over a pixel; it *adds 1/12 px² of variance*
               per axis (effective std 1.041 at σ = 1; a little less below σ ≈ 0.8), so
               σ fitted with it is the blur before pixel integration.
``discrete``   Lindeberg's discrete analogue ``T(n; t) = e^{-t} I_n(t)`` (t = σ² in px²),   diagonal
               computed as the inverse FFT of ``exp(-t (1 - cos ω))``: variance exactly t
               at every scale and an exact semigroup (two blurs = one). The choice for
               small σ and for scale spaces; differentiable in t.
``scipy``      exactly the 1-D kernel of ``scipy.ndimage.gaussian_filter`` (samples at     diagonal
               integer offsets, radius ``int(truncate * σ + 0.5)``, divided by the sum).
               Use it to reproduce or fit data made by scipy.ndimage.
=============  =========================================================================  ==========

Data made with one discretisation and fitted with another gives biased parameters (−18 % in σ at
σ = 0.5 for scipy data fitted with a continuous Gaussian), so say which one produced your data.

Kernel sizes are static: under ``jit``/``grad`` the covariance is traced, so pass a fixed `radius`
(from an upper bound on σ) and check :func:`gaussian_truncation` to bound the bias it causes.
A concrete covariance without `radius` or `shape` is computed at its radius' bucket (a power of
two from 8, ``_buckets.radius_bucket``; the taps beyond the radius zero) and cropped on the host,
so a new σ of the same bucket reuses the compiled program.

:class:`Gaussian` is a learnable Gaussian whose covariance is positive definite by construction.

Why log-Cholesky: the covariance is ``Σ = L Lᵀ`` with L lower-triangular, its diagonal
``exp(log_diag)`` and its strictly-lower part ``offdiag``, all unconstrained real numbers. Every
parameter value gives a symmetric positive-definite Σ (and every SPD Σ has exactly one such
parameter vector), so an optimiser needs no projection and a jitted loss no value check.
``Σ⁻¹`` and ``log det Σ = 2 Σ log_diag`` come cheaply from L. In a trial with Adam (lr 0.05,
cosine decay, fitting a blur between two 128² images) log-Cholesky reached the least-squares optimum
to 1e-4 in about 200 steps, while the raw entries (Σxx, Σyy, Σxy) had not converged after 1500
steps (1.6e-2 and 1.0e-1 final relative error) — and raw entries can leave the SPD cone.
``(σ₁, σ₂, θ)`` is for reporting only: θ repeats every π, σ₁ ↔ σ₂ swap with θ + π/2, and θ has
no gradient when σ₁ = σ₂.
"""

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import erfc, ndtr

from jaxconv._kernels.buckets import radius_bucket
from jaxconv._kernels.gaussian_core import (
    check_discretization,
    check_truncate,
    cov_ndim,
    crop,
    diagonal_variances,
    outer,
    parse_cov,
    separable_kernel,
    static_radius,
    traced_size_error,
)
from jaxconv._linalg import cholesky, solve_lower, sum_last
from jaxconv._util import check_positive, concrete, float_dtype, per_axis

_LOG_2PI = math.log(2.0 * math.pi)


def multivariate_normal_pdf(x: Any, mean: Any = None, cov: Any = 1.0) -> jax.Array:
    r"""Multivariate normal density, equal to ``scipy.stats.multivariate_normal(mean, cov).pdf``.

    .. math:: p(x) = (2π)^{-N/2} |Σ|^{-1/2} \exp(-\tfrac12 (x-μ)^T Σ^{-1} (x-μ))

    computed through the Cholesky factor (differentiable in `x`, `mean` and `cov`).

    Args:
      x: points, shape ``(..., N)`` (like ``np.dstack(np.mgrid[...])``); for N = 1 also ``(...,)``.
      mean: shape ``(N,)``; default zeros.
      cov: ``(N, N)`` covariance, ``(N,)`` variances or a scalar variance.

    Returns:
      The density at each point, shape ``x.shape[:-1]`` (``x.shape`` for 1-D points).

    Examples:
      >>> import jaxconv
      >>> round(float(jaxconv.multivariate_normal_pdf([0.0, 0.0], cov=[[1.0, 0.5], [0.5, 1.0]])), 6)
      0.183776
    """
    fn = "multivariate_normal_pdf"
    arr, form = parse_cov(cov, fn)
    x = jnp.asarray(x)
    n = cov_ndim(arr, form) or (jnp.shape(mean)[0] if mean is not None and jnp.ndim(mean) else 1)
    dtype = float_dtype(None, x, arr, mean)
    if n == 1 and (x.ndim == 0 or x.shape[-1] != 1):
        x = x[..., None]
    if x.shape[-1] != n:
        raise ValueError(f"{fn}: `x` must have shape (..., {n}); got {x.shape}.")
    mean = None if mean is None else jnp.asarray(mean, dtype)
    return _sampled(x.astype(dtype), mean, arr.astype(dtype), None, form=form, normalize=False)


@functools.partial(jax.jit, static_argnames=("form", "normalize"))
def _sampled(points, mean, arr, chol, keep=None, *, form, normalize):
    """The density at `points` (..., N), divided by its sum if `normalize`; one compiled call.

    `keep` (optional): the points inside the true radius; the others are zero.
    """
    k = _density(points - (0.0 if mean is None else mean), arr, form, chol)
    if keep is not None:
        k = jnp.where(keep, k, jnp.zeros((), k.dtype))
    return k / k.sum() if normalize else k


def _density(d: jax.Array, arr: jax.Array, form: str, chol: jax.Array | None) -> jax.Array:
    """Normal density at offsets ``d`` (..., N) from the mean; `chol` saves a factorisation."""
    n = d.shape[-1]
    if form != "full":
        var = jnp.broadcast_to(arr, (n,))
        maha = sum_last(d * d / var)
        logdet = jnp.sum(jnp.log(var))
    else:
        chol = cholesky(arr) if chol is None else chol.astype(arr.dtype)
        z = solve_lower(chol, d)
        maha = sum_last(z * z)
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return jnp.exp(-0.5 * (n * _LOG_2PI + logdet + maha))


def normal_pdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> jax.Array:
    """Normal density, equal to ``scipy.stats.norm.pdf(x, loc, scale)``; differentiable.

    Examples:
      >>> import jaxconv
      >>> round(float(jaxconv.normal_pdf(0.0)), 6)
      0.398942
    """
    dtype = float_dtype(None, x, loc, scale)
    y = (jnp.asarray(x, dtype) - loc) / scale
    return jnp.exp(-y * y / 2.0) / math.sqrt(2.0 * math.pi) / scale


def uniform_pdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> jax.Array:
    """Uniform density on ``[loc, loc + scale]``, equal to ``scipy.stats.uniform.pdf``.

    Examples:
      >>> import jaxconv
      >>> import numpy as np
      >>> print(np.asarray(jaxconv.uniform_pdf([-4.0, 0.0, 3.0], loc=-3.0, scale=6.0)).round(4))
      [0.     0.1667 0.1667]
    """
    dtype = float_dtype(None, x, loc, scale)
    y = (jnp.asarray(x, dtype) - loc) / scale
    return jnp.where((y >= 0) & (y <= 1), 1.0 / jnp.asarray(scale, dtype), 0.0).astype(dtype)


# --- N-D kernels ---------------------------------------------------------------------------------
def _kernel_offsets(shape, radius, ndim, discretization, fn):
    """Integer (odd sizes) or half-integer (even sizes) offsets of each axis, or None."""
    if shape is not None:
        if radius is not None:
            raise ValueError(f"{fn}: pass at most one of `shape` and `radius`.")
        sizes = per_axis(shape, ndim, "shape", fn)
        if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in sizes):
            raise ValueError(f"{fn}: `shape` must hold positive ints; got {shape!r}.")
        if discretization in ("discrete", "scipy") and any(s % 2 == 0 for s in sizes):
            raise ValueError(
                f"{fn}: discretization={discretization!r} needs a centre pixel, so "
                f"`shape` must be odd; got {shape!r}."
            )
        return [np.arange(s) - (s - 1) / 2 for s in sizes]
    if radius is not None:
        return [np.arange(-r, r + 1) for r in static_radius(radius, ndim, fn)]
    return None


def gaussian_kernel(
    cov: Any,
    *,
    mean: Any = None,
    grid: Any = None,
    shape: int | Sequence[int] | None = None,
    spacing: float | Sequence[float] = 1.0,
    truncate: float = 4.0,
    radius: int | Sequence[int] | None = None,
    normalize: bool = True,
    discretization: str = "sample",
    dtype: Any = None,
) -> jax.Array:
    r"""A Gaussian kernel of any dimension from its covariance, differentiable in `cov` and `mean`.

    .. math:: G(x) = (2π)^{-N/2} |Σ|^{-1/2} \exp(-\tfrac12 (x-μ)^T Σ^{-1} (x-μ))

    discretised on a grid of offsets ``-r..r`` (times `spacing`) as described in the module
    docstring, or evaluated at the points of `grid`.

    Args:
      cov: covariance Σ in units of `spacing`: a scalar *variance* σ² (isotropic; the number of
        dimensions then comes from `mean`, `radius`, `shape` or `grid`, else 1), a vector of
        per-axis variances, an ``(N, N)`` symmetric positive-definite matrix, or a
        :class:`Gaussian` (its Cholesky factor and mean are used). May be traced.
      mean: centre μ, shape ``(N,)`` (``"sample"`` and ``"integrate"`` only); default 0.
      grid: points at which to evaluate the density, ``np.mgrid``-style, shape ``(N, *spatial)``
        (or ``(n,)`` in 1-D); then `shape`, `radius` and `truncate` are not used.
      shape: kernel shape (static); even sizes give half-integer offsets (``sample`` and
        ``integrate`` only).
      spacing: grid step per axis (the pixel size); Σ and μ are in the same units.
      truncate: default radius ``int(truncate * sqrt(Σ_aa) / spacing + |μ_a| / spacing + 0.5)``
        per axis, scipy.ndimage's rule; needs a concrete `cov`.
      radius: static half-size (an int or one per axis); required when `cov` is traced.
      normalize: divide by the sum (the default); if False, return densities
        (``sum(k) * prod(spacing) ≈ 1``). ``"scipy"`` always normalises.
      discretization: ``"sample"``, ``"integrate"``, ``"discrete"`` or ``"scipy"``.
      dtype: output dtype; default inferred from `cov` and `mean` (float64 under x64).

    Returns:
      The kernel, shape ``(2 r_1 + 1, ..., 2 r_N + 1)``, `shape`, or ``grid.shape[1:]``.

    Raises:
      ValueError: on a non-symmetric, non-positive-definite or non-finite concrete `cov`, bad
        shapes, or a traced `cov` without `radius`/`shape`/`grid`.
      NotImplementedError: for a non-diagonal (or traced full) `cov` with a diagonal-only
        discretisation, or `mean` with ``"discrete"``/``"scipy"``.

    Examples:
      The seed's 30×30 kernel, ``multivariate_normal([0, 0], cov).pdf(np.dstack(grid))``:

      >>> import numpy as np, jaxconv
      >>> k = jaxconv.gaussian_kernel([[1, .5], [.5, 1]], grid=np.mgrid[-3:3:.2, -3:3:.2],
      ...                             normalize=False)
      >>> k.shape
      (30, 30)
      >>> print(np.asarray(jaxconv.gaussian_kernel(1.0, radius=2, discretization="scipy")).round(4))
      [0.0545 0.2442 0.4026 0.2442 0.0545]
    """
    fn = "gaussian_kernel"
    check_discretization(discretization, fn)
    chol = None
    if isinstance(cov, Gaussian):
        if mean is not None:
            raise ValueError(f"{fn}: `mean` must be None when `cov` is a Gaussian (it has one).")
        mean, chol = cov.mean, cov.cholesky
        cov = chol @ chol.T
    arr, form = parse_cov(cov, fn)
    ndim = cov_ndim(arr, form)
    for name, value in (("mean", mean), ("grid", grid), ("radius", radius), ("shape", shape)):
        if value is None or ndim is not None:
            continue
        if name == "mean":
            ndim = int(np.shape(mean)[0]) if np.ndim(mean) else None
        elif name == "grid":
            ndim = int(np.shape(grid)[0]) if np.ndim(grid) > 1 else 1
        elif isinstance(value, (tuple, list)):
            ndim = len(value)
    ndim = ndim or 1
    dtype = float_dtype(dtype, arr, mean)
    arr = arr if arr.dtype == dtype else arr.astype(dtype)  # no program when it is
    if mean is not None:
        mean = jnp.asarray(mean, dtype)
        if mean.shape not in ((ndim,), () if ndim == 1 else (ndim,)):
            raise ValueError(f"{fn}: `mean` must have shape ({ndim},); got {mean.shape}.")
        mean = mean.reshape(ndim)
        if discretization in ("discrete", "scipy"):
            raise NotImplementedError(
                f"{fn}: discretization={discretization!r} has no `mean`; use 'sample' or "
                "'integrate' for an off-centre kernel."
            )
    if discretization == "scipy" and not normalize:
        raise NotImplementedError(
            f"{fn}: discretization='scipy' is always normalised; "
            "use 'sample' with normalize=False for densities."
        )

    if grid is not None:
        if shape is not None or radius is not None:
            raise ValueError(f"{fn}: pass at most one of `grid`, `shape` and `radius`.")
        if discretization != "sample":
            raise NotImplementedError(
                f"{fn}: `grid` evaluates the density at points; it needs "
                f"discretization='sample'; got {discretization!r}."
            )
        g = jnp.asarray(grid, dtype)
        if ndim == 1 and g.ndim >= 1 and (g.ndim == 1 or g.shape[0] != 1):
            g = g[None]
        if g.ndim < 2 or g.shape[0] != ndim:
            raise ValueError(
                f"{fn}: `grid` must have shape ({ndim}, *spatial) like np.mgrid; "
                f"got {jnp.shape(grid)}."
            )
        return _sampled(jnp.moveaxis(g, 0, -1), mean, arr, chol, form=form, normalize=normalize)

    h = tuple(float(s) for s in per_axis(spacing, ndim, "spacing", fn))
    if any(not s > 0 for s in h):
        raise ValueError(f"{fn}: `spacing` must be > 0; got {spacing!r}.")
    offsets = _kernel_offsets(shape, radius, ndim, discretization, fn)
    radii = buckets = None
    if offsets is None:
        # The radius follows the covariance: the kernel is computed at the radius' bucket with
        # zero taps beyond it (one program per bucket, not per covariance), then cropped.
        value = concrete(arr)
        shift = np.zeros(ndim) if mean is None else concrete(mean)
        if value is None or shift is None:
            raise traced_size_error(fn, "cov" if value is None else "mean")
        var_c = np.diagonal(value) if form == "full" else np.broadcast_to(value, (ndim,))
        reach = check_truncate(truncate, fn)
        radii = [
            int(reach * math.sqrt(var_c[a]) / h[a] + abs(shift[a]) / h[a] + 0.5)
            for a in range(ndim)
        ]
        buckets = [radius_bucket(r) for r in radii]
        offsets = [np.arange(-b, b + 1) for b in buckets]

    if form == "full" and discretization == "sample":
        pts = np.stack(
            np.meshgrid(*[o * s for o, s in zip(offsets, h, strict=True)], indexing="ij"), axis=-1
        )
        keep = None
        if radii is not None:
            keep = outer([np.abs(o) <= r for o, r in zip(offsets, radii, strict=True)])
        pts = jnp.asarray(pts, dtype)
        k = _sampled(pts, mean, arr, chol, keep, form=form, normalize=normalize)
    else:
        if form == "full":
            diagonal_variances(arr, form, ndim, discretization, fn)  # checks it is diagonal
        k = separable_kernel(
            arr, form, mean, offsets, h, (0,) * ndim, discretization, normalize, dtype, radii
        )
    return k if radii is None else crop(k, buckets, radii)


def gaussian_truncation(
    cov: Any,
    radius: int | Sequence[int],
    *,
    mean: Any = None,
    spacing: float | Sequence[float] = 1.0,
) -> jax.Array:
    r"""Probability mass of the Gaussian outside a kernel of the given `radius`.

    The kernel covers the box ``|x_a - 0| <= (r_a + 1/2) · spacing_a`` (pixel centres ``-r..r``
    and half a pixel beyond). The lost mass is what a truncated, renormalised kernel misses, and so
    bounds the bias of σ fitted through it: keep it below your noise level (≈ 1e-4 or smaller).

    For a scalar or per-axis (diagonal) `cov` the value is exact:
    ``1 - Π_a P(|x_a| <= b_a)``. For an ``(N, N)`` matrix it is an upper bound, the smaller of
    the union bound over the marginals ``Σ_a P(|x_a| > b_a)`` and the eigenvalue bound
    ``P(λ_max χ²_N > ρ²)``, ρ the distance from the mean to the nearest box face.
    Differentiable, and usable under jit.

    Args:
      cov: variance(s) or ``(N, N)`` covariance, as for :func:`gaussian_kernel`.
      radius: static int or one per axis.
      mean: centre of the Gaussian relative to the kernel centre; default 0.
      spacing: pixel size per axis.

    Returns:
      A scalar in ``[0, 1]``.

    Examples:
      >>> import jaxconv
      >>> float(jaxconv.gaussian_truncation(1.0, radius=4)) < 1e-5
      True
    """
    fn = "gaussian_truncation"
    if isinstance(cov, Gaussian):
        if mean is not None:
            raise ValueError(f"{fn}: `mean` must be None when `cov` is a Gaussian (it has one).")
        mean, cov = cov.mean, cov.covariance
    arr, form = parse_cov(cov, fn)
    ndim = cov_ndim(arr, form)
    if ndim is None:
        ndim = (
            len(radius)
            if isinstance(radius, (tuple, list))
            else (int(np.shape(mean)[0]) if mean is not None and np.ndim(mean) else 1)
        )
    radii = static_radius(radius, ndim, fn)
    dtype = float_dtype(None, arr, mean)
    arr = arr.astype(dtype)
    h = tuple(float(v) for v in per_axis(spacing, ndim, "spacing", fn))
    mu = jnp.zeros(ndim, dtype) if mean is None else jnp.asarray(mean, dtype)
    if mu.shape not in ((ndim,), ()):
        raise ValueError(f"{fn}: `mean` must have shape ({ndim},); got {mu.shape}.")
    mu = jnp.broadcast_to(mu, (ndim,))
    return truncation(arr, mu, np.asarray(radii, np.int32), form=form, h=h)


@functools.partial(jax.jit, static_argnames=("form", "h"))
def truncation(arr, mu, radii, *, form, h):
    """:func:`gaussian_truncation` of a parsed `cov`; `radii` ``(N,)`` may be traced."""
    ndim = radii.shape[0]
    half = (radii.astype(arr.dtype) + 0.5) * jnp.asarray(h, arr.dtype)
    var = jnp.broadcast_to(arr, (ndim,)) if form != "full" else jnp.diagonal(arr)
    sd = jnp.sqrt(var)
    outside = ndtr((-half - mu) / sd) + ndtr((mu - half) / sd)  # per-axis tails
    if form != "full" or ndim == 1:
        return -jnp.expm1(jnp.sum(jnp.log1p(-jnp.minimum(outside, 1.0))))
    union = jnp.sum(outside)
    rho = jnp.min(half - jnp.abs(mu))
    lam = jnp.linalg.eigvalsh(arr)[-1]
    ball = _chi2_tail(ndim, 0.5 * jnp.maximum(rho, 0.0) ** 2 / lam)
    return jnp.clip(jnp.minimum(union, ball), 0.0, 1.0)


def _chi2_tail(n: int, x: jax.Array) -> jax.Array:
    """``gammaincc(n / 2, x) = P(χ²_n > 2 x)`` in closed form for a static integer `n`.

    A finite sum (``e^{-x} Σ_{j < n/2} x^j / j!``, plus ``erfc(√x)`` for odd n): a handful of
    fused operations, where ``jax.scipy.special.gammaincc`` compiles series and continued
    fractions in loops (most of the compile time of a truncation bound).
    """
    e = jnp.exp(-x)
    if n % 2 == 0:
        term, total = e, e
        for j in range(1, n // 2):
            term = term * x / j
            total = total + term
        return total
    root = jnp.sqrt(x)
    total = erfc(root)
    term = e * root / math.gamma(1.5)  # e^{-x} x^{j - 1/2} / Γ(j + 1/2), j = 1
    for j in range(1, (n + 1) // 2):
        total = total + term
        term = term * x / (j + 0.5)
    return total


# --- the learnable Gaussian -----------------------------------------------------------------------
def _as_mean(mean: Any, ndim: int, dtype: Any, fn: str) -> jax.Array | None:
    if mean is None:
        return None
    m = jnp.asarray(mean, dtype)
    if m.shape != (ndim,):
        raise ValueError(f"{fn}: `mean` must have shape ({ndim},); got {m.shape}.")
    return m


def _selectors(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Constant matrices placing the diagonal and the strictly-lower entries into a flat L."""
    rows, cols = np.tril_indices(n, -1)
    diag = np.zeros((n * n, n))
    diag[np.arange(n) * (n + 1), np.arange(n)] = 1.0
    lower = np.zeros((n * n, rows.size))
    lower[rows * n + cols, np.arange(rows.size)] = 1.0
    return diag, lower


def check_covariance(cov: Any, fn: str = "Gaussian.from_covariance") -> jax.Array:
    """`cov` as an ``(N, N)`` array, validated (host-side, when concrete) as a covariance."""
    arr, form = parse_cov(cov, fn)
    if form != "full":
        raise ValueError(
            f"{fn}: `cov` must be an (N, N) matrix; got shape {arr.shape}. "
            "Use Gaussian.isotropic or Gaussian.from_sigmas for σ values."
        )
    return arr


@jax.jit
def _cholesky(log_diag: jax.Array, offdiag: jax.Array) -> jax.Array:
    # Two constant matrix-vector products instead of a scatter: cheap to differentiate twice.
    n = log_diag.shape[-1]
    diag, lower = _selectors(n)
    dtype = jnp.result_type(log_diag, offdiag)
    flat = jnp.asarray(diag, dtype) @ jnp.exp(log_diag)
    if lower.size:
        flat = flat + jnp.asarray(lower, dtype) @ jnp.asarray(offdiag, dtype)
    return flat.reshape(n, n)


class Gaussian(NamedTuple):
    r"""A Gaussian with log-Cholesky parameters: a pytree for ``jax.grad`` and optax.

    ``L = diag(exp(log_diag)) + strictly_lower(offdiag)``, ``Σ = L Lᵀ``; in 2-D
    ``L = [[e^a, 0], [c, e^b]]``. Axes follow the array: axis 0 is the first (row, "y") axis.
    Build one with a constructor (which validate their inputs eagerly); the raw fields are free
    real numbers, so any update an optimiser makes keeps Σ positive definite.

    Attributes:
      log_diag: ``(N,)`` logs of L's diagonal.
      offdiag: ``(N (N - 1) / 2,)`` strictly-lower entries of L, row by row
        (``np.tril_indices(N, -1)`` order).
      mean: ``(N,)`` centre, or None for a centred Gaussian (not a parameter then).

    Examples:
      >>> import jax, jaxconv
      >>> g = jaxconv.Gaussian.from_covariance([[1.0, 0.5], [0.5, 1.0]])
      >>> g.covariance.round(6).tolist()
      [[1.0, 0.5], [0.5, 1.0]]
      >>> k = g.kernel(radius=3)
      >>> grads = jax.grad(lambda p: p.kernel(radius=3)[3, 4])(g)
      >>> grads.log_diag.shape
      (2,)
    """

    log_diag: jax.Array
    offdiag: jax.Array
    mean: jax.Array | None = None

    # --- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_cholesky(cls, chol: Any, *, mean: Any = None) -> "Gaussian":
        """From a lower-triangular factor with a positive diagonal (may be traced).

        A concrete `chol` with non-zero entries above the diagonal is rejected (it is not the
        factor it looks like); a traced one cannot be checked, and only its lower triangle is read.
        """
        fn = "Gaussian.from_cholesky"
        chol = jnp.asarray(chol)
        if chol.ndim != 2 or chol.shape[0] != chol.shape[1]:
            raise ValueError(f"{fn}: `chol` must be square (N, N); got shape {chol.shape}.")
        value = concrete(chol)
        if value is not None and np.any(np.triu(value, 1) != 0):
            raise ValueError(
                f"{fn}: `chol` must be lower triangular (zeros above the diagonal); got "
                f"{value.tolist()}. For a covariance matrix use Gaussian.from_covariance."
            )
        dtype = float_dtype(None, chol, mean)
        n = chol.shape[0]
        chol = chol.astype(dtype)
        diag = jnp.diagonal(chol)
        check_positive(diag, "chol", fn)
        rows, cols = np.tril_indices(n, -1)
        return cls(jnp.log(diag), chol[rows, cols], _as_mean(mean, n, dtype, fn))

    @classmethod
    def from_covariance(cls, cov: Any, *, mean: Any = None) -> "Gaussian":
        """From an ``(N, N)`` covariance matrix (validated eagerly when concrete).

        Raises:
          ValueError: if `cov` is not square, finite, symmetric and positive definite; the
            message shows the matrix and its eigenvalues.
        """
        arr = check_covariance(cov)
        arr = arr.astype(float_dtype(None, arr, mean))
        return cls.from_cholesky(cholesky(arr), mean=mean)

    @classmethod
    def isotropic(cls, sigma: Any, ndim: int = 2, *, mean: Any = None) -> "Gaussian":
        """Σ = σ² I in `ndim` dimensions; σ > 0 (checked when concrete)."""
        fn = "Gaussian.isotropic"
        check_positive(sigma, "sigma", fn)
        if jnp.ndim(sigma) != 0:
            raise ValueError(
                f"{fn}: `sigma` must be a scalar; got shape {jnp.shape(sigma)}. "
                "Use Gaussian.from_sigmas for per-axis values."
            )
        if not isinstance(ndim, int) or ndim < 1:
            raise ValueError(f"{fn}: `ndim` must be a positive int; got {ndim!r}.")
        dtype = float_dtype(None, sigma, mean)
        log_diag = jnp.full((ndim,), jnp.log(jnp.asarray(sigma, dtype)))
        return cls(
            log_diag, jnp.zeros(ndim * (ndim - 1) // 2, dtype), _as_mean(mean, ndim, dtype, fn)
        )

    @classmethod
    def from_sigmas(cls, sigmas: Sequence[Any] | jax.Array, *, mean: Any = None) -> "Gaussian":
        """Axis-aligned: ``Σ = diag(σ_1², ..., σ_N²)``, one σ > 0 per axis."""
        fn = "Gaussian.from_sigmas"
        dtype = float_dtype(None, sigmas, mean)
        s = jnp.asarray(sigmas, dtype)
        if s.ndim != 1:
            raise ValueError(
                f"{fn}: `sigmas` must be a 1-D sequence (one σ per axis); got shape {s.shape}."
            )
        check_positive(s if concrete(sigmas) is None else concrete(sigmas), "sigmas", fn)
        n = s.shape[0]
        return cls(jnp.log(s), jnp.zeros(n * (n - 1) // 2, dtype), _as_mean(mean, n, dtype, fn))

    @classmethod
    def from_angle(cls, sigma1: Any, sigma2: Any, theta: Any, *, mean: Any = None) -> "Gaussian":
        r"""2-D Gaussian with std `sigma1` along the direction θ and `sigma2` across it.

        θ (radians) is measured from the x axis (the last, column axis) towards the y axis (the
        first, row axis): the σ₁ axis is the unit vector ``(sin θ, cos θ)`` in (row, column)
        order, so θ = 0 stretches along rows of pixels and θ = π/2 along columns. On an image
        shown with ``imshow`` (row 0 at the top) positive θ turns clockwise. Differentiable in all
        arguments; ``.sigmas``/``.angle`` read the values back (sorted, θ modulo π).
        """
        fn = "Gaussian.from_angle"
        check_positive(sigma1, "sigma1", fn)
        check_positive(sigma2, "sigma2", fn)
        dtype = float_dtype(None, sigma1, sigma2, theta, mean)
        s1, s2, th = (jnp.asarray(v, dtype) for v in (sigma1, sigma2, theta))
        for name, v in (("sigma1", s1), ("sigma2", s2), ("theta", th)):
            if v.ndim:
                raise ValueError(f"{fn}: `{name}` must be a scalar; got shape {v.shape}.")
        u1 = jnp.stack([jnp.sin(th), jnp.cos(th)])
        u2 = jnp.stack([jnp.cos(th), -jnp.sin(th)])
        cov = s1**2 * jnp.outer(u1, u1) + s2**2 * jnp.outer(u2, u2)
        return cls.from_cholesky(cholesky(cov), mean=mean)

    # --- read-outs --------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        """Number of dimensions N (static)."""
        return int(jnp.shape(self.log_diag)[-1])

    @property
    def cholesky(self) -> jax.Array:
        """The lower-triangular factor L, ``(N, N)``."""
        n, m = jnp.shape(self.log_diag), jnp.shape(self.offdiag)
        if len(n) != 1 or m != (n[0] * (n[0] - 1) // 2,):
            raise ValueError(
                f"Gaussian: `log_diag` must have shape (N,) and `offdiag` (N (N - 1) / 2,); got "
                f"{n} and {m}. Use jax.vmap for a batch of Gaussians."
            )
        return _cholesky(self.log_diag, self.offdiag)

    @property
    def covariance(self) -> jax.Array:
        """Σ = L Lᵀ, ``(N, N)``, symmetric positive definite."""
        chol = self.cholesky
        return chol @ chol.T

    @property
    def precision_matrix(self) -> jax.Array:
        """Σ⁻¹ = L⁻ᵀ L⁻¹ by two triangular solves."""
        chol = self.cholesky
        inv_l = solve_triangular(chol, jnp.eye(self.ndim, dtype=chol.dtype), lower=True)
        return inv_l.T @ inv_l

    @property
    def logdet(self) -> jax.Array:
        """log det Σ = 2 Σ log_diag."""
        return 2.0 * jnp.sum(self.log_diag)

    @property
    def sigmas(self) -> jax.Array:
        """Standard deviations along the principal axes (sqrt of Σ's eigenvalues), descending."""
        return jnp.sqrt(jnp.linalg.eigvalsh(self.covariance))[::-1]

    @property
    def angle(self) -> jax.Array:
        """2-D only: direction of the major (σ₁) axis in radians, in ``[0, π)``, for reporting.

        Same convention as :meth:`from_angle`: from the x (column) axis towards the y (row) axis,
        ``θ = ½ atan2(2 Σ_yx, Σ_xx - Σ_yy)``. Meaningless (and without gradient) when σ₁ = σ₂.
        """
        if self.ndim != 2:
            raise ValueError(
                f"Gaussian.angle: defined for 2-D Gaussians; this one has ndim={self.ndim}."
            )
        c = self.covariance
        theta = 0.5 * jnp.arctan2(2.0 * c[0, 1], c[1, 1] - c[0, 0])
        return jnp.mod(theta, jnp.pi)

    def kernel(
        self,
        *,
        radius: int | Sequence[int] | None = None,
        shape: int | Sequence[int] | None = None,
        grid: Any = None,
        spacing: float | Sequence[float] = 1.0,
        truncate: float = 4.0,
        normalize: bool = True,
        discretization: str = "sample",
    ) -> jax.Array:
        """The kernel :func:`gaussian_kernel` gives for this covariance and mean.

        Under ``jit``/``grad`` pass a static `radius` or `shape`. The diagonal-only
        discretisations need a concrete, axis-aligned Gaussian; for learning an axis-aligned
        σ with them, differentiate ``gaussian_kernel(sigmas**2, ...)`` instead.
        """
        return gaussian_kernel(
            self,
            grid=grid,
            shape=shape,
            spacing=spacing,
            truncate=truncate,
            radius=radius,
            normalize=normalize,
            discretization=discretization,
        )

    def truncation(
        self, radius: int | Sequence[int], *, spacing: float | Sequence[float] = 1.0
    ) -> jax.Array:
        """Upper bound on the mass outside a kernel of this `radius`; see gaussian_truncation."""
        return gaussian_truncation(self, radius, spacing=spacing)
