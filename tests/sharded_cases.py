"""Multi-device cases of jaxconv.sharded, run by tests/test_sharded.py in a subprocess.

They need 8 devices: ``XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m pytest
tests/sharded_cases.py`` (the name keeps the main test session, which has one device, from
collecting them). References are scipy.signal / scipy.ndimage, and numpy.pad for the boundary
modes scipy.signal lacks; gradients are checked numerically and against the single-device ones.
"""

import functools
import importlib.util
import itertools
import json
from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

import jaxconv
import jaxconv.sharded as sh

if jax.device_count() < 8:
    pytest.skip("needs 8 devices (see the module docstring)", allow_module_level=True)

DEVICES = np.asarray(jax.devices()[:8])
ROWS = Mesh(DEVICES, ("d",))  # 1-D split: 8 blocks
GRID = Mesh(DEVICES.reshape(4, 2), ("r", "c"))  # 2-D split: 4 x 2 blocks
SPLITS = {"rows": (ROWS, P("d", None)), "grid": (GRID, P("r", "c")), "cols": (ROWS, P(None, "d"))}
SHAPES = {"rows": (64, 16), "grid": (32, 16), "cols": (16, 64)}  # blocks of 8 samples
NP_PAD = {"wrap": "wrap", "symm": "symmetric", "mirror": "reflect", "nearest": "edge"}
TOL = 1e-12  # relative to max |reference|, float64


def _close(actual, expected, tol=TOL):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300)
    assert err <= tol, f"relative error {err:.3g}"


def _ref_convolve(x, k, mode, boundary, fill):
    """scipy.signal.convolve of `x` extended by numpy.pad as jaxconv's `boundary` does."""
    if boundary == "fill" and fill == 0:
        return ss.convolve(x, k, mode)
    m = np.asarray(k.shape)
    lo = {"full": m - 1, "same": m - 1 - (m - 1) // 2, "valid": 0 * m}[mode]
    hi = {"full": m - 1, "same": (m - 1) // 2, "valid": 0 * m}[mode]
    widths = list(zip(lo, hi, strict=True))
    if boundary == "fill":
        xp = np.pad(x, widths, constant_values=fill)
    else:
        xp = np.pad(x, widths, mode=NP_PAD[boundary])
    return ss.convolve(xp, k, "valid")


# --- convolve2d / convolve over 1-D and 2-D splits x modes x boundaries x kernels --------------
BOUNDARIES = ("fill", "wrap", "symm", "mirror", "nearest")
KERNELS = ((3, 3), (4, 5), (8, 8))  # up to the block size (8 x 8 blocks)
CASES = list(itertools.product(("rows", "grid"), ("full", "same", "valid"), BOUNDARIES, KERNELS))


def _quick(split, mode, boundary, kernel):
    # A covering subset runs by default: every boundary with "full", and each mode with a few
    # boundaries, the splits and kernel sizes in turn; the whole grid is marked slow.
    i = BOUNDARIES.index(boundary) + 5 * ("full", "same", "valid").index(mode)
    chosen = (0, 1, 2, 3, 4, 6, 8, 10, 12, 14)
    if i not in chosen:
        return False
    j = chosen.index(i)
    return split == ("rows", "grid")[j % 2] and kernel == KERNELS[j % 3]


@pytest.mark.parametrize(
    "split, mode, boundary, kernel",
    [c if _quick(*c) else pytest.param(*c, marks=pytest.mark.slow) for c in CASES],
    ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else v,
)
def test_convolve2d_matches_scipy(split, mode, boundary, kernel):
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=SHAPES[split]), rng.normal(size=kernel)
    mesh, spec = SPLITS[split]
    out = sh.convolve2d(x, k, mode, boundary, 0.5, mesh=mesh, spec=spec)
    _close(out, _ref_convolve(x, k, mode, boundary, 0.5))


@pytest.mark.parametrize("mode", ("full", "same", "valid"))
def test_correlate_1d_over_8_blocks(mode):
    rng = np.random.default_rng(1)
    x, k = rng.normal(size=64), rng.normal(size=8)
    out = sh.correlate(x, k, mode, boundary="wrap", mesh=ROWS, spec=P("d"))
    _close(out, _ref_convolve(x, k[::-1], mode, "wrap", 0))


def test_correlate2d_valid_with_larger_second_input():
    rng = np.random.default_rng(2)
    x, k = rng.normal(size=(5, 4)), rng.normal(size=(64, 16))
    _close(sh.correlate2d(x, k, "valid", mesh=ROWS), ss.correlate2d(x, k, "valid"))


# --- ndimage filters: multi-pass plans, a halo per pass -------------------------------------------
FILTERS = {  # name: (call with a module of filters, split)
    "gaussian reflect": (lambda f, x: f.gaussian_filter(x, 1.5), "rows"),
    "gaussian order": (lambda f, x: f.gaussian_filter(x, 1.0, order=(1, 2), mode="mirror"), "cols"),
    "sobel cval": (lambda f, x: f.sobel(x, 0, mode="constant", cval=1.5), "grid"),
    "gradient magnitude mixed": (
        lambda f, x: f.gaussian_gradient_magnitude(x, 1.0, mode=("wrap", "constant"), cval=2.0),
        "grid",
    ),
    "uniform even": (lambda f, x: f.uniform_filter(x, (4, 6), mode="wrap", origin=(1, -2)), "grid"),
    "laplace": (lambda f, x: f.laplace(x, mode="constant", cval=-1.0), "rows"),
    "gaussian wrap": (lambda f, x: f.gaussian_filter(x, 1.5, mode="wrap"), "grid"),
    "prewitt nearest": (lambda f, x: f.prewitt(x, 1, mode="nearest"), "rows"),
    "gaussian laplace": (lambda f, x: f.gaussian_laplace(x, 1.2, mode="mirror"), "cols"),
    "sobel wrap": (lambda f, x: f.sobel(x, 1, mode="wrap"), "cols"),
}
SLOW_FILTERS = ("gaussian wrap", "prewitt nearest", "gaussian laplace", "sobel wrap")


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FILTERS else n for n in FILTERS],
)
def test_filters_match_ndimage(name):
    call, split = FILTERS[name]
    x = np.random.default_rng(3).normal(size=SHAPES[split])
    mesh, spec = SPLITS[split]
    _close(call(_Bound(mesh, spec), x), call(ndi, x))


class _Bound:
    """`jaxconv.sharded` with `mesh` and `spec` filled in (so FILTERS serve both libraries)."""

    def __init__(self, mesh, spec):
        self.mesh, self.spec = mesh, spec

    def __getattr__(self, name):
        fn = getattr(sh, name)
        return lambda *a, **kw: fn(*a, mesh=self.mesh, spec=self.spec, **kw)


def test_ndimage_convolve_even_kernel_on_a_volume():
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(16, 8, 6)), rng.normal(size=(4, 3, 2))
    mesh = Mesh(DEVICES.reshape(2, 2, 2), ("a", "b", "c"))
    out = sh.ndimage_convolve(x, w, mode="reflect", mesh=mesh, spec=P("a", "b", "c"))
    _close(out, ndi.convolve(x, w, mode="reflect"))


# --- batch sharding -------------------------------------------------------------------------------
def test_batch_sharding_pads_an_uneven_stack():
    stack = np.random.default_rng(5).normal(size=(6, 12, 10))  # 6 images over 8 devices
    _close(
        sh.gaussian_filter(stack, 1.0, axes=(1, 2), mesh=ROWS),
        ndi.gaussian_filter(stack, 1.0, axes=(1, 2)),
    )
    out = sh.gaussian_filter(stack, 1.0, axes=(1, 2))  # default: 6 of the 8 devices, no padding
    assert out.sharding.mesh.size == 6 and out.sharding.spec[0] == "d"


def test_batch_of_kernels_and_spatial_split_together():
    rng = np.random.default_rng(6)
    x, k = rng.normal(size=(4, 16, 8)), rng.normal(size=(4, 3, 3))
    mesh = Mesh(DEVICES.reshape(4, 2), ("b", "r"))
    out = sh.convolve(x, k, "same", axes=(1, 2), mesh=mesh, spec=P("b", "r"))
    _close(out, np.stack([ss.convolve(a, b, "same") for a, b in zip(x, k, strict=True)]))


def test_default_layout_and_an_already_sharded_input():
    x = np.random.default_rng(7).normal(size=(64, 24))
    out = sh.sobel(x)  # no batch axis: rows split over all 8 devices
    assert out.sharding.mesh.size == 8 and out.sharding.spec[0] == "d"
    _close(out, ndi.sobel(x))
    xs = jax.device_put(x, NamedSharding(GRID, P("r", "c")))
    out = sh.gaussian_filter(xs, 1.0, mode="wrap")  # mesh and spec taken from the input
    assert out.sharding.spec == P("r", "c")
    _close(out, ndi.gaussian_filter(x, 1.0, mode="wrap"))


def test_default_layout_uses_fewer_devices_for_a_wide_halo():
    x = np.random.default_rng(8).normal(size=(64, 8))
    out = sh.uniform_filter(x, 17, mode="mirror")  # halo 8 (+1 for mirror) > 8 rows per block
    assert out.sharding.mesh.size == 4
    _close(out, ndi.uniform_filter(x, 17, mode="mirror"))


def test_under_jit():
    x = np.random.default_rng(9).normal(size=(32, 16))
    f = jax.jit(lambda v: sh.gaussian_filter(v, 1.0, mesh=GRID, spec=P("r", "c")))
    _close(f(x), ndi.gaussian_filter(x, 1.0))


# --- gradients ------------------------------------------------------------------------------------
def test_gradients_equal_the_single_device_ones():
    x = np.random.default_rng(10).normal(size=(64, 16))

    def loss(filt, v, s, **kw):
        return (filt(v, s, mode="constant", cval=0.3, radius=3, **kw) ** 3).sum()

    grad = jax.jit(jax.grad(loss, argnums=(1, 2)), static_argnums=0)
    sharded = grad(functools.partial(sh.gaussian_filter, mesh=ROWS, spec=P("d")), x, 1.3)
    single = grad(jaxconv.gaussian_filter, x, 1.3)
    for g, g0 in zip(sharded, single, strict=True):
        _close(g, np.asarray(g0))


def test_check_grads_through_the_halo_exchange():
    rng = np.random.default_rng(11)
    x, k = rng.normal(size=(16, 8)), rng.normal(size=(3, 3))
    f = lambda v, w: sh.convolve2d(v, w, "full", "symm", mesh=GRID, spec=P("r", "c"))  # noqa: E731
    check_grads(f, (x, k), order=1, modes=("rev",))


# --- errors ---------------------------------------------------------------------------------------
def test_halo_wider_than_a_block_is_an_error():
    x = np.zeros((64, 8))
    with pytest.raises(ValueError, match=r"halo along axis 0 needs 9 samples .* holds 8"):
        sh.convolve2d(x, np.ones((18, 3)), "same", mesh=ROWS, spec=P("d"))
    x = np.random.default_rng(12).normal(size=(8, 32))
    kw = dict(sigma=1.0, radius=4, mesh=ROWS, spec=P(None, "d"))  # blocks of 4 columns
    _close(sh.gaussian_filter(x, mode="reflect", **kw), ndi.gaussian_filter(x, 1.0, radius=4))
    with pytest.raises(ValueError, match=r"halo along axis 1 needs 5 samples .* holds 4"):
        sh.gaussian_filter(x, mode="mirror", **kw)  # mirror skips the edge sample: one more


def test_uneven_split_and_unknown_mesh_axis_are_errors():
    with pytest.raises(ValueError, match=r"axis 0 of the input \(length 20\) must split evenly"):
        sh.sobel(np.zeros((20, 8)), mesh=ROWS, spec=P("d"))
    with pytest.raises(ValueError, match=r"names mesh axis 'x', which `mesh` lacks"):
        sh.sobel(np.zeros((16, 8)), mesh=ROWS, spec=P("x"))


# --- the multi-host example, on one host with 8 devices -------------------------------------------
def test_multihost_example_on_one_host(tmp_path):
    path = Path(__file__).resolve().parent.parent / "experiments" / "multihost_example.py"
    spec = importlib.util.spec_from_file_location("multihost_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--quick", "--out", str(tmp_path)])
    assert results["devices"] == 8 and results["processes"] == 1
    assert max(results["rel_error"].values()) <= 1e-12
    assert json.loads((tmp_path / "results.json").read_text())["mesh"] == {"rows": 8}


# --- batched fits ---------------------------------------------------------------------------------
SOBEL = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])  # ndimage.sobel(x, -1)


@pytest.mark.slow
def test_fit_batch_recovers_sobel_on_every_device():
    x = np.random.default_rng(13).random((8, 16, 16))
    y = np.stack([ndi.sobel(v, -1) for v in x])
    res = sh.fit_batch(jaxconv.FreeKernel((3, 3)), x, y, optimizer="lm", progress=False)
    np.testing.assert_allclose(np.asarray(res.params), np.broadcast_to(SOBEL, (8, 3, 3)), atol=1e-8)


@pytest.mark.slow
def test_fit_batch_keeps_the_pairs_on_their_devices():
    x = np.random.default_rng(14).random((8, 12, 12))
    y = np.stack([ndi.sobel(v, -1) for v in x])
    res = sh.fit_batch(jaxconv.FreeKernel((3, 3)), x, y, optimizer="lm", progress=False, steps=3)
    assert len(res.params.sharding.device_set) == 8
