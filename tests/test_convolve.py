"""The convolution engine against scipy.signal, scipy.ndimage and numpy."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

import jaxconv

MODES = ("full", "same", "valid")
METHODS = ("direct", "shift", "fft", "os")
# Tolerance relative to max |reference|, per dtype (low precisions against a float64 reference).
TOL = {
    np.float64: 1e-12,
    np.complex128: 1e-12,
    np.float32: 2e-5,
    np.complex64: 2e-5,
    jnp.bfloat16: 2e-2,
    np.float16: 2e-3,
}


def _rand(rng, shape, dtype=np.float64):
    if np.issubdtype(dtype, np.complexfloating):
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def _close(actual, expected, dtype=np.float64):
    actual = np.asarray(actual, dtype=np.result_type(expected.dtype, np.float64))
    assert actual.shape == expected.shape
    scale = max(np.max(np.abs(expected)), 1e-300)
    err = np.max(np.abs(actual - expected)) / scale
    assert err <= TOL[dtype], f"relative error {err:.3g} > {TOL[dtype]:.0e}"


SHAPES = [
    ((17,), (4,)),
    ((17,), (5,)),
    ((6,), (9,)),  # kernel larger than the signal
    ((1,), (1,)),
    ((11, 13), (3, 3)),
    ((11, 13), (4, 2)),
    ((9, 8), (12, 10)),  # kernel larger on both axes
    ((1, 12), (1, 5)),  # size-1 axis
    ((7, 8, 9), (3, 2, 4)),
]


@pytest.mark.parametrize("method", ("auto", *METHODS))
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_matches_scipy_signal(shapes, method):
    rng = np.random.default_rng(0)
    x, k = _rand(rng, shapes[0]), _rand(rng, shapes[1])
    for mode in MODES:
        pairs = list(zip(*shapes, strict=True))
        if mode == "valid" and not (all(a >= b for a, b in pairs) or all(a <= b for a, b in pairs)):
            continue
        _close(jaxconv.convolve(x, k, mode, method=method), ss.convolve(x, k, mode, "direct"))
        _close(jaxconv.correlate(x, k, mode, method=method), ss.correlate(x, k, mode, "direct"))


@pytest.mark.parametrize("n,m", [(10, 3), (10, 4), (4, 10), (7, 7), (5, 1)])
def test_1d_matches_numpy(n, m):
    rng = np.random.default_rng(1)
    a, v = _rand(rng, (n,), np.complex128), _rand(rng, (m,), np.complex128)
    for mode in MODES:
        if mode == "same" and m > n:
            continue  # numpy returns max(n, m) samples; scipy and jaxconv return n (documented)
        _close(jaxconv.convolve(a, v, mode), np.convolve(a, v, mode))
        _close(jaxconv.correlate(a, v, mode), np.correlate(a, v, mode))


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.complex128])
@pytest.mark.parametrize("method", METHODS)
def test_dtypes(dtype, method):
    rng = np.random.default_rng(2)
    x, k = _rand(rng, (12, 10), dtype), _rand(rng, (3, 4), dtype)
    out = jaxconv.convolve(x, k, "same", method=method)
    assert out.dtype == dtype
    ref = ss.convolve(x.astype(np.complex128), k.astype(np.complex128), "same")
    _close(out, ref if np.iscomplexobj(x) else ref.real, dtype)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, np.float16])
def test_half_precision_accumulates_in_float32(dtype):
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(64, 64))
    k = np.full((9, 9), 1 / 81)
    out = jaxconv.convolve(jnp.asarray(x, dtype), jnp.asarray(k, dtype), "valid")
    assert out.dtype == dtype
    # Summing 81 half-precision products in half precision would lose ~2 digits more than this.
    _close(out, ss.convolve(np.asarray(jnp.asarray(x, dtype), np.float64), k, "valid"), dtype)


@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.uint8])
def test_integers_and_bools_promote_to_float(dtype):
    x = (np.arange(20).reshape(4, 5) % 3).astype(dtype)
    k = np.ones((2, 2), dtype)
    out = jaxconv.convolve(x, k)
    assert jnp.issubdtype(out.dtype, jnp.floating)
    _close(out, ss.convolve(x.astype(float), k.astype(float)))


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize(
    "shapes", [((9, 11), (3, 3)), ((9, 11), (4, 6)), ((5, 4), (7, 9))], ids=str
)
def test_2d_matches_scipy_convolve2d(shapes, boundary):
    rng = np.random.default_rng(4)
    x, k = _rand(rng, shapes[0]), _rand(rng, shapes[1])
    for mode, fill in itertools.product(MODES, (0.0, -1.5)):
        if mode == "valid" and shapes[1][0] > shapes[0][0]:
            continue  # scipy.signal.convolve2d refuses this pair in valid mode
        kwargs = dict(boundary=boundary, fillvalue=fill)
        _close(jaxconv.convolve2d(x, k, mode, **kwargs), ss.convolve2d(x, k, mode, **kwargs))
        _close(jaxconv.correlate2d(x, k, mode, **kwargs), ss.correlate2d(x, k, mode, **kwargs))


def test_2d_complex_valid_swapped_matches_scipy():
    rng = np.random.default_rng(5)
    a, b = _rand(rng, (4, 5), np.complex128), _rand(rng, (6, 7), np.complex128)
    _close(jaxconv.correlate2d(a, b, "valid"), ss.correlate2d(a, b, "valid"))
    _close(jaxconv.convolve2d(a, b, "valid"), ss.convolve2d(a, b, "valid"))


NDIMAGE_MODES = {
    "constant": "constant",
    "wrap": "wrap",
    "reflect": "reflect",
    "mirror": "mirror",
    "nearest": "nearest",
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("boundary", sorted(NDIMAGE_MODES))
@pytest.mark.parametrize(
    "shapes", [((15,), (5,)), ((9, 10), (3, 5)), ((6, 7, 5), (3, 3, 3))], ids=str
)
def test_same_with_boundaries_matches_ndimage(shapes, boundary, method):
    # For odd kernels, "same" with a boundary mode is scipy.ndimage.convolve with that mode.
    rng = np.random.default_rng(6)
    x, k = _rand(rng, shapes[0]), _rand(rng, shapes[1])
    out = jaxconv.convolve(x, k, "same", boundary=boundary, fillvalue=0.7, method=method)
    _close(out, ndi.convolve(x, k, mode=NDIMAGE_MODES[boundary], cval=0.7))


@pytest.mark.parametrize("boundary", ["mirror", "nearest", "reflect", "wrap"])
def test_full_with_boundaries_matches_numpy_pad(boundary):
    # The full output is the valid convolution of the extended signal (numpy.pad's extension).
    numpy_mode = {"mirror": "reflect", "nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}
    rng = np.random.default_rng(7)
    x, k = _rand(rng, (5, 6)), _rand(rng, (4, 9))  # wider than the signal: repeated extension
    ref = ss.convolve(np.pad(x, [(3, 3), (8, 8)], mode=numpy_mode[boundary]), k, "valid")
    _close(jaxconv.convolve(x, k, "full", boundary=boundary), ref)


def test_per_axis_boundary():
    rng = np.random.default_rng(8)
    x, k = _rand(rng, (8, 9)), _rand(rng, (3, 3))
    out = jaxconv.convolve(x, k, "same", boundary=("wrap", "nearest"))
    ref = ss.convolve(
        np.pad(np.pad(x, [(1, 1), (0, 0)], "wrap"), [(0, 0), (1, 1)], "edge"), k, "valid"
    )
    _close(out, ref)


def test_axes_broadcast_like_scipy():
    rng = np.random.default_rng(9)
    x, k = _rand(rng, (4, 20, 3)), _rand(rng, (1, 5, 3))
    for mode in MODES:
        _close(jaxconv.convolve(x, k, mode, axes=1), ss.fftconvolve(x, k, mode, axes=1))
        ref = ss.fftconvolve(x, k[:, ::-1], mode, axes=1)  # correlation along axis 1 only
        _close(jaxconv.correlate(x, k, mode, axes=[1]), ref)
    # A kernel with one dimension per convolved axis.
    k1 = _rand(rng, (5,))
    _close(
        jaxconv.convolve(x, k1, "same", axes=1),
        ss.fftconvolve(x, k1[None, :, None], "same", axes=1),
    )


@pytest.mark.parametrize("method", METHODS)
def test_batch_and_per_batch_kernels(method):
    rng = np.random.default_rng(10)
    x = _rand(rng, (3, 12, 13))
    k = _rand(rng, (3, 3))
    ref = np.stack([ss.convolve(xi, k, "same") for xi in x])
    _close(jaxconv.convolve(x, k, "same", method=method), ref)  # leading axis is a batch
    kb = _rand(rng, (3, 4, 3))
    ref = np.stack([ss.convolve(xi, ki, "same") for xi, ki in zip(x, kb, strict=False)])
    _close(jaxconv.convolve(x, kb, "same", axes=(1, 2), method=method), ref)


def test_separable_method_matches_scipy():
    rng = np.random.default_rng(11)
    x = _rand(rng, (40, 50))
    rank1 = np.outer(rng.normal(size=9), rng.normal(size=7))
    rank2 = rank1 + np.outer(rng.normal(size=9), rng.normal(size=7))
    for k in (rank1, rank2):
        for mode in MODES:
            _close(jaxconv.convolve(x, k, mode, method="separable"), ss.convolve(x, k, mode))
    k3 = np.einsum("i,j,k->ijk", *(rng.normal(size=n) for n in (3, 4, 5)))
    x3 = _rand(rng, (8, 9, 10))
    _close(jaxconv.convolve(x3, k3, "same", method="separable"), ss.convolve(x3, k3, "same"))


def test_separable_refuses_traced_or_full_rank_kernels():
    rng = np.random.default_rng(12)
    x = _rand(rng, (20, 20))
    with pytest.raises(NotImplementedError, match="method='separable' needs a concrete"):
        jaxconv.convolve(x, rng.normal(size=(8, 8)), method="separable")
    with pytest.raises(NotImplementedError, match="method='separable' needs a concrete"):
        jax.jit(lambda k: jaxconv.convolve(x, k, method="separable"))(np.ones((5, 5)))


def test_convolve_separable_equals_outer_product_kernel():
    rng = np.random.default_rng(13)
    x = _rand(rng, (15, 16))
    u, v = rng.normal(size=5), rng.normal(size=4)
    for mode in MODES:
        out = jaxconv.convolve_separable(x, [u, v], mode, boundary="symm")
        ref = ss.convolve2d(x, np.outer(u, v), mode, boundary="symm")
        _close(out, ref)


@pytest.mark.parametrize("method", METHODS)
def test_gradients_order_2(method):
    rng = np.random.default_rng(14)
    x, k = _rand(rng, (7, 8)), _rand(rng, (3, 4))
    for boundary in ("fill", "wrap", "symm", "mirror", "nearest"):
        f = lambda a, b: jaxconv.convolve(a, b, "same", method=method, boundary=boundary)  # noqa: E731,B023
        check_grads(f, (x, k), order=2, modes=["fwd", "rev"])
    f = lambda a, b: jaxconv.correlate(a, b, "full", method=method, fillvalue=0.3)  # noqa: E731
    check_grads(f, (x, k), order=2, modes=["fwd", "rev"])


def test_gradient_with_respect_to_fillvalue():
    rng = np.random.default_rng(15)
    x, k = _rand(rng, (6, 6)), _rand(rng, (3, 3))
    check_grads(lambda c: jaxconv.convolve(x, k, fillvalue=c), (0.5,), order=2)


@given(
    shape=st.sampled_from([(9,), (12, 7), (5, 6, 4)]),
    kscale=st.sampled_from([0.3, 0.6, 1.2]),
    mode=st.sampled_from(MODES),
    method=st.sampled_from(METHODS),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_random_shapes(shape, kscale, mode, method, seed):
    rng = np.random.default_rng(seed)
    kshape = tuple(max(1, round(s * kscale)) for s in shape)
    x, k = _rand(rng, shape), _rand(rng, kshape)
    _close(jaxconv.convolve(x, k, mode, method=method), ss.convolve(x, k, mode, "direct"))


def test_linearity_and_correlation_identity():
    rng = np.random.default_rng(17)
    x, y, k = _rand(rng, (10, 9)), _rand(rng, (10, 9)), _rand(rng, (3, 4), np.complex128)
    lhs = jaxconv.convolve(2 * x - 3 * y, k)
    _close(lhs, np.asarray(2 * jaxconv.convolve(x, k) - 3 * jaxconv.convolve(y, k)))
    _close(
        jaxconv.correlate(x, k, "same"),
        np.asarray(jaxconv.convolve(x, np.conj(k[::-1, ::-1]), "same")),
    )


def test_shift_equivariance_with_wrap():
    rng = np.random.default_rng(18)
    x, k = _rand(rng, (12, 12)), _rand(rng, (5, 5))
    shifted = jaxconv.convolve(np.roll(x, (3, -2), (0, 1)), k, "same", boundary="wrap")
    _close(
        shifted,
        np.roll(np.asarray(jaxconv.convolve(x, k, "same", boundary="wrap")), (3, -2), (0, 1)),
    )


def test_choose_method():
    x = np.zeros((512, 512), np.float32)
    assert jaxconv.choose_method(x, np.zeros((3, 3), np.float32), "same") in METHODS
    assert jaxconv.choose_method(x, np.zeros((31, 31)), "same", backend="gpu") == "direct"
    assert jaxconv.choose_method(x, np.zeros((64, 64)), "same", backend="gpu") == "fft"
    rank1 = np.outer(np.arange(1.0, 40), np.arange(1.0, 40))
    assert jaxconv.choose_method(np.zeros((2048, 2048)), rank1, "same") == "separable"


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: jaxconv.convolve([1.0], [1.0], "middle"), ValueError, "`mode` must be one of"),
        (lambda: jaxconv.convolve([1.0], [1.0], method="magic"), ValueError, "`method` must be"),
        (lambda: jaxconv.convolve([1.0], [1.0], boundary="zero"), ValueError, "`boundary` must be"),
        (
            lambda: jaxconv.convolve(np.ones(3), np.ones(3), boundary=("wrap", "wrap")),
            ValueError,
            r"one name or one per convolved axis \(1\)",
        ),
        (
            lambda: jaxconv.convolve(np.ones(3), np.ones((3, 3))),
            ValueError,
            "`in2` must not have more dimensions than `in1`; got in1.ndim=1, in2.ndim=2",
        ),
        (
            lambda: jaxconv.convolve(np.ones((3, 4)), np.ones((2, 5, 3)), axes=(0, 1)),
            ValueError,
            "same number of dimensions",
        ),
        (
            lambda: jaxconv.convolve_separable(np.ones(3), [np.ones(0)]),
            ValueError,
            r"`kernels\[0\]` must not be empty",
        ),
        (
            lambda: jaxconv.correlate_padded(np.ones(0), np.ones(1), axes=(0,), pads=((0, 0),)),
            ValueError,
            "`in1` must not be empty",
        ),
        (lambda: jaxconv.convolve(np.array(["a"]), [1.0]), TypeError, "`in1` must have a numeric"),
        (
            lambda: jaxconv.convolve(np.ones((4, 2)), np.ones((2, 4)), "valid"),
            ValueError,
            "one input must be at least as large",
        ),
        (
            lambda: jaxconv.convolve(np.ones((4, 4)), np.ones(2), axes=(0, 0)),
            ValueError,
            "distinct",
        ),
        (
            lambda: jaxconv.convolve(np.ones((4, 4)), np.ones(2), axes=5),
            ValueError,
            "`axes` must be",
        ),
        (
            lambda: jaxconv.convolve(np.ones((2, 4)), np.ones((3, 2)), axes=1),
            ValueError,
            "axis 0 is not convolved",
        ),
        (
            lambda: jaxconv.convolve2d(np.ones(4), np.ones(2)),
            ValueError,
            "`in1` must be at least 2-D",
        ),
        (
            lambda: jaxconv.convolve([1.0], [1.0], precision="max"),
            ValueError,
            "`precision` must be",
        ),
        (
            lambda: jax.jit(lambda a: jaxconv.convolve(np.ones(4), np.ones(2), axes=a))(0),
            TypeError,
            "`axes` must be a static Python value",
        ),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
