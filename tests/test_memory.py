"""Plans too large for memory fail at the call with a clear error (jaxconv/_conv/memory.py).

The "available memory" is monkeypatched small rather than exhausted for real; one subprocess test
runs under a real ``RLIMIT_AS`` of 8 GiB, where the FFT library used to abort the process.
"""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal as ss

import jaxconv
from jaxconv._conv import memory as _memory

GIB = 1 << 30


@pytest.fixture
def small_memory(monkeypatch):
    """The device can give 1 GiB."""
    monkeypatch.setattr(_memory, "available_bytes", lambda: GIB)
    monkeypatch.delenv(_memory.ENV, raising=False)


def test_outer_product_too_large_is_a_clear_error_at_the_call(small_memory):
    # 80000 x 80000 float32 outputs: 24 GiB, before any FFT buffer.
    with pytest.raises(
        _memory.OutOfMemoryError,
        match=r"convolve: the result needs ~\d+\.\d GiB \(output \(80000, 80000\) float32 .*"
        r"this process can use ~1\.0 GiB\. .*jaxconv\.sharded\.apply_tiled",
    ):
        x, y = jnp.ones((80000, 1), jnp.float32), jnp.ones((1, 80000), jnp.float32)
        jaxconv.convolve(x, y, "full")


def test_check_runs_at_trace_time_under_jit(small_memory):
    # Inside jit nothing is allocated before the error: the inputs are traced too.
    fn = jax.jit(lambda: jaxconv.convolve(jnp.ones(10), jnp.ones(10**9)))
    with pytest.raises(MemoryError, match=r"convolve: the result needs ~\d+\.\d GiB"):
        fn()


def test_filters_are_checked_too(small_memory):
    spec = jax.ShapeDtypeStruct((30000, 30000), jnp.float32)
    with pytest.raises(MemoryError, match=r"the result needs .* \(output \(30000, 30000\)"):
        jax.eval_shape(lambda x: jaxconv.uniform_filter(x, size=5), spec)


def test_escape_hatch_env_var(small_memory, monkeypatch):
    spec = jax.ShapeDtypeStruct((30000, 30000), jnp.float32)
    monkeypatch.setenv(_memory.ENV, "0")
    out = jax.eval_shape(lambda x: jaxconv.convolve(x, jnp.ones((3, 3)), "same"), spec)
    assert out.shape == (30000, 30000)


def test_normal_calls_unaffected_and_not_checked(monkeypatch):
    # Plans under 64 MiB never ask for the available memory (no system call per call).
    def fail():
        raise AssertionError("available_bytes queried for a small plan")

    monkeypatch.setattr(_memory, "available_bytes", fail)
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(jaxconv.convolve(x, x[:2, :2]), ss.convolve(x, x[:2, :2]))


@pytest.mark.parametrize("method", ["direct", "shift", "separable", "fft", "os"])
def test_plan_bytes_counts_output_and_extended_input(method):
    # A 1000² float32 image, 3x3 kernel, padded to 1002²: at least input + extended + output.
    n, m, out = (1002, 1002), (3, 3), (1000, 1000)
    need, what = _memory.plan_bytes(
        method, x_size=10**6, k_size=9, batch_x=1, batch_k=1, out_shape=out, n=n, m=m, itemsize=4
    )
    floor = 4 * (10**6 + 1002**2 + 10**6)
    assert floor <= need <= 12 * floor
    assert (what == "FFT buffers") == (method in ("fft", "os"))


def test_fft_estimate_exceeds_direct():
    kw = dict(x_size=10**6, k_size=10**4, batch_x=1, batch_k=1, out_shape=(1099, 1099))
    kw.update(n=(1198, 1198), m=(100, 100), itemsize=8)
    assert _memory.plan_bytes("fft", **kw)[0] > _memory.plan_bytes("direct", **kw)[0]


def test_cpu_available_reads_rlimit(monkeypatch):
    import resource

    # The limit counts from the process's current size (virtual, for RLIMIT_AS), which after a
    # long test session can exceed any fixed figure: set it 1 GiB above what is in use.
    used = _memory._proc_kib("/proc/self/status", "VmSize") or 0
    soft = used + GIB
    monkeypatch.setattr(resource, "getrlimit", lambda res: (soft, resource.RLIM_INFINITY))
    assert 0 < _memory._cpu_available() <= GIB


_RLIMIT_SCRIPT = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
import jax, jax.numpy as jnp
import jaxconv
# Used to abort (DUCC FFT r2c failed: std::bad_alloc): now the operands are swapped (10 taps over
# 10^8 samples) and it runs, or it fails with the clear error; never a signal.
try:
    out = jaxconv.convolve(jnp.ones(10), jnp.ones(10**8))
    print("ok", out.shape, float(out[5]), float(out[10**6]))
except MemoryError as err:
    print("refused", err)
try:
    jax.jit(lambda: jaxconv.convolve(jnp.ones(10), jnp.ones(3 * 10**9)))()
except MemoryError as err:
    print("refused", err)
"""


def test_rlimit_as_gives_clear_error_not_abort():
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_RLIMIT_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] in ("ok (100000009,) 6.0 10.0",) or lines[0].startswith("refused convolve:")
    assert lines[1].startswith("refused convolve: the result needs ~")
    assert "this process can use" in lines[1]


def test_accelerator_limit_is_bytes_limit(monkeypatch):
    class Device:
        def memory_stats(self):
            return {"bytes_limit": 80 * GIB, "bytes_in_use": GIB}

    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(jax, "local_devices", lambda: [Device()])
    assert _memory.available_bytes() == 80 * GIB
    monkeypatch.setattr(jax, "local_devices", lambda: [type("NoStats", (), {})()])
    assert _memory.available_bytes() is None  # unknown: nothing is refused


def test_out_of_memory_error_is_public_and_a_memory_error():
    import jaxconv

    assert jaxconv.OutOfMemoryError is _memory.OutOfMemoryError
    assert issubclass(jaxconv.OutOfMemoryError, MemoryError)
