"""The last differences from scipy (issue 13): each case against scipy.signal / scipy.ndimage."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss
from jax.test_util import check_grads

import jaxconv

METHODS = ("direct", "shift", "separable", "fft", "os", "auto")


def _rand(rng, shape, complex_=False):
    x = rng.normal(size=shape)
    return x + 1j * rng.normal(size=shape) if complex_ else x


def _close(actual, expected, rtol=1e-12):
    actual = np.asarray(actual)
    assert actual.shape == np.shape(expected)
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-300)
    err = float(np.max(np.abs(actual - expected), initial=0.0)) / scale
    assert err <= rtol, f"relative error {err:.3g} > {rtol:.0e}"


# --- 1. mode="same" keeps in1's shape when in2 broadcasts a batch axis ---------------------------
@pytest.mark.parametrize("method", METHODS)
def test_same_mode_keeps_in1_shape_with_broadcast_batch(method):
    rng = np.random.default_rng(0)
    x, k = rng.random((50, 1)), rng.random((6, 3))
    out = jaxconv.convolve(x, k, "same", axes=0, method=method)
    assert out.shape == (50, 1)
    _close(out, ss.fftconvolve(x, k, "same", axes=0))
    _close(out, ss.oaconvolve(x, k, "same", axes=0))
    # correlate(a, b) == convolve(a, reverse(conj(b))) along the convolved axes, as in scipy.
    xc, kc = _rand(rng, (50, 1), True), _rand(rng, (6, 4), True)
    ref = ss.fftconvolve(xc, np.conj(kc[::-1]), "same", axes=0)
    _close(jaxconv.correlate(xc, kc, "same", axes=0, method=method), ref)


@pytest.mark.parametrize("method", ("direct", "fft", "os"))
def test_same_mode_batch_crop_nd(method):
    rng = np.random.default_rng(1)
    # Axis 1 broadcasts (1 against 5), axis 0 is a batch of equal length, axes 2-3 are convolved.
    x, k = rng.random((2, 1, 11, 9)), rng.random((2, 5, 4, 3))
    for mode in ("full", "same", "valid"):
        ref = ss.fftconvolve(x, k, mode, axes=(2, 3))
        _close(jaxconv.convolve(x, k, mode, axes=(2, 3), method=method), ref)
    ref = ss.fftconvolve(x, k[..., ::-1, ::-1], "same", axes=(2, 3))
    _close(jaxconv.correlate(x, k, "same", axes=(3, 2), method=method), ref)
    # convolve2d convolves the last two axes with the same rule.
    _close(
        jaxconv.convolve2d(x, k, "same", method=method), ss.fftconvolve(x, k, "same", axes=(2, 3))
    )


# --- 2. ndimage: origin[i] belongs to axes[i] -----------------------------------------------------
@pytest.mark.parametrize("origin", [(-1, 1), (1, -2), (0, 2), (-1, 0)])
@pytest.mark.parametrize("axes", [(1, 0), (0, 1), (2, 0), (-1, 1)])
def test_ndimage_origin_pairs_with_axes(axes, origin):
    rng = np.random.default_rng(2)
    x, w = rng.random((6, 8, 12)), rng.random((3, 5))
    for name in ("correlate", "convolve"):
        ours = getattr(jaxconv, f"ndimage_{name}")
        try:
            ref = getattr(ndi, name)(x, w, axes=axes, origin=origin, mode="nearest")
        except ValueError:
            with pytest.raises(ValueError, match=f"ndimage_{name}: `origin` must be an int with"):
                ours(x, w, axes=axes, origin=origin, mode="nearest")
            continue
        _close(ours(x, w, axes=axes, origin=origin, mode="nearest"), ref)


def test_ndimage_origin_when_every_axis_is_filtered():
    # scipy ignores the order of `axes` when it lists every axis: origin[i] is axis i's.
    rng = np.random.default_rng(3)
    x, w = rng.random((9, 10)), rng.random((3, 5))
    for name in ("correlate", "convolve"):
        ref = getattr(ndi, name)(x, w, axes=(1, 0), origin=(-1, 2))
        _close(getattr(jaxconv, f"ndimage_{name}")(x, w, axes=(1, 0), origin=(-1, 2)), ref)


def test_uniform_filter_origin_pairs_with_axes():
    rng = np.random.default_rng(4)
    x = rng.random((6, 8, 12))
    kw = dict(size=(3, 4), origin=(1, -2), axes=(2, 0), mode=("wrap", "mirror"))
    _close(jaxconv.uniform_filter(x, **kw), ndi.uniform_filter(x, **kw))


# --- 3. gaussian_gradient_magnitude of complex input ---------------------------------------------
def test_gaussian_gradient_magnitude_complex():
    rng = np.random.default_rng(5)
    x = _rand(rng, (12, 13), True)
    for mode in ("reflect", "constant"):
        ref = ndi.gaussian_gradient_magnitude(x, 1.5, mode=mode)
        out = jaxconv.gaussian_gradient_magnitude(x, 1.5, mode=mode)
        assert out.dtype == np.complex128
        _close(out, ref)


def test_gaussian_gradient_magnitude_complex_gradient_is_finite_at_zero():
    x = jnp.zeros((6, 6), jnp.complex128).at[3, 3].set(1 + 1j)
    grad = jax.grad(lambda v: jnp.sum(jnp.abs(jaxconv.gaussian_gradient_magnitude(v, 1.0))))(x)
    assert np.all(np.isfinite(np.asarray(grad)))


# --- 4. 0-d and empty inputs ---------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_zero_dimensional_inputs(method):
    for mode in ("full", "same", "valid"):
        _close(jaxconv.convolve(2.0, 3.0, mode, method=method), ss.convolve(2.0, 3.0, mode))
        ref = ss.correlate(2.0 + 1j, 3.0 - 2j, mode)
        _close(jaxconv.correlate(2.0 + 1j, 3.0 - 2j, mode, method=method), ref)
        # A 0-d kernel leaves no axis to convolve (jaxconv's trailing-axes rule): a scaling.
        x = np.arange(1.0, 4.0)
        _close(jaxconv.convolve(x, 2.0, mode, method=method), 2.0 * x)
        _close(jaxconv.correlate(x, 2j, mode, method=method), -2j * x)
    assert jaxconv.choose_method(2.0, 3.0) == ss.choose_conv_method(2.0, 3.0)


@pytest.mark.parametrize("method", METHODS)
def test_empty_inputs_give_empty_results(method):
    # scipy's fftconvolve/oaconvolve return an empty result for any empty input (of shape (0,));
    # jaxconv keeps the dimensions: the mode's shape with the empty axes of length 0, which is
    # what scipy's direct method returns for mode="same".
    for s1, s2, mode, shape in [
        ((0,), (3,), "full", (0,)),
        ((3,), (0,), "same", (0,)),
        ((0, 3), (2, 2), "same", (0, 3)),
        ((4, 0), (2, 2), "same", (4, 0)),
        ((4, 3), (0, 2), "full", (0, 4)),
        ((0, 3), (0, 2), "valid", (0, 2)),
    ]:
        x, k = np.ones(s1), np.ones(s2)
        assert ss.fftconvolve(x, k, mode).size == 0
        if mode == "same" and 0 in s1:
            assert ss.convolve(x, k, mode, method="direct").shape == shape
        for fn in (jaxconv.convolve, jaxconv.correlate):
            out = fn(x, k, mode, method=method)
            assert out.shape == shape and out.dtype == np.float64
    out = jaxconv.convolve(np.ones((2, 0, 5)), np.ones(3), "full", method=method)
    assert out.shape == (2, 0, 7)  # an empty batch


def test_empty_inputs_errors_like_scipy():
    x, k = np.ones((0, 3)), np.ones((2, 2))
    with pytest.raises(ValueError, match="For 'valid' mode"):
        ss.convolve(x, k, "valid")
    with pytest.raises(ValueError, match="convolve: for mode='valid', one input must be"):
        jaxconv.convolve(x, k, "valid")


# --- 5. a complex fill value needs complex data ---------------------------------------------------
def test_complex_fillvalue_with_real_input_raises():
    x, k = np.ones((4, 4)), np.ones((2, 2))
    with warnings.catch_warnings(), pytest.raises(ValueError, match="could not cast `fillvalue`"):
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)  # scipy warns, then raises
        ss.convolve2d(x, k, boundary="fill", fillvalue=1j)
    for call in (
        lambda: jaxconv.convolve2d(x, k, boundary="fill", fillvalue=1j),
        lambda: jaxconv.correlate2d(x, k, fillvalue=np.complex64(1 + 1j)),
        lambda: jaxconv.convolve(x, k, "same", fillvalue=1j),
        lambda: jaxconv.correlate_padded(x, k, axes=(0, 1), pads=((1, 1), (1, 1)), fillvalue=2j),
        lambda: jaxconv.convolve_separable(x, [np.ones(2)] * 2, fillvalue=1j),
    ):
        with pytest.raises(ValueError, match="`fillvalue` must be real when the inputs are real"):
            call()
    with pytest.raises(ValueError, match="`fillvalue` must be scalar or an array with one"):
        ss.convolve2d(x, k, fillvalue=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"convolve2d: `fillvalue` must be a scalar; got shape"):
        jaxconv.convolve2d(x, k, fillvalue=[1.0, 2.0])
    with pytest.raises(ValueError, match="gaussian_filter: `cval` must be real"):
        jaxconv.gaussian_filter(x, 1.0, mode="constant", cval=1 + 1j)


def test_complex_fillvalue_with_complex_input():
    rng = np.random.default_rng(6)
    x, k = _rand(rng, (6, 7), True), rng.random((3, 2))
    ref = ss.convolve2d(x, k, boundary="fill", fillvalue=1 + 2j)
    _close(jaxconv.convolve2d(x, k, boundary="fill", fillvalue=1 + 2j), ref)
    # A real signal with a complex kernel gives complex output: a complex fill value is fine.
    ref = ss.convolve2d(x.real, k + 1j, boundary="fill", fillvalue=1 + 2j)
    _close(jaxconv.convolve2d(x.real, k + 1j, boundary="fill", fillvalue=1 + 2j), ref)
    ref = ndi.gaussian_filter(x, 1.0, mode="constant", cval=1 + 2j)
    _close(jaxconv.gaussian_filter(x, 1.0, mode="constant", cval=1 + 2j), ref)


# --- 6. jax.numpy_dtype_promotion("strict") ------------------------------------------------------
def _strict_cases(rng):
    xr, xc = rng.random((9, 10)), _rand(rng, (9, 10), True)
    kr, kc = rng.random((3, 4)), _rand(rng, (3, 4), True)
    sep = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
    for (xn, x), (kn, k) in [
        (a, b) for a in (("r", xr), ("c", xc)) for b in (("r", kr), ("c", kc))
    ]:
        fill = 0.5 + 0.25j if "c" in (xn, kn) else 0.5
        # Every method for the mixed cases (where promotions hide), two for the others.
        for method in ("direct", "shift", "fft", "os") if xn != kn else ("shift", "fft"):
            yield (
                f"convolve-{xn}{kn}-{method}",
                lambda x=x, k=k, m=method, f=fill: jaxconv.convolve(
                    x, k, "same", method=m, fillvalue=f
                ),
                lambda x=x, k=k, f=fill: ss.convolve2d(x, k, "same", fillvalue=f),
            )
            yield (
                f"correlate2d-wrap-{xn}{kn}-{method}",
                lambda x=x, k=k, m=method: jaxconv.correlate2d(x, k, "full", "wrap", method=m),
                lambda x=x, k=k: ss.correlate2d(x, k, "full", "wrap"),
            )
        yield (
            f"separable-{xn}{kn}",
            lambda x=x, k=k: jaxconv.convolve(
                x, sep * (k[0, 0] / abs(k[0, 0])), method="separable"
            ),
            lambda x=x, k=k: ss.convolve(x, sep * (k[0, 0] / abs(k[0, 0]))),
        )
    # Mixed precisions and integers: float32 image with a float64 kernel, an int image.
    yield (
        "convolve-f32-f64",
        lambda: jaxconv.convolve(xr.astype(np.float32), kr, "same"),
        lambda: ss.convolve(xr.astype(np.float32).astype(np.float64), kr, "same"),
    )
    xi = (10 * xr).astype(np.int32)
    yield "convolve-int", lambda: jaxconv.convolve(xi, kr), lambda: ss.convolve(xi, kr)
    yield (
        "convolve_separable-c",
        lambda: jaxconv.convolve_separable(xc, [np.ones(3), np.arange(2.0)], "same"),
        lambda: ss.convolve(xc, np.outer(np.ones(3), np.arange(2.0)), "same"),
    )
    kw = dict(mode="constant", cval=0.5)
    for xn, x in (("r", xr), ("c", xc)):
        for name in ("sobel", "prewitt", "laplace", "uniform_filter"):
            yield (
                f"{name}-{xn}",
                lambda x=x, n=name: getattr(jaxconv, n)(x, **kw),
                lambda x=x, n=name: getattr(ndi, n)(x, **kw),
            )
        for name in ("gaussian_filter", "gaussian_laplace", "gaussian_gradient_magnitude"):
            yield (
                f"{name}-{xn}",
                lambda x=x, n=name: getattr(jaxconv, n)(x, 1.2, **kw),
                lambda x=x, n=name: getattr(ndi, n)(x, 1.2, **kw),
            )
        yield (
            f"gaussian_filter1d-{xn}",
            lambda x=x: jaxconv.gaussian_filter1d(x, 1.0, order=1),
            lambda x=x: ndi.gaussian_filter1d(x, 1.0, order=1),
        )
        yield (
            f"ndimage_convolve-{xn}",
            lambda x=x: jaxconv.ndimage_convolve(x, kr, **kw),
            lambda x=x: ndi.convolve(x, kr, **kw),
        )
        yield (
            f"edge_magnitude-{xn}",
            lambda x=x: jaxconv.edge_magnitude(x),
            lambda x=x: np.sqrt(sum(np.abs(ndi.sobel(x, a)) ** 2 for a in (0, 1))),
        )
        yield (
            f"gaussian_filter-cov-{xn}",
            lambda x=x: jaxconv.gaussian_filter(x, cov=[2.0, 1.0]),
            lambda x=x: ndi.gaussian_filter(x, (2.0**0.5, 1.0)),
        )


def test_strict_dtype_promotion():
    rng = np.random.default_rng(7)
    cases = list(_strict_cases(rng))
    assert len(cases) > 50
    for name, ours, ref in cases:
        with jax.numpy_dtype_promotion("strict"):
            out = jax.block_until_ready(ours())
        expected = ref()
        assert out.dtype == jnp.result_type(expected.dtype) or name in ("convolve-f32-f64",), name
        _close(out, expected, 1e-5 if name == "convolve-f32-f64" else 1e-12)


def test_strict_dtype_promotion_gradients():
    # A real image with a complex kernel: both gradients, against finite differences.
    rng = np.random.default_rng(8)
    x, k = rng.random((6, 7)), _rand(rng, (3, 3), True)

    def loss(x, k):
        y = jaxconv.convolve(x, k, "same", boundary="symm", method="direct")
        return jnp.sum(jnp.real(y * jnp.conj(y)))

    with jax.numpy_dtype_promotion("strict"):
        check_grads(loss, (x, k), order=1, modes=["rev"])


# --- 7. output= (a dtype) -------------------------------------------------------------------------
def _output_cases():
    """(name, jaxconv call, scipy call), each taking (x, output)."""
    w = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0]])
    return [
        ("gaussian_filter", lambda x, o: jaxconv.gaussian_filter(x, 1.3, output=o),
         lambda x, o: ndi.gaussian_filter(x, 1.3, output=o)),
        ("gaussian_filter-order", lambda x, o: jaxconv.gaussian_filter(x, 1.0, (1, 2), output=o),
         lambda x, o: ndi.gaussian_filter(x, 1.0, (1, 2), output=o)),
        ("gaussian_filter1d", lambda x, o: jaxconv.gaussian_filter1d(x, 2.0, 0, output=o),
         lambda x, o: ndi.gaussian_filter1d(x, 2.0, 0, output=o)),
        ("gaussian_laplace", lambda x, o: jaxconv.gaussian_laplace(x, 1.1, output=o),
         lambda x, o: ndi.gaussian_laplace(x, 1.1, output=o)),
        ("gaussian_gradient_magnitude",
         lambda x, o: jaxconv.gaussian_gradient_magnitude(x, 1.1, output=o),
         lambda x, o: ndi.gaussian_gradient_magnitude(x, 1.1, output=o)),
        ("sobel", lambda x, o: jaxconv.sobel(x, 0, output=o),
         lambda x, o: ndi.sobel(x, 0, output=o)),
        ("prewitt", lambda x, o: jaxconv.prewitt(x, output=o),
         lambda x, o: ndi.prewitt(x, output=o)),
        ("scharr", lambda x, o: jaxconv.scharr(x, 0, output=o),  # ndimage has no scharr
         lambda x, o: ndi.correlate1d(ndi.correlate1d(x, [-1, 0, 1], 0, o), [3, 10, 3], 1, o)),
        ("laplace", lambda x, o: jaxconv.laplace(x, output=o),
         lambda x, o: ndi.laplace(x, output=o)),
        ("uniform_filter", lambda x, o: jaxconv.uniform_filter(x, (3, 4), output=o),
         lambda x, o: ndi.uniform_filter(x, (3, 4), output=o)),
        ("ndimage_correlate", lambda x, o: jaxconv.ndimage_correlate(x, w, output=o),
         lambda x, o: ndi.correlate(x, w, output=o)),
        ("ndimage_convolve", lambda x, o: jaxconv.ndimage_convolve(x, w, output=o),
         lambda x, o: ndi.convolve(x, w, output=o)),
        ("edge_magnitude", lambda x, o: jaxconv.edge_magnitude(x, output=o),
         lambda x, o: ndi.generic_gradient_magnitude(x, ndi.sobel, output=o)),
    ]  # fmt: skip


@pytest.mark.parametrize("case", _output_cases(), ids=lambda c: c[0])
def test_output_dtype_matches_scipy(case):
    _, ours, ref = case
    x = 20 * np.random.default_rng(9).normal(size=(11, 12))
    # Integer outputs: scipy stores every 1-D pass in `output`, truncating toward zero.
    for dtype in (np.int32, np.float32):
        out, expected = ours(x, dtype), ref(x, dtype)
        assert out.dtype == dtype
        if np.issubdtype(dtype, np.integer):
            np.testing.assert_array_equal(np.asarray(out), expected)
        else:
            _close(out, expected, 1e-6 if dtype == np.float32 else 1e-12)
    # An integer input and a float32 output, and a complex input with a complex output.
    xi = x.astype(np.int64)
    _close(ours(xi, np.float32), ref(xi, np.float32), 1e-6)
    xc = x + 1j * x[::-1]
    if case[0] != "edge_magnitude":  # scipy's generic_gradient_magnitude: sqrt(Σ d²) for complex
        _close(ours(xc, np.complex64), ref(xc, np.complex64), 1e-6)


def test_filters_of_empty_inputs():
    x = np.zeros((0, 5))
    for name, ours, ref in _output_cases():
        for dtype in (None, np.float32):
            out, expected = ours(x, dtype), ref(x, dtype)
            assert out.shape == expected.shape and out.dtype == expected.dtype, name


def test_output_float64_from_float32_computes_in_float64():
    x = np.random.default_rng(10).normal(size=(16, 16)).astype(np.float32)
    out = jaxconv.gaussian_filter(x, 2.0, output=np.float64)
    assert out.dtype == np.float64
    _close(out, ndi.gaussian_filter(x, 2.0, output=np.float64), 1e-12)


@pytest.mark.parametrize(
    "output,error,match",
    [
        (np.zeros((4, 4)), TypeError, r"`output` must be a dtype, such as np.float32; JAX arrays"),
        (jnp.zeros((4, 4)), TypeError, r"cannot be written into an array"),
        ("nonsense", TypeError, r"`output` must be a dtype; got 'nonsense'"),
        (np.str_, TypeError, r"`output` must be a numeric dtype; got <U0"),
    ],
)
def test_output_errors(output, error, match):
    x = np.ones((4, 4))
    for fn in (
        lambda: jaxconv.gaussian_filter(x, 1.0, output=output),
        lambda: jaxconv.sobel(x, output=output),
        lambda: jaxconv.ndimage_correlate(x, np.ones((2, 2)), output=output),
    ):
        with pytest.raises(error, match=match):
            fn()


def test_output_real_dtype_for_complex_input_raises():
    x = np.ones((4, 4)) * (1 + 1j)
    with pytest.raises(RuntimeError, match="output must have complex dtype"):
        ndi.uniform_filter(x, output="float64")
    with pytest.raises(ValueError, match="uniform_filter: `output` must be a complex dtype"):
        jaxconv.uniform_filter(x, output=np.float64)
