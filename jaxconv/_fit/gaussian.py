r"""``fit_gaussian``: estimate a Gaussian blur (PSF) between a sharp and a blurred image at once.

The common case of :func:`jaxconv.fit`, with the forward-model hygiene that keeps real data
unbiased:

* a start that needs no guess: :func:`jaxconv.spectral_covariance` (``log|Y/X|`` by weighted
  linear least squares over the low frequencies);
* a kernel radius large enough for the covariance being fitted (truncated mass ≤ 1e-8 by default,
  σ enlarged by a margin); if the fitted Σ outgrows it, the radius is enlarged and the fit
  continues from where it stopped (:meth:`GaussianBlur.grow`; `rounds` counts these). The
  radius is not compiled in: the
  kernel array has a size from a bucket (half-size 64, else the largest the image holds; see
  :meth:`GaussianBlur.static_size`) with zero taps beyond the radius, so a new pair,
  covariance or radius reuses the compiled fit;
* a loss that ignores a border as wide as the kernel's radius (the data's own boundary handling is
  unknown);
* the discretisation stated on the result (``"sample"``: the density sampled at pixel centres and
  normalised, what scipy.ndimage and OpenCV use).

:func:`fit_gaussian_tiles` does the same tile by tile over a large image in one vectorised fit,
giving a map of covariances (a spatially varying blur). Both are :func:`jaxconv.fit` (and
:func:`jaxconv.fit_batch`) of a :class:`GaussianBlur` with Levenberg–Marquardt by default, their
results read out as a :class:`GaussianFitResult`.
"""

import dataclasses
from typing import Any

import jax
import numpy as np

from jaxconv._fit.forward import check_data
from jaxconv._fit.loop import FitResult, run
from jaxconv._fit.models import GaussianBlur
from jaxconv._fit.options import FitOptions, merge
from jaxconv._util import per_axis_ints


@dataclasses.dataclass(frozen=True, repr=False)
class GaussianFitResult(FitResult):
    """A :class:`FitResult` for a Gaussian blur, with its covariance read out.

    Attributes (besides those of :class:`FitResult`; ``stderr`` holds the standard errors of
    ``covariance``, ``sigmas``, ``angle`` and, when fitted, ``mean`` and ``gain``):
      discretization: the kernel discretisation the estimate assumes.
      radius: final kernel radius per axis; truncation: the Gaussian mass outside it (an upper
        bound, at the fitted covariance). (``rounds`` counts the fits run: more than 1 when
        the radius had to grow.)
      centers: for :func:`fit_gaussian_tiles`, the ``(row, col)`` centre of each tile.
    """

    discretization: str = "sample"
    radius: tuple = ()
    truncation: Any = None
    centers: np.ndarray | None = None

    @property
    def covariance(self) -> np.ndarray:
        """Σ, ``(N, N)`` (``(ny, nx, N, N)`` for tiles)."""
        return np.asarray(self.derived["covariance"])

    @property
    def sigmas(self) -> np.ndarray:
        """Principal standard deviations σ₁ ≥ σ₂, in pixels."""
        return np.asarray(self.derived["sigmas"])

    @property
    def angle(self) -> np.ndarray | None:
        """Direction of σ₁ in radians in [0, π), from the x (column) axis towards y (rows)."""
        return np.asarray(self.derived["angle"]) if "angle" in self.derived else None

    def __repr__(self) -> str:
        base = super().__repr__()[len("GaussianFitResult(") : -1]
        if self.covariance.ndim == 2:
            cov = np.array2string(self.covariance, precision=5, separator=", ")
            return f"GaussianFitResult(covariance={cov}, {base})"
        return f"GaussianFitResult(tiles={self.covariance.shape[:-2]}, {base})"


def _gaussian_result(res: FitResult, **extra: Any) -> GaussianFitResult:
    fields = {f.name: getattr(res, f.name) for f in dataclasses.fields(FitResult)}
    # The model of the final radius as a kernel of that radius (the fit's kernel was larger,
    # zero beyond it), without the start.
    fields["model"] = dataclasses.replace(res.model, cov=None, size=None)
    trunc = np.asarray(res.diagnostics["truncation"])
    return GaussianFitResult(
        **fields,
        discretization=res.model.discretization,
        radius=res.model.radius,
        truncation=float(trunc) if trunc.ndim == 0 else trunc,
        **extra,
    )


def fit_gaussian(
    image: jax.typing.ArrayLike,
    target: jax.typing.ArrayLike,
    *,
    init: Any = None,
    shift: bool = False,
    gain: bool = False,
    discretization: str = "sample",
    truncate_mass: float = 1e-8,
    margin: float = 1.25,
    options: FitOptions | None = None,
    **kwargs: Any,
) -> GaussianFitResult:
    r"""Estimates the Gaussian blur Σ with ``target ≈ G_Σ ⊛ image``: the one-call path.

    :func:`jaxconv.fit` of ``GaussianBlur(init, shift=shift, gain=gain, ...)``, its radius
    chosen from the start and grown between rounds, with Levenberg–Marquardt by default.

    Args:
      image: sharp image ``(H, W)`` (N-D works; ``angle`` is 2-D only).
      target: blurred image, same shape.
      init: starting covariance ``(N, N)``; default the spectral estimate
        (:func:`jaxconv.spectral_covariance`).
      shift: also fit a sub-pixel shift of the kernel (reported as ``derived["mean"]``).
      gain: also fit a gain (``derived["gain"]``).
      discretization: of the kernel: ``"sample"`` (full covariance), or the axis-aligned
        ``"integrate"``, ``"discrete"`` or ``"scipy"`` (see :func:`jaxconv.gaussian_kernel`).
        Use the one that made your data: a mismatch biases σ.
      truncate_mass: the kernel radius keeps the Gaussian mass outside it below this.
      margin: σ is enlarged by this factor when choosing the radius (room to grow).
      options, **kwargs: the fit's options (:class:`FitOptions`), as for :func:`jaxconv.fit`;
        here `optimizer` None means ``"lm"`` (Levenberg–Marquardt with exact Jacobians),
        `border` defaults to the kernel radius, and ``max_rounds`` (default 4) caps the fits
        run while the radius grows.

    Returns:
      A :class:`GaussianFitResult`: ``.covariance``, ``.sigmas``, ``.angle``, ``.stderr``,
      ``.loss``, ``.history``, ``.discretization``, ...

    Raises:
      ValueError: on bad inputs (see :func:`jaxconv.fit`), or a blur too wide for the image.

    Examples:
      >>> import numpy as np, jaxconv
      >>> x = jaxconv.default_image()[:64, :64]
      >>> k = jaxconv.gaussian_kernel([[1.0, 0.5], [0.5, 1.0]], radius=7)
      >>> y = jaxconv.convolve(x, k, mode="same")
      >>> res = jaxconv.fit_gaussian(x, y, progress=False)
      >>> res.covariance.round(4).tolist()
      [[1.0, 0.5], [0.5, 1.0]]
    """
    fn = "fit_gaussian"
    options = merge(fn, options, kwargs)
    image, target = check_data(fn, image, target)
    model = GaussianBlur(
        init, ndim=image.ndim, shift=shift, gain=gain, discretization=discretization,
        truncate_mass=truncate_mass, margin=margin,
    )  # fmt: skip
    return _gaussian_result(run(fn, model, image, target, False, None, options, "lm"))


def fit_gaussian_tiles(
    image: jax.typing.ArrayLike,
    target: jax.typing.ArrayLike,
    *,
    tile: int | tuple[int, int] = 64,
    stride: int | tuple[int, int] | None = None,
    shift: bool = False,
    gain: bool = False,
    discretization: str = "sample",
    truncate_mass: float = 1e-8,
    margin: float = 1.25,
    options: FitOptions | None = None,
    **kwargs: Any,
) -> GaussianFitResult:
    """Estimates a spatially varying Gaussian blur: one covariance per tile, in one batched fit.

    The image pair is cut into ``tile``-sized windows every `stride` pixels (default: adjacent
    tiles; the remainder at the bottom/right edges is not used), and every tile gets its own
    :func:`fit_gaussian` — run together with :func:`jaxconv.fit_batch` (``vmap``), all tiles
    sharing one kernel radius.

    Args:
      image, target: 2-D (or N-D) arrays of one shape.
      tile: tile size (an int or one per axis); stride: step between tiles.
      Others: as for :func:`fit_gaussian` (a `callback` sees every tile's parameters and
        losses, with a leading tile axis).

    Returns:
      A :class:`GaussianFitResult` whose arrays are maps over the tiles: ``covariance``
      ``(ny, nx, 2, 2)``, ``sigmas`` ``(ny, nx, 2)``, ``angle``, ``loss``, ``status``,
      ``stderr[...]`` ``(ny, nx, ...)``, and ``centers`` ``(ny, nx, 2)``.

    Examples:
      >>> import numpy as np, jaxconv
      >>> x = jaxconv.default_image()[:128, :128]
      >>> y = jaxconv.gaussian_filter(x, 1.5)
      >>> res = jaxconv.fit_gaussian_tiles(x, y, tile=64, progress=False)
      >>> res.covariance.shape
      (2, 2, 2, 2)
    """
    fn = "fit_gaussian_tiles"
    options = merge(fn, options, kwargs)
    image, target = check_data(fn, image, target)
    ndim = image.ndim
    size = per_axis_ints(tile, ndim, "tile", fn, minimum=1)
    step = size if stride is None else per_axis_ints(stride, ndim, "stride", fn, minimum=1)
    if any(t > n for t, n in zip(size, image.shape, strict=True)):
        raise ValueError(f"{fn}: `tile` {size} must fit in `image` of shape {image.shape}.")
    counts = tuple((n - t) // s + 1 for n, t, s in zip(image.shape, size, step, strict=True))
    starts = np.stack(np.meshgrid(*[np.arange(c) * s for c, s in zip(counts, step, strict=True)],
                                  indexing="ij"), -1).reshape(-1, ndim)  # fmt: skip
    take = jax.vmap(lambda a, s: jax.lax.dynamic_slice(a, s, size), in_axes=(None, 0))
    xs, ys = take(image, starts), take(target, starts)
    model = GaussianBlur(
        None, ndim=ndim, shift=shift, gain=gain, discretization=discretization,
        truncate_mass=truncate_mass, margin=margin,
    )  # fmt: skip
    res = run(fn, model, xs, ys, True, None, options, "lm")
    centers = (starts + (np.asarray(size) - 1) / 2.0).reshape(*counts, ndim)
    return _reshape_batch(_gaussian_result(res, centers=centers), len(starts), counts)


def _reshape_batch(res: GaussianFitResult, batch: int, counts: tuple) -> GaussianFitResult:
    """Turns the leading batch axis of every array in `res` into the tile grid `counts`."""

    def grid(v: Any) -> Any:
        if isinstance(v, (np.ndarray, jax.Array)) and v.ndim and v.shape[0] == batch:
            return np.asarray(v).reshape(*counts, *v.shape[1:])
        return v

    updates = {}
    for f in dataclasses.fields(res):
        if f.name in ("model", "centers", "radius", "border"):
            continue
        value = getattr(res, f.name)
        updates[f.name] = jax.tree_util.tree_map(grid, value) if value is not None else None
    return dataclasses.replace(res, **updates)
