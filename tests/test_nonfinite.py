"""NaN and inf (in data, fill values and σ), overflow of magnitudes, and argument errors (issue 17).

scipy.signal / scipy.ndimage are the references: their direct sums keep a non-finite sample within
the kernel's reach, so the tests compare NaN positions exactly and the other values closely.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import ndimage, signal

import jaxconv
from jaxconv._conv import methods as _methods
from jaxconv._filters import ndimage as _filters

RNG = np.random.default_rng(17)
IMAGE = RNG.normal(size=(12, 14))


def assert_same(out, ref, rtol=1e-10):
    """Equal NaN and inf positions, close finite values."""
    out = np.asarray(out)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(out), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(out), np.isneginf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out[finite], ref[finite], rtol=rtol, atol=rtol)


def with_nan(x, *points):
    x = np.array(x)
    for p in points:
        x[p] = np.nan
    return x


# --- 1. a NaN or inf fill value stays at the border -----------------------------------------------
@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", ["auto", "direct", "shift", "separable"])
def test_nonfinite_fillvalue_matches_convolve2d(method, fill):
    ref = signal.convolve2d(np.ones((5, 5)), np.ones((3, 3)), "same", fillvalue=fill)
    out = jaxconv.convolve2d(
        np.ones((5, 5)), np.ones((3, 3)), "same", fillvalue=fill, method=method
    )
    assert_same(out, ref)
    if fill != fill:
        assert np.isnan(ref).sum() == 16  # the count (it was 25)


@pytest.mark.parametrize("method", ["fft", "os"])
def test_forced_fft_methods_spread_a_nan_fill(method):
    # Documented (convolve's `method`): an FFT cannot keep a NaN local, as scipy's fftconvolve.
    out = jaxconv.convolve2d(
        np.ones((5, 5)), np.ones((3, 3)), "same", fillvalue=np.nan, method=method
    )
    assert np.isnan(np.asarray(out)).all()


@pytest.mark.parametrize(
    "name, args, cval",
    [
        ("gaussian_filter", (1.0,), np.nan),
        ("gaussian_filter", (1.0,), np.inf),
        ("sobel", (), np.inf),
        ("sobel", (), np.nan),
        ("laplace", (), -np.inf),
    ],
)
def test_nonfinite_cval_matches_ndimage(name, args, cval):
    x = RNG.normal(size=(20, 24))
    ref = getattr(ndimage, name)(x, *args, mode="constant", cval=cval)
    out = getattr(jaxconv, name)(x, *args, mode="constant", cval=cval)
    assert_same(out, ref)
    assert np.isfinite(ref).any()  # the border only


def test_nan_cval_of_uniform_filter_stays_in_the_box():
    # scipy's uniform_filter keeps a running sum, which carries a NaN along the rest of each
    # line (documented in jaxconv._filters.ndimage); its direct correlation keeps it within the box.
    x = RNG.normal(size=(20, 24))
    ref = ndimage.correlate(x, np.full((3, 3), 1 / 9), mode="constant", cval=np.nan)
    assert_same(jaxconv.uniform_filter(x, 3, mode="constant", cval=np.nan), ref)


def test_gradient_with_respect_to_cval_and_fillvalue():
    x = RNG.normal(size=(6, 7))
    check_grads(lambda c: jaxconv.gaussian_filter(x, 1.0, mode="constant", cval=c), (0.3,), order=2)
    for method in ("direct", "shift"):
        check_grads(
            lambda c, m=method: jaxconv.convolve2d(
                x, np.ones((3, 3)), "same", fillvalue=c, method=m
            ),
            (0.3,),
            order=2,
        )


# --- 2. NaN propagates through the gradient magnitudes --------------------------------------------
def test_magnitudes_propagate_nan():
    x = with_nan(IMAGE, (4, 5))
    ref = np.hypot(ndimage.sobel(x, 0), ndimage.sobel(x, 1))
    assert_same(jaxconv.edge_magnitude(x), ref)
    assert np.isnan(ref).sum() == 9
    assert_same(
        jaxconv.gaussian_gradient_magnitude(x, 1.0), ndimage.gaussian_gradient_magnitude(x, 1.0)
    )


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_edge_magnitude_of_infinite_data_matches_hypot(value):
    x = np.array(IMAGE)
    x[3, 4] = value
    x[8, 9] = np.nan  # near enough for an inf and a NaN term to meet: hypot gives inf
    ref = np.hypot(ndimage.sobel(x, 0), ndimage.sobel(x, 1))
    assert_same(jaxconv.edge_magnitude(x), ref)


def test_magnitudes_have_zero_gradient_at_zero():
    x = jnp.zeros((6, 7))
    for f in (
        lambda y: jaxconv.edge_magnitude(y).sum(),
        lambda y: jaxconv.gaussian_gradient_magnitude(y, 1.0).sum(),
    ):
        np.testing.assert_array_equal(jax.grad(f)(x), 0.0)
    check_grads(lambda y: jaxconv.edge_magnitude(y), (jnp.asarray(IMAGE),), order=2)


# --- 3. "auto" keeps NaN local on concrete data ---------------------------------------------------
def test_gaussian_filter_keeps_one_nan_local():
    # σ = 20 on 512²: "auto" picks an FFT from the shapes, which spread the NaN everywhere
    # (262144 NaN before); concrete data holding NaN runs a direct method instead.
    x = with_nan(RNG.random((512, 512)), (100, 200))
    ref = ndimage.gaussian_filter(x, 20.0)
    assert np.isnan(ref).sum() == 25921
    assert_same(jaxconv.gaussian_filter(x, 20.0), ref, rtol=1e-9)


def test_gaussian_filter_keeps_inf_local():
    x = RNG.random((200, 200))
    x[50, 60] = np.inf
    ref = ndimage.gaussian_filter(x, 12.0)
    assert np.isfinite(ref).any() and np.isinf(ref).any()
    assert not np.isfinite(np.asarray(jaxconv.gaussian_filter(x, 12.0, method="fft"))).any()
    assert_same(jaxconv.gaussian_filter(x, 12.0), ref, rtol=1e-9)


def test_local_method_choice():
    x = RNG.random((512, 512))
    steps = [(jnp.ones(161), (a,), ("reflect",), (0,)) for a in (0, 1)]
    plan = (tuple((s[1], s[2], s[3]) for s in steps),)
    weights = (tuple(s[0] for s in steps),)
    assert _filters._local_method(jnp.asarray(x), weights, plan, 0.0) == "auto"
    nan = jnp.asarray(with_nan(x, (0, 0)))
    assert _filters._local_method(nan, weights, plan, 0.0) in ("direct", "shift")
    constant = (tuple((s[1], ("constant",), s[3]) for s in steps),)
    assert _filters._local_method(jnp.asarray(x), weights, constant, np.nan) in ("direct", "shift")
    assert not _methods._all_finite_jit(nan) and _methods._all_finite_jit(jnp.asarray(x))
    # a NaN cval without a constant mode is never read
    assert _filters._local_method(jnp.asarray(x), weights, plan, np.nan) == "auto"
    # traced data cannot be inspected: "auto" stays (the docstrings say so)
    assert jax.jit(lambda y: _filters._local_method(y, weights, plan, 0.0) == "auto")(nan)


def test_nan_cval_with_a_large_kernel_stays_at_the_border():
    x = RNG.random((96, 96))
    ref = ndimage.gaussian_filter(x, 6.0, mode="constant", cval=np.nan)
    assert np.isfinite(ref).any()
    assert_same(jaxconv.gaussian_filter(x, 6.0, mode="constant", cval=np.nan), ref)


def test_under_jit_direct_keeps_nan_local():
    x = with_nan(RNG.random((128, 128)), (60, 70))
    f = jax.jit(lambda y: jaxconv.gaussian_filter(y, 10.0, method="direct"))
    assert_same(f(x), ndimage.gaussian_filter(x, 10.0))


# --- 4. a traced σ --------------------------------------------------------------------------------
def test_traced_zero_sigma_is_the_identity():
    f = jax.jit(lambda s: jaxconv.gaussian_filter(IMAGE, s, radius=4))
    np.testing.assert_array_equal(f(0.0), IMAGE)  # all NaN before
    np.testing.assert_array_equal(f(0.0), jaxconv.gaussian_filter(IMAGE, 0.0))
    np.testing.assert_allclose(f(1.5), ndimage.gaussian_filter(IMAGE, 1.5, radius=4), rtol=1e-12)
    g = jax.grad(lambda s: jaxconv.gaussian_filter(IMAGE, s, radius=4).sum())(0.0)
    assert g == 0.0
    # per axis: σ = 0 on one axis skips it, as scipy
    h = jax.jit(lambda s: jaxconv.gaussian_filter(IMAGE, (s, 1.0), radius=4))
    np.testing.assert_allclose(
        h(0.0), ndimage.gaussian_filter(IMAGE, (0.0, 1.0), radius=4), rtol=1e-12
    )


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("gaussian_filter", dict(order=1)),
        ("gaussian_laplace", {}),
        ("gaussian_gradient_magnitude", {}),
    ],
)
def test_traced_zero_sigma_of_derivative_filters(name, kwargs):
    f = jax.jit(lambda s: getattr(jaxconv, name)(IMAGE, s, radius=3, **kwargs))
    ref = getattr(ndimage, name)(IMAGE, 0.0, **kwargs)  # scipy skips every axis
    np.testing.assert_allclose(f(0.0), ref, rtol=1e-12)
    np.testing.assert_allclose(
        f(0.8), getattr(ndimage, name)(IMAGE, 0.8, radius=3, **kwargs), rtol=1e-10
    )


@pytest.mark.parametrize("sigma", [-1.0, np.nan, np.inf])
@pytest.mark.parametrize(
    "name", ["gaussian_filter", "gaussian_laplace", "gaussian_gradient_magnitude"]
)
def test_traced_invalid_sigma_gives_nan(name, sigma):
    # Eagerly these raise; under jit nothing can, so the output is NaN (was: σ = -1 filtered as 1).
    with pytest.raises(ValueError, match=r"`sigma` must be finite and >= 0"):
        getattr(jaxconv, name)(IMAGE, sigma, radius=3)
    out = jax.jit(lambda s: getattr(jaxconv, name)(IMAGE, s, radius=3))(sigma)
    assert np.isnan(np.asarray(out)).all()


@pytest.mark.parametrize("sigma", [-1.0, 0.0, np.nan])
def test_traced_invalid_sigma_of_kernels_gives_nan(sigma):
    # Eagerly σ <= 0 raises; a traced negative σ gave the kernel of |σ|.
    for make in (
        lambda s: jaxconv.gaussian_derivative_kernel(s, 1, radius=3),
        lambda s: jaxconv.gaussian_laplace_kernel(s, radius=3),
    ):
        with pytest.raises(ValueError, match=r"`sigma` must be finite and > 0"):
            make(sigma)
        assert np.isnan(np.asarray(jax.jit(make)(sigma))).all()


# --- 5. magnitudes without overflow ---------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e20, 1e-30])
def test_float32_magnitudes_do_not_overflow(scale):
    x = (RNG.random((10, 11)) * scale).astype(np.float32)
    x64 = x.astype(np.float64)
    ref = np.hypot(ndimage.sobel(x64, 0), ndimage.sobel(x64, 1))
    out = jaxconv.edge_magnitude(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5)  # inf (1e20) or 0 (1e-30) before
    ref = ndimage.gaussian_gradient_magnitude(x64, 1.0)
    np.testing.assert_allclose(jaxconv.gaussian_gradient_magnitude(x, 1.0), ref, rtol=1e-5)


def test_complex_magnitudes_with_scaling():
    z = (RNG.normal(size=(8, 9)) + 1j * RNG.normal(size=(8, 9))) * 1e200
    ref = ndimage.gaussian_gradient_magnitude(z / 1e200, 1.0) * 1e200  # scipy's would overflow
    np.testing.assert_allclose(jaxconv.gaussian_gradient_magnitude(z, 1.0), ref, rtol=1e-10)


# --- 6. clear errors ------------------------------------------------------------------------------
X, K = np.ones((6, 6)), np.ones((3, 3))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: jaxconv.convolve(X, K, boundary=None),
            ValueError,
            r"convolve: `boundary` must be one of .*got None",
        ),
        (
            lambda: jaxconv.correlate(X, K, boundary=1),
            ValueError,
            r"correlate: `boundary` must be one of .*got 1\.",
        ),
        (
            lambda: jaxconv.convolve2d(X, K, "same", None),
            ValueError,
            r"convolve2d: `boundary`.*got None",
        ),
        (
            lambda: jaxconv.convolve(X, K, axes=1.0),
            ValueError,
            r"convolve: `axes` must be an int .*got 1\.0",
        ),
        (
            lambda: jaxconv.correlate(X, np.ones(3), axes=1.0),
            ValueError,
            r"correlate: `axes`.*got 1\.0",
        ),
        (
            lambda: jaxconv.gaussian_filter(X, 1.0, axes=1.0),
            ValueError,
            r"gaussian_filter: `axes`.*got 1\.0",
        ),
        (lambda: jaxconv.sobel(X, axes=1.0), ValueError, r"sobel: `axes`.*got 1\.0"),
        (
            lambda: jaxconv.gaussian_filter(X, "1"),
            TypeError,
            r"gaussian_filter: `sigma` must be a real number.*got '1'",
        ),
        (
            lambda: jaxconv.gaussian_filter(X, ["1", "1"]),
            TypeError,
            r"gaussian_filter: `sigma`.*got '1'",
        ),
        (lambda: jaxconv.gaussian_filter(X, 1j), TypeError, r"gaussian_filter: `sigma`.*got 1j"),
        (
            lambda: jaxconv.gaussian_filter1d(X, "1"),
            TypeError,
            r"gaussian_filter1d: `sigma`.*got '1'",
        ),
        (
            lambda: jaxconv.gaussian_laplace(X, "1"),
            TypeError,
            r"gaussian_laplace: `sigma`.*got '1'",
        ),
        (
            lambda: jaxconv.gaussian_gradient_magnitude(X, "1"),
            TypeError,
            r"gaussian_gradient_magnitude: `sigma`",
        ),
        (
            lambda: jaxconv.convolve(X, K, fillvalue="a"),
            TypeError,
            r"convolve: `fillvalue` must be a number; got 'a'",
        ),
        (
            lambda: jaxconv.convolve2d(X, K, "same", "fill", "a"),
            TypeError,
            r"convolve2d: `fillvalue`.*'a'",
        ),
        (
            lambda: jaxconv.convolve(X, K, fillvalue=None),
            TypeError,
            r"`fillvalue` must be a number; got None",
        ),
        (
            lambda: jaxconv.gaussian_filter(X, 1.0, cval="a"),
            TypeError,
            r"gaussian_filter: `cval` must be a number",
        ),
        (lambda: jaxconv.sobel(X, cval="a"), TypeError, r"sobel: `cval` must be a number; got 'a'"),
        (
            lambda: jaxconv.uniform_filter(X, cval=None),
            TypeError,
            r"uniform_filter: `cval`.*got None",
        ),
        (
            lambda: jaxconv.gaussian_filter(X, 1.0, truncate=np.nan),
            ValueError,
            r"gaussian_filter: `truncate` must be a finite number >= 0; got nan",
        ),
        (
            lambda: jaxconv.gaussian_filter(X, 1.0, truncate=np.inf),
            ValueError,
            r"`truncate`.*got inf",
        ),
        (
            lambda: jaxconv.gaussian_filter(X, 1.0, truncate=-9.0),
            ValueError,
            r"`truncate`.*got -9\.0",
        ),
        (
            lambda: jaxconv.gaussian_filter(X, 1.0, truncate="4"),
            TypeError,
            r"`truncate` must be a real number; got '4'",
        ),
        (
            lambda: jaxconv.gaussian_filter(X, cov=np.eye(2) + 0.1, truncate=np.nan),
            ValueError,
            r"gaussian_filter: `truncate`",
        ),
        (
            lambda: jaxconv.gaussian_filter1d(X, 1.0, truncate=np.nan),
            ValueError,
            r"gaussian_filter1d: `truncate`.*nan",
        ),
        (
            lambda: jaxconv.gaussian_laplace(X, 1.0, truncate=np.inf),
            ValueError,
            r"gaussian_laplace: `truncate`",
        ),
        (
            lambda: jaxconv.gaussian_gradient_magnitude(X, 1.0, truncate=np.nan),
            ValueError,
            r"gaussian_gradient_magnitude: `truncate`",
        ),
        (
            lambda: jaxconv.gaussian_derivative_kernel(1.0, 1, truncate=np.nan),
            ValueError,
            r"gaussian_derivative_kernel: `truncate`",
        ),
        (
            lambda: jax.jit(lambda t: jaxconv.gaussian_filter(X, 1.0, truncate=t))(4.0),
            TypeError,
            r"gaussian_filter: `truncate` must be a concrete number, not traced: it sets",
        ),
        (
            lambda: jax.jit(lambda t: jaxconv.gaussian_derivative_kernel(1.0, 1, truncate=t))(4.0),
            TypeError,
            r"gaussian_derivative_kernel: `truncate` must be a concrete",
        ),
        # 0-d inputs that scipy rejects too (scipy: AxisError, "must both be 2-D arrays")
        (
            lambda: jaxconv.gaussian_filter1d(2.0, 1.0),
            ValueError,
            r"gaussian_filter1d: `input` must have >= 1 dimension; got shape \(\)",
        ),
        (lambda: jaxconv.sobel(2.0), ValueError, r"sobel: `input` must have >= 1 dimension"),
        (
            lambda: jaxconv.correlate2d(2.0, 3.0),
            ValueError,
            r"correlate2d: `in1` must be at least 2-D; got shape \(\)",
        ),
        (
            lambda: jaxconv.convolve(2.0, np.ones(3)),
            ValueError,
            r"convolve: `in2` must not have more dimensions than `in1`",
        ),
    ],
)
def test_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("fn", ["convolve2d", "correlate2d"])
def test_convolve2d_keeps_one_nan_local_as_scipy(fn):
    # auto would pick an FFT for a 31×31 kernel; with NaN in the data it sums directly instead,
    # as scipy.signal.convolve2d (always direct) does.
    rng = np.random.default_rng(7)
    x = rng.random((96, 96))
    x[40, 50] = np.nan
    k = rng.random((31, 31))
    assert jaxconv.choose_method(np.nan_to_num(x), k, mode="same") in _methods.SPREADING
    got = np.asarray(getattr(jaxconv, fn)(x, k, mode="same"))
    want = getattr(signal, fn)(x, k, mode="same")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    # a NaN fill value read by the boundary is seen too
    got = np.asarray(jaxconv.convolve2d(np.nan_to_num(x), k, mode="same", fillvalue=np.nan))
    want = signal.convolve2d(np.nan_to_num(x), k, mode="same", fillvalue=np.nan)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
