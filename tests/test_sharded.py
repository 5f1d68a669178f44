"""jaxconv.sharded on one device; its multi-device cases run in a subprocess with 8 CPU devices.

The rest of the suite keeps one device, so ``tests/sharded_cases.py`` (sharded == scipy over 1-D
and 2-D splits, modes, boundaries and kernel sizes; gradients; the halo-too-wide error) runs in a
child process with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

import inspect
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import jaxconv
import jaxconv.sharded as sh

ROOT = Path(__file__).resolve().parent.parent
ONE = Mesh(np.asarray(jax.devices()[:1]), ("d",))


def _run_cases(marker: str) -> str:
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "pytest", "tests/sharded_cases.py", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(
        [*cmd, "-m", marker], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    assert not re.search(r"\d+ (failed|errors?|skipped)", summary), summary
    return summary


def test_multi_device_cases():
    _run_cases("not slow")


@pytest.mark.slow
def test_multi_device_cases_full_grid():
    _run_cases("slow or not slow")


@pytest.mark.slow
def test_multihost_example_with_two_processes(tmp_path):
    # Two processes of 4 CPU devices each, joined by jax.distributed on this machine.
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "experiments/multihost_example.py", "--quick", "--out", str(tmp_path)]
    cmd += ["--coordinator", f"localhost:{port}", "--num-processes", "2", "--local-devices", "4"]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [*cmd, "--process-id", str(i)],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["processes"] == 2 and results["devices"] == 8
    assert max(results["rel_error"].values()) <= 1e-12


def test_twins_take_the_single_device_arguments_plus_mesh_and_spec():
    names = [n for n in sh.__all__ if n != "apply_tiled"]
    assert len(names) >= 15
    for name in names:
        single = inspect.signature(getattr(jaxconv, name)).parameters
        twin = inspect.signature(getattr(sh, name)).parameters
        var = [p for p in single if single[p].kind is inspect.Parameter.VAR_KEYWORD]
        named = [p for p in single if p not in var]
        assert list(twin) == [*named, "mesh", "spec", *var], name  # **options stay last
        for p in ("mesh", "spec"):
            assert twin[p].kind is inspect.Parameter.KEYWORD_ONLY and twin[p].default is None
        assert getattr(sh, name).__doc__.startswith(f"Sharded :func:`jaxconv.{name}`")


def test_one_device_matches_scipy():
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=(12, 10)), rng.normal(size=(3, 4))
    out = sh.gaussian_filter(x, 1.0, mode="wrap")
    np.testing.assert_allclose(out, ndi.gaussian_filter(x, 1.0, mode="wrap"), rtol=0, atol=1e-12)
    out = sh.convolve2d(x, k, "full", "symm", mesh=ONE, spec=P("d", None))
    np.testing.assert_allclose(out, ss.convolve2d(x, k, "full", "symm"), rtol=0, atol=1e-12)
    stack = rng.normal(size=(3, 8, 8))  # batch axis: sharded over the (one) device
    out = sh.sobel(stack, -1, axes=(1, 2))
    expected = np.stack([ndi.sobel(image, -1) for image in stack])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_errors_name_the_bad_layout():
    x = np.zeros((8, 8))
    with pytest.raises(TypeError, match=r"sharded.sobel: `spec` must be a .*PartitionSpec"):
        sh.sobel(x, spec="d")
    with pytest.raises(ValueError, match=r"`spec` has 3 entries for an input with 2 dim"):
        sh.sobel(x, spec=P("d", None, None))
    with pytest.raises(TypeError, match=r"`spec` entries must be None, a mesh axis name"):
        sh.sobel(x, spec=(0,))
    with pytest.raises(TypeError, match=r"`mesh` must be a jax.sharding.Mesh; got list"):
        sh.sobel(x, mesh=[0])
    with pytest.raises(ValueError, match=r"`spec` names mesh axis 'x', which `mesh` lacks"):
        sh.sobel(x, mesh=ONE, spec=P("x"))
    with pytest.raises(ValueError, match=r"`spec` uses a mesh axis twice"):
        sh.sobel(x, mesh=ONE, spec=P("d", "d"))
    with pytest.raises(ValueError, match=r"^sobel: `axis`"):  # the twin's own checks
        sh.sobel(x, 5)


@pytest.mark.parametrize("output", [np.float32, np.float64])
def test_output_dtype_like_ndimage(output):
    x = np.random.default_rng(3).random((40, 48))
    got = sh.gaussian_filter(x, 1.5, output=output)
    assert got.dtype == np.dtype(output)
    tol = 1e-6 if output is np.float32 else 1e-14
    np.testing.assert_allclose(got, ndi.gaussian_filter(x, 1.5, output=output), atol=tol)


def test_integer_output_is_refused_with_a_reason():
    with pytest.raises(NotImplementedError, match=r"`output` must be a float or complex dtype"):
        sh.gaussian_filter(np.ones((16, 16)), 1.0, output=np.int32)


def test_complex_gradient_magnitude_like_ndimage():
    rng = np.random.default_rng(4)
    x = rng.random((32, 40)) + 1j * rng.random((32, 40))
    got = sh.gaussian_gradient_magnitude(x, 1.0)
    assert np.iscomplexobj(got)
    np.testing.assert_allclose(got, ndi.gaussian_gradient_magnitude(x, 1.0), atol=1e-13)


def test_only_planned_functions_have_twins():
    with pytest.raises(TypeError, match=r"convolve_separable is not a planned jaxconv function"):
        sh._twin(jaxconv.convolve_separable)  # two engine calls: no single plan


def test_a_degenerate_input_gives_the_result_without_a_plan():
    # An empty input never reaches a correlation: its (empty) result of the mode's shape comes back.
    out = sh.convolve(np.zeros((0, 3)), np.ones((2, 2)))
    assert out.shape == (0, 4) and out.dtype == np.float64
    out = sh.gaussian_filter(np.zeros((0, 5)), 1.0)
    assert out.shape == (0, 5)
