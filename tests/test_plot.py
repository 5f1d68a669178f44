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
        width = gif.size[0]
    assert width == 80 * 3.2 * (5 if extras else 3)  # two extra panels: loss and ellipse


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
