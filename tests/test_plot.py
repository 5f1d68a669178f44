"""Tests for jaxconv.plot: each function draws the expected artists, with geometry checked."""

import inspect
import math
from statistics import NormalDist

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, PathPatch
from PIL import Image
from scipy.stats import chi2

import jaxconv.plot as jplot

SOBEL_X = np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _random_cov(seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(2, 2))
    return a @ a.T + 0.1 * np.eye(2)


def _ellipse_points(ellipse: Ellipse) -> np.ndarray:
    """On-curve vertices of the drawn ellipse in data coordinates.

    The unit circle is 8 cubic Bézier segments: vertices 0, 3, ..., 24 lie on the curve, the
    others are control points.
    """
    return ellipse.get_patch_transform().transform(ellipse.get_path().vertices[:25:3])


def _image_axes(fig: Figure) -> list[Axes]:
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def test_module_never_shows_or_selects_a_backend():
    source = inspect.getsource(jplot)
    for call in ("plt.show(", "matplotlib.use(", "switch_backend(", "plt.ion("):
        assert call not in source


# ---------------------------------------------------------------- kernel


def test_kernel_signed_uses_centred_diverging_colormap():
    ax = jplot.kernel(jnp.asarray(SOBEL_X), title="Sobel x")
    assert isinstance(ax, Axes) and ax.get_title() == "Sobel x"
    (im,) = ax.images
    assert im.colorbar is not None
    assert im.get_cmap().name == "RdBu_r"
    assert im.get_clim() == (-2.0, 2.0)
    np.testing.assert_array_equal(im.get_array(), SOBEL_X)
    assert im.get_extent() == [-1.5, 1.5, 1.5, -1.5]  # pixel centres at offsets -1, 0, 1


def test_kernel_unsigned_on_given_axes_and_1d():
    fig, axes = plt.subplots(1, 2)
    assert jplot.kernel(np.ones((2, 4)) / 8, ax=axes[0]) is axes[0]
    assert axes[0].images[0].get_cmap().name == "viridis"
    jplot.kernel([0.25, 0.5, 0.25], ax=axes[1], cmap="gray")
    assert axes[1].images[0].get_array().shape == (1, 3)
    assert axes[1].images[0].get_cmap().name == "gray"
    assert len(fig.axes) == 4  # two kernels, two colour bars


def test_kernel_errors():
    with pytest.raises(ValueError, match=r"kernel: `k` must have ndim in \(1, 2\); got shape"):
        jplot.kernel(np.ones((2, 2, 2)))
    with pytest.raises(TypeError, match="kernel: `k` must be real; got dtype complex128"):
        jplot.kernel(np.ones((2, 2), complex))


# ---------------------------------------------------------------- covariance ellipses


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("mean", [(0.0, 0.0), (1.5, -2.0)])
def test_covariance_ellipse_matches_eigh(seed, mean):
    cov = _random_cov(seed)  # (row, column) order, like jaxconv's covariances
    ax = jplot.covariance_ellipse(jnp.asarray(cov), mean=mean, n_std=1.5)
    (ellipse,) = ax.patches
    vals, vecs = np.linalg.eigh(cov)
    assert ellipse.width == pytest.approx(2 * 1.5 * math.sqrt(vals[1]))
    assert ellipse.height == pytest.approx(2 * 1.5 * math.sqrt(vals[0]))
    major = np.array([math.cos(math.radians(ellipse.angle)), math.sin(math.radians(ellipse.angle))])
    assert abs(major[::-1] @ vecs[:, 1]) == pytest.approx(1.0)  # along the leading eigenvector
    assert ellipse.center == pytest.approx(mean[::-1])  # drawn at (x, y) = (column, row)
    assert ax.yaxis_inverted()  # rows grow downwards, as in kernel images
    # Every drawn point, read back as (row, column), sits at Mahalanobis distance n_std.
    d = _ellipse_points(ellipse)[:, ::-1] - np.asarray(mean)
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d), 1.5**2)


@pytest.mark.parametrize("cov", [[[4.0, 1.5], [1.5, 1.0]], [[1.0, -0.6], [-0.6, 3.0]]])
def test_covariance_ellipse_lies_on_the_kernel_image(cov):
    # The ellipse of a covariance drawn over the image of jaxconv.gaussian_kernel(cov): along its
    # major axis the kernel must stay larger than along its minor axis (same distance).
    import jaxconv

    k = np.asarray(jaxconv.gaussian_kernel(np.asarray(cov), radius=6))
    ax = jplot.kernel(k)
    jplot.covariance_ellipse(cov, ax=ax)
    (ellipse,) = ax.patches
    a = math.radians(ellipse.angle)
    major = np.array([math.cos(a), math.sin(a)])  # (x, y) in the axes' data coordinates
    minor = np.array([-major[1], major[0]])

    def value_at(direction):  # the image's pixel under data point 2 * direction
        x, y = np.rint(2 * direction).astype(int)
        return k[6 + y, 6 + x]  # data (x, y) = (column, row) offsets from the centre

    assert value_at(major) > 1.5 * value_at(minor)


def test_covariance_ellipse_confidence_and_style():
    cov = np.array([[4.0, 0.0], [0.0, 1.0]])
    ax = jplot.covariance_ellipse(cov, confidence=0.9, edgecolor="r", linestyle="--")
    (ellipse,) = ax.patches
    s = math.sqrt(chi2.ppf(0.9, df=2))
    assert ellipse.width == pytest.approx(2 * s * 2.0)
    assert ellipse.height == pytest.approx(2 * s * 1.0)
    assert ellipse.get_linestyle() == "--"
    assert ellipse.get_facecolor()[3] == 0.0  # unfilled by default


@pytest.mark.parametrize(
    ("cov", "match"),
    [
        (np.eye(3), "must be a symmetric PSD 2x2 matrix"),
        ([[1.0, 0.5], [0.0, 1.0]], "must be a symmetric PSD 2x2 matrix"),
        ([[1.0, 2.0], [2.0, 1.0]], r"must be a symmetric PSD 2x2 matrix; got \[\[1.0, 2.0\]"),
        (np.ones(2), r"`cov` must have ndim in \(2,\)"),
    ],
)
def test_covariance_ellipse_errors(cov, match):
    with pytest.raises(ValueError, match="covariance_ellipse: .*" + match):
        jplot.covariance_ellipse(cov)


def test_covariance_ellipse_bad_confidence():
    with pytest.raises(ValueError, match=r"`confidence` must be in \(0, 1\); got 1.5"):
        jplot.covariance_ellipse(np.eye(2), confidence=1.5)


def _radius(theta: np.ndarray, u: np.ndarray, s: float) -> float:
    """Radius of the `s`-sigma ellipse of [[t0, t1], [t1, t2]] along the unit vector `u`."""
    c = np.array([[theta[0], theta[1]], [theta[1], theta[2]]])
    return s / math.sqrt(u @ np.linalg.solve(c, u))


def test_covariance_comparison_band_is_the_delta_method_interval():
    true = np.array([[2.0, 0.5], [0.5, 1.0]])
    fitted = np.array([[2.2, 0.4], [0.4, 1.1]])
    a = np.random.default_rng(0).normal(size=(3, 3)) * 0.05
    stderr_cov = a @ a.T
    ax = jplot.covariance_comparison(true, fitted, stderr_cov, n_std=2.0, level=0.9)
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    (band,) = [p for p in ax.patches if isinstance(p, PathPatch)]
    assert [e.get_label() for e in ellipses] == ["true", "fitted"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["90% band", "true", "fitted"]
    for ellipse, cov in zip(ellipses, (true, fitted), strict=True):
        d = _ellipse_points(ellipse)[:, ::-1]
        np.testing.assert_allclose(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d), 4.0)

    verts = band.get_path().vertices[:, ::-1]  # as (row, column), the order of the covariances
    outer, inner = verts[:181], verts[181:][::-1]
    z = NormalDist().inv_cdf(0.95)
    theta = np.array([fitted[0, 0], fitted[0, 1], fitted[1, 1]])  # the order of stderr_cov
    for k in range(0, 180, 17):
        u = outer[k] / np.linalg.norm(outer[k])
        r = _radius(theta, u, 2.0)
        grad = np.array(  # central differences, independent of the closed form in the module
            [
                (_radius(theta + h, u, 2.0) - _radius(theta - h, u, 2.0)) / 2e-6
                for h in 1e-6 * np.eye(3)
            ]
        )
        se = math.sqrt(grad @ stderr_cov @ grad)
        assert np.linalg.norm(outer[k]) == pytest.approx(r + z * se, rel=1e-6)
        assert np.linalg.norm(inner[k]) == pytest.approx(r - z * se, rel=1e-6)


def test_covariance_comparison_without_stderr():
    ax = jplot.covariance_comparison(np.eye(2), 1.1 * np.eye(2), mean=(1.0, 1.0))
    assert len(ax.patches) == 2
    assert not any(isinstance(p, PathPatch) for p in ax.patches)


def test_covariance_comparison_errors():
    with pytest.raises(ValueError, match=r"`stderr_cov` must have shape \(3, 3\); got \(2, 2\)"):
        jplot.covariance_comparison(np.eye(2), np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="`fitted_cov` must be positive definite"):
        jplot.covariance_comparison(np.eye(2), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="`true_cov` must be a symmetric PSD"):
        jplot.covariance_comparison(-np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match=r"`level` must be in \(0, 1\); got 95"):
        jplot.covariance_comparison(np.eye(2), np.eye(2), np.eye(3), level=95)


# ---------------------------------------------------------------- grids, curves, spectra


def test_filter_grid():
    kernels = jnp.stack([SOBEL_X, SOBEL_X.T, np.ones((3, 3)) / 9, -SOBEL_X, np.eye(3)])
    fig = jplot.filter_grid(kernels, titles=list("abcde"), ncols=3)
    panels = _image_axes(fig)
    assert [ax.get_title() for ax in panels] == list("abcde")
    assert all(ax.images[0].colorbar is not None for ax in panels)
    unused = [ax for ax in fig.axes if not ax.images and ax.get_label() != "<colorbar>"]
    assert len(unused) == 1 and not unused[0].axison


def test_filter_grid_errors():
    with pytest.raises(ValueError, match="filter_grid: `titles` must have 2 entries; got 1"):
        jplot.filter_grid([SOBEL_X, SOBEL_X], titles=["a"])
    with pytest.raises(ValueError, match="filter_grid: `kernels` and `ncols` must be positive"):
        jplot.filter_grid([])


def test_loss_curve():
    history = jnp.asarray([1.0, 0.5, 0.25, 0.2])
    ax = jplot.loss_curve(history)
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_ydata(), history)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(4))
    assert ax.get_yscale() == "log"
    assert ax.get_legend() is None


def test_loss_curve_mapping_and_linear():
    ax = jplot.loss_curve({"train": [1.0, 0.0], "test": [2.0, -1.0]}, log=False)
    assert [line.get_label() for line in ax.lines] == ["train", "test"]
    assert ax.get_yscale() == "linear"
    assert ax.get_legend() is not None


def test_loss_curve_log_of_nonpositive_is_an_error():
    with pytest.raises(ValueError, match="loss_curve: `history` must be positive for `log=True`"):
        jplot.loss_curve([1.0, 0.0])


def test_frequency_response_2d():
    k = np.ones((3, 5)) / 15
    ax = jplot.frequency_response(jnp.asarray(k), shape=(16, 32))
    (im,) = ax.images
    expected = np.abs(np.fft.fftshift(np.fft.fft2(k, s=(16, 32))))
    np.testing.assert_allclose(im.get_array(), expected, atol=1e-15)
    assert im.get_array()[8, 16] == pytest.approx(1.0)  # DC gain of a normalised box, at the centre
    left, right, bottom, top = im.get_extent()
    assert (left, right) == pytest.approx((-0.5 - 1 / 64, 0.5 - 1 / 64))
    assert (bottom, top) == pytest.approx((-0.5 - 1 / 32, 0.5 - 1 / 32))
    assert im.colorbar is not None
    assert "cycles/pixel" in ax.get_xlabel()


def test_frequency_response_1d():
    k = np.array([0.25, 0.5, 0.25])
    ax = jplot.frequency_response(k, shape=(8, 64))
    (line,) = ax.lines
    f = line.get_xdata()
    np.testing.assert_allclose(f, np.fft.fftshift(np.fft.fftfreq(64)))
    np.testing.assert_allclose(line.get_ydata(), np.cos(np.pi * f) ** 2, atol=1e-14)


def test_frequency_response_shape_too_small():
    with pytest.raises(ValueError, match=r"frequency_response: `shape` must be >= \(3, 5\)"):
        jplot.frequency_response(np.ones((3, 5)), shape=(4, 4))


def test_images_side_by_side():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=(6, 8)), jnp.asarray(rng.uniform(size=(6, 8)))
    rgb = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    fig = jplot.images([a, b, rgb], ["Original", "Convolved", "colour"])
    axes = _image_axes(fig)
    assert [ax.get_title() for ax in axes] == ["Original", "Convolved", "colour"]
    assert all(len(ax.images) == 1 and not ax.axison for ax in axes)
    assert axes[0].images[0].get_cmap().name == "gray"


def test_images_errors():
    with pytest.raises(ValueError, match=r"images: each image must be \(H, W\)"):
        jplot.images([np.ones((2, 2, 2))])
    with pytest.raises(ValueError, match="images: `titles` must have 1 entries; got 2"):
        jplot.images([np.ones((2, 2))], titles=["a", "b"])
    with pytest.raises(ValueError, match="must hold at least one image"):
        jplot.images([])


# ---------------------------------------------------------------- animation


def _history(n_frames: int):
    rng = np.random.default_rng(0)
    target = rng.uniform(size=(12, 16))
    kernels = [SOBEL_X * (i + 1) / n_frames for i in range(n_frames)]
    predictions = jnp.stack([target * (i + 1) / n_frames for i in range(n_frames)])
    return kernels, predictions, target


@pytest.mark.parametrize("extras", [False, True])
def test_animate_fit_writes_gif_with_one_frame_per_step(tmp_path, extras):
    n = 5
    kernels, predictions, target = _history(n)
    kwargs = {}
    if extras:
        kwargs = {
            "losses": np.geomspace(1.0, 0.01, n),
            "covs": [np.array([[1.0 + i, 0.2], [0.2, 1.0]]) for i in range(n)],
            "true_cov": [[3.0, 0.2], [0.2, 1.0]],
        }
    before = plt.get_fignums()
    out = jplot.animate_fit(kernels, predictions, target, tmp_path / "fit.gif", fps=10, **kwargs)
    assert out == tmp_path / "fit.gif"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.gif"]  # no temp file left
    assert plt.get_fignums() == before  # draws on its own figure, leaks nothing to pyplot
    with Image.open(out) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == n
        assert gif.info["duration"] == 100
        size = gif.size
    panels = {"losses": None, "covs": None, "true_cov": None, **kwargs}
    fig, _, _ = jplot._fit_figure(kernels, predictions, target, **panels, n_std=2.0, dpi=100,
                                  steps=None)  # fmt: skip
    assert size == (fig.bbox.width, fig.bbox.height)
    assert len(fig.axes) == (5 if extras else 3) + 1  # two extra panels (loss, ellipse); colour bar


def test_save_gif_blitting_gives_the_pixels_of_full_redraws(tmp_path):
    def scene():
        fig = Figure(figsize=(3, 2), dpi=50)
        ax = fig.subplots()
        ax.plot([0.6, 1], [0, 1], "k")  # unchanged, beside the changing image
        (line,) = ax.plot([], [], "C1")  # changing, over the changing image
        image = ax.imshow(np.zeros((4, 4)), extent=(0, 0.5, 0, 1), vmin=0, vmax=3)
        ax.set(xlim=(0, 1), ylim=(0, 1))

        def update(i):
            line.set_data([0, 1], [i / 3, 1 - i / 3])
            image.set_data(np.eye(4) * i)
            ax.set_title(f"frame {i}")
            return [line, image, ax.title]

        return fig, update

    fig, update = scene()
    blitted = jplot._render(fig, update, 4)
    inside = fig.axes[0].get_window_extent()
    for i in range(4):
        fig, update = scene()  # a fresh figure, fully drawn in state i
        update(i)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        rows, cols = np.nonzero((blitted[i] != np.asarray(canvas.buffer_rgba())).any(-1))
        # Equal but where a tick mark's antialiased base touches the spine beside the image.
        assert len(rows) <= 8, len(rows)
        x, y = cols + 0.5, blitted[i].shape[0] - rows - 0.5  # pixel centres, display coordinates
        assert np.all((np.abs(x - inside.x0) < 2) | (np.abs(y - inside.y0) < 2)), (rows, cols)
    assert not np.array_equal(blitted[0], blitted[1])
    fig, update = scene()
    out = jplot.save_gif(fig, update, 4, tmp_path / "a.gif", fps=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]
    with Image.open(out) as gif:
        assert (gif.n_frames, gif.info["duration"]) == (4, 250)


def test_animate_fit_1d_kernels_and_overwrite(tmp_path):
    _, predictions, target = _history(3)
    kernels = np.array([[0.0, 1.0, 0.0], [0.1, 0.8, 0.1], [0.25, 0.5, 0.25]])
    path = tmp_path / "fit.gif"
    path.write_bytes(b"old")
    jplot.animate_fit(kernels, predictions, target, path)
    with Image.open(path) as gif:
        assert gif.n_frames == 3


def test_animate_fit_errors(tmp_path):
    kernels, predictions, target = _history(3)
    path = tmp_path / "fit.gif"
    with pytest.raises(ValueError, match=r"`predictions_history` must have shape \(3, 12, 16\)"):
        jplot.animate_fit(kernels, predictions[:2], target, path)
    with pytest.raises(ValueError, match="animate_fit: `losses` must have 3 entries, one per"):
        jplot.animate_fit(kernels, predictions, target, path, losses=[1.0])
    with pytest.raises(ValueError, match="animate_fit: `covs` must be a symmetric PSD"):
        jplot.animate_fit(kernels, predictions, target, path, covs=-np.ones((3, 2, 2)))
    assert list(tmp_path.iterdir()) == []


def test_animate_fit_loss_axis_is_in_step_numbers():
    kernels, predictions, target = _history(4)
    steps = np.array([0, 2, 5, 9])
    losses = np.geomspace(1.0, 1e-3, 10)
    fig, update, n = jplot._fit_figure(kernels, predictions, target, losses, None, None, 2.0,
                                       100, steps)  # fmt: skip
    assert n == 4
    ax = fig.axes[3]
    line, marker = ax.lines
    for i, step in enumerate(steps):
        update(i)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(step + 1))
        np.testing.assert_array_equal(line.get_ydata(), losses[: step + 1])
        assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (step, losses[step])
        assert fig._suptitle.get_text() == f"step {step} of 9"
        lo, hi = ax.get_xlim()
        assert lo <= 0 and hi >= 9  # the whole history's range, in every frame
    assert ax.get_xlabel() == "step"


def test_animate_fit_steps_errors(tmp_path):
    kernels, predictions, target = _history(3)
    path = tmp_path / "fit.gif"
    for bad in ([0, 2, 2], [0, 1], [0.0, 1.0, 2.0]):
        with pytest.raises(ValueError, match=r"animate_fit: `steps` must be 3 increasing integers"):
            jplot.animate_fit(kernels, predictions, target, path, steps=bad)
    with pytest.raises(
        ValueError, match=r"`losses` must have 8 entries, one per step 0\.\.7; got 3"
    ):
        jplot.animate_fit(kernels, predictions, target, path, steps=[0, 3, 7], losses=[1, 2, 3])
    assert list(tmp_path.iterdir()) == []


def _decoded_frames(path):
    with Image.open(path) as gif:
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB"), dtype=int))
    return frames


def test_gif_frames_keep_smooth_gradients_without_banding(tmp_path):
    # A target with every grey level, a signed kernel and the loss and ellipse panels: far more
    # than the 256 colours a GIF frame can hold. The decoded frames must match the rendering.
    ramp = np.linspace(0.0, 1.0, 256)
    target = np.tile(ramp, (48, 1))
    n = 6
    kernels = [np.outer([1.0, 2.0, 1.0], [-1.0, 0.5 * i, 1.0]) for i in range(n)]
    predictions = np.stack([target * (0.5 + 0.1 * i) for i in range(n)])
    losses = np.geomspace(1.0, 1e-4, 21)
    covs = [np.array([[1.0 + 0.2 * i, 0.3], [0.3, 1.0]]) for i in range(n)]
    args = (kernels, predictions, target, losses, covs, [[2.0, 0.3], [0.3, 1.0]], 2.0, 100)
    steps = jplot.frame_steps(20, n)
    fig, update, _ = jplot._fit_figure(*args, steps)
    rendered = [f[..., :3].astype(int) for f in jplot._render(fig, update, n)]
    box = fig.axes[2].get_window_extent()  # the target panel: the gradient
    height = rendered[0].shape[0]
    rows = slice(int(height - box.y1) + 1, int(height - box.y0) - 1)
    cols = slice(int(box.x0) + 1, int(box.x1) - 1)
    path = jplot.animate_fit(*args[:3], tmp_path / "a.gif", losses=losses, covs=covs,
                             true_cov=args[5], steps=steps)  # fmt: skip
    decoded = _decoded_frames(path)
    assert len(decoded) == n
    for got, want in zip(decoded, rendered, strict=True):
        err = np.abs(got - want).max(-1)
        assert err[rows, cols].max() <= 2  # within 2 of 255 levels: no bands
        assert len(np.unique(got[rows, cols, 0])) >= 100
        assert err.mean() < 0.5  # and the rest of the frame is close too


def test_save_gif_of_a_plain_figure_matches_its_rendering(tmp_path):
    fig = Figure(figsize=(3, 2), dpi=100)
    ax = fig.subplots()
    ax.imshow(np.tile(np.linspace(0, 1, 200), (50, 1)), cmap="gray", aspect="auto")
    (line,) = ax.plot([0, 199], [0, 49], "C1")

    def update(i):
        line.set_color(f"C{i}")
        return [line]

    rendered = jplot._render(fig, update, 3)
    for got, want in zip(_decoded_frames(jplot.save_gif(fig, update, 3, tmp_path / "a.gif")),
                         rendered, strict=True):  # fmt: skip
        assert np.abs(got - want[..., :3]).max(-1).mean() < 0.5


# ---------------------------------------------------------------- legibility and orientation


@pytest.mark.parametrize("shape", [(200, 300), (31, 17)])
def test_images_draw_each_pixel_as_at_least_one_figure_pixel(shape):
    img = np.zeros(shape)
    img[shape[0] // 2, :] = 1.0  # one-pixel lines: gone if the image were shown smaller
    img[:, shape[1] // 3] = 1.0
    fig = jplot.images([img, img], titles=["a", "b"])
    stats = jplot._legibility(fig)
    assert stats["min_image_scale"] >= 1.0 - 1e-9
    assert stats["min_text_px"] >= 12.5  # 9 points at 100 dpi
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., 0]
    box = _image_axes(fig)[0].get_window_extent()
    top, left = round(fig.bbox.height - box.y1), round(box.x0)
    drawn = pixels[top : top + round(box.height), left : left + round(box.width)]
    s = round(box.width / shape[1])
    assert (box.width, box.height) == pytest.approx((s * shape[1], s * shape[0]))  # whole pixels
    np.testing.assert_array_equal(drawn[::s, ::s], np.where(img > 0, 255, 0))


def test_images_signed_maps_get_a_centred_diverging_colormap_and_a_colour_bar():
    rng = np.random.default_rng(0)
    signed, unsigned = rng.normal(size=(20, 30)), rng.uniform(size=(20, 30))
    fig = jplot.images([signed, unsigned])
    a, b = _image_axes(fig)
    m = np.abs(signed).max()
    assert a.images[0].get_cmap().name == "RdBu_r" and a.images[0].get_clim() == (-m, m)
    assert a.images[0].colorbar is not None
    assert b.images[0].get_cmap().name == "gray" and b.images[0].colorbar is None
    fig = jplot.images([signed, unsigned], colorbar=True)
    assert all(ax.images[0].colorbar is not None for ax in _image_axes(fig))
    fig = jplot.images([signed], colorbar=False, cmap="PuOr")
    (ax,) = _image_axes(fig)
    assert ax.images[0].colorbar is None and ax.images[0].get_cmap().name == "PuOr"


def test_legibility_measures_text_and_image_scale():
    fig = Figure(figsize=(2, 2), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(np.zeros((400, 50)))  # 200 px high: half a figure pixel per image pixel
    ax.set_title("small", fontsize=6)
    ax.set_axis_off()
    stats = jplot._legibility(fig)
    assert stats["min_text_px"] == pytest.approx(6 * 100 / 72)
    assert stats["min_image_scale"] == pytest.approx(0.5)


def _principal_slope(points, weights=None):
    """Slope of the principal axis of display points (pixels; y grows upwards on screen)."""
    w = np.ones(len(points)) if weights is None else weights
    c = np.cov(points.T, aweights=w)
    v = np.linalg.eigh(c)[1][:, -1]
    return v[1] / v[0]


@pytest.mark.parametrize("rho", [0.5, -0.5])
def test_contour_ellipse_and_kernel_image_tilt_the_same_way(rho):
    # One convention: rows (axis 0, y) grow downwards, columns (x) to the right. A positive
    # row-column covariance puts the density's long axis from the top left to the bottom right
    # of the screen: a negative slope in display coordinates, which grow upwards.
    from scipy.stats import multivariate_normal

    import jaxconv

    cov = np.array([[1.0, rho], [rho, 1.0]])
    grid = np.mgrid[-3:3:0.05, -3:3:0.05]
    pdf = multivariate_normal([0, 0], cov).pdf(np.dstack(grid))  # (row, column) coordinates
    fig, axes = plt.subplots(1, 3)
    jplot.contour(pdf, grid, ax=axes[0])
    jplot.covariance_ellipse(cov, ax=axes[1])
    k = np.asarray(jaxconv.gaussian_kernel(cov * 9, radius=12))
    jplot.kernel(k, ax=axes[2])
    fig.canvas.draw()

    inner = axes[0].collections[0].get_paths()[-1].vertices  # the highest level's region
    contour_slope = _principal_slope(axes[0].transData.transform(inner))
    (ellipse,) = axes[1].patches
    ellipse_slope = _principal_slope(axes[1].transData.transform(_ellipse_points(ellipse)))
    (im,) = axes[2].images
    left, right, bottom, top = im.get_extent()
    h, w = im.get_array().shape
    # Pixel centres of the image as drawn: row i at y = top + (i + 0.5) (bottom - top) / h.
    ys = top + (np.arange(h) + 0.5) * (bottom - top) / h
    xs = left + (np.arange(w) + 0.5) * (right - left) / w
    centres = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    image_slope = _principal_slope(
        axes[2].transData.transform(centres), np.asarray(im.get_array()).ravel()
    )
    expected = -1.0 if rho > 0 else 1.0  # equal variances: a 45° axis
    for slope in (contour_slope, ellipse_slope, image_slope):
        assert slope == pytest.approx(expected, rel=0.05)
    assert all(ax.yaxis_inverted() for ax in axes)
    assert {ax.get_xlabel() for ax in axes} == {"x: column offset (axis 1)"}
    assert {ax.get_ylabel() for ax in axes} == {"y: row offset (axis 0), down"}


def test_contour_errors():
    with pytest.raises(ValueError, match=r"contour: `grid` must have shape \(2, 4, 5\); got"):
        jplot.contour(np.ones((4, 5)), np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match=r"contour: `values` must have ndim in \(2,\)"):
        jplot.contour(np.ones(4), np.ones((2, 4)))


@pytest.mark.parametrize(("n_steps", "n_frames"), [(10, 4), (300, 48), (1500, 48), (5, 6), (1, 2)])
def test_frame_steps(n_steps, n_frames):
    steps = jplot.frame_steps(n_steps, n_frames)
    assert len(steps) == n_frames and steps.dtype.kind == "i"
    assert steps[0] == 0 and steps[-1] == n_steps
    gaps = np.diff(steps)
    assert np.all(gaps >= 1)
    assert gaps[0] <= gaps[-1]  # denser early on


def test_frame_steps_errors():
    with pytest.raises(ValueError, match=r"frame_steps: `n_frames` must be in \[2, 11\]; got 12"):
        jplot.frame_steps(10, 12)


def test_animate_fit_signed_target_gets_a_centred_colour_bar():
    kernels, predictions, target = _history(2)
    for tgt, cmap, bar in ((target - 0.3, "RdBu_r", True), (target, "gray", False)):
        fig, _, _ = jplot._fit_figure(kernels, predictions, tgt, None, None, None, 2.0, 100, None)
        for ax in fig.axes[1:3]:
            (im,) = ax.images
            assert im.get_cmap().name == cmap
        m = np.abs(tgt).max()
        assert im.get_clim() == ((-m, m) if bar else (tgt.min(), tgt.max()))
        assert (im.colorbar is not None) == bar
        assert jplot._legibility(fig)["min_image_scale"] >= 1.0 - 1e-9


def test_save_figure_is_atomic_and_writes_through_a_link(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    target = tmp_path / "real.png"
    target.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert jplot.save_figure(fig, link) == link
    assert link.is_symlink() and target.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.png", "real.png"]

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    fig.savefig = broken  # an interrupted save leaves the old file and no temporary file
    with pytest.raises(RuntimeError, match="interrupted"):
        jplot.save_figure(fig, target)
    assert target.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.png", "real.png"]
    with pytest.raises(ValueError, match=r"save_figure: `path` must be a regular file"):
        jplot.save_figure(fig, tmp_path)
    plt.close(fig)
