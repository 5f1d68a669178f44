r"""``fit_gaussian``: estimate a Gaussian blur (PSF) between a sharp and a blurred image at once.

The common case of :func:`jaxconv.fit`, with the forward-model hygiene that keeps real data
unbiased:

* a start that needs no guess: :func:`jaxconv.spectral_covariance` (``log|Y/X|`` by weighted
  linear least squares over the low frequencies);
* a kernel radius large enough for the covariance being fitted (truncated mass ≤ 1e-8 by default,
  σ enlarged by a margin); if the fitted Σ outgrows it, the radius is enlarged and the fit
  continues from where it stopped (`rounds` counts these). The radius is not compiled in: the
  kernel array has a size from a bucket (half-size 64, else the largest the image holds; see
  :meth:`GaussianBlur.static_size`) with zero taps beyond the radius, so a new pair,
  covariance or radius reuses the compiled fit;
* a loss that ignores a border as wide as the kernel's radius (the data's own boundary handling is
  unknown);
* the discretisation stated on the result (``"sample"``: the density sampled at pixel centres and
  normalised, what scipy.ndimage and OpenCV use).

:func:`fit_gaussian_tiles` does the same tile by tile over a large image in one vectorised fit,
giving a map of covariances (a spatially varying blur).
"""

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxconv._fit import FitResult, fit, fit_batch
from jaxconv._fit_step import compiled, each_pair, pair_group
from jaxconv._forward import check_data
from jaxconv._models import GaussianBlur
from jaxconv._spectral import radius_for


@dataclasses.dataclass(frozen=True, repr=False)
class GaussianFitResult(FitResult):
    """A :class:`FitResult` for a Gaussian blur, with its covariance read out.

    Attributes (besides those of :class:`FitResult`; ``stderr`` holds the standard errors of
    ``covariance``, ``sigmas``, ``angle`` and, when fitted, ``mean`` and ``gain``):
      discretization: the kernel discretisation the estimate assumes.
      radius: final kernel radius per axis; truncation: the Gaussian mass outside it (an upper
        bound, at the fitted covariance).
      rounds: fits run (more than 1 when the radius had to grow).
      centers: for :func:`fit_gaussian_tiles`, the ``(row, col)`` centre of each tile.
    """

    discretization: str = "sample"
    radius: tuple = ()
    truncation: Any = None
    rounds: int = 1
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


def _round_path(checkpoint: Any, k: int) -> Any:
    if checkpoint is None or k == 0:
        return checkpoint
    return f"{os.fspath(checkpoint)}.round{k}"


def _fit_rounds(fn, fitter, image, target, model, params, max_rounds, checkpoint, options):
    """Fits, enlarging the radius and continuing while the fitted Σ outgrows the kernel."""
    results = []
    for k in range(max_rounds):
        res = fitter(model, image, target, params=params, checkpoint=_round_path(checkpoint, k),
                     **options)  # fmt: skip
        results.append(res)
        needed = radius_for(res.derived["covariance"], model.truncate_mass, mean=_mean(res))
        if all(n <= r for n, r in zip(needed, model.radius, strict=True)):
            break
        grown = radius_for(
            res.derived["covariance"], model.truncate_mass, mean=_mean(res), margin=model.margin
        )
        radius = tuple(max(g, r) for g, r in zip(grown, model.radius, strict=True))
        _check_radius(fn, radius, image.shape[-len(radius) :])
        model = model.with_radius(radius, image.shape[-len(radius) :])
        params = res.params
    return results


def _mean(res: FitResult) -> Any:
    return res.derived.get("mean")


def _check_radius(fn: str, radius: tuple, shape: tuple) -> None:
    if any(2 * r + 1 > n for r, n in zip(radius, shape, strict=True)):
        raise ValueError(
            f"{fn}: the blur needs a kernel of radius {radius} (truncated mass <= "
            f"`truncate_mass`), which does not fit in `image` of shape {shape}; use larger "
            "images (or tiles), or a larger `truncate_mass`."
        )


def _combine(results: list, model: GaussianBlur, extra: dict) -> GaussianFitResult:
    last = results[-1]
    axis = 1 if np.ndim(last.loss) else 0
    fields = {f.name: getattr(last, f.name) for f in dataclasses.fields(FitResult)}
    if len(results) > 1:
        # Earlier rounds' histories, without their final entries (the next round's first).
        fields["history"] = np.concatenate(
            [np.delete(r.history, -1, axis) for r in results[:-1]] + [last.history], axis
        )
        fields["params_history"] = jax.tree_util.tree_map(
            lambda *hs: np.concatenate([np.delete(h, -1, axis) for h in hs[:-1]] + [hs[-1]], axis),
            *[r.params_history for r in results],
        )
        fields["steps"] = sum(r.steps for r in results)
        fields["compile_time"] = sum(r.compile_time for r in results)
        fields["wall_time"] = sum(r.wall_time for r in results)
    trunc = np.asarray(last.diagnostics["truncation"])
    # The model of the final radius as a kernel of that radius (the fit's kernel was larger,
    # zero beyond it).
    fields["model"] = dataclasses.replace(last.model, size=None)
    return GaussianFitResult(
        **fields,
        discretization=model.discretization,
        radius=last.model.radius,
        truncation=float(trunc) if trunc.ndim == 0 else trunc,
        rounds=len(results),
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
    max_rounds: int = 4,
    optimizer: Any = "lm",
    steps: int | None = None,
    tol: float = 1e-10,
    boundary: str = "symm",
    border: int | tuple | None = None,
    method: str = "auto",
    learning_rate: float | None = None,
    callback: Callable | None = None,
    progress: bool = True,
    checkpoint: str | None = None,
    checkpoint_every: int = 100,
) -> GaussianFitResult:
    r"""Estimates the Gaussian blur Σ with ``target ≈ G_Σ ⊛ image``: the one-call path.

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
      max_rounds: at most this many fits, enlarging the radius between them.
      optimizer: ``"lm"`` (default: Levenberg–Marquardt with exact Jacobians), ``"adam"``, or
        any optax optimizer. Other arguments are those of :func:`jaxconv.fit`; `border`
        defaults to the kernel radius.

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
    image, target = check_data(fn, image, target)
    model = GaussianBlur(
        init, ndim=image.ndim, shift=shift, gain=gain, discretization=discretization,
        truncate_mass=truncate_mass, margin=margin,
    )  # fmt: skip
    if init is None:
        params = compiled(_init_one, model, image, target)[0](image, target)
    else:  # in numpy: a new start compiles nothing
        params = model.params_from(np.asarray(model.cov, image.dtype))
    # The start goes in as `params`; dropping `cov` lets fits from any start share compiles.
    model = dataclasses.replace(model.resolve(params, image.shape), cov=None)
    _check_radius(fn, model.radius, image.shape)
    options = dict(
        optimizer=optimizer, steps=steps, tol=tol, boundary=boundary, border=border,
        method=method, learning_rate=learning_rate, callback=callback, progress=progress,
        checkpoint_every=checkpoint_every,
    )  # fmt: skip
    results = _fit_rounds(fn, fit, image, target, model, params, max_rounds, checkpoint, options)
    return _combine(results, model, {})


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
    max_rounds: int = 4,
    optimizer: Any = "lm",
    steps: int | None = None,
    tol: float = 1e-10,
    boundary: str = "symm",
    border: int | tuple | None = None,
    method: str = "auto",
    learning_rate: float | None = None,
    progress: bool = True,
    checkpoint: str | None = None,
    checkpoint_every: int = 100,
) -> GaussianFitResult:
    """Estimates a spatially varying Gaussian blur: one covariance per tile, in one batched fit.

    The image pair is cut into ``tile``-sized windows every `stride` pixels (default: adjacent
    tiles; the remainder at the bottom/right edges is not used), and every tile gets its own
    :func:`fit_gaussian` — run together with :func:`jaxconv.fit_batch` (``vmap``), all tiles
    sharing one kernel radius.

    Args:
      image, target: 2-D (or N-D) arrays of one shape.
      tile: tile size (an int or one per axis); stride: step between tiles.
      Others: as for :func:`fit_gaussian`.

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
    image, target = check_data(fn, image, target)
    ndim = image.ndim
    size = _per_axis(fn, "tile", tile, ndim)
    step = size if stride is None else _per_axis(fn, "stride", stride, ndim)
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
    params = compiled(_init_tiles, (model, pair_group(xs)), xs, ys)[0](xs, ys)
    model = model.resolve(params, size)
    _check_radius(fn, model.radius, size)
    options = dict(
        optimizer=optimizer, steps=steps, tol=tol, boundary=boundary, border=border,
        method=method, learning_rate=learning_rate, progress=progress,
        checkpoint_every=checkpoint_every,
    )  # fmt: skip
    results = _fit_rounds(fn, fit_batch, xs, ys, model, params, max_rounds, checkpoint, options)
    centers = (starts + (np.asarray(size) - 1) / 2.0).reshape(*counts, ndim)
    res = _combine(results, model, {"centers": centers})
    return _reshape_batch(res, len(starts), counts)


def _init_one(model: GaussianBlur, x: jax.Array, y: jax.Array) -> Any:
    return model.init(x, y, None)


def _init_tiles(static: tuple, xs: jax.Array, ys: jax.Array) -> Any:
    model, group = static
    return each_pair(group, lambda x, y: model.init(x, y, None), xs, ys)


def _per_axis(fn: str, name: str, value: Any, ndim: int) -> tuple[int, ...]:
    v = (value,) * ndim if np.ndim(value) == 0 else tuple(value)
    if len(v) != ndim or not all(isinstance(t, (int, np.integer)) and t >= 1 for t in v):
        raise ValueError(f"{fn}: `{name}` must be a positive int or one per axis; got {value!r}.")
    return tuple(int(t) for t in v)


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
