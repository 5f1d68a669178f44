"""``jaxconv demo``: the seed notebook's figures made with jaxconv, then filters being learned.

Every stage writes its figures into the output folder and returns its numbers; ``run_demo`` adds
them to ``results.json`` and prints where everything went. References from scipy are computed
only when scipy is installed (it is not a run-time dependency of jaxconv).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import matplotlib
import numpy as np
from tqdm.auto import tqdm

import jaxconv
from jaxconv.io import default_image, save_json_atomic

SEED_COV = ((1.0, 0.5), (0.5, 1.0))
_CROP = (slice(60, 124), slice(100, 196))  # the eyes: what the learning GIFs show
_QUICK_CROP = (slice(20, 84), slice(40, 136))  # the same, in --quick's smaller photo


@dataclass
class _Context:
    out: Path
    quick: bool
    seed: int
    dtype: Any
    progress: bool
    photo: np.ndarray
    files: dict[str, str] = field(default_factory=dict)  # file name -> what it shows
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> its size

    def save(self, fig: Any, name: str, what: str) -> None:
        """Saves a PNG at the figure's own dpi (:data:`jaxconv.plot.DPI`) and closes it."""
        import matplotlib.pyplot as plt

        import jaxconv.plot as jplot

        stats = jplot._legibility(fig)
        jplot.save_figure(fig, self.out / name, bbox_inches="tight")
        plt.close(fig)
        self._record(name, what, fig.dpi, stats)

    def save_gif(self, fig: Any, update: Any, n: int, name: str, what: str, fps: int) -> None:
        import jaxconv.plot as jplot

        stats = jplot._legibility(fig)
        jplot.save_gif(fig, update, n, self.out / name, fps=fps)
        self._record(name, what, fig.dpi, stats)

    def _record(self, name: str, what: str, dpi: float, stats: dict[str, Any]) -> None:
        from PIL import Image  # matplotlib depends on Pillow

        with Image.open(self.out / name) as im:
            size, frames = list(im.size), getattr(im, "n_frames", 1)
        self.files[name] = what
        stats = {k: None if v is None else round(float(v), 3) for k, v in stats.items()}
        self.figures[name] = {"px": size, "dpi": float(dpi), "frames": frames,
                              "bytes": (self.out / name).stat().st_size, **stats}  # fmt: skip


def _scipy(module: str) -> Any:
    """``scipy.<module>`` (the reference the figures are checked against), if installed."""
    try:
        return importlib.import_module(f"scipy.{module}")
    except ImportError:
        return None


def _numpy_convolve2d_same(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``scipy.signal.convolve2d(x, k, "same")`` in plain numpy (a sliding-window sum)."""
    kh, kw = k.shape
    padded = np.pad(x, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, k.shape)
    full = np.tensordot(windows, k[::-1, ::-1], axes=2)
    top, left = (kh - 1) // 2, (kw - 1) // 2  # scipy keeps the centre of the full result
    return full[top : top + x.shape[0], left : left + x.shape[1]]


def _max_abs(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# --- the seed's figures ------------------------------------------------------------------------
def _seed_1d(ctx: _Context) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    import jaxconv.plot as jplot

    x = np.linspace(-10, 10, 1000).astype(ctx.dtype)
    f = jaxconv.normal_pdf(x)
    g = jaxconv.uniform_pdf(x, loc=-3.0, scale=6.0)
    fg = jaxconv.convolve(f, g, mode="same") / 20
    ref = np.convolve(np.asarray(f, np.float64), np.asarray(g, np.float64), mode="same") / 20
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=jplot.DPI)
    ax.plot(x, f, label="f(x)")
    ax.plot(x, g, label="g(x)")
    ax.plot(x, fg, label="f(x) * g(x) / 20")
    ax.set_ylim(0, None)
    ax.set_xlabel("x")
    ax.legend()
    ax.set_title("jaxconv.convolve(f, g, mode='same') / 20")
    ctx.save(fig, "01_convolve_1d.png", "the seed's normal ⊛ uniform (1-D, mode='same', /20)")
    _convolution_gif(ctx)
    return {"max_abs_diff_vs_np_convolve": _max_abs(fg, ref), "peak": float(fg.max())}


def _convolution_gif(ctx: _Context) -> None:
    """The seed's animation: a box slides over an impulse response; the overlap is the output."""
    from matplotlib.figure import Figure

    import jaxconv.plot as jplot

    tau = np.linspace(-4, 6, 501)
    dt = tau[1] - tau[0]
    box = np.where(np.abs(tau) <= 1, 0.5, 0.0)  # uniform density on [-1, 1]
    impulse = np.where(tau >= 0, np.exp(-np.clip(tau, 0, None)), 0.0)  # e^{-t}, t >= 0
    # On this grid the output time of index i is tau[i] + tau[0] (both grids start at -4).
    full = np.asarray(jaxconv.convolve(box, impulse, mode="full")) * dt
    t_out = tau[0] + tau[0] + dt * np.arange(full.size)
    keep = (t_out >= tau[0]) & (t_out <= tau[-1])
    t_out, full = t_out[keep], full[keep]
    frames = np.linspace(-3, 5, 16 if ctx.quick else 60)

    fig = Figure(figsize=(6.4, 3.4), dpi=jplot.DPI)
    ax = fig.subplots()
    (fixed,) = ax.plot(tau, box, "C0", label="f(τ): box")
    (moving,) = ax.plot([], [], "C1", label="g(t − τ): impulse response")
    (trace,) = ax.plot([], [], "k", lw=2, label="(f * g)(t)")
    (marker,) = ax.plot([], [], "ko")
    shade = [ax.fill_between(tau, 0, 0, color="C2", alpha=0.3)]
    ax.set(xlim=(tau[0], tau[-1]), ylim=(0, 1.05), xlabel="τ, t")
    ax.legend(loc="upper right")
    ax.set_title("t = +0.0: shaded area = (f * g)(t)")  # before tight_layout, which sizes it
    fig.tight_layout()

    def update(i: int) -> list[Any]:
        t = frames[i]
        g = np.where(t - tau >= 0, np.exp(-np.clip(t - tau, 0, None)), 0.0)
        moving.set_data(tau, g)
        shade[0].remove()
        shade[0] = ax.fill_between(tau, 0, box * g, color="C2", alpha=0.3)
        upto = t_out <= t
        trace.set_data(t_out[upto], full[upto])
        marker.set_data([t], [np.interp(t, t_out, full)])
        ax.set_title(f"t = {t:+.1f}: shaded area = (f * g)(t)")
        return [shade[0], fixed, moving, trace, marker, ax.title]  # the box is drawn over the shade

    what = "the seed's animation: a box convolved with an impulse response"
    ctx.save_gif(fig, update, len(frames), "01_convolution.gif", what, fps=12)


def _contour(ctx: _Context) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    import jaxconv.plot as jplot

    step = 0.05 if ctx.quick else 0.01
    x, y = np.mgrid[-3:3:step, -3:3:step]
    grid = np.stack([x, y]).astype(ctx.dtype)
    pdf = np.asarray(jaxconv.gaussian_kernel(np.asarray(SEED_COV, ctx.dtype), grid=grid,
                                             normalize=False))  # fmt: skip
    # Closed form of the bivariate normal with unit variances and correlation ρ.
    rho = SEED_COV[0][1]
    q = (x**2 - 2 * rho * x * y + y**2) / (1 - rho**2)
    exact = np.exp(-q / 2) / (2 * np.pi * math.sqrt(1 - rho**2))
    # The grid's first coordinate is the row (y, drawn downwards), as in every jaxconv figure:
    # the 1σ and 2σ ellipses of the same covariance lie on the contours.
    fig, ax = plt.subplots(figsize=(5.6, 5), dpi=jplot.DPI)
    jplot.contour(pdf, grid, ax=ax, title="N(0, [[1, .5], [.5, 1]]), 1σ and 2σ dashed")
    for n_std in (1, 2):
        jplot.covariance_ellipse(SEED_COV, ax, n_std=n_std, edgecolor="w", linestyle="--")
    ax.set(xlim=(-3, 3), ylim=(3, -3))
    ctx.save(fig, "02_gaussian_contour.png", "the seed's contour plot of the Gaussian, 1σ/2σ")
    return {"grid_shape": list(pdf.shape), "max_abs_diff_vs_closed_form": _max_abs(pdf, exact)}


def _blur(ctx: _Context) -> dict[str, Any]:
    import jaxconv.plot as jplot

    grid = np.mgrid[-3:3:0.2, -3:3:0.2].astype(ctx.dtype)
    kernel = jaxconv.gaussian_kernel(np.asarray(SEED_COV, ctx.dtype), grid=grid, normalize=False)
    blurred = np.asarray(jaxconv.convolve2d(ctx.photo, kernel, mode="same"))
    fig = jplot.images([ctx.photo, blurred], titles=["Original", "Convolved"])
    ctx.save(fig, "03_photo_blur.png", "the photo blurred with the seed's 30×30 kernel")
    photo, k64 = np.asarray(ctx.photo, np.float64), np.asarray(kernel, np.float64)
    metrics: dict[str, Any] = {
        "kernel_shape": list(kernel.shape),
        "max_abs_diff_vs_numpy": _max_abs(blurred, _numpy_convolve2d_same(photo, k64)),
    }
    signal = None if ctx.quick else _scipy("signal")  # importing scipy.signal takes ~1.5 s
    if signal is not None:
        ref = signal.convolve2d(photo, k64, mode="same")
        metrics["max_abs_diff_vs_scipy_convolve2d"] = _max_abs(blurred, ref)
    return metrics


def _edges(ctx: _Context) -> dict[str, Any]:
    import jaxconv.plot as jplot

    metrics: dict[str, Any] = {}
    ndimage = _scipy("ndimage")
    maps, titles = [], []
    for op in ("sobel", "prewitt"):
        d0 = np.asarray(getattr(jaxconv, op)(ctx.photo, axis=0))
        d1 = np.asarray(getattr(jaxconv, op)(ctx.photo, axis=1))
        mag = np.asarray(jaxconv.edge_magnitude(ctx.photo, op))
        maps += [d0, d1, mag]
        titles += [
            f"{op.capitalize()} {t}" for t in ("∂/∂y (axis 0)", "∂/∂x (axis 1)", "magnitude")
        ]
        if ndimage is not None:
            photo = np.asarray(ctx.photo, np.float64)
            r0, r1 = getattr(ndimage, op)(photo, 0), getattr(ndimage, op)(photo, 1)
            metrics[f"{op}_max_abs_diff_vs_ndimage"] = max(
                _max_abs(d0, r0), _max_abs(d1, r1), _max_abs(mag, np.hypot(r0, r1))
            )
    fig = jplot.images(maps, titles, ncols=3, colorbar=True)  # signed: blue < 0 < red
    ctx.save(fig, "04_edges.png", "Sobel and Prewitt edges (both axes and magnitude)")
    return metrics


# --- learning filters ----------------------------------------------------------------------------
def _fit_gif(ctx: _Context, name: str, what: str, steps: np.ndarray, *args: Any, **kw: Any) -> None:
    """:func:`jaxconv.plot.animate_fit` at ``steps``, recorded with its figure's sizes."""
    import jaxconv.plot as jplot

    fig, update, n = jplot._fit_figure(*args, **kw, n_std=2.0, dpi=jplot.DPI, steps=steps)
    ctx.save_gif(fig, update, n, name, what, fps=10)


def _at(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda v: v[i], tree)


def _learn_blur(ctx: _Context) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    import jaxconv.plot as jplot

    cov = np.asarray(SEED_COV, ctx.dtype)
    start = np.eye(2, dtype=ctx.dtype) * 4.0  # σ = 2 px, uncorrelated: deliberately wrong
    target = np.asarray(jaxconv.convolve(ctx.photo, jaxconv.gaussian_kernel(cov, radius=8), "same"))
    steps = 120 if ctx.quick else 300
    res = jaxconv.fit_gaussian(ctx.photo, target, init=start, optimizer="adam", steps=steps,
                               progress=ctx.progress)  # fmt: skip
    learned = np.asarray(res.covariance)
    stderr = np.asarray(res.stderr["covariance"])

    frames = jplot.frame_steps(len(res.history) - 1, 16 if ctx.quick else 48)
    params = [_at(res.params_history, int(i)) for i in frames]
    # The prediction and target panels show a crop (the eyes), which keeps the GIF small.
    crop = _QUICK_CROP if ctx.quick else _CROP

    @jax.jit  # one compile for every frame, not one per operation
    def frame(p):
        k = res.model.kernel(p)
        return k, jaxconv.convolve(ctx.photo, k, mode="same")[crop], p.covariance

    kernels, preds, covs = (np.stack(v) for v in zip(*[frame(p) for p in params], strict=True))
    ry, rx = (min(r, 6) for r in res.radius)  # show the centre: the true kernel is small
    cy, cx = res.radius
    kernels = kernels[:, cy - ry : cy + ry + 1, cx - rx : cx + rx + 1]
    what = "a Gaussian blur being learned with Adam (kernel, ellipse)"
    losses = np.maximum(res.history, 1e-300)
    _fit_gif(
        ctx, "05_learn_blur.gif", what, frames, kernels, preds, target[crop], losses, covs, cov
    )

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), dpi=jplot.DPI)
    jplot.loss_curve(np.maximum(res.history, 1e-300), ax=axes[0])
    axes[0].set_title("loss (Adam, from σ = 2 px)")
    jplot.covariance_comparison(cov, learned, ax=axes[1])
    axes[1].set_title("covariance: true vs learned")
    r = 4
    jplot.kernel(np.asarray(res.model.kernel(res.params))[
        res.radius[0] - r : res.radius[0] + r + 1, res.radius[1] - r : res.radius[1] + r + 1
    ], ax=axes[2], title="learned kernel (centre)")  # fmt: skip
    fig.tight_layout()
    ctx.save(fig, "05_learn_blur.png", "the learned blur: loss, ellipses, kernel")
    return {
        "true_covariance": cov,
        "learned_covariance": learned,
        "stderr_covariance": stderr,
        "relative_error": float(np.linalg.norm(learned - cov) / np.linalg.norm(cov)),
        "sigmas": np.asarray(res.sigmas),
        "angle_deg": float(np.degrees(res.angle)),
        "steps": int(res.steps),
        "optimizer": res.optimizer,
    }


def _learn_edge(ctx: _Context) -> dict[str, Any]:
    import jaxconv.plot as jplot

    truth = np.asarray(jaxconv.sobel_kernel(axis=1, dtype=ctx.dtype))
    target = np.asarray(jaxconv.sobel(ctx.photo, axis=1))
    steps = 300 if ctx.quick else 1500
    model = jaxconv.FreeKernel((3, 3), init_kernel="random")
    res = jaxconv.fit(model, ctx.photo, target, optimizer="adam", steps=steps, learning_rate=1.0,
                      key=jax.random.PRNGKey(ctx.seed), progress=ctx.progress)  # fmt: skip
    history = np.asarray(res.params_history)
    learned = np.asarray(res.params)

    frames = jplot.frame_steps(len(res.history) - 1, 16 if ctx.quick else 48)
    crop = _QUICK_CROP if ctx.quick else _CROP
    predict = jax.jit(lambda k: jaxconv.convolve(ctx.photo, k, mode="same")[crop])
    preds = [np.asarray(predict(k)) for k in history[frames]]
    _fit_gif(ctx, "06_learn_edge.gif", "a free 3×3 kernel learned from noise becoming Sobel",
             frames, history[frames], preds, target[crop], np.maximum(res.history, 1e-300),
             None, None)  # fmt: skip

    fig = jplot.filter_grid(
        [history[0], learned, truth],
        ncols=3,
        titles=["start (noise)", f"Adam, {res.steps} steps", "Sobel"],
    )
    ctx.save(fig, "06_learn_edge.png", "a free 3×3 kernel from noise, learned, and Sobel")
    return {
        "true_kernel": truth,
        "learned_kernel": learned,
        "max_tap_error": float(np.max(np.abs(learned - truth))),
        "start_max_tap_error": float(np.max(np.abs(history[0] - truth))),
        "steps": int(res.steps),
        "optimizer": res.optimizer,
    }


# --- driver --------------------------------------------------------------------------------------
_STAGES: tuple[tuple[str, str, Callable[[_Context], dict[str, Any]]], ...] = (
    ("convolve_1d", "1-D normal ⊛ uniform", _seed_1d),
    ("gaussian_contour", "Gaussian contour", _contour),
    ("photo_blur", "photo blur", _blur),
    ("edges", "Sobel and Prewitt edges", _edges),
    ("learn_blur", "learning a blur", _learn_blur),
    ("learn_edge", "learning an edge filter", _learn_edge),
)


def environment() -> dict[str, Any]:
    """Versions and the device, for results files."""
    versions = {"python": platform.python_version()}
    for pkg in ("jaxconv", "jax", "jaxlib", "numpy", "optax", "matplotlib", "scipy"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    dev = jax.devices()[0]
    return {
        "versions": versions,
        "device": {"backend": jax.default_backend(), "kind": dev.device_kind,
                   "cpu_count": os.cpu_count(), "x64": bool(jax.config.jax_enable_x64)},
    }  # fmt: skip


def run_demo(
    out: str | os.PathLike[str] = "jaxconv-demo",
    *,
    quick: bool = False,
    seed: int = 0,
    dtype: str = "float64",
    progress: bool = True,
    stages: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Runs every stage, writes figures, animations and ``results.json`` into `out`.

    Args:
        out: output folder, created if needed.
        quick: smaller grids, images and step counts (seconds instead of a minute).
        seed: seed of the random initialisations and noise.
        dtype: ``"float64"`` (needs ``jax_enable_x64``) or ``"float32"``.
        progress: show progress bars.
        stages: run only these stages (names as in ``results.json``); default all.

    Returns:
        The content of ``results.json``; its ``figures`` give each figure's size in pixels, dpi,
        frame count, bytes, smallest text (pixels) and fewest figure pixels per image pixel.
    """
    matplotlib.use("Agg")
    out = Path(os.fspath(out))
    out.mkdir(parents=True, exist_ok=True)
    np_dtype = np.dtype(dtype)
    photo = default_image().astype(np_dtype)
    if quick:
        photo = photo[40:168, 60:252]  # 128 × 192 around the face
    ctx = _Context(out, quick, seed, np_dtype, progress, photo)
    results: dict[str, Any] = {
        "config": {"quick": quick, "seed": seed, "dtype": dtype, "image_shape": list(photo.shape)},
        "stages": {},
    }
    start = time.perf_counter()
    known = [key for key, _, _ in _STAGES]
    if stages is not None and not set(stages) <= set(known):
        raise ValueError(f"run_demo: `stages` must be among {known}; got {list(stages)}.")
    todo = [st for st in _STAGES if stages is None or st[0] in stages]
    # disable=None: no bar, hence no escape codes, when stderr is not a terminal (a log file).
    off = None if progress else True
    bar = tqdm(todo, desc="jaxconv demo", unit="stage", disable=off, leave=False)
    for key, label, stage in bar:
        bar.set_postfix_str(label)
        before = set(ctx.files)
        t0 = time.perf_counter()
        metrics = stage(ctx)
        seconds = time.perf_counter() - t0
        new = [f for f in ctx.files if f not in before]
        results["stages"][key] = {"title": label, "metrics": metrics, "files": new,
                                  "seconds": round(seconds, 3)}  # fmt: skip
        tqdm.write(f"  {label:<26} {seconds:6.1f} s  " + ", ".join(new))
    bar.close()
    results["files"] = dict(ctx.files)
    results["figures"] = ctx.figures  # pixel sizes, dpi, frames, bytes, smallest text and scale
    results["total_seconds"] = round(time.perf_counter() - start, 3)
    results.update(environment())
    save_json_atomic(out / "results.json", results)
    print(f"jaxconv demo: wrote {len(ctx.files) + 1} files to {out.resolve()}/")
    for name, what in ctx.files.items():
        print(f"  {name:<26} {what}")
    print(f"  {'results.json':<26} every number above, versions and timings")
    return results
