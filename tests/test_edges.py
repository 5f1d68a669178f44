"""Sobel, Prewitt, Scharr, Laplace and box kernels and filters, against scipy.ndimage."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

import jaxconv

MODES = ("reflect", "constant", "nearest", "mirror", "wrap")
RNG = np.random.default_rng(0)
IMAGE = RNG.normal(size=(16, 20))
VOLUME = RNG.normal(size=(5, 6, 7))
FAST = dict(method="direct")  # compiles ~3x faster than the default on CPU; see test_filters.py


def impulse_response(filt, ndim, **kw):
    """The convolution kernel of a scipy.ndimage filter, read off its response to an impulse."""
    delta = np.zeros((5,) * ndim)
    delta[(2,) * ndim] = 1.0
    return filt(delta, mode="constant", **kw)[(slice(1, 4),) * ndim]


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_kernels_match_ndimage_impulse_responses(ndim):
    for axis in range(-ndim, ndim):
        for kern, filt in (
            (jaxconv.sobel_kernel, ndimage.sobel),
            (jaxconv.prewitt_kernel, ndimage.prewitt),
        ):
            np.testing.assert_array_equal(kern(ndim, axis), impulse_response(filt, ndim, axis=axis))
    np.testing.assert_array_equal(
        jaxconv.laplace_kernel(ndim), impulse_response(ndimage.laplace, ndim)
    )
    np.testing.assert_allclose(
        jaxconv.box_kernel(3, ndim),
        impulse_response(ndimage.uniform_filter, ndim, size=3),
        rtol=1e-15,
    )


def test_kernel_values_and_conventions():
    # convolution kernels: Wikipedia's Gx, a positive response where the signal increases along x
    np.testing.assert_array_equal(jaxconv.sobel_kernel(), [[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    np.testing.assert_array_equal(
        jaxconv.scharr_kernel(axis=0), [[3, 10, 3], [0, 0, 0], [-3, -10, -3]]
    )
    np.testing.assert_allclose(jaxconv.sobel_kernel(normalize=True), jaxconv.sobel_kernel() / 8)
    np.testing.assert_allclose(jaxconv.scharr_kernel(normalize=True), jaxconv.scharr_kernel() / 32)
    ramp = np.tile(np.arange(5.0), (5, 1))
    for kern in (jaxconv.sobel_kernel, jaxconv.prewitt_kernel, jaxconv.scharr_kernel):
        out = ndimage.convolve(ramp, np.asarray(kern(normalize=True)))
        np.testing.assert_allclose(out[1:-1, 1:-1], 1.0)  # normalised kernels estimate ∂x
        assert float(jnp.sum(kern())) == 0.0
    k9 = np.asarray(jaxconv.laplace_kernel(2, points=9))
    quad = np.add.outer(np.arange(-1.0, 2.0) ** 2, np.arange(-1.0, 2.0) ** 2) / 2  # ∇²(r²/2) = 2
    assert np.isclose(np.sum(k9 * quad), 2.0) and np.isclose(k9.sum(), 0.0)
    np.testing.assert_array_equal(jaxconv.laplace_kernel(2, points=5), jaxconv.laplace_kernel(2))
    assert jaxconv.box_kernel((2, 4)).shape == (2, 4)
    assert float(jnp.sum(jaxconv.box_kernel((2, 4)))) == 1.0


def test_kernel_dtypes():
    assert jaxconv.sobel_kernel().dtype == jnp.float64  # x64 on in tests
    assert jaxconv.sobel_kernel(dtype=jnp.float32).dtype == jnp.float32
    assert jaxconv.laplace_kernel(dtype=jnp.float32).dtype == jnp.float32
    assert jaxconv.box_kernel(3, dtype=jnp.float32).dtype == jnp.float32


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: jaxconv.sobel_kernel(2, axis=2), ValueError, "`axis` must be an int in"),
        (lambda: jaxconv.prewitt_kernel(0), ValueError, "`ndim` must be a positive int"),
        (lambda: jaxconv.laplace_kernel(3, points=9), ValueError, "`points`"),
        (lambda: jaxconv.box_kernel(0), ValueError, "`size` must be a positive int"),
        (lambda: jaxconv.box_kernel((2, 3), ndim=3), ValueError, "`size` has 2 entries"),
        (lambda: jaxconv.sobel_kernel(dtype=jnp.int32), TypeError, "`dtype`"),
    ],
)
def test_kernel_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- filters --------------------------------------------------------------------------------------
def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("x", [IMAGE, VOLUME], ids=["2d", "3d"])
@pytest.mark.parametrize("name", ["sobel", "prewitt"])
def test_derivative_filters_match_ndimage(x, name):
    ours, ref = getattr(jaxconv, name), getattr(ndimage, name)
    for mode in MODES:
        for axis in (0, -1):
            err = rel_err(
                ours(x, axis, mode=mode, cval=0.7, **FAST), ref(x, axis, mode=mode, cval=0.7)
            )
            assert err <= 1e-12, (mode, axis, err)


def test_scharr_and_per_axis_modes():
    for mode in MODES:
        ref = ndimage.convolve(IMAGE, np.asarray(jaxconv.scharr_kernel(axis=0)), mode=mode)
        assert rel_err(jaxconv.scharr(IMAGE, 0, mode=mode, **FAST), ref) <= 1e-12
    modes = ("wrap", "nearest")
    ref = ndimage.sobel(IMAGE, 0, mode=modes)
    assert rel_err(jaxconv.sobel(IMAGE, 0, mode=modes), ref) <= 1e-12


def test_laplace_and_edge_magnitude_match_ndimage():
    for mode in MODES:
        for x in (IMAGE, VOLUME):
            ref = ndimage.laplace(x, mode=mode, cval=-0.3)
            assert rel_err(jaxconv.laplace(x, mode=mode, cval=-0.3, **FAST), ref) <= 1e-12
        for op in ("sobel", "prewitt"):
            f = getattr(ndimage, op)
            ref = np.hypot(f(IMAGE, 0, mode=mode), f(IMAGE, 1, mode=mode))
            assert rel_err(jaxconv.edge_magnitude(IMAGE, op, mode=mode, **FAST), ref) <= 1e-12


def test_batch_axes_and_dtypes():
    batch = np.stack([IMAGE, 2 * IMAGE])
    out = jaxconv.sobel(batch, -1, axes=(-2, -1))
    np.testing.assert_allclose(out[1], 2 * ndimage.sobel(IMAGE, -1), rtol=1e-12)
    assert jaxconv.sobel(IMAGE.astype(np.float32)).dtype == jnp.float32
    assert jaxconv.laplace(np.arange(12).reshape(3, 4)).dtype == jnp.float64  # ints -> float
    f = jax.jit(lambda x: jaxconv.edge_magnitude(x, "scharr"))
    np.testing.assert_allclose(f(IMAGE), jaxconv.edge_magnitude(IMAGE, "scharr"), rtol=1e-14)


def test_default_method_matches_ndimage():
    for ours, ref in (
        (jaxconv.sobel(IMAGE, 0), ndimage.sobel(IMAGE, 0)),
        (jaxconv.prewitt(IMAGE, 1), ndimage.prewitt(IMAGE, 1)),
        (jaxconv.laplace(IMAGE), ndimage.laplace(IMAGE)),
        (jaxconv.edge_magnitude(IMAGE), np.hypot(ndimage.sobel(IMAGE, 0), ndimage.sobel(IMAGE, 1))),
    ):
        assert rel_err(ours, ref) <= 1e-12


def test_edge_filters_vanish_on_constant_images():
    x = np.full(IMAGE.shape, 3.5)
    for mode in ("reflect", "nearest", "mirror", "wrap"):
        for out in (
            jaxconv.sobel(x, 0, mode=mode, **FAST),
            jaxconv.prewitt(x, -1, mode=mode, **FAST),
            jaxconv.scharr(x, 0, mode=mode, **FAST),
            jaxconv.laplace(x, mode=mode, **FAST),
            jaxconv.edge_magnitude(x, mode=mode, **FAST),
        ):
            np.testing.assert_allclose(out, 0.0, atol=1e-12)
    # the magnitude has a finite (zero) gradient where it vanishes
    g = jax.grad(lambda y: jaxconv.edge_magnitude(y, **FAST).sum())(jnp.asarray(x))
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: jaxconv.sobel(IMAGE, 2), ValueError, "`axis` must be an axis"),
        (lambda: jaxconv.sobel(IMAGE, 0, axes=(1,)), ValueError, "must be one of `axes`"),
        (lambda: jaxconv.prewitt(IMAGE, mode="symm"), ValueError, "`mode` must be one of"),
        (lambda: jaxconv.scharr(IMAGE, mode=("wrap",)), ValueError, "`mode`"),
        (lambda: jaxconv.edge_magnitude(IMAGE, "roberts"), ValueError, "`operator`"),
        (lambda: jaxconv.laplace(np.zeros(())), ValueError, r"`input` must have >= 1 dimension"),
        (lambda: jaxconv.laplace(IMAGE, axes=(0, 0)), ValueError, "distinct"),
    ],
)
def test_filter_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
