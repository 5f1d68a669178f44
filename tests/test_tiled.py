"""jaxconv.sharded.apply_tiled: out-of-core filtering of memory-mapped .npy files in tiles."""

import errno
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss

import jaxconv
import jaxconv.sharded as sh
from jaxconv import io as _io
from jaxconv._parallel import tiled as _tiled

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(0)
K = RNG.normal(size=(5, 4))

CASES = {  # name: (fn, args, kwargs, reference)
    "gaussian reflect": (
        jaxconv.gaussian_filter,
        (1.5,),
        {},
        lambda x: ndi.gaussian_filter(x, 1.5),
    ),
    "gaussian wrap/mirror": (
        jaxconv.gaussian_filter,
        (2.0,),
        {"mode": ("wrap", "mirror")},
        lambda x: ndi.gaussian_filter(x, 2.0, mode=("wrap", "mirror")),
    ),
    "sobel cval": (
        jaxconv.sobel,
        (0,),
        {"mode": "constant", "cval": 1.5},
        lambda x: ndi.sobel(x, 0, mode="constant", cval=1.5),
    ),
    "gradient magnitude wrap": (
        jaxconv.gaussian_gradient_magnitude,
        (1.0,),
        {"mode": "wrap"},
        lambda x: ndi.gaussian_gradient_magnitude(x, 1.0, mode="wrap"),
    ),
    "convolve2d same symm": (
        jaxconv.convolve2d,
        (K, "same", "symm"),
        {},
        lambda x: ss.convolve2d(x, K, "same", "symm"),
    ),
}


def _count_reads(monkeypatch) -> list:
    calls = []
    read = _tiled._read

    def counting(*args):
        calls.append(args)
        return read(*args)

    monkeypatch.setattr(_tiled, "_read", counting)
    return calls


@pytest.mark.parametrize("name", list(CASES))
def test_tiles_match_the_in_memory_reference(name, tmp_path, monkeypatch):
    fn, args, kwargs, reference = CASES[name]
    x = RNG.normal(size=(60, 44))
    np.save(tmp_path / "x.npy", x)
    reads = _count_reads(monkeypatch)
    out = sh.apply_tiled(
        fn, tmp_path / "x.npy", tmp_path / "y.npy", *args, memory_limit=60_000, progress=False,
        **kwargs,
    )  # fmt: skip
    assert out == tmp_path / "y.npy" and len(reads) >= 4
    y = np.load(out)
    expected = reference(x)
    assert y.shape == expected.shape and y.dtype == np.float64
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_a_volume_in_fortran_order_and_no_progress_bar_in_a_log(tmp_path, capsys):
    x = np.asfortranarray(RNG.normal(size=(20, 18, 16)).astype(np.float32))
    np.save(tmp_path / "v.npy", x)
    sh.apply_tiled(
        jaxconv.uniform_filter, tmp_path / "v.npy", tmp_path / "w.npy", (3, 4, 5),
        mode="nearest", memory_limit=120_000,
    )  # fmt: skip
    # progress=True (the default), but stderr is not a terminal here: no bar, no escape codes.
    assert capsys.readouterr().err == ""
    y = np.load(tmp_path / "w.npy")
    assert y.dtype == np.float32
    expected = ndi.uniform_filter(x.astype(np.float64), (3, 4, 5), mode="nearest")
    np.testing.assert_allclose(y, expected, rtol=0, atol=2e-6)


def test_any_local_function_with_an_explicit_halo(tmp_path):
    x = RNG.normal(size=(40, 12))
    np.save(tmp_path / "x.npy", x)

    def forward_difference(v):  # reaches one row ahead; the last row repeats
        return jnp.concatenate([v[1:], v[-1:]]) - v

    sh.apply_tiled(
        forward_difference, tmp_path / "x.npy", tmp_path / "d.npy", halo=[(0, 1), 0],
        memory_limit=20_000, progress=False,
    )  # fmt: skip
    expected = np.diff(np.pad(x, ((0, 1), (0, 0)), mode="edge"), axis=0)
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), expected, rtol=0, atol=1e-15)


def test_an_interrupted_run_leaves_the_old_output_and_no_temporary_file(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", RNG.normal(size=(64, 64)))
    np.save(tmp_path / "y.npy", np.arange(3.0))  # a previous result
    read = _tiled._read

    def failing(*args):
        if failing.calls == 2:
            raise KeyboardInterrupt
        failing.calls += 1
        return read(*args)

    failing.calls = 0
    monkeypatch.setattr(_tiled, "_read", failing)
    with pytest.raises(KeyboardInterrupt):
        sh.apply_tiled(
            jaxconv.gaussian_filter, tmp_path / "x.npy", tmp_path / "y.npy", 1.0,
            memory_limit=100_000, progress=False,
        )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.arange(3.0))


def _npy_size(shape, dtype) -> int:
    buf = io.BytesIO()
    np.save(buf, np.zeros(shape, dtype))
    return len(buf.getvalue())


def test_a_full_disk_is_an_oserror_naming_the_size_and_leaves_no_temporary_file(
    tmp_path, monkeypatch
):
    np.save(tmp_path / "x.npy", RNG.normal(size=(64, 48)))
    np.save(tmp_path / "y.npy", np.arange(3.0))  # a previous result

    def enospc(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", enospc, raising=False)
    size = _npy_size((64, 48), np.float64)
    with pytest.raises(OSError, match=rf"apply_tiled: `dst` needs {size} bytes .* of disk space"):
        sh.apply_tiled(
            jaxconv.gaussian_filter, tmp_path / "x.npy", tmp_path / "y.npy", 1.0, progress=False
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.arange(3.0))


def test_stale_temporary_files_a_link_and_the_folder_fsync(tmp_path, monkeypatch):
    x = RNG.normal(size=(40, 30)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "out").mkdir()
    stale = [".y.npy.0123456789abcdef0123456789abcdef.tmp", ".y.npy.k2j4h5x_.tmp.npy"]
    for name in stale:  # left by killed writers: the old naming and the current one
        (tmp_path / "out" / name).write_bytes(b"\0" * 4096)
    (tmp_path / "y.npy").symlink_to(tmp_path / "out" / "y.npy")
    synced = []
    monkeypatch.setattr(_io, "_fsync_dir", lambda d: synced.append((d, sorted(os.listdir(d)))))
    out = sh.apply_tiled(
        jaxconv.gaussian_filter, tmp_path / "x.npy", tmp_path / "y.npy", 1.0,
        memory_limit=40_000, progress=False,
    )  # fmt: skip
    assert out == tmp_path / "y.npy" and out.is_symlink()  # written through the link
    assert os.listdir(tmp_path / "out") == ["y.npy"]
    assert synced == [(tmp_path / "out", ["y.npy"])]  # after the rename
    y = np.load(tmp_path / "out" / "y.npy")
    assert y.dtype == np.float32 and os.path.getsize(tmp_path / "out" / "y.npy") == _npy_size(
        x.shape, np.float32
    )
    expected = ndi.gaussian_filter(x.astype(np.float64), 1.0)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5)


def test_a_directory_as_dst_is_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((8, 8)))
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(ValueError, match=r"apply_tiled: `dst` must be a regular file or a new "
                       r"name; got a directory '.*d\.npy'\."):  # fmt: skip
        sh.apply_tiled(jaxconv.sobel, tmp_path / "x.npy", tmp_path / "d.npy", progress=False)


def test_errors(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((16, 16)))
    (tmp_path / "bad.npy").write_text("not an array")
    src, dst = tmp_path / "x.npy", tmp_path / "y.npy"
    with pytest.raises(ValueError, match=r"apply_tiled: `src` must be a readable .npy file"):
        sh.apply_tiled(jaxconv.sobel, tmp_path / "bad.npy", dst)
    with pytest.raises(ValueError, match=r"`fn` must return an array of its input's shape"):
        sh.apply_tiled(jaxconv.convolve2d, src, dst, np.ones((3, 3)), "full")
    with pytest.raises(ValueError, match=r"`memory_limit` \(1000 bytes\) is too small"):
        sh.apply_tiled(jaxconv.gaussian_filter, src, dst, 3.0, memory_limit=1000)
    with pytest.raises(ValueError, match=r"cannot find the reach of `fn`.*pass `halo=`"):
        sh.apply_tiled(jnp.sin, src, dst)
    with pytest.raises(ValueError, match=r"`halo` must be an int >= 0"):
        sh.apply_tiled(jnp.sin, src, dst, halo=-1)
    with pytest.raises(ValueError, match=r"`halo` must have one entry per axis"):
        sh.apply_tiled(jnp.sin, src, dst, halo=(1, 1, 1))
    with pytest.raises(TypeError, match=r"`fn` must be callable"):
        sh.apply_tiled("sobel", src, dst)
    with pytest.raises(TypeError, match=r"`memory_limit` must be an int"):
        sh.apply_tiled(jaxconv.sobel, src, dst, memory_limit=1e9)
    assert not dst.exists()


# The out-of-core check: an image 4x the memory cap, peak resident memory measured in a child
# process (the main one has too much else in memory). glibc's dynamic mmap threshold is fixed so
# that freed buffers leave the resident set instead of being reused unseen.
MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np, scipy.ndimage as ndi
    import jax
    jax.config.update("jax_enable_x64", True)
    import jaxconv, jaxconv.sharded

    def status():
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}

    folder, cap = sys.argv[1], int(sys.argv[2])
    src, dst = os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy")
    shape = (2048, 2048)  # 32 MiB of float64
    x = np.lib.format.open_memmap(src, mode="w+", dtype=np.float64, shape=shape)
    for i in range(0, shape[0], 256):
        x[i : i + 256] = np.random.default_rng(i).random((256, shape[1]))
    del x
    run = lambda: jaxconv.sharded.apply_tiled(
        jaxconv.gaussian_filter, src, dst, 2.0, memory_limit=cap, progress=False)
    run()  # compiles the tile function
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current resident set
    before = status()
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    peak = status()["VmHWM"] - before["VmRSS"]
    expected = ndi.gaussian_filter(np.load(src), 2.0)
    error = float(np.abs(np.load(dst) - expected).max())
    print(json.dumps({"peak": peak, "error": error, "seconds": seconds,
                      "file": os.path.getsize(src)}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_memory_stays_under_the_cap(tmp_path):
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("cannot reset the peak resident set here (/proc/self/clear_refs)")
    cap = 8 << 20
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path), str(cap)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["file"] >= 4 * cap
    assert result["error"] <= 1e-12
    assert 0 < result["peak"] <= cap, f"peak {result['peak'] / 2**20:.1f} MiB"


def test_the_reach_of_a_bucketed_gaussian_is_its_true_radius():
    # The single-device program builds each kernel at its radius' bucket, with zero taps beyond
    # the radius; the tiles read only scipy's radius, int(truncate * σ + 0.5).
    from jaxconv._conv import plan as _plan

    x = np.zeros((40, 30))
    plan = jaxconv.gaussian_filter.plan(x, (1.0, 2.2), mode=("reflect", "wrap"))
    assert [op.kernel.shape for op in plan.terms[0]] == [(17,), (33,)]  # buckets 8 and 16
    reach, wrap = _tiled._reach(_plan.resolved(plan), 2)
    assert reach == [(4, 4), (9, 9)] and wrap == {1}
    plan = jaxconv.gaussian_filter.plan(x, cov=[[2.0, 0.5], [0.5, 1.0]], truncate=2.0)
    assert _tiled._reach(_plan.resolved(plan), 2)[0] == [(3, 3), (2, 2)]
