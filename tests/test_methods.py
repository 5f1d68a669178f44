"""The valid-correlation primitive and its cost model, against scipy.signal and known truths.

The public functions are tested in test_convolve.py; this file covers what they do not reach:
correlating over axes in place (not moved last), the overlap-save path for kernels longer than
the output (the kernel-gradient shapes), the looped ``shift`` for kernels with many taps, the
primitive's transpose and batching rules, and the cost model's invariants.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal as ss
from jax.test_util import check_grads

import jaxconv
from jaxconv._conv import cost as _cost
from jaxconv._conv import methods as _methods

METHODS = ("direct", "shift", "fft", "os")
HIGHEST = jax.lax.Precision.HIGHEST


def _rand(rng, shape, complex_=False):
    out = rng.normal(size=shape)
    return out + 1j * rng.normal(size=shape) if complex_ else out


def _reference(x, w, axes):
    """scipy.signal.correlate 'valid' over `axes`, looping over the (broadcast) other axes."""
    batch_axes = [i for i in range(x.ndim) if i not in axes]
    shape = np.broadcast_shapes(
        tuple(x.shape[i] for i in batch_axes), tuple(w.shape[i] for i in batch_axes)
    )
    out = None
    for index in np.ndindex(*shape):
        xi, wi = [slice(None)] * x.ndim, [slice(None)] * w.ndim
        for i, j in zip(batch_axes, index, strict=True):
            xi[i] = j if x.shape[i] > 1 else 0
            wi[i] = j if w.shape[i] > 1 else 0
        r = ss.correlate(x[tuple(xi)], np.conj(w[tuple(wi)]), "valid", method="direct")
        if out is None:
            out_shape = list(shape)
            for pos, a in enumerate(axes):
                out_shape.insert(a, r.shape[pos])
            out = np.zeros(out_shape, r.dtype)
        oi = [slice(None)] * out.ndim
        for i, j in zip(batch_axes, index, strict=True):
            oi[i] = j
        out[tuple(oi)] = r
    return out


CASES = [
    ((9, 5), (3, 1), (0,)),  # a 1-D kernel along the first axis, rows as batch
    ((4, 9, 7), (1, 3, 2), (1, 2)),
    ((9, 4, 7), (3, 4, 2), (0, 2)),  # a batch axis between the correlated ones
    ((18, 17), (17, 16), (0, 1)),  # kernel longer than the output: os cuts the kernel
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_axes_in_place_match_scipy(case, method):
    xs, ws, axes = case
    rng = np.random.default_rng(0)
    for complex_ in (False, True):
        x, w = _rand(rng, xs, complex_), _rand(rng, ws, complex_)
        out = _methods.valid_correlate(x, w, len(axes), method, HIGHEST, axes=axes)
        ref = _reference(x, w, axes)
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-11 * np.abs(ref).max())


def test_shift_loops_over_rows_for_many_taps():
    rng = np.random.default_rng(1)
    x, w = _rand(rng, (2, 30, 31)), _rand(rng, (1, 17, 16))  # 272 taps > the unroll limit
    assert 17 * 16 > _methods._UNROLL_TAPS
    out = _methods.valid_correlate(x, w, 2, "shift", HIGHEST)
    ref = np.stack([ss.correlate(a, w[0], "valid") for a in x])
    np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-11 * np.abs(ref).max())


@pytest.mark.parametrize("method", METHODS)
def test_transpose_and_batching_rules(method):
    rng = np.random.default_rng(2)
    x, w = _rand(rng, (9, 3, 7)), _rand(rng, (3, 1, 2))  # w broadcasts along axis 1

    def f(a, b):
        return _methods.valid_correlate(a, b, 2, method, HIGHEST, axes=(0, 2))

    check_grads(f, (x, w), order=2, modes=["fwd", "rev"])
    xs = _rand(rng, (4, 9, 3, 7))
    np.testing.assert_allclose(
        jax.vmap(f, (0, None))(xs, w), np.stack([f(a, w) for a in xs]), rtol=1e-12, atol=1e-12
    )
    ws = _rand(rng, (4, 3, 1, 2))
    np.testing.assert_allclose(
        jax.vmap(f, (None, 0))(x, ws), np.stack([f(x, b) for b in ws]), rtol=1e-12, atol=1e-12
    )


def test_kernel_gradient_equals_correlation_with_cotangent():
    # d/dw sum(valid_correlate(x, w) * g) = valid_correlate(x, g), whatever method runs it.
    rng = np.random.default_rng(3)
    x, w = _rand(rng, (40, 41)), _rand(rng, (3, 4))
    g = _rand(rng, (38, 38))
    ref = ss.correlate(x, g, "valid")
    for method in METHODS:
        grad = jax.grad(lambda b, m=method: jnp.sum(_methods.valid_correlate(x, b, 2, m, None) * g))
        np.testing.assert_allclose(grad(w), ref, rtol=1e-11, atol=1e-11 * np.abs(ref).max())


def test_next_fast_len_is_the_smallest_7_smooth_length():
    def smooth(k):
        for p in (2, 3, 5, 7):
            while k % p == 0:
                k //= p
        return k == 1

    for n in itertools.chain(range(1, 200), (542, 2077, 2078, 4097)):
        got = _cost.next_fast_len(n)
        assert got >= n and smooth(got)
        assert not any(smooth(k) for k in range(n, got))


def test_cost_model_choices():
    def auto(n, k, batch=1):
        return _cost.auto_method([n + k - 1] * 2, [k, k], batch, "cpu")

    assert auto(512, 3) == "shift"
    assert auto(2048, 7) == "shift"
    assert auto(512, 31) in ("fft", "os")
    assert auto(2048, 31) in ("fft", "os")
    assert _cost.auto_method([600], [600], 1, "cpu") != "shift"  # too many taps to unroll
    assert _cost.auto_method([520, 520], [9, 9], 1, "gpu") == "direct"
    for n, k in ((512, 3), (512, 31), (2048, 7)):
        grad = _cost.kernel_grad_method("shift", [n + k - 1] * 2, [k, k], 1, "cpu")
        assert grad in ("direct", "fft")
    assert _cost.kernel_grad_method("fft", [70, 70], [5, 5], 1, "cpu") == "fft"
    for n, m in ((542, 31), (2078, 31), (100, 3), (40, 40)):
        b = _cost.os_block(n, m, (560,))
        assert 1 <= b <= n - m + 1


# --- kernels longer than their reach are folded (fold_plan) --------------------------------------
_NUMPY_MODE = {"constant": "constant", "wrap": "wrap", "symmetric": "symmetric", "edge": "edge"}
_NUMPY_MODE["mirror"] = "reflect"  # numpy's name for whole-sample symmetry


@pytest.mark.parametrize("boundary", sorted(_NUMPY_MODE))
@pytest.mark.parametrize(
    "n, m, pads", [((5,), (23,), ((11, 11),)), ((1, 4), (9, 30), ((4, 4), (2, 40)))], ids=str
)
def test_folded_kernels_equal_numpy_pad_then_scipy(boundary, n, m, pads):
    from jaxconv import correlate_padded

    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(2, *n)), rng.normal(size=m)
    axes = tuple(range(1, 1 + len(n)))
    specs, _ = _methods.fold_plan(n, m, pads, (boundary,) * len(n))
    assert any(specs)  # these shapes do fold
    out = correlate_padded(x, w, axes=axes, pads=pads, boundary=boundary, fillvalue=0.7)
    kw = {"constant_values": 0.7} if boundary == "constant" else {}
    xpad = np.pad(x, ((0, 0), *pads), mode=_NUMPY_MODE[boundary], **kw)
    ref = np.stack([ss.correlate(xi, w, "valid", method="direct") for xi in xpad])
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_folded_kernel_is_differentiable():
    from jaxconv import correlate_padded

    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(6,)), rng.normal(size=(31,))
    for boundary in ("symmetric", "constant"):

        def f(x, w, boundary=boundary):
            return correlate_padded(x, w, axes=(0,), pads=((15, 15),), boundary=boundary)

        check_grads(f, (x, w), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("mode", ["symmetric", "wrap", "mirror", "edge", "constant"])
def test_fold_plan_bounds_the_kernel_by_the_input(mode):
    # A box of 10^6 taps, centred, over 64 samples: at most out + 2 n + 1 taps remain.
    lo = 10**6 // 2
    specs, pads = _methods.fold_plan((64,), (10**6,), ((lo, 10**6 - 1 - lo),), (mode,))
    taps = sum(pads[0]) + 1  # out = 64 = n: the extension is taps - 1
    assert specs[0] is not None and taps <= 64 + 2 * 64 + 1


def test_uniform_filter_huge_box_equals_scipy_quickly():
    import scipy.ndimage as nd

    import jaxconv

    x = np.random.default_rng(5).normal(size=(6, 5))
    for mode in ("reflect", "constant", "nearest", "mirror", "wrap"):
        out = jaxconv.uniform_filter(x, size=10**6, mode=mode, cval=0.5)
        ref = nd.uniform_filter(x, size=10**6, mode=mode, cval=0.5)
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)


def test_gaussian_filter_huge_sigma_equals_scipy():
    import scipy.ndimage as nd

    import jaxconv

    x = np.random.default_rng(6).normal(size=(5, 4))
    out = jaxconv.gaussian_filter(x, sigma=2e3)
    np.testing.assert_allclose(out, nd.gaussian_filter(x, sigma=2e3), rtol=1e-10, atol=1e-12)


# --- mode='full' swaps the operands when in2 is the larger ---------------------------------------
def test_full_mode_swaps_when_kernel_is_larger():
    import jaxconv
    from jaxconv._conv import convolve as _convolve

    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(20, 9)) + 1j * rng.normal(size=(20, 9))
    full = ((19, 19), (8, 8))  # b's extension of a in mode 'full'
    assert _convolve._full_swap(a.shape, b.shape, (0, 1), full, ("constant",) * 2, 0, "auto")
    np.testing.assert_allclose(jaxconv.convolve(a, b), ss.convolve(a, b), rtol=1e-12)
    np.testing.assert_allclose(jaxconv.correlate(a, b), ss.correlate(a, b), rtol=1e-12)
    ref = ss.correlate2d(a, b)
    np.testing.assert_allclose(jaxconv.correlate2d(a, b), ref, rtol=1e-12, atol=1e-12)
    # A non-zero fill extends `in1` only: no swap, and still scipy's result.
    assert not _convolve._full_swap(a.shape, b.shape, (0, 1), full, ("constant",) * 2, 0.5, "auto")
    out = jaxconv.convolve2d(a, b, fillvalue=0.5 + 0j)
    np.testing.assert_allclose(out, ss.convolve2d(a, b, fillvalue=0.5), rtol=1e-12, atol=1e-12)
    assert not _convolve._full_swap(a.shape, b.shape, (0, 1), full, ("wrap",) * 2, 0, "auto")
    small = ((2, 2), (3, 3))  # a's extension of b
    assert not _convolve._full_swap(b.shape, a.shape, (0, 1), small, ("constant",) * 2, 0, "auto")
    # Sharded full mode keeps `in1` as the sharded operand (the swap is below the planner).
    from jax.sharding import Mesh, PartitionSpec

    import jaxconv.sharded as sh

    mesh = Mesh(np.asarray(jax.devices()[:1]), ("d",))
    out = sh.convolve2d(a, b.real, "full", mesh=mesh, spec=PartitionSpec("d", None))
    np.testing.assert_allclose(out, ss.convolve2d(a, b.real), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("mode", ["same", "full"])
def test_convolve2d_kernel_far_larger_than_image_equals_scipy(boundary, mode):
    import jaxconv

    rng = np.random.default_rng(8)
    x, k = rng.normal(size=(4, 5)), rng.normal(size=(23, 17))
    out = jaxconv.convolve2d(x, k, mode, boundary=boundary, fillvalue=0.25)
    ref = ss.convolve2d(x, k, mode, boundary=boundary, fillvalue=0.25)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_oa_is_a_deprecated_name_of_overlap_save():
    rng = np.random.default_rng(40)
    x, k = rng.normal(size=(40, 33)), rng.normal(size=(9, 7))
    with pytest.warns(DeprecationWarning, match=r"convolve: method='oa' is deprecated.*'os'"):
        old = jaxconv.convolve(x, k, method="oa")
    np.testing.assert_array_equal(old, jaxconv.convolve(x, k, method="os"))
    np.testing.assert_allclose(old, ss.convolve(x, k), rtol=1e-10, atol=1e-10)
    with pytest.warns(DeprecationWarning, match=r"gaussian_filter: method='oa' is deprecated"):
        jaxconv.gaussian_filter(x, 2.0, method="oa")


def test_a_filter_names_itself_for_a_bad_method():
    with pytest.raises(ValueError, match=r"gaussian_filter: `method` must be one of .*got 'bogus'"):
        jaxconv.gaussian_filter(np.ones((8, 8)), 1.0, method="bogus")
    with pytest.raises(ValueError, match=r"sobel: `method` must be one of .*got 'bogus'"):
        jaxconv.sobel(np.ones((8, 8)), method="bogus")
