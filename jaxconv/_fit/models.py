r"""Models that :func:`jaxconv.fit` learns: a Gaussian blur, a free kernel, an oriented edge filter.

A model is a small frozen object (hashable, so a fit's programs compile once per configuration)
holding *static* choices (kernel radius, discretisation, which parameters are free) and functions
of a pytree of parameters; :class:`Model` declares them all. A new kernel family is one
subclass: its ``kernel(params)``, its start, and, if its kernel's size depends on the
parameters, how that size is chosen (``resolve``) and grows (``grow``).

Your own model can also be a function and a pytree of parameters:
``KernelModel(fn, params)`` or ``PredictionModel(fn, params)``.
"""

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv._fit.spectral import radius_for, spectral_covariance
from jaxconv._kernels.buckets import bucket
from jaxconv._kernels.derivatives import oriented_derivative_kernel
from jaxconv._kernels.gaussian import (
    Gaussian,
    _selectors,
    check_covariance,
    gaussian_kernel,
    truncation,
)
from jaxconv._kernels.gaussian_core import check_discretization


def _tupled(value: Any) -> Any:
    """Nested tuples of floats from an array-like (hashable), or None."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return float(arr)
    return tuple(_tupled(row) for row in arr) if arr.ndim > 1 else tuple(arr.tolist())


class Model:
    """Base class of the models :func:`jaxconv.fit` learns: what a model provides, with defaults.

    A subclass defines (functions of ``params``, a pytree of float arrays, are traced):

    * ``is_kernel`` (class attribute) and the matching function: ``kernel(params)``, a
      convolution kernel with the image's axes, applied as ``convolve(image, k, mode="same")``
      (the default); or, with ``is_kernel = False``, ``predict(params, image)``, shaped like
      the image;
    * its start: ``start(dtype)``, on the host (compiles nothing; the default ``init`` uses
      it), or ``init(image, target, key)`` where the start depends on the data (traced:
      batched fits ``vmap`` it);
    * optionally ``derived`` (named estimates, with standard errors), ``diagnostics``,
      ``border`` and ``learning_rate``;
    * if its static size (a kernel radius) depends on the parameters: ``resolve`` (the size
      for starting parameters), ``grow`` (a larger one when the fitted parameters outgrow it:
      the fit continues from them, up to ``max_rounds`` rounds) and ``check``; and
      ``split``/``bind``, which pass what a fit's programs may take as arguments (the radius)
      as values, so that new values reuse the compiled programs.

    Examples:
      A kernel family in a few lines: a 3×3 box blur of unknown gain.

      >>> import dataclasses, jax.numpy as jnp, numpy as np, jaxconv
      >>> @dataclasses.dataclass(frozen=True)
      ... class Box(jaxconv.Model):
      ...     def start(self, dtype):
      ...         return np.ones((), dtype)
      ...     def kernel(self, params):
      ...         return jnp.full((3, 3), params / 9)
      >>> x = np.random.default_rng(0).random((32, 32))
      >>> y = jaxconv.convolve(x, np.full((3, 3), 0.5 / 9), mode="same")
      >>> round(float(jaxconv.fit(Box(), x, y, optimizer="lm", progress=False).params), 4)
      0.5
    """

    #: True: the model is a kernel (:meth:`kernel`); False: it predicts (:meth:`predict`).
    is_kernel: ClassVar[bool] = True
    learning_rate: float = 0.05  # the default Adam schedule's peak, in parameter units

    def start(self, dtype: Any) -> Any:
        """Starting parameters computed on the host (numpy), or None if they need the data."""
        return None

    def init(self, image: jax.Array, target: jax.Array, key: jax.Array) -> Any:
        """Starting parameters for one (image, target) pair (traceable: batched fits vmap it).

        The default is :meth:`start`'s, in `image`'s float dtype.
        """
        dtype = jnp.result_type(float) if image is None else jnp.result_type(image, float)
        params = self.start(dtype)
        if params is None:
            raise NotImplementedError(
                f"{type(self).__name__}: a model must define `start(dtype)` or "
                "`init(image, target, key)`; got neither."
            )
        return jax.tree_util.tree_map(jnp.asarray, params)

    def kernel(self, params: Any) -> jax.Array:
        """The convolution kernel (``is_kernel`` models), with the image's axes."""
        raise NotImplementedError(
            f"{type(self).__name__}: a model with is_kernel=True must define `kernel(params)`."
        )

    def predict(self, params: Any, image: jax.Array) -> jax.Array:
        """The prediction for `image` (models with ``is_kernel = False``), shaped like it."""
        raise NotImplementedError(
            f"{type(self).__name__}: a model with is_kernel=False must define "
            "`predict(params, image)`."
        )

    def derived(self, params: Any) -> dict[str, jax.Array]:
        """Named quantities for reports and standard errors (default: the parameters)."""
        return {"params": params}

    def diagnostics(self, params: Any) -> dict[str, jax.Array]:
        """Figures about the fitted model that are not estimates (no standard errors); traced.

        A fit computes them in its last program (e.g. a Gaussian's mass outside its kernel).
        """
        return {}

    @property
    def border(self) -> Any:
        """Pixels of each edge the loss ignores by default (None: the kernel's reach)."""
        return None

    def resolve(self, params: Any, shape: tuple | None = None) -> "Model":
        """The model with its choices (a kernel radius) settled from concrete `params`.

        With `shape` (one image's), also its static sizes for images of that shape: the size
        policy that lets one compiled fit serve any parameters (see :meth:`split`).
        """
        return self

    def grow(self, params: Any, shape: tuple) -> "Model | None":
        """A larger model for fitted `params` on images of `shape`, or None if this one holds them.

        A fit calls it after each round with the round's (concrete) parameters, batched ones
        with a leading batch axis; a model returned is fitted again from them. Default: None
        (a fixed size).
        """
        return None

    def check(self, fn: str, shape: tuple) -> None:
        """Raises ValueError, naming `fn`, if the model's sizes do not fit images of `shape`.

        Called on each resolved or grown model (a kernel larger than the image is caught for
        every model in any case).
        """

    def split(self) -> tuple["Model", Any]:
        """``(static, traced)``: the hashable part a fit compiles for, and values it passes in.

        A fit's programs are keyed on the static part; the traced part (a pytree of arrays, or
        None) is an argument, so new values of it reuse a compiled program. ``bind`` joins them.
        The static part leaves out what only the start depends on.
        """
        return self, None

    def bind(self, traced: Any) -> "Model":
        """The model with its traced part (from :meth:`split`) put back; traceable."""
        return self


# --- Gaussian blur -------------------------------------------------------------------------------
class GaussianBlurParams(NamedTuple):
    """Parameters of :class:`GaussianBlur`: log-Cholesky covariance, optional shift and gain.

    Attributes:
      log_diag: ``(N,)`` logs of the Cholesky factor's diagonal (σ's logs when axis-aligned).
      offdiag: ``(N (N - 1) / 2,)`` strictly-lower Cholesky entries, or None (axis-aligned).
      mean: ``(N,)`` sub-pixel shift of the kernel's centre, or None (centred).
      gain: scalar gain (the kernel's sum), or None (1).
    """

    log_diag: jax.Array
    offdiag: jax.Array | None = None
    mean: jax.Array | None = None
    gain: jax.Array | None = None

    @property
    def gaussian(self) -> Gaussian:
        """The covariance (and mean) as a :class:`jaxconv.Gaussian`."""
        n = self.log_diag.shape[-1]
        off = self.offdiag
        if off is None:
            off = jnp.zeros((*self.log_diag.shape[:-1], n * (n - 1) // 2), self.log_diag.dtype)
        return Gaussian(self.log_diag, off, self.mean)

    @property
    def covariance(self) -> jax.Array:
        """Σ, ``(..., N, N)`` (leading axes for batched parameters)."""
        if self.log_diag.ndim > 1:
            return jax.vmap(lambda p: p.covariance)(self)
        return self.gaussian.covariance


def _host_covariance(params: GaussianBlurParams) -> np.ndarray:
    """``params.covariance`` of concrete parameters in numpy (no programs compiled for it)."""
    log_diag = np.asarray(params.log_diag, dtype=np.float64)
    n = log_diag.shape[-1]
    diag, lower = _selectors(n)  # where Gaussian.cholesky puts the entries of L
    flat = np.exp(log_diag) @ diag.T
    if params.offdiag is not None and lower.size:
        flat = flat + np.asarray(params.offdiag, dtype=np.float64) @ lower.T
    chol = flat.reshape(*flat.shape[:-1], n, n)
    return chol @ np.swapaxes(chol, -1, -2)


@dataclasses.dataclass(frozen=True)
class GaussianBlur(Model):
    r"""A Gaussian blur with a full covariance Σ (log-Cholesky), optionally shifted and scaled.

    ``prediction = gain · (G_{Σ, μ} ⊛ image)`` with G discretised by `discretization` (see
    :func:`jaxconv.gaussian_kernel`; only ``"sample"`` and ``"integrate"`` allow a shift, and
    only ``"sample"`` a full covariance — the others fit an axis-aligned Σ).

    Args:
      cov: starting covariance ``(N, N)``; default: the spectral estimate
        (:func:`jaxconv.spectral_covariance`) from the data.
      ndim: number of dimensions N (of the image).
      radius: static kernel radius (an int or one per axis), then fixed; default: chosen from
        the starting covariance so the truncated mass is at most `truncate_mass`, with σ
        enlarged by `margin` to leave the fit room to grow, and grown between a fit's rounds
        if the fitted Σ outgrows it (:meth:`grow`).
      shift: also fit a sub-pixel shift μ of the kernel.
      gain: also fit a gain (the kernel's sum; the target's brightness scale).
      discretization: ``"sample"`` (default), ``"integrate"``, ``"discrete"`` or ``"scipy"``.
      truncate_mass, margin: see `radius`.
      size: static half-size of the kernel array per axis (default: `radius`); taps beyond
        `radius` are zero. A fit chooses it from the image shape when it chooses the radius
        (:meth:`static_size`), so that new covariances, and radii, reuse one compiled program.

    Examples:
      >>> import jaxconv
      >>> model = jaxconv.GaussianBlur([[1.0, 0.5], [0.5, 1.0]], radius=5)
      >>> model.kernel(model.init(None, None, None)).shape
      (11, 11)
    """

    cov: Any = None
    ndim: int = 2
    radius: Any = None
    shift: bool = False
    gain: bool = False
    discretization: str = "sample"
    truncate_mass: float = 1e-8
    margin: float = 1.25
    size: Any = None

    def __post_init__(self):
        fn = "GaussianBlur"
        check_discretization(self.discretization, fn)
        if self.shift and self.discretization in ("discrete", "scipy"):
            raise NotImplementedError(
                f"{fn}: discretization={self.discretization!r} has no shift; use 'sample' or "
                "'integrate' with shift=True."
            )
        if self.cov is not None:
            check_covariance(self.cov)  # validates eagerly, in numpy (no small programs)
            object.__setattr__(self, "cov", _tupled(self.cov))
            object.__setattr__(self, "ndim", len(self.cov))
        for name in ("radius", "size"):
            value = getattr(self, name)
            if value is None or isinstance(value, jax.Array):  # traced inside a fit (`bind`)
                continue
            r = (value,) * self.ndim if np.ndim(value) == 0 else tuple(value)
            if len(r) != self.ndim or not all(
                isinstance(v, (int, np.integer)) and v >= 0 for v in r
            ):
                raise ValueError(
                    f"{fn}: `{name}` must be a non-negative int or one per axis; got {value!r}."
                )
            object.__setattr__(self, name, tuple(int(v) for v in r))
        if _concrete(self.radius) and _concrete(self.size):
            if any(r > s for r, s in zip(self.radius, self.size, strict=True)):
                raise ValueError(
                    f"{fn}: `size` must be at least `radius` {self.radius}; got {self.size}."
                )

    @property
    def full_covariance(self) -> bool:
        """Whether Σ is a full matrix: the ``"sample"`` discretisation (the others are per axis)."""
        return self.discretization == "sample"

    @property
    def full(self) -> bool:
        """Deprecated name of :attr:`full_covariance` (warns)."""
        warnings.warn(
            "GaussianBlur.full is deprecated and will be removed; use full_covariance.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.full_covariance

    def params_from(self, cov: Any, gain: Any = None, mean: Any = None) -> GaussianBlurParams:
        """Parameters for a given covariance (and gain, mean); traceable.

        A numpy `cov` gives numpy parameters, computed on the host (no program compiled).
        """
        xp = np if isinstance(cov, np.ndarray) else jnp
        cov = xp.asarray(cov)
        if self.full_covariance:
            chol = xp.linalg.cholesky(cov)
            rows, cols = np.tril_indices(self.ndim, -1)
            log_diag, off = xp.log(xp.diagonal(chol)), chol[rows, cols]
        else:
            log_diag, off = 0.5 * xp.log(xp.diagonal(cov)), None
        dtype = log_diag.dtype
        mu = None
        if self.shift:
            mu = xp.zeros(self.ndim, dtype) if mean is None else xp.asarray(mean, dtype)
        g = None
        if self.gain:
            g = xp.ones((), dtype) if gain is None else xp.asarray(gain, dtype)
        return GaussianBlurParams(log_diag, off, mu, g)

    def start(self, dtype: Any) -> GaussianBlurParams | None:
        if self.cov is None:
            return None  # the spectral estimate, from the data (`init`)
        return self.params_from(np.asarray(self.cov, dtype))

    def init(self, image: Any, target: Any, key: Any) -> GaussianBlurParams:
        if self.cov is not None:
            return super().init(image, target, key)
        if self.gain:
            cov, g = spectral_covariance(image, target, gain=True)
            return self.params_from(cov, g)
        return self.params_from(spectral_covariance(image, target))

    # Kernel half-sizes a fit picks from (besides the largest the image holds): 64 covers σ up to
    # about 8.7 px at the default truncation and margin. Two sizes per image shape at most.
    SIZES = (64,)

    @classmethod
    def static_size(cls, shape: tuple, radius: tuple) -> tuple[int, ...]:
        """The kernel half-size a fit uses for `radius` on images of `shape`, per axis.

        ``min(64, (n - 1) // 2)`` if that holds the radius, else ``(n - 1) // 2``, the largest
        kernel that fits (see :func:`jaxconv._kernels.buckets.bucket`). A fit's programs are
        compiled for the size, not the radius: every covariance whose radius the size holds reuses
        them. The fit convolves by FFTs of the image's own size (see
        :func:`jaxconv._fit.forward.forward`), so the size costs only the kernel's evaluation,
        not a larger transform; the cap at 64 keeps that evaluation small on large images.
        """
        return tuple(
            bucket(r, (int(n) - 1) // 2, cls.SIZES) for r, n in zip(radius, shape, strict=True)
        )

    def with_radius(self, radius: tuple, shape: tuple | None = None) -> "GaussianBlur":
        """The model with a new `radius` (a fit's radius growing), its size grown to hold it."""
        size = self.size
        if shape is not None and (
            size is None or any(r > s for r, s in zip(radius, size, strict=True))
        ):
            # At least the radius: a radius the image cannot hold is the caller's error to raise.
            fit = self.static_size(shape, radius)
            size = tuple(max(r, s) for r, s in zip(radius, fit, strict=True))
        return dataclasses.replace(self, radius=tuple(radius), size=size)

    def resolve(self, params: GaussianBlurParams, shape: tuple | None = None) -> "GaussianBlur":
        if self.radius is not None:
            return self  # settled (a radius given by the user is also the kernel's size)
        return self.with_radius(self._radius_for(params, self.margin), shape)

    def _radius_for(self, params: GaussianBlurParams, margin: float) -> tuple[int, ...]:
        return radius_for(
            _host_covariance(params), self.truncate_mass, mean=params.mean, margin=margin
        )

    def grow(self, params: GaussianBlurParams, shape: tuple) -> "GaussianBlur | None":
        """A larger radius if the truncated mass at the fitted Σ exceeds `truncate_mass`.

        Only a radius the fit chose grows (one given without a `size` is fixed): to the radius
        for Σ with σ enlarged by `margin` again, within a size from :meth:`static_size`.
        """
        if self.size is None or all(
            n <= r for n, r in zip(self._radius_for(params, 1.0), self.radius, strict=True)
        ):
            return None
        grown = self._radius_for(params, self.margin)
        radius = tuple(max(g, r) for g, r in zip(grown, self.radius, strict=True))
        return self.with_radius(radius, shape)

    def check(self, fn: str, shape: tuple) -> None:
        if self.size is not None and any(
            2 * r + 1 > n for r, n in zip(self.radius, shape, strict=True)
        ):
            raise ValueError(
                f"{fn}: the blur needs a kernel of radius {self.radius} (truncated mass <= "
                f"`truncate_mass`), which does not fit in `image` of shape {tuple(shape)}; use "
                "larger images (or tiles), or a larger `truncate_mass`."
            )

    def split(self) -> tuple["GaussianBlur", Any]:
        # The starting covariance is used by `start`, not by the fit; nor, where a fit chose
        # the kernel's size, is the radius compiled in (a traced part): neither differs
        # between the compiled programs of fits on one image shape.
        if self.size is None or not _concrete(self.radius):
            return dataclasses.replace(self, cov=None), None
        static = dataclasses.replace(self, cov=None, radius=None)
        return static, np.asarray(self.radius, np.int32)

    def bind(self, traced: Any) -> "GaussianBlur":
        return self if traced is None else dataclasses.replace(self, radius=jnp.asarray(traced))

    @property
    def border(self) -> Any:
        return self.radius  # the kernel's reach (within its size, taps beyond it are zero)

    def kernel(self, params: GaussianBlurParams) -> jax.Array:
        size = self.radius if self.size is None else self.size
        if size is None or self.radius is None:
            raise ValueError(
                "GaussianBlur: `radius` must be set (or resolved from concrete parameters) "
                "before the kernel is built under jit; got None."
            )
        if self.full_covariance:
            # The Gaussian itself, not Σ = L Lᵀ: the kernel then uses L as is (no second
            # factorisation to trace, differentiate and compile).
            k = gaussian_kernel(params.gaussian, radius=size)
        else:
            k = gaussian_kernel(
                jnp.exp(2.0 * params.log_diag),
                mean=params.mean,
                radius=size,
                discretization=self.discretization,
            )
        if not (_concrete(self.radius) and self.radius == size):
            # Zero taps beyond `radius`, renormalised: the kernel of radius `radius` itself.
            k = k * _box(self.radius, size, k.dtype)
            k = k / jnp.sum(k)
        return k if params.gain is None else params.gain * k

    def diagnostics(self, params: GaussianBlurParams) -> dict[str, jax.Array]:
        """``truncation``: the Gaussian mass outside the kernel's `radius` (an upper bound)."""
        g = params.gaussian
        radius = jnp.asarray(self.radius, jnp.int32)
        mean = jnp.zeros(self.ndim, g.cholesky.dtype) if g.mean is None else g.mean
        mass = truncation(g.covariance, mean, radius, form="full", h=(1.0,) * self.ndim)
        return {"truncation": mass}

    def derived(self, params: GaussianBlurParams) -> dict[str, jax.Array]:
        g = params.gaussian
        out = {"covariance": g.covariance, "sigmas": g.sigmas}
        if self.ndim == 2:
            out["angle"] = g.angle
        if params.mean is not None:
            out["mean"] = params.mean
        if params.gain is not None:
            out["gain"] = params.gain
        return out


def _concrete(value: Any) -> bool:
    return value is not None and not isinstance(value, jax.Array)


def _box(radius: Any, size: tuple, dtype: Any) -> jax.Array:
    """``1`` on the offsets within `radius` (traced) of a kernel of half-size `size`, else 0."""
    radius = jnp.asarray(radius)
    mask = jnp.ones((), dtype)
    for a, s in enumerate(size):
        inside = jnp.abs(jnp.arange(-s, s + 1)) <= radius[a]
        mask = mask[..., None] * inside.astype(dtype)
    return mask


# --- free-form kernel ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FreeKernel(Model):
    """A free-form kernel of a given shape: every tap is a parameter (a linear model).

    Args:
      shape: kernel shape, e.g. ``(3, 3)``; odd sizes are centred, even ones follow
        ``convolve(..., mode="same")``'s convention.
      init_kernel: starting kernel (an array of `shape`); default zeros. With
        ``init_kernel="random"``, N(0, 1/size) taps drawn from the fit's `key`.

    Examples:
      >>> import jaxconv
      >>> jaxconv.FreeKernel((3, 3)).init(None, None, None).shape
      (3, 3)
    """

    shape: tuple = (3, 3)
    init_kernel: Any = None

    def __post_init__(self):
        shape = (self.shape,) if isinstance(self.shape, (int, np.integer)) else tuple(self.shape)
        if not shape or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
            raise ValueError(f"FreeKernel: `shape` must hold positive ints; got {self.shape!r}.")
        object.__setattr__(self, "shape", tuple(int(s) for s in shape))
        if self.init_kernel is not None and not isinstance(self.init_kernel, str):
            if np.shape(self.init_kernel) != self.shape:
                raise ValueError(
                    f"FreeKernel: `init_kernel` must have shape {self.shape}; "
                    f"got {np.shape(self.init_kernel)}."
                )
            object.__setattr__(self, "init_kernel", _tupled(self.init_kernel))
        elif self.init_kernel not in (None, "random"):
            raise ValueError(
                f"FreeKernel: `init_kernel` must be an array, 'random' or None; "
                f"got {self.init_kernel!r}."
            )

    def start(self, dtype: Any) -> np.ndarray | None:
        if self.init_kernel == "random":
            return None  # drawn from the fit's key (`init`)
        if self.init_kernel is None:
            return np.zeros(self.shape, dtype)
        return np.asarray(self.init_kernel, dtype)

    def init(self, image: Any, target: Any, key: Any) -> jax.Array:
        if self.init_kernel != "random":
            return super().init(image, target, key)
        dtype = jnp.result_type(float) if image is None else jnp.result_type(image, float)
        key = jax.random.PRNGKey(0) if key is None else key
        return jax.random.normal(key, self.shape, dtype) / math.sqrt(math.prod(self.shape))

    def kernel(self, params: jax.Array) -> jax.Array:
        return params

    def split(self) -> tuple["FreeKernel", Any]:
        return dataclasses.replace(self, init_kernel=None), None  # the start is not compiled in

    def derived(self, params: jax.Array) -> dict[str, jax.Array]:
        return {"kernel": params}


# --- derivative-of-Gaussian edge filter ----------------------------------------------------------
class GaussianEdgeParams(NamedTuple):
    """Parameters of :class:`GaussianEdge`: log σ, orientation θ (radians) and gain."""

    log_sigma: jax.Array
    theta: jax.Array
    gain: jax.Array


@dataclasses.dataclass(frozen=True)
class GaussianEdge(Model):
    r"""An oriented first derivative of a 2-D Gaussian: ``gain · (cos θ ∂x + sin θ ∂y) G_σ``.

    The kernel is :func:`jaxconv.oriented_derivative_kernel` (θ from the x, column, axis towards
    the y, row, axis). Fit it to an edge map (e.g. a Sobel response) to recover the scale σ and
    the orientation θ; θ and θ + π are the same filter with the opposite gain.

    Args:
      sigma, theta, gain: starting values.
      radius: static kernel radius; default ``ceil(6 σ)`` (room for σ to grow by half).
      discretization: of the Gaussian (default ``"scipy"``, scipy.ndimage's derivative kernels).
    """

    sigma: float = 1.0
    theta: float = 0.0
    gain: float = 1.0
    radius: int | None = None
    discretization: str = "scipy"

    def __post_init__(self):
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"GaussianEdge: `sigma` must be > 0; got {self.sigma!r}.")
        if self.radius is None:
            object.__setattr__(self, "radius", max(1, math.ceil(6.0 * float(self.sigma))))
        check_discretization(self.discretization, "GaussianEdge")

    def start(self, dtype: Any) -> GaussianEdgeParams:
        return GaussianEdgeParams(
            np.asarray(math.log(self.sigma), dtype),
            np.asarray(self.theta, dtype),
            np.asarray(self.gain, dtype),
        )

    def split(self) -> tuple["GaussianEdge", Any]:
        # The start is not compiled in: fits from any σ, θ, gain of one radius share programs.
        return dataclasses.replace(self, sigma=1.0, theta=0.0, gain=1.0), None

    def kernel(self, params: GaussianEdgeParams) -> jax.Array:
        k = oriented_derivative_kernel(
            jnp.exp(params.log_sigma),
            params.theta,
            radius=self.radius,
            discretization=self.discretization,
        )
        return params.gain * k

    def derived(self, params: GaussianEdgeParams) -> dict[str, jax.Array]:
        return {"sigma": jnp.exp(params.log_sigma), "theta": params.theta, "gain": params.gain}


# --- user models ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class KernelModel(Model):
    """Your model as ``kernel_fn(params) -> kernel``, with `params` any pytree of float arrays.

    Examples:
      >>> import jax.numpy as jnp, jaxconv
      >>> box = jaxconv.KernelModel(lambda p: jnp.full((3, 3), p / 9.0), jnp.array(1.0))
      >>> float(box.kernel(box.params).sum())
      1.0
    """

    kernel_fn: Callable[[Any], jax.Array]
    params: Any
    learning_rate: float = 0.05

    def start(self, dtype: Any) -> Any:
        return self.params

    def kernel(self, params: Any) -> jax.Array:
        return self.kernel_fn(params)


@dataclasses.dataclass(frozen=True, eq=False)
class PredictionModel(Model):
    """Your model as ``predict_fn(params, image) -> prediction`` (the shape of `image`).

    `border_width` (the model's :attr:`border`) is how many pixels of each edge the loss ignores
    by default (say, the reach of your filter, where its boundary handling differs from the
    data's).
    """

    is_kernel: ClassVar[bool] = False
    predict_fn: Callable[[Any, jax.Array], jax.Array]
    params: Any
    border_width: int | tuple = 0
    learning_rate: float = 0.05

    def start(self, dtype: Any) -> Any:
        return self.params

    def predict(self, params: Any, image: jax.Array) -> jax.Array:
        return self.predict_fn(params, image)

    @property
    def border(self) -> tuple[int, ...] | int:
        return self.border_width
