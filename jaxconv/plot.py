"""Plots for kernels, covariances, fits and images (matplotlib; safe under the Agg backend).

Every function accepts numpy or JAX arrays, draws on the ``ax=`` it is given or on a new figure,
and returns what it drew on; none calls ``plt.show`` or selects a backend.

One orientation everywhere: kernel images, contours and covariance ellipses put ``x``, the
column offset (array axis 1), to the right and ``y``, the row offset (axis 0), downwards, as an
image is shown. Covariances and means are given in jaxconv's own axis order, (row, column), as
:func:`jaxconv.fit_gaussian` returns them and :func:`jaxconv.gaussian_kernel` takes them, so a
fitted covariance can be drawn over its kernel or its density's contours as it is; a positive
row-column covariance tilts the ellipse from the top left to the bottom right.

Figures are made at :data:`DPI` (100) so that matplotlib's default 10-point text is 14 pixels high
when saved with ``savefig``'s default ``dpi="figure"``; :func:`images` shows each image pixel as at
least one figure pixel, so thin lines survive.

Examples:
    >>> import numpy as np
    >>> import jaxconv.plot as jplot
    >>> ax = jplot.kernel(np.outer([1, 2, 1], [-1, 0, 1]), title="Sobel x")
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Ellipse, PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.text import Text

from jaxconv.io import _write_atomic, atomic_path

__all__ = [
    "DPI",
    "animate_fit",
    "contour",
    "covariance_comparison",
    "covariance_ellipse",
    "filter_grid",
    "frame_steps",
    "frequency_response",
    "images",
    "kernel",
    "loss_curve",
    "save_figure",
    "save_gif",
]

DPI = 100
"""Resolution of the figures this module makes: 10-point text is 14 pixels high."""

_XLABEL = "x: column offset (axis 1)"
_YLABEL = "y: row offset (axis 0), down"
_MIN_PANEL_PX = 150  # images smaller than this are enlarged by a whole factor, so titles fit


def _real(x: Any, name: str, fn: str, ndims: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(x)
    if np.iscomplexobj(a) or a.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: `{name}` must be real; got dtype {a.dtype}.")
    if a.ndim not in ndims:
        raise ValueError(f"{fn}: `{name}` must have ndim in {ndims}; got shape {a.shape}.")
    return a.astype(np.float64)


def _signed(a: np.ndarray) -> bool:
    return bool(a.size) and float(np.min(a)) < 0


def _kernel_norm(k: np.ndarray, cmap: str | None, unsigned: str = "viridis") -> dict[str, Any]:
    """Diverging colours centred at 0 for signed maps, sequential ones (`unsigned`) otherwise."""
    if _signed(k):
        m = float(np.abs(k).max())
        return {"cmap": cmap or "RdBu_r", "vmin": -m, "vmax": m}
    return {"cmap": cmap or unsigned, "vmin": float(k.min()), "vmax": float(k.max())}


def _centred_extent(shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    h, w = shape
    return (-w / 2, w / 2, h / 2, -h / 2)  # pixel centres at offsets j - (w - 1) / 2


def kernel(
    k: Any, ax: Axes | None = None, title: str | None = None, cmap: str | None = None
) -> Axes:
    """Shows a 1-D or 2-D kernel as an image with a colour bar.

    Signed kernels use a diverging colormap (``RdBu_r``) with limits ``±max|k|`` so that white is 0.
    Axes are pixel offsets from the kernel centre; a 1-D kernel is shown as one row.

    Args:
        k: kernel, shape ``(n,)`` or ``(h, w)``, real.
        ax: axes to draw on; a new figure if ``None``.
        title: axes title.
        cmap: colormap; by default ``RdBu_r`` if ``k`` has negative entries, else ``viridis``.

    Returns:
        The axes drawn on.
    """
    a = _real(k, "k", "kernel", (1, 2))
    a = a[None, :] if a.ndim == 1 else a
    if ax is None:
        _, ax = plt.subplots()
    im = ax.imshow(
        a, extent=_centred_extent(a.shape), interpolation="nearest", **_kernel_norm(a, cmap)
    )
    ax.figure.colorbar(im, ax=ax)
    ax.set_xlabel(_XLABEL)
    ax.set_ylabel(_YLABEL)
    if title is not None:
        ax.set_title(title)
    return ax


def _check_cov(cov: Any, fn: str, name: str = "cov") -> np.ndarray:
    c = _real(cov, name, fn, (2,))
    if c.shape != (2, 2) or not np.allclose(c, c.T) or np.linalg.eigvalsh(c).min() < 0:
        raise ValueError(f"{fn}: `{name}` must be a symmetric PSD 2x2 matrix; got {c.tolist()}.")
    return c


def _scale(n_std: float, confidence: float | None, fn: str) -> float:
    if confidence is None:
        return float(n_std)
    if not 0 < confidence < 1:
        raise ValueError(f"{fn}: `confidence` must be in (0, 1); got {confidence}.")
    return math.sqrt(-2.0 * math.log1p(-confidence))  # chi-square(2 dof) quantile, closed form


def _geometry(c: np.ndarray, s: float) -> tuple[float, float, float]:
    """Width, height and angle (degrees from +x) of the `s`-sigma ellipse of a (row, col) `c`."""
    vals, vecs = np.linalg.eigh(c[::-1, ::-1])  # (x, y) order; the last eigenvector: major axis
    angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))
    return 2 * s * math.sqrt(max(vals[1], 0.0)), 2 * s * math.sqrt(max(vals[0], 0.0)), angle


def _rows_down(ax: Axes) -> None:
    """Row offsets grow downwards, as in :func:`kernel`'s images."""
    if not ax.yaxis_inverted():
        ax.invert_yaxis()


def covariance_ellipse(
    cov: Any,
    ax: Axes | None = None,
    mean: Sequence[float] = (0.0, 0.0),
    n_std: float = 2.0,
    confidence: float | None = None,
    **style: Any,
) -> Axes:
    """Draws the ellipse ``(p - mean)ᵀ cov⁻¹ (p - mean) = s²`` of a 2x2 covariance.

    ``cov`` and ``mean`` are in jaxconv's axis order (row ``y``, column ``x``), as
    :func:`jaxconv.fit_gaussian` returns them; the ellipse is drawn with ``x`` across and ``y``
    downwards (the axes' y axis is inverted if it is not already, and labelled if it is not), so
    that it lies on the kernel image :func:`kernel` shows. With eigenvalues ``λ₁ ≥ λ₂`` and
    leading eigenvector ``v₁`` of the ``(x, y)`` covariance, the ellipse has width ``2 s √λ₁``,
    height ``2 s √λ₂`` and angle ``atan2(v₁y, v₁x)``. ``s`` is ``n_std``, or, if ``confidence``
    is given, ``√(-2 ln(1 - confidence))`` so that the ellipse holds that probability mass of a
    Gaussian.

    Args:
        cov: symmetric positive semi-definite ``(2, 2)`` matrix ``[[Syy, Syx], [Sxy, Sxx]]``.
        ax: axes to draw on; a new figure if ``None``.
        mean: centre of the ellipse, ``(row, column)``.
        n_std: scale ``s`` in standard deviations.
        confidence: if given, overrides ``n_std`` with the radius holding this probability.
        **style: passed to ``matplotlib.patches.Ellipse`` (unfilled, colour ``C0`` by default).

    Returns:
        The axes drawn on; the ellipse is ``ax.patches[-1]``.
    """
    c = _check_cov(cov, "covariance_ellipse")
    w, h, angle = _geometry(c, _scale(n_std, confidence, "covariance_ellipse"))
    if ax is None:
        _, ax = plt.subplots()
    _rows_down(ax)
    style = {"facecolor": "none", "edgecolor": "C0", "linewidth": 2, **style}
    ax.add_patch(Ellipse(tuple(np.asarray(mean, float)[::-1]), w, h, angle=angle, **style))
    ax.set(xlabel=ax.get_xlabel() or _XLABEL, ylabel=ax.get_ylabel() or _YLABEL)
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="box")
    return ax


def covariance_comparison(
    true_cov: Any,
    fitted_cov: Any,
    stderr_cov: Any = None,
    ax: Axes | None = None,
    mean: Sequence[float] = (0.0, 0.0),
    n_std: float = 2.0,
    level: float = 0.95,
) -> Axes:
    """Draws the true and the recovered covariance ellipses, and a confidence band for the latter.

    Covariances, ``stderr_cov`` and ``mean`` are in jaxconv's axis order (row ``y``, column
    ``x``) and drawn as :func:`covariance_ellipse` draws them. ``stderr_cov`` is the 3x3
    covariance of the estimates ``(Σ₀₀, Σ₀₁, Σ₁₁) = (Syy, Syx, Sxx)``. The band is the pointwise
    ``level`` interval of the fitted ellipse's radius ``r(φ) = s / √(uᵀ Σ⁻¹ u)`` in each direction
    ``u = (cos φ, sin φ)`` of the ``(x, y)`` plane, from the delta method:
    ``∂r/∂(Sxx, Sxy, Syy) = (s/2) (uᵀΣ⁻¹u)^(-3/2) (w_x², 2 w_x w_y, w_y²)`` with ``w = Σ⁻¹u``.

    Args:
        true_cov: ``(2, 2)`` covariance used to generate the data (solid black).
        fitted_cov: ``(2, 2)`` recovered covariance, positive definite (dashed).
        stderr_cov: optional ``(3, 3)`` covariance of the ``(Syy, Syx, Sxx)`` estimates, e.g.
            the delta-method covariance of a fit's ``covariance[[0, 0, 1], [0, 1, 1]]``.
        ax: axes to draw on; a new figure if ``None``.
        mean: centre of the ellipses, ``(row, column)``.
        n_std: ellipse scale ``s`` in standard deviations.
        level: coverage of the band.

    Returns:
        The axes drawn on.
    """
    fn = "covariance_comparison"
    t, f = _check_cov(true_cov, fn, "true_cov"), _check_cov(fitted_cov, fn, "fitted_cov")
    if np.linalg.eigvalsh(f).min() <= 0:
        raise ValueError(f"{fn}: `fitted_cov` must be positive definite; got {f.tolist()}.")
    if ax is None:
        _, ax = plt.subplots()
    _rows_down(ax)
    m = np.asarray(mean, float)[::-1]  # (x, y) from here on
    if stderr_cov is not None:
        v = _real(stderr_cov, "stderr_cov", fn, (2,))
        if v.shape != (3, 3):
            raise ValueError(f"{fn}: `stderr_cov` must have shape (3, 3); got {v.shape}.")
        if not 0 < level < 1:
            raise ValueError(f"{fn}: `level` must be in (0, 1); got {level}.")
        v = v[::-1, ::-1]  # of (Sxx, Sxy, Syy)
        phi = np.linspace(0, 2 * np.pi, 181)
        u = np.stack([np.cos(phi), np.sin(phi)])
        w = np.linalg.solve(f[::-1, ::-1], u)
        q = np.sum(u * w, axis=0)  # uᵀ Σ⁻¹ u, one per direction
        r = n_std / np.sqrt(q)
        g = np.stack([w[0] ** 2, 2 * w[0] * w[1], w[1] ** 2])
        se = 0.5 * n_std * q**-1.5 * np.sqrt(np.maximum(np.einsum("in,ij,jn->n", g, v, g), 0))
        z = NormalDist().inv_cdf(0.5 + level / 2)
        outer = m[:, None] + u * (r + z * se)
        inner = m[:, None] + u * np.maximum(r - z * se, 0)
        verts = np.concatenate([outer.T, inner.T[::-1]])  # opposite windings leave a hole
        codes = np.full(len(verts), MplPath.LINETO)
        codes[[0, len(phi)]] = MplPath.MOVETO
        band = PathPatch(MplPath(verts, codes), facecolor="C1", alpha=0.3, edgecolor="none")
        band.set_label(f"{level:.0%} band")
        ax.add_patch(band)
    covariance_ellipse(t, ax, mean, n_std, edgecolor="k", label="true")
    covariance_ellipse(f, ax, mean, n_std, edgecolor="C1", linestyle="--", label="fitted")
    ax.set_xlabel(_XLABEL)
    ax.set_ylabel(_YLABEL)
    ax.legend(loc="best")
    return ax


def contour(
    values: Any,
    grid: Any,
    ax: Axes | None = None,
    levels: int = 8,
    title: str | None = None,
    cmap: str = "viridis",
) -> Axes:
    """Draws filled contours of `values` sampled on `grid`, oriented like :func:`kernel`'s images.

    ``grid`` holds the coordinates in jaxconv's (row, column) order, as
    :func:`jaxconv.gaussian_kernel` takes it (``np.mgrid[...]`` works as it is): ``grid[0]`` is
    drawn as ``y``, downwards, and ``grid[1]`` as ``x``, to the right. So the density of a
    covariance and that covariance's :func:`covariance_ellipse` lie on each other.

    Args:
        values: ``(H, W)`` real samples, e.g. ``gaussian_kernel(cov, grid=grid)``.
        grid: ``(2, H, W)`` coordinates ``(row, column)`` of the samples.
        ax: axes to draw on; a new figure if ``None``.
        levels: number of contour levels.
        title: axes title.
        cmap: colormap.

    Returns:
        The axes drawn on, with a colour bar; the contour set is ``ax.collections[0]``.

    Raises:
        ValueError: if `grid` does not have shape ``(2, *values.shape)``.
    """
    v = _real(values, "values", "contour", (2,))
    g = _real(grid, "grid", "contour", (3,))
    if g.shape != (2, *v.shape):
        raise ValueError(f"contour: `grid` must have shape {(2, *v.shape)}; got {g.shape}.")
    if ax is None:
        _, ax = plt.subplots()
    cs = ax.contourf(g[1], g[0], v, levels=levels, cmap=cmap)
    ax.figure.colorbar(cs, ax=ax)
    _rows_down(ax)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(_XLABEL)
    ax.set_ylabel(_YLABEL)
    if title is not None:
        ax.set_title(title)
    return ax


def filter_grid(
    kernels: Any, titles: Sequence[str] | None = None, ncols: int = 4, cmap: str | None = None
) -> Figure:
    """Shows several kernels in a grid, each as :func:`kernel` draws it.

    Args:
        kernels: sequence of kernels, or an array ``(n, h, w)``.
        titles: one title per kernel.
        ncols: panels per row.
        cmap: colormap for every panel; chosen per kernel if ``None``.

    Returns:
        The new figure.
    """
    ks = [np.asarray(k) for k in kernels]
    if not ks or ncols < 1:
        raise ValueError(
            f"filter_grid: `kernels` and `ncols` must be positive; got {len(ks)}, {ncols}."
        )
    if titles is not None and len(titles) != len(ks):
        raise ValueError(f"filter_grid: `titles` must have {len(ks)} entries; got {len(titles)}.")
    ncols = min(ncols, len(ks))
    nrows = -(-len(ks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.8 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(ks):
            kernel(ks[i], ax=ax, title=None if titles is None else titles[i], cmap=cmap)
        else:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def loss_curve(history: Any, ax: Axes | None = None, log: bool = True) -> Axes:
    """Plots a loss history against the step number.

    Args:
        history: 1-D array of losses, or a mapping ``label -> 1-D array`` for several curves.
        ax: axes to draw on; a new figure if ``None``.
        log: logarithmic y axis; every value must then be positive.

    Returns:
        The axes drawn on.
    """
    curves = dict(history) if isinstance(history, Mapping) else {None: history}
    curves = {k: _real(v, "history", "loss_curve", (1,)) for k, v in curves.items()}
    if log and any(np.any(v <= 0) for v in curves.values()):
        raise ValueError("loss_curve: `history` must be positive for `log=True`; got values <= 0.")
    if ax is None:
        _, ax = plt.subplots()
    for label, v in curves.items():
        ax.plot(np.arange(len(v)), v, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if len(curves) > 1 or None not in curves:
        ax.legend()
    return ax


def frequency_response(k: Any, ax: Axes | None = None, shape: tuple[int, int] = (128, 128)) -> Axes:
    """Shows ``|FFT(k)|`` zero-padded to ``shape`` (1-D kernels use ``shape[-1]``), centred at 0.

    Frequencies are in cycles/pixel, from -0.5 to 0.5; the magnitude ignores where the kernel's
    centre is, so it is the gain each spatial frequency gets from convolving with ``k``.

    Args:
        k: kernel, shape ``(n,)`` or ``(h, w)``, real.
        ax: axes to draw on; a new figure if ``None``.
        shape: FFT size, at least the kernel's shape; finer sampling of the response.

    Returns:
        The axes drawn on: a line plot for 1-D kernels, an image with a colour bar for 2-D.
    """
    a = _real(k, "k", "frequency_response", (1, 2))
    n = tuple(shape)[-a.ndim :]
    if any(m < s for m, s in zip(n, a.shape, strict=True)):
        raise ValueError(f"frequency_response: `shape` must be >= {a.shape}; got {tuple(shape)}.")
    mag = np.abs(np.fft.fftshift(np.fft.fftn(a, s=n, axes=tuple(range(a.ndim)))))
    if ax is None:
        _, ax = plt.subplots()
    if a.ndim == 1:
        ax.plot(np.fft.fftshift(np.fft.fftfreq(n[0])), mag)
        ax.set_xlabel("f (cycles/pixel)")
        ax.set_ylabel("|H(f)|")
        return ax
    fy, fx = (np.fft.fftshift(np.fft.fftfreq(m)) for m in n)
    dy, dx = 1 / n[0], 1 / n[1]
    extent = (fx[0] - dx / 2, fx[-1] + dx / 2, fy[0] - dy / 2, fy[-1] + dy / 2)
    im = ax.imshow(mag, extent=extent, origin="lower", cmap="magma")  # f_y grows upwards
    ax.figure.colorbar(im, ax=ax, label="|H(f)|")
    ax.set_xlabel("f_x (cycles/pixel)")
    ax.set_ylabel("f_y (cycles/pixel)")
    return ax


def images(
    list_of_images: Sequence[Any],
    titles: Sequence[str] | None = None,
    cmap: str | None = None,
    ncols: int | None = None,
    *,
    colorbar: bool | None = None,
    scale: float = 1.0,
    dpi: float = DPI,
) -> Figure:
    """Shows images side by side without axes, each image pixel as at least `scale` figure pixels.

    The figure is laid out in whole pixels at `dpi`, so that with ``scale=1`` (the default) an
    image is drawn pixel for pixel when the figure is saved at its own dpi (``savefig``'s
    default): thin lines are not averaged away (``interpolation="nearest"``). Images smaller than
    150 pixels are enlarged by a whole factor. Signed maps (any value < 0) get a diverging
    colormap centred at 0 (limits ``±max|x|``) and, by default, a colour bar.

    Args:
        list_of_images: images ``(H, W)`` or ``(H, W, 3|4)``.
        titles: one title per image.
        cmap: colormap for 2-D images; by default ``RdBu_r`` for signed ones, else ``gray``.
        ncols: panels per row; all in one row if ``None``.
        colorbar: colour bars on every 2-D image (``True``), on none (``False``), or on the
            signed ones (``None``).
        scale: figure pixels per image pixel, at least 1 for readable photos.
        dpi: the figure's resolution.

    Returns:
        The new figure.

    Raises:
        ValueError: for a bad image shape, a title count that does not match, or no images.
    """
    ims = [np.asarray(x) for x in list_of_images]  # keep dtypes: imshow scales uint8 RGB itself
    for x in ims:
        if not (x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (3, 4))):
            raise ValueError(f"images: each image must be (H, W) or (H, W, 3|4); got {x.shape}.")
    if not ims:
        raise ValueError("images: `list_of_images` must hold at least one image; got none.")
    if titles is not None and len(titles) != len(ims):
        raise ValueError(f"images: `titles` must have {len(ims)} entries; got {len(titles)}.")
    ncols = min(ncols or len(ims), len(ims))
    nrows = -(-len(ims) // ncols)
    bars = [x.ndim == 2 and (_signed(x) if colorbar is None else colorbar) for x in ims]
    h, w = (max(x.shape[i] for x in ims) for i in (0, 1))
    s = max(scale, math.ceil(_MIN_PANEL_PX / max(h, w)))
    ph, pw = math.ceil(s * h), math.ceil(s * w)
    pad, gap = 8, 16
    title_px = math.ceil(2.4 * plt.rcParams["font.size"] * 1.2 * dpi / 72) if titles else 0
    bar_px = 90 if any(bars) else 0  # the bar, its ticks and their labels
    fw = 2 * pad + ncols * (pw + bar_px) + (ncols - 1) * gap
    fh = 2 * pad + nrows * (ph + title_px) + (nrows - 1) * gap
    fig = plt.figure(figsize=(fw / dpi, fh / dpi), dpi=dpi)
    for i, x in enumerate(ims):
        r, c = divmod(i, ncols)
        left = pad + c * (pw + bar_px + gap)
        bottom = fh - pad - r * (ph + title_px + gap) - title_px - ph
        ax = fig.add_axes((left / fw, bottom / fh, pw / fw, ph / fh))
        norm = _kernel_norm(x.astype(float), cmap, "gray") if x.ndim == 2 else {}
        im = ax.imshow(x, interpolation="nearest", **norm)
        if titles is not None:
            ax.set_title(titles[i])
        ax.set_axis_off()
        if bars[i]:
            cax = fig.add_axes(((left + pw + 8) / fw, bottom / fh, 12 / fw, ph / fh))
            fig.colorbar(im, cax=cax, format="{x:.3g}")  # no offset text (over the title)
    return fig


def frame_steps(n_steps: int, n_frames: int) -> np.ndarray:
    """``n_frames`` distinct step numbers from 0 to ``n_steps`` for an animation, denser early on.

    Fits change most in their first steps, so the frames are evenly spaced in ``log(step + a)``
    with ``a = max(1, n_steps / n_frames)``: step by step at first, then ever wider apart (a
    larger ``a`` would space them evenly, ``a = 1`` purely logarithmically). Where rounding
    would repeat a step, the next free one is taken.

    Args:
        n_steps: last step number (a history of ``n_steps + 1`` entries, step 0 the start).
        n_frames: number of frames, in ``[2, n_steps + 1]``.

    Returns:
        Increasing int array, first entry 0, last ``n_steps``.

    Raises:
        ValueError: if ``n_frames`` is not in ``[2, n_steps + 1]``.

    Examples:
        >>> frame_steps(10, 4).tolist()
        [0, 2, 5, 10]
    """
    if not 2 <= n_frames <= n_steps + 1:
        raise ValueError(f"frame_steps: `n_frames` must be in [2, {n_steps + 1}]; got {n_frames}.")
    a = max(1.0, n_steps / n_frames)
    steps = np.rint(np.geomspace(a, n_steps + a, n_frames) - a).astype(int)
    for i in range(1, n_frames):  # a repeated step moves to the next free one
        steps[i] = max(steps[i], steps[i - 1] + 1)
    for i in range(n_frames - 2, -1, -1):  # ... and steps pushed past the end move back
        steps[i] = min(steps[i], steps[i + 1] - 1)
    return steps


def animate_fit(
    kernels_history: Any,
    predictions_history: Any,
    target: Any,
    path: str | os.PathLike[str],
    fps: int = 5,
    losses: Any = None,
    covs: Any = None,
    true_cov: Any = None,
    n_std: float = 2.0,
    dpi: float = DPI,
    steps: Any = None,
) -> Path:
    """Writes a GIF of a fit: per frame, the kernel, the prediction and the target.

    Frame ``i`` shows the fit at optimisation step ``steps[i]`` (by default step ``i``), and is
    titled with it. Optional panels show the loss up to that step against the true step number
    (``losses``, the whole history: one value per step from 0 to ``steps[-1]``) and the fitted
    covariance ellipse (``covs``, one per frame, jaxconv's (row, column) order) against
    ``true_cov``. The prediction and target are drawn at least pixel for pixel (smaller images
    enlarged by a whole factor); the kernel's colour limits are fixed over the frames. The file
    is written to a temporary name in the same folder and renamed into place.

    Args:
        kernels_history: ``T`` kernels, each ``(n,)`` or ``(h, w)``.
        predictions_history: ``(T, H, W)`` model outputs, one per frame.
        target: ``(H, W)`` image the fit is matching.
        path: output ``.gif``.
        fps: frames per second.
        losses: optional loss history, ``steps[-1] + 1`` values (steps 0, 1, ...).
        covs: optional ``(T, 2, 2)`` fitted covariances, (row, column) order.
        true_cov: optional ``(2, 2)`` reference covariance, drawn when ``covs`` is given.
        n_std: ellipse scale in standard deviations.
        dpi: resolution (lower it for smaller files).
        steps: optional ``(T,)`` increasing step numbers of the frames, e.g. from
            :func:`frame_steps`; ``0, 1, ..., T - 1`` if ``None``.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        ValueError: if the histories' lengths or shapes do not match, or a covariance is not one.
    """
    fig, update, n = _fit_figure(
        kernels_history, predictions_history, target, losses, covs, true_cov, n_std, dpi, steps
    )
    return save_gif(fig, update, n, path, fps)


def _fit_figure(
    kernels_history: Any,
    predictions_history: Any,
    target: Any,
    losses: Any,
    covs: Any,
    true_cov: Any,
    n_std: float,
    dpi: float,
    steps: Any,
) -> tuple[Figure, Callable[[int], list[Artist]], int]:
    """The figure of :func:`animate_fit`, its ``update(i)`` and the number of frames."""
    fn = "animate_fit"
    ks = _real(np.stack([np.asarray(k) for k in kernels_history]), "kernels_history", fn, (2, 3))
    preds = _real(predictions_history, "predictions_history", fn, (3,))
    tgt = _real(target, "target", fn, (2,))
    n = len(ks)
    if len(preds) != n or preds.shape[1:] != tgt.shape:
        raise ValueError(
            f"{fn}: `predictions_history` must have shape {(n, *tgt.shape)}; got {preds.shape}."
        )
    step = np.arange(n) if steps is None else np.asarray(steps)
    if step.shape != (n,) or step.dtype.kind not in "iu" or np.any(np.diff(step) <= 0):
        raise ValueError(
            f"{fn}: `steps` must be {n} increasing integers, one per frame; got {step.tolist()}."
        )
    if losses is not None:
        losses = np.asarray(losses, float)
        if len(losses) != step[-1] + 1:
            raise ValueError(
                f"{fn}: `losses` must have {step[-1] + 1} entries, one per step 0..{step[-1]}; "
                f"got {len(losses)}."
            )
    if covs is not None:
        covs = [_check_cov(c, fn, "covs") for c in covs]
        if len(covs) != n:
            raise ValueError(f"{fn}: `covs` must have {n} entries, one per frame; got {len(covs)}.")

    s = max(1, math.ceil(_MIN_PANEL_PX / max(tgt.shape)))  # figure pixels per image pixel
    img_w, img_h = s * tgt.shape[1], s * tgt.shape[0]
    bar_px = 80 if _signed(tgt) else 0  # a signed target gets a colour bar, as in images()
    widths = [3.6, (img_w + 40) / dpi, (img_w + 40 + bar_px) / dpi]
    widths += [3.4] * (losses is not None) + [4.2] * (covs is not None)
    fig = Figure(figsize=(sum(widths), max(3.3, (img_h + 90) / dpi)), dpi=dpi)
    axes = fig.subplots(1, len(widths), width_ratios=widths)
    kernel(ks[0], ax=axes[0], title="kernel")
    k_img = axes[0].images[0]
    # A GIF frame has 256 colours: 32 for the kernel (and its colour bar), 128 for the images
    # (1/255 at most from their 256 levels), the rest for lines and text, so none band.
    norm = _kernel_norm(ks, None)
    k_img.set(cmap=plt.get_cmap(norm.pop("cmap")).resampled(32), clim=tuple(norm.values()))
    norm = _kernel_norm(tgt, None, "gray")
    lim = {"cmap": plt.get_cmap(norm.pop("cmap")).resampled(128), **norm}
    p_img = axes[1].imshow(preds[0], interpolation="nearest", **lim)
    t_img = axes[2].imshow(tgt, interpolation="nearest", **lim)
    for ax, title in zip(axes[1:3], ("prediction", "target"), strict=True):
        ax.set_title(title)
        ax.set_axis_off()
    line = marker = ellipse = None
    panel = 3
    if losses is not None:
        ax = axes[panel]
        loss_curve(losses, ax=ax, log=bool(np.all(losses > 0)))
        ax.autoscale(False)  # limits of the whole history, fixed across frames
        line = ax.lines[0]
        (marker,) = ax.plot([], [], "o", color=line.get_color())
        ax.set(title="loss", ylabel="")  # a title, not a label beside the target image
        panel += 1
    if covs is not None:
        ax = axes[panel]
        every = list(covs)
        if true_cov is not None:
            every.append(_check_cov(true_cov, fn, "true_cov"))
            covariance_ellipse(every[-1], ax, n_std=n_std, edgecolor="k", label="true")
        covariance_ellipse(covs[0], ax, n_std=n_std, edgecolor="C1", label="fitted")
        ellipse = ax.patches[-1]
        r = 1.1 * n_std * math.sqrt(max(np.linalg.eigvalsh(c).max() for c in every))
        ax.set(xlim=(-r, r), ylim=(r, -r), title=f"{n_std:g}σ ellipse")  # fixed; rows down
        ax.set_xlabel("x: column offset")
        ax.set_ylabel("y: row offset, down")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside: never over the ellipse
    suptitle = fig.suptitle(f"step {step[-1]} of {step[-1]}")  # the longest, for the layout
    fig.tight_layout()
    fw, fh = fig.bbox.width, fig.bbox.height
    for ax, shift in ((axes[1], 0), (axes[2], bar_px // 2)):  # whole pixels, centred in place
        box = ax.get_position()
        x0 = round((box.x0 + box.width / 2) * fw - img_w / 2) - shift
        y0 = round((box.y0 + box.height / 2) * fh - img_h / 2)
        ax.set_position((x0 / fw, y0 / fh, img_w / fw, img_h / fh))
    if bar_px:
        fig.colorbar(t_img, cax=fig.add_axes(((x0 + img_w + 8) / fw, y0 / fh, 12 / fw, img_h / fh)))

    def update(i: int) -> list[Artist]:
        k_img.set_data(ks[i][None, :] if ks.ndim == 2 else ks[i])
        p_img.set_data(preds[i])
        suptitle.set_text(f"step {step[i]} of {step[-1]}")
        changed: list[Artist] = [k_img, p_img, suptitle]
        if line is not None and marker is not None:
            upto = step[i] + 1
            line.set_data(np.arange(upto), losses[:upto])
            marker.set_data([step[i]], [losses[step[i]]])
            changed += [line, marker]
        if ellipse is not None:
            w, h, angle = _geometry(covs[i], n_std)
            ellipse.set(width=w, height=h, angle=angle)
            changed.append(ellipse)
        return changed

    return fig, update, n


def _legibility(fig: Figure) -> dict[str, float | None]:
    """The smallest text height and image scale of `fig` when saved at its dpi, in pixels.

    ``min_text_px`` is the smallest font size of any visible text in pixels (9 points is 12.5
    pixels at 100 dpi); ``min_image_scale`` the fewest figure pixels per image pixel over its
    images (``None`` without images): below 1, thin lines can vanish.
    """
    fig.draw_without_rendering()  # applies fixed aspects, which move axes
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    scales = []
    for im in fig.findobj(AxesImage):
        rows, cols = im.get_array().shape[:2]
        box = im.get_window_extent()
        scales.append(min(box.width / cols, box.height / rows))
    return {
        "min_text_px": min(t.get_fontsize() for t in texts) * fig.dpi / 72 if texts else None,
        "min_image_scale": min(scales) if scales else None,
    }


def save_figure(fig: Figure, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Saves ``fig`` with ``fig.savefig`` atomically: readers never see a half-written file.

    The figure is written to a temporary file next to `path` (same suffix, so matplotlib picks the
    format from it) and renamed over `path`; an interrupted save leaves `path` as it was. At the
    figure's own dpi by default, which keeps :func:`images`' pixel-for-pixel layout.

    Args:
        fig: the figure.
        path: output file (``.png``, ``.pdf``, ``.svg``, ...).
        **kwargs: passed to ``fig.savefig`` (e.g. ``bbox_inches="tight"``).

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    with atomic_path(path, fn="save_figure", arg="path") as tmp:
        fig.savefig(tmp, **kwargs)
    return Path(path)


def save_gif(
    fig: Figure,
    update: Callable[[int], Sequence[Artist]],
    n_frames: int,
    path: str | os.PathLike[str],
    fps: int = 5,
) -> Path:
    """Writes an animation of ``fig`` as a GIF, atomically, drawing only what changes per frame.

    ``update(i)`` sets the figure to frame ``i`` and returns the artists it changed (or
    created); everything else is drawn once, and each frame is that background with the changed
    artists drawn over it (blitting). This is several times faster than matplotlib's
    ``FuncAnimation`` + ``PillowWriter``, which redraw the whole figure per frame, and gives the
    same pixels provided the changed artists stay inside the background's layout (fix axis limits
    beforehand) and no unchanged artist other than their axes' spines is drawn over them (they and
    the spines are drawn last, in z-order).
    The figure is rendered with Agg, whatever the pyplot backend. A GIF frame holds at most 256
    colours: each frame gets its own palette (median cut, no dithering), which keeps a grey photo
    within a level or two of its rendering instead of banding it.

    Args:
        fig: the figure; its canvas is replaced by an Agg canvas.
        update: ``i -> artists changed``, for ``i`` in ``range(n_frames)``.
        n_frames: number of frames.
        path: output ``.gif``.
        fps: frames per second.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    frames = [_palette(f) for f in _render(fig, update, n_frames)]
    duration = int(1000 / fps)
    return _write_atomic(path, lambda f: frames[0].save(
        f, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0
    ), fn="save_gif")  # fmt: skip


def _palette(frame: np.ndarray) -> Any:
    """An RGBA rendering as a 256-colour Pillow image with a palette of its own."""
    from PIL import Image  # matplotlib depends on Pillow

    rgb = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    return rgb.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def _render(fig: Figure, update: Callable[[int], Sequence[Artist]], n: int) -> list[np.ndarray]:
    """The ``n`` frames of :func:`save_gif` as RGBA arrays."""

    def drawn(changed: Sequence[Artist]) -> list[Artist]:
        # The spines of their axes too: they are drawn over the axes' contents (an image's edge).
        spines = [s for a in changed if a.axes is not None for s in a.axes.spines.values()]
        out = list(dict.fromkeys([*changed, *spines]))
        return sorted(out, key=lambda a: a.get_zorder())  # stable, as Axes.draw sorts

    canvas = FigureCanvasAgg(fig)
    artists = drawn(update(0))
    for a in artists:
        a.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    frames = []
    for i in range(n):
        artists = drawn(update(i)) if i else artists
        canvas.restore_region(background)
        for a in artists:
            a.set_animated(True)
            fig.draw_artist(a)
        frames.append(np.array(canvas.buffer_rgba()))
    for a in artists:
        a.set_animated(False)
    return frames
