"""Gaussian, uniform and generic filters against scipy.ndimage; gradients; errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compile_count import compile_count
from jax.test_util import check_grads
from scipy import ndimage, stats

import jaxconv

MODES = ("reflect", "constant", "nearest", "mirror", "wrap")
RNG = np.random.default_rng(1)
IMAGE = RNG.normal(size=(16, 20))
VOLUME = RNG.normal(size=(5, 6, 7))
TOL = 1e-10  # the bound; measured errors are ~1e-15
# The engine's methods are checked against each other in test_convolve.py; here the XLA convolution
# ("direct") keeps compile times low (the default "shift" method compiles ~3x slower on CPU), and
# test_default_method_matches_ndimage runs every filter once with the default method.
FAST = dict(method="direct")


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


# --- against scipy.ndimage ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "x, sigma, order",
    [
        (IMAGE, 1.0, 0),
        (IMAGE, (0.6, 2.5), (2, 1)),  # radius 10 > half the image: extensions repeat
        (VOLUME, 1.3, (0, 1, 0)),
    ],
    ids=["2d", "2d-orders", "3d"],
)
def test_gaussian_filter_matches_ndimage(x, sigma, order):
    for mode in MODES:
        ref = ndimage.gaussian_filter(x, sigma, order, mode=mode, cval=0.4)
        err = rel_err(jaxconv.gaussian_filter(x, sigma, order, mode=mode, cval=0.4, **FAST), ref)
        assert err <= TOL, (mode, err)


def test_gaussian_filter_options_match_ndimage():
    ref = ndimage.gaussian_filter(IMAGE, 1.5, truncate=2.0)
    assert rel_err(jaxconv.gaussian_filter(IMAGE, 1.5, truncate=2.0, **FAST), ref) <= TOL
    ref = ndimage.gaussian_filter(IMAGE, 1.5, radius=(2, 5))
    assert rel_err(jaxconv.gaussian_filter(IMAGE, 1.5, radius=(2, 5), **FAST), ref) <= TOL
    ref = ndimage.gaussian_filter(VOLUME, (1.0, 0.8), axes=(0, 2), mode=("wrap", "mirror"))
    out = jaxconv.gaussian_filter(VOLUME, (1.0, 0.8), axes=(0, 2), mode=("wrap", "mirror"), **FAST)
    assert rel_err(out, ref) <= TOL
    ref = ndimage.gaussian_filter(IMAGE, (0.0, 1.2))  # σ = 0 leaves an axis alone
    assert rel_err(jaxconv.gaussian_filter(IMAGE, (0.0, 1.2), **FAST), ref) <= TOL
    ref = ndimage.gaussian_filter1d(IMAGE, 1.7, axis=0, order=1, mode="nearest")
    out = jaxconv.gaussian_filter1d(IMAGE, 1.7, 0, 1, mode="nearest", **FAST)
    assert rel_err(out, ref) <= TOL
    # a diagonal `cov` takes the separable path: σ = sqrt(variance) per axis
    ref = ndimage.gaussian_filter(IMAGE, (np.sqrt(2.0), 0.9), mode="mirror")
    assert (
        rel_err(jaxconv.gaussian_filter(IMAGE, cov=[2.0, 0.81], mode="mirror", **FAST), ref) <= TOL
    )


def test_gaussian_filter_full_covariance():
    cov = np.array([[2.0, 0.7], [0.7, 1.0]])
    r = (int(4 * np.sqrt(2.0) + 0.5), 4)
    grid = np.dstack(np.mgrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1])
    pdf = stats.multivariate_normal([0, 0], cov).pdf(grid)
    weights = (pdf / pdf.sum())[::-1, ::-1]  # scipy correlates: flip the convolution kernel
    for mode in MODES:
        ref = ndimage.correlate(IMAGE, weights, mode=mode, cval=0.2)
        err = rel_err(jaxconv.gaussian_filter(IMAGE, cov=cov, mode=mode, cval=0.2, **FAST), ref)
        assert err <= TOL, (mode, err)
    g = jaxconv.Gaussian.from_covariance(cov)
    ref = ndimage.correlate(IMAGE, weights)
    assert rel_err(jaxconv.gaussian_filter(IMAGE, cov=g, **FAST), ref) <= TOL
    # a batch of images: `cov` acts on the last two axes
    batch = np.stack([IMAGE, -IMAGE])
    np.testing.assert_allclose(jaxconv.gaussian_filter(batch, cov=cov, **FAST)[1], -ref, rtol=1e-12)


@pytest.mark.parametrize("name", ["gaussian_laplace", "gaussian_gradient_magnitude"])
def test_gaussian_derivative_filters_match_ndimage(name):
    ours, theirs = getattr(jaxconv, name), getattr(ndimage, name)
    for mode in MODES:
        err = rel_err(
            ours(IMAGE, 1.4, mode=mode, cval=0.5, **FAST), theirs(IMAGE, 1.4, mode=mode, cval=0.5)
        )
        assert err <= TOL, (mode, err)
    if name == "gaussian_laplace":
        ref = theirs(VOLUME, (0.8, 1.5), axes=(1, 2), mode=("wrap", "nearest"))
    else:
        # scipy's gaussian_gradient_magnitude ignores `axes` when smoothing (it blurs every axis,
        # and fails for per-axis σ); the reference is built from gaussian_filter instead.
        parts = [
            ndimage.gaussian_filter(VOLUME, (0.8, 1.5), order, axes=(1, 2), mode=m)
            for order, m in (((1, 0), "wrap"), ((0, 1), "nearest"))
        ]
        ref = np.hypot(*parts)
    out = ours(VOLUME, (0.8, 1.5), axes=(1, 2), mode=("wrap", "nearest"), **FAST)
    assert rel_err(out, ref) <= TOL


def test_uniform_filter_matches_ndimage():
    for mode in MODES:
        for size, origin in ((3, 0), (4, -1), ((2, 5), (0, 1))):
            ref = ndimage.uniform_filter(IMAGE, size, mode=mode, cval=1.5, origin=origin)
            out = jaxconv.uniform_filter(IMAGE, size, mode=mode, cval=1.5, origin=origin, **FAST)
            assert rel_err(out, ref) <= TOL, (mode, size, origin)
    ref = ndimage.uniform_filter(VOLUME, (3, 2), axes=(0, 2))
    assert rel_err(jaxconv.uniform_filter(VOLUME, (3, 2), axes=(0, 2), **FAST), ref) <= TOL


def test_ndimage_correlate_and_convolve():
    w = RNG.normal(size=(3, 4))
    for mode in MODES:
        for origin in (0, (1, -1)):
            ref = ndimage.correlate(IMAGE, w, mode=mode, cval=0.3, origin=origin)
            out = jaxconv.ndimage_correlate(IMAGE, w, mode=mode, cval=0.3, origin=origin, **FAST)
            assert rel_err(out, ref) <= TOL
            ref = ndimage.convolve(IMAGE, w, mode=mode, cval=0.3, origin=origin)
            out = jaxconv.ndimage_convolve(IMAGE, w, mode=mode, cval=0.3, origin=origin, **FAST)
            assert rel_err(out, ref) <= TOL
    # any jaxconv kernel, applied with ndimage's boundaries
    ref = ndimage.gaussian_filter(IMAGE, 1.2, order=(1, 0), mode="wrap")
    k = jaxconv.gaussian_derivative_kernel(1.2, (1, 0))
    assert rel_err(jaxconv.ndimage_convolve(IMAGE, k, mode="wrap", **FAST), ref) <= TOL


def test_full_covariance_filter_reuses_its_bucket_programs():
    # The N-D kernel is built in the filter's program at its radii's buckets (see
    # _buckets.radius_bucket), zero beyond the radii: a new covariance in the same buckets
    # compiles nothing, and the result is scipy's correlation with the sampled kernel.
    base = np.array([[2.0, 0.7], [0.7, 1.0]])
    x = RNG.normal(size=(19, 17))
    jaxconv.gaussian_filter(x, cov=base)  # radii (6, 4): buckets (8, 8)
    jaxconv.gaussian_filter(x, cov=base, order=(0, 1))
    for scale in (0.6, 1.3):  # radii (4, 3) and (6, 5)
        cov = base * scale
        with compile_count() as n:
            smooth = jaxconv.gaussian_filter(x, cov=cov)
            deriv = jaxconv.gaussian_filter(x, cov=cov, order=(0, 1))
        assert n.value == 0
        r = [int(4.0 * np.sqrt(v) + 0.5) for v in np.diag(cov)]
        grid = np.dstack(np.mgrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1])
        pdf = stats.multivariate_normal([0, 0], cov).pdf(grid)
        ref = ndimage.correlate(x, (pdf / pdf.sum())[::-1, ::-1])
        assert rel_err(smooth, ref) <= TOL
        d1 = -(grid @ np.linalg.inv(cov))[..., 1] * pdf / pdf.sum()  # ∂/∂x_1 of the density
        assert rel_err(deriv, ndimage.correlate(x, d1[::-1, ::-1])) <= TOL


def test_default_method_matches_ndimage():
    cov = np.array([[2.0, 0.7], [0.7, 1.0]])
    pdf = stats.multivariate_normal([0, 0], cov).pdf(np.dstack(np.mgrid[-6:7, -4:5]))
    w = RNG.normal(size=(3, 4))
    cases = [
        (jaxconv.gaussian_filter(IMAGE, 1.3), ndimage.gaussian_filter(IMAGE, 1.3)),
        (
            jaxconv.gaussian_filter(IMAGE, cov=cov),
            ndimage.correlate(IMAGE, pdf[::-1, ::-1] / pdf.sum()),
        ),
        (jaxconv.gaussian_filter1d(IMAGE, 2.0, 0), ndimage.gaussian_filter1d(IMAGE, 2.0, 0)),
        (jaxconv.gaussian_laplace(IMAGE, 1.3), ndimage.gaussian_laplace(IMAGE, 1.3)),
        (
            jaxconv.gaussian_gradient_magnitude(IMAGE, 1.3),
            ndimage.gaussian_gradient_magnitude(IMAGE, 1.3),
        ),
        (jaxconv.uniform_filter(IMAGE, 4), ndimage.uniform_filter(IMAGE, 4)),
        (jaxconv.ndimage_correlate(IMAGE, w), ndimage.correlate(IMAGE, w)),
        (jaxconv.ndimage_convolve(IMAGE, w), ndimage.convolve(IMAGE, w)),
    ]
    for i, (out, ref) in enumerate(cases):
        assert rel_err(out, ref) <= TOL, i


def test_dtypes_jit_and_vmap():
    x32 = IMAGE.astype(np.float32)
    out = jaxconv.gaussian_filter(x32, 1.0)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, ndimage.gaussian_filter(IMAGE, 1.0), rtol=1e-5, atol=1e-5)
    assert jaxconv.gaussian_filter(np.arange(20).reshape(4, 5), 1.0).dtype == jnp.float64
    z = IMAGE + 1j * IMAGE[::-1]
    ref = ndimage.gaussian_filter(z.real, 1.0) + 1j * ndimage.gaussian_filter(z.imag, 1.0)
    assert rel_err(jaxconv.gaussian_filter(z, 1.0), ref) <= TOL
    f = jax.jit(lambda x, s: jaxconv.gaussian_filter(x, s, radius=4, mode="mirror"))
    ref = ndimage.gaussian_filter(IMAGE, 1.0, radius=4, mode="mirror")
    assert rel_err(f(IMAGE, 1.0), ref) <= TOL
    stack = np.stack([IMAGE, IMAGE**2])
    out = jax.vmap(lambda x: jaxconv.gaussian_laplace(x, 1.0))(stack)
    assert rel_err(out[1], ndimage.gaussian_laplace(IMAGE**2, 1.0)) <= TOL


# --- gradients ------------------------------------------------------------------------------------
# Second-order checks compile ~13 programs each, so they run on small inputs.
SMALL = jnp.asarray(RNG.normal(size=(6, 7)))
SIGNAL = jnp.asarray(RNG.normal(size=(9,)))


def test_gradients_through_the_covariance_parametrisation():
    """Gaussian (log-Cholesky) -> kernel -> filter, to second order, forward and reverse."""
    g = jaxconv.Gaussian.from_covariance([[1.2, 0.4], [0.4, 0.8]])
    f = jax.jit(lambda p: jaxconv.gaussian_filter(SMALL, cov=p, radius=2, mode="wrap", **FAST))
    check_grads(f, (g,), order=2, modes=["fwd", "rev"])


def test_gradients_wrt_image_and_sigma():
    def f(x, s):
        return jaxconv.gaussian_filter(x, s, radius=2, mode="mirror", **FAST)

    check_grads(jax.jit(f), (SIGNAL, 0.9), order=2, modes=["fwd", "rev"])
    # first order for 2-D and the derivative filters
    check_grads(
        jax.jit(lambda s: jaxconv.gaussian_gradient_magnitude(SMALL, s, radius=2, **FAST)),
        (1.0,),
        1,
    )
    check_grads(jax.jit(lambda x: jaxconv.sobel(x, 0, mode="nearest", **FAST)), (SMALL,), 1)


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: jaxconv.gaussian_filter(IMAGE, -1.0),
            ValueError,
            "`sigma` must be finite and >= 0",
        ),
        (lambda: jaxconv.gaussian_filter(IMAGE, (1.0, 1.0, 1.0)), ValueError, "`sigma`"),
        (lambda: jaxconv.gaussian_filter(IMAGE), ValueError, "exactly one of `sigma` and `cov`"),
        (
            lambda: jaxconv.gaussian_filter(IMAGE, cov=[[1.0, 2.0], [2.0, 1.0]]),
            ValueError,
            "positive definite",
        ),
        (
            lambda: jaxconv.gaussian_filter(IMAGE, cov=[[1.0, 0.3], [0.0, 1.0]]),
            ValueError,
            "symmetric",
        ),
        (
            lambda: jaxconv.gaussian_filter(IMAGE, 1.0, mode="symm"),
            ValueError,
            "`mode` must be one of",
        ),
        (lambda: jaxconv.gaussian_filter(IMAGE, 1.0, order=-1), ValueError, "`order`"),
        (lambda: jaxconv.gaussian_filter(IMAGE, 1.0, radius=-2), ValueError, "`radius`"),
        (lambda: jaxconv.gaussian_filter(IMAGE, 1.0, axes=(2,)), ValueError, "`axes`"),
        (
            lambda: jax.jit(lambda s: jaxconv.gaussian_filter(IMAGE, s))(1.0),
            ValueError,
            r"traced.*`radius=`",
        ),
        (lambda: jaxconv.uniform_filter(IMAGE, 0), ValueError, "`size` must be a positive int"),
        (lambda: jaxconv.uniform_filter(IMAGE, 4, origin=2), ValueError, "`origin`"),
        (lambda: jaxconv.ndimage_correlate(IMAGE, np.ones(3)), ValueError, "`weights` must have"),
        (
            lambda: jaxconv.ndimage_convolve(IMAGE, np.ones((2, 2)), origin=1),
            ValueError,
            "`origin`",
        ),
        (lambda: jaxconv.gaussian_filter(IMAGE, 1.0, discretization="x"), ValueError, "`discret"),
        (
            lambda: jaxconv.gaussian_filter(
                IMAGE, cov=[[1.0, 0.3], [0.3, 1.0]], discretization="discrete"
            ),
            NotImplementedError,
            "axis-aligned",
        ),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
