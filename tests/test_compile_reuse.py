"""Compiled programs are reused: a new fit of the same shapes compiles nothing (counts, not times).

The first call of each entry point compiles (and warms JAX's caches); the second, with new data,
a new covariance (hence a new kernel radius), new `steps` or `tol`, must not run a single XLA
compilation. Correctness references are the true covariances the targets were made with.
"""

import subprocess
import sys

import jax
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal
import scipy.stats
from compile_count import compile_count

import jaxconv
from jaxconv import enable_compilation_cache
from jaxconv._compile_cache import cache_folder
from jaxconv._fit import step as _fit_step
from jaxconv._kernels.buckets import bucket

X = np.asarray(jaxconv.default_image())[:64, :64]
COVS = [
    np.array([[1.0, 0.5], [0.5, 1.0]]),
    np.array([[3.0, -1.0], [-1.0, 2.0]]),  # a wider blur: a larger kernel radius
    np.array([[0.7, 0.1], [0.1, 1.6]]),
]


def scipy_blur(x, cov, radius=14):
    grid = np.stack(np.mgrid[-radius : radius + 1, -radius : radius + 1], -1)
    k = scipy.stats.multivariate_normal([0.0, 0.0], cov).pdf(grid)
    return scipy.signal.convolve2d(x, k / k.sum(), mode="same", boundary="symm")


def rel_err(a, b):
    return np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)


def test_compile_count_sees_a_compilation():
    with compile_count() as n:
        jax.jit(lambda v: v * 3.0 + 1.0)(np.arange(7.0))
    assert n.value >= 1
    with compile_count() as n:
        pass
    assert n.value == 0


def test_fit_gaussian_compiles_once_for_every_covariance_radius_steps_and_tol():
    first = jaxconv.fit_gaussian(X, scipy_blur(X, COVS[0]), progress=False)
    assert rel_err(first.covariance, COVS[0]) <= 1e-6
    jaxconv.fit_gaussian(X, scipy_blur(X, COVS[2]), init=np.eye(2), progress=False)  # a start
    runs = [
        dict(cov=COVS[1], options={}),
        dict(cov=COVS[2], options=dict(steps=40, tol=1e-12)),
        dict(cov=COVS[1], options=dict(init=np.eye(2) * 1.5)),
    ]
    for run in runs:
        with compile_count() as n:
            res = jaxconv.fit_gaussian(X, scipy_blur(X, run["cov"]), progress=False,
                                       **run["options"])  # fmt: skip
        assert n.value == 0, n.events
        assert rel_err(res.covariance, run["cov"]) <= 1e-6
    assert res.radius != first.radius  # a new radius, and still no compilation


def test_fit_gaussian_compiles_nothing_when_the_radius_grows_between_rounds():
    cov = np.array([[6.0, -1.5], [-1.5, 3.0]])
    jaxconv.fit_gaussian(X, scipy_blur(X, COVS[0]), progress=False)
    with compile_count() as n:
        res = jaxconv.fit_gaussian(X, scipy_blur(X, cov, 18), init=0.3 * np.eye(2),
                                   progress=False)  # fmt: skip
    assert n.value == 0, n.events
    assert res.rounds >= 2 and res.truncation <= 1e-8
    assert rel_err(res.covariance, cov) <= 1e-6


def test_fit_gaussian_tiles_on_new_data_of_the_same_layout_compiles_nothing():
    x = np.asarray(jaxconv.default_image())[:128, :128]
    y1 = np.concatenate([scipy_blur(x[:, :64], COVS[0]), scipy_blur(x[:, 64:], COVS[1])], 1)
    y2 = np.concatenate([scipy_blur(x[:, :64], COVS[2]), scipy_blur(x[:, 64:], COVS[0])], 1)
    jaxconv.fit_gaussian_tiles(x, y1, tile=64, progress=False)
    with compile_count() as n:
        res = jaxconv.fit_gaussian_tiles(x, y2, tile=64, progress=False)
    assert n.value == 0, n.events
    for i in range(2):
        assert rel_err(res.covariance[i, 0], COVS[2]) <= 1e-6
        assert rel_err(res.covariance[i, 1], COVS[0]) <= 1e-6


@pytest.mark.parametrize("optimizer", ["lm", "adam"])
def test_fit_and_fit_batch_of_a_gaussian_blur_compile_nothing_on_new_data(optimizer):
    model = jaxconv.GaussianBlur()
    steps = None if optimizer == "lm" else 60
    jaxconv.fit(model, X, scipy_blur(X, COVS[0]), optimizer=optimizer, steps=steps,
                progress=False)  # fmt: skip
    with compile_count() as n:
        res = jaxconv.fit(model, X, scipy_blur(X, COVS[1]), optimizer=optimizer, steps=steps,
                          progress=False)  # fmt: skip
    assert n.value == 0, n.events
    assert rel_err(res.params.covariance, COVS[1]) <= (1e-6 if optimizer == "lm" else 1e-2)

    xs = np.stack([X, X[::-1]])
    batch = [np.stack([scipy_blur(v, c) for v, c in zip(xs, pair, strict=True)])
             for pair in (COVS[:2], COVS[1:])]  # fmt: skip
    jaxconv.fit_batch(model, xs, batch[0], optimizer="lm", progress=False)
    with compile_count() as n:
        res = jaxconv.fit_batch(model, xs, batch[1], optimizer="lm", progress=False)
    assert n.value == 0, n.events
    for b in range(2):
        assert rel_err(res.params.covariance[b], COVS[1 + b]) <= 1e-6


def test_a_new_step_cap_or_tolerance_compiles_nothing_for_adam_either():
    model = jaxconv.FreeKernel((3, 3))
    jaxconv.fit(model, X, ndi.sobel(X, 0), steps=30, progress=False)
    for steps, tol in ((45, 1e-10), (60, 1e-6)):
        with compile_count() as n:
            res = jaxconv.fit(model, X, ndi.sobel(X, 1), steps=steps, tol=tol, progress=False)
        assert n.value == 0, n.events
        assert res.history.shape[0] <= steps + 1


def test_fit_of_a_free_kernel_compiles_nothing_on_new_data():
    model = jaxconv.FreeKernel((3, 3))
    jaxconv.fit(model, X, ndi.sobel(X, 0), optimizer="lm", progress=False)
    with compile_count() as n:
        res = jaxconv.fit(model, X, ndi.prewitt(X, 1), optimizer="lm", tol=1e-12, progress=False)
    assert n.value == 0, n.events
    np.testing.assert_allclose(res.params, [[1, 0, -1]] * 3, atol=1e-8)


def test_a_new_start_compiles_nothing_for_the_edge_filter_and_the_free_kernel():
    # The start is not compiled in: it goes to the programs as parameters.
    sigma, theta = 1.3, 0.6
    y = np.cos(theta) * ndi.gaussian_filter(X, sigma, order=(0, 1)) + np.sin(
        theta
    ) * ndi.gaussian_filter(X, sigma, order=(1, 0))
    jaxconv.fit(jaxconv.GaussianEdge(sigma=1.0, radius=5), X, y, optimizer="lm", progress=False)
    with compile_count() as n:
        res = jaxconv.fit(jaxconv.GaussianEdge(sigma=1.6, theta=0.3, gain=0.5, radius=5), X, y,
                          optimizer="lm", progress=False)  # fmt: skip
    assert n.value == 0, n.events
    np.testing.assert_allclose([res.derived["sigma"], res.derived["theta"]], [sigma, theta],
                               rtol=1e-8)  # fmt: skip

    jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, ndi.sobel(X, 0), optimizer="lm", progress=False)
    with compile_count() as n:
        res = jaxconv.fit(jaxconv.FreeKernel((3, 3), init_kernel=np.eye(3)), X, ndi.sobel(X, 0),
                          optimizer="lm", progress=False)  # fmt: skip
    assert n.value == 0, n.events
    np.testing.assert_allclose(res.params, [[1, 2, 1], [0, 0, 0], [-1, -2, -1]], atol=1e-8)


# --- the persistent compilation cache ------------------------------------------------------------
_SCRIPT = """
import sys, collections
import jax
import numpy as np
from jaxconv import enable_compilation_cache
from jaxconv._fit import step as _fit_step
events = collections.Counter()
jax.monitoring.register_event_listener(lambda name, **kw: events.update([name]))
print(enable_compilation_cache(sys.argv[1]))
jax.config.update("jax_enable_x64", True)
import jaxconv
x = np.asarray(jaxconv.default_image())[:48, :48]
y = np.asarray(jaxconv.gaussian_filter(x, 1.3))
res = jaxconv.fit_gaussian(x, y, progress=False)
print(float(res.covariance[0, 0]))
print(events["/jax/compilation_cache/cache_misses"], events["/jax/compilation_cache/cache_hits"])
"""


def test_a_fresh_process_with_the_cache_warm_compiles_nothing(tmp_path):
    folder = tmp_path / "xla"
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _SCRIPT, str(folder)], capture_output=True,
                             text=True, check=True, timeout=600)  # fmt: skip
        path, var, counts = out.stdout.split("\n")[:3]
        runs.append([int(v) for v in counts.split()])
        assert path == str(folder) and float(var) == pytest.approx(
            1.69, rel=1e-3
        )  # scipy-style taps
    (miss1, hit1), (miss2, hit2) = runs
    assert miss1 >= 3 and hit1 == 0  # the fit's programs compiled and written
    assert miss2 == 0 and hit2 == miss1  # all read back: nothing compiled
    assert any(folder.iterdir())


def test_compilation_cache_folder_and_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXCONV_CACHE_DIR", "off")
    assert cache_folder() is None
    if not jax.config.jax_compilation_cache_dir:  # else a configured folder is kept
        assert enable_compilation_cache() is None  # and JAX's settings are not touched
    monkeypatch.setenv("JAXCONV_CACHE_DIR", str(tmp_path / "c"))
    assert cache_folder() == tmp_path / "c"
    monkeypatch.delenv("JAXCONV_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == tmp_path / "jaxconv" / "xla"
    with pytest.raises(TypeError, match=r"enable_compilation_cache: `path` must be a path or "
                       r"None; got int"):  # fmt: skip
        enable_compilation_cache(3)


def test_an_xla_without_the_cpu_compile_options_uses_its_defaults(monkeypatch):
    monkeypatch.setattr(_fit_step, "_CPU_OPTIONS", {"xla_no_such_option": True})
    monkeypatch.setattr(_fit_step, "_CPU_ONCE", {"xla_no_such_option": True})
    monkeypatch.setattr(_fit_step, "_CPU_BATCH", {"xla_no_such_option": True})
    x = X[:23, :29]  # a shape no other test fits: its programs compile here
    with compile_count() as n:
        res = jaxconv.fit(jaxconv.FreeKernel((3, 3)), x, ndi.sobel(x, 1), optimizer="lm",
                          progress=False)  # fmt: skip
    assert n.value >= 3
    np.testing.assert_allclose(res.params, [[1, 0, -1], [2, 0, -2], [1, 0, -1]], atol=1e-8)


def test_kernel_size_buckets():
    assert [bucket(r, 127, (64,)) for r in (1, 44, 64, 65, 127)] == [64, 64, 64, 127, 127]
    assert bucket(5, 31, (64,)) == 31  # a small image: the largest kernel it holds
    assert jaxconv.GaussianBlur.static_size((256, 1024), (44, 70)) == (64, 511)
    model = jaxconv.GaussianBlur(radius=(3, 3), size=(64, 64))
    assert model.with_radius((40, 5), (256, 256)).size == (64, 64)  # held: same programs
    assert model.with_radius((70, 5), (256, 256)).size == (127, 64)  # grown: the next bucket
