"""Checkpoints: a fit killed with SIGKILL resumes to the same answer; bad files raise."""

import json
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import scipy.ndimage as ndi

import jaxconv

X = np.asarray(jaxconv.default_image())[:48, :48]
Y = ndi.gaussian_filter(X, 1.0)
OPTIONS = dict(optimizer="adam", steps=300, checkpoint_every=10, progress=False)

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np, scipy.ndimage as ndi, jaxconv
    x = np.asarray(jaxconv.default_image())[:48, :48]
    y = ndi.gaussian_filter(x, 1.0)
    def slow(step, params, loss):
        time.sleep(0.01)
    jaxconv.fit(jaxconv.FreeKernel((5, 5)), x, y, optimizer="adam", steps=300,
                checkpoint=sys.argv[1], checkpoint_every=10, progress=False, callback=slow)
    print("finished")
    """
)


def _saved_step(path):
    with open(path, "rb") as f, np.load(f) as data:
        return int(json.loads(str(data["header"]))["step"])


def test_a_killed_fit_resumes_to_the_same_parameters(tmp_path):
    path = tmp_path / "fit.ckpt"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    kill_after = random.randrange(10, 200, 10)  # a random checkpointed step
    cmd = [sys.executable, str(script), str(path)]
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists() and _saved_step(path) >= kill_after:
                break
            time.sleep(0.05)
        running = proc.poll() is None
        proc.kill()  # SIGKILL: no chance to clean up
        _, err = proc.communicate(timeout=60)
    assert running, err.decode()
    assert proc.returncode == -signal.SIGKILL
    step = _saved_step(path)
    assert kill_after <= step < 300

    resumed = jaxconv.fit(jaxconv.FreeKernel((5, 5)), X, Y, checkpoint=path, **OPTIONS)
    other = tmp_path / "straight.ckpt"  # same arguments, never interrupted
    straight = jaxconv.fit(jaxconv.FreeKernel((5, 5)), X, Y, checkpoint=other, **OPTIONS)
    assert resumed.steps == straight.steps == 300
    np.testing.assert_array_equal(resumed.params, straight.params)
    np.testing.assert_array_equal(resumed.history, straight.history)
    np.testing.assert_array_equal(resumed.params_history, straight.params_history)
    assert _saved_step(path) == 300
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.ckpt", "run.py", "straight.ckpt"]

    again = jaxconv.fit(jaxconv.FreeKernel((5, 5)), X, Y, checkpoint=path, **OPTIONS)
    np.testing.assert_array_equal(again.params, straight.params)  # a finished fit: read back


SMALL = dict(optimizer="adam", steps=20, checkpoint_every=10, progress=False)


def test_mismatched_checkpoint_raises(tmp_path):
    path = tmp_path / "fit.ckpt"
    jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, Y, checkpoint=path, **SMALL)
    with pytest.raises(ValueError, match=r"fit: `checkpoint` file '.*' was written by a fit "
                       r"with different target; resume with the same arguments"):  # fmt: skip
        jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, 2 * Y, checkpoint=path, **SMALL)
    with pytest.raises(ValueError, match=r"with different options"):
        jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, Y, checkpoint=path, **{**SMALL, "steps": 30})
    with pytest.raises(ValueError, match=r"with different initial params, model"):
        jaxconv.fit(jaxconv.FreeKernel((5, 5)), X, Y, checkpoint=path, **SMALL)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_corrupt_checkpoint_raises(tmp_path, damage):
    path = tmp_path / "fit.ckpt"
    if damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, Y, checkpoint=path, **SMALL)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"fit: `checkpoint` file '.*' is corrupt or not a "
                       r"jaxconv fit checkpoint .*; delete it"):  # fmt: skip
        jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, Y, checkpoint=path, **SMALL)


def test_a_checkpoint_of_another_format_version_is_refused(tmp_path):
    path = tmp_path / "fit.ckpt"
    jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, Y, checkpoint=path, **SMALL)
    with open(path, "rb") as f, np.load(f) as data:
        contents = {k: data[k] for k in data.files}
    header = json.loads(str(contents["header"]))
    contents["header"] = np.array(json.dumps({**header, "version": 1}))
    jaxconv.save_npz_atomic(path, **contents)
    with pytest.raises(ValueError, match=r"fit: `checkpoint` file '.*' has format version 1; "
                       r"this jaxconv reads version 2"):  # fmt: skip
        jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, Y, checkpoint=path, **SMALL)


def test_foreign_npz_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.npz"
    jaxconv.save_npz_atomic(path, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"is corrupt or not a jaxconv fit checkpoint"):
        jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, Y, checkpoint=path, **SMALL)


def test_a_linked_checkpoint_is_written_through_and_stale_temporary_files_removed(tmp_path):
    (tmp_path / "store").mkdir()
    stale = tmp_path / "store" / ".fit.ckpt.k2j4h5x_.tmp.ckpt"  # left by a killed fit
    stale.write_bytes(b"\0" * 1000)
    link = tmp_path / "fit.ckpt"
    link.symlink_to(tmp_path / "store" / "fit.ckpt")
    first = jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, Y, checkpoint=link, **SMALL)
    assert link.is_symlink() and _saved_step(tmp_path / "store" / "fit.ckpt") == 20
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["fit.ckpt"]
    again = jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, Y, checkpoint=link, **SMALL)
    np.testing.assert_array_equal(again.params, first.params)  # read back through the link
