"""The ``jaxconv`` command line: arguments, exit codes, messages, and the demo's outputs."""

import argparse
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxconv
from jaxconv import _compile_cache
from jaxconv import io as _io
from jaxconv._cli import fit as _cli_fit
from jaxconv._cli import main as _cli
from jaxconv._cli.main import main


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    # main() turns on JAX's persistent compilation cache, a process-wide setting: not in tests.
    monkeypatch.setenv("JAXCONV_CACHE_DIR", "off")


def test_compilation_cache_folder(monkeypatch, tmp_path):
    assert _compile_cache.cache_folder() is None  # "off" (the fixture)
    monkeypatch.delenv("JAXCONV_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _compile_cache.cache_folder() == tmp_path / "jaxconv" / "xla"
    monkeypatch.setenv("JAXCONV_CACHE_DIR", str(tmp_path / "c"))
    assert _compile_cache.cache_folder() == tmp_path / "c"


def _exit_code(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr()


def test_version(capsys):
    code, out = _exit_code(["--version"], capsys)
    assert code == 0
    assert out.out.startswith("jaxconv ")


def test_help_lists_commands(capsys):
    code, out = _exit_code(["--help"], capsys)
    assert code == 0
    for command in ("demo", "fit", "bench"):
        assert command in out.out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["nonsense"], "invalid choice: 'nonsense'"),
        (["fit"], "one of the arguments --target --blur --edge is required"),
        (["fit", "--blur", "1,0,0,1", "--edge", "sobel"], "not allowed with argument"),
        (["fit", "--edge", "sobel", "--optimizer", "sgd"], "invalid choice: 'sgd'"),
        (["demo", "--device", "tpu"], "invalid choice: 'tpu'"),
        (["demo", "--seed", "x"], "invalid int value: 'x'"),
    ],
)
def test_usage_errors_exit_2(argv, message, capsys):
    code, out = _exit_code(argv, capsys)
    assert code == 2
    assert message in out.err


def test_options_before_or_after_the_command():
    parser = _cli._parser()
    before = _cli._defaults(parser.parse_args(["--dtype", "float32", "demo"]))
    after = _cli._defaults(parser.parse_args(["demo", "--dtype", "float32", "--no-progress"]))
    default = _cli._defaults(parser.parse_args(["demo"]))
    assert before.dtype == after.dtype == "float32"
    assert (default.dtype, default.device, default.progress) == ("float64", "auto", True)
    assert after.progress is False
    assert default.out.name == "jaxconv-demo"


@pytest.mark.skipif(bool(jax.devices()[0].platform == "gpu"), reason="a GPU is present")
def test_absent_gpu_is_a_clear_error_with_exit_2(tmp_path, capsys):
    assert main(["demo", "--device", "gpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jaxconv demo: error: --device gpu: no GPU is visible to JAX")
    assert "--device cpu" in err
    assert "\n" not in err


def _failing_benchmark(tmp_path, monkeypatch):
    script = tmp_path / "bench_convolve.py"
    script.write_text("def main(argv):\n    raise RuntimeError('the peer crashed\\nsecond line')\n")
    monkeypatch.setattr(_cli, "_find_benchmark", lambda: script)


def test_runtime_error_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    _failing_benchmark(tmp_path, monkeypatch)
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    assert err == "jaxconv bench: error: the peer crashed\n"


def test_traceback_on_request(tmp_path, monkeypatch):
    _failing_benchmark(tmp_path, monkeypatch)
    monkeypatch.setenv("JAXCONV_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="the peer crashed"):
        main(["bench"])


def test_bench_without_the_benchmark_script(monkeypatch, capsys):
    monkeypatch.setattr(_cli, "_find_benchmark", lambda: None)
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    assert "benchmarks/bench_convolve.py of a source checkout" in err
    assert "pip install -e '.[bench]'" in err


def test_bench_passes_its_arguments(tmp_path, monkeypatch):
    script = tmp_path / "bench_convolve.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys
            def main(argv):
                with open(argv[-1], "w") as f:
                    json.dump(argv, f)
                return {"cases": []}  # the real benchmark returns its results
            """
        )
    )
    monkeypatch.setattr(_cli, "_find_benchmark", lambda: script)
    record = tmp_path / "argv.json"
    assert main(["bench", "--quick", str(record)]) == 0
    assert json.loads(record.read_text()) == ["--quick", str(record)]


def test_bench_names_a_missing_peer(tmp_path, monkeypatch, capsys):
    script = tmp_path / "bench_convolve.py"
    script.write_text("import jaxconv_no_such_peer\n")
    monkeypatch.setattr(_cli, "_find_benchmark", lambda: script)
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    # The command that works from a checkout (a plain `pip install 'jaxconv[bench]'` does not).
    hint = f"install them with: cd {_cli._CHECKOUT} && pip install -e '.[bench]'"
    assert "missing: jaxconv_no_such_peer" in err and hint in err


def test_python_dash_m_runs_the_cli():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "jaxconv", "fit", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--checkpoint" in proc.stdout and "--optimizer" in proc.stdout


@pytest.mark.skipif(shutil.which("jaxconv") is None, reason="console script not installed")
def test_console_script_is_installed():
    proc = subprocess.run(
        ["jaxconv", "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("jaxconv ")


def test_demo_seed_figures(tmp_path, capsys):
    from jaxconv._cli.demo import run_demo

    seed_stages = ("convolve_1d", "gaussian_contour", "photo_blur", "edges")
    results = run_demo(tmp_path, quick=True, progress=True, stages=seed_stages)
    assert list(results["stages"]) == list(seed_stages)
    out = capsys.readouterr()
    printed = out.out
    assert "\r" not in out.err and "\x1b" not in out.err  # stderr is no terminal: no bar
    for name in results["files"]:
        assert (tmp_path / name).stat().st_size > 0 and name in printed
    m = {k: v["metrics"] for k, v in results["stages"].items()}
    assert m["convolve_1d"]["max_abs_diff_vs_np_convolve"] < 1e-12
    assert m["gaussian_contour"]["max_abs_diff_vs_closed_form"] < 1e-12
    assert m["photo_blur"]["kernel_shape"] == [30, 30]
    with pytest.raises(ValueError, match="`stages` must be among"):
        run_demo(tmp_path, stages=["nope"])


@pytest.mark.slow
def test_demo_quick_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert str(out.resolve()) in printed
    for name in results["files"]:
        assert (out / name).stat().st_size > 0
        assert name in printed
    names = set(results["files"])
    assert {"01_convolve_1d.png", "02_gaussian_contour.png", "03_photo_blur.png"} <= names
    assert "04_edges.png" in names
    assert any(n.endswith(".gif") for n in names)
    stages = results["stages"]
    assert stages["convolve_1d"]["metrics"]["max_abs_diff_vs_np_convolve"] < 1e-12
    assert stages["gaussian_contour"]["metrics"]["max_abs_diff_vs_closed_form"] < 1e-12
    assert stages["photo_blur"]["metrics"]["max_abs_diff_vs_numpy"] < 1e-10
    assert results["versions"]["jax"] == jax.__version__
    assert np.isfinite(results["total_seconds"])
    assert {"05_learn_blur.gif", "06_learn_edge.png"} <= names
    blur = stages["learn_blur"]["metrics"]
    assert blur["relative_error"] < 0.05  # Adam from a wrong start, few steps in --quick
    np.testing.assert_allclose(blur["true_covariance"], [[1, 0.5], [0.5, 1]])
    edge = stages["learn_edge"]["metrics"]
    assert edge["max_tap_error"] < 0.5 * edge["start_max_tap_error"]


@pytest.mark.parametrize("shape", [(30, 30), (5, 4), (3, 7), (1, 1)])
def test_demo_numpy_reference_is_scipy_convolve2d_same(shape):
    signal = pytest.importorskip("scipy.signal")
    from jaxconv._cli.demo import _numpy_convolve2d_same

    rng = np.random.default_rng(1)
    x, k = rng.normal(size=(40, 52)), rng.normal(size=shape)
    np.testing.assert_allclose(
        _numpy_convolve2d_same(x, k), signal.convolve2d(x, k, mode="same"), rtol=1e-12, atol=1e-12
    )


def test_fit_recovers_sobel_from_a_target_file(tmp_path, capsys):
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    image = rng.random((24, 32))
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "target.npy", ndimage.sobel(image, axis=1))
    argv = ["fit", "--image", str(tmp_path / "image.npy"), "--target", str(tmp_path / "target.npy"),
            "--model", "free", "--out", str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "kernel" in printed and "±" in printed
    record = json.loads((tmp_path / "out" / "fit.json").read_text())
    # scipy.ndimage.sobel correlates with [-1, 0, 1]: as a convolution kernel, Wikipedia's Gx.
    sobel_x = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    np.testing.assert_allclose(record["estimate"]["kernel"], sobel_x, atol=1e-9)
    assert record["model"] == "free" and record["optimizer"] == "lm"
    assert (tmp_path / "out" / "fit.png").stat().st_size > 0


def test_fit_free_kernel_larger_than_the_edge_filter(tmp_path, capsys):
    image = np.random.default_rng(2).random((24, 24))
    np.save(tmp_path / "image.npy", image)
    argv = ["fit", "--image", str(tmp_path / "image.npy"), "--edge", "prewitt", "--model", "free",
            "--size", "5", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((tmp_path / "fit.json").read_text())
    prewitt = np.zeros((5, 5))
    prewitt[1:4, 1:4] = [[1, 0, -1], [1, 0, -1], [1, 0, -1]]  # scipy.ndimage's, as a convolution
    np.testing.assert_allclose(record["truth"]["kernel"], prewitt)
    np.testing.assert_allclose(record["estimate"]["kernel"], prewitt, atol=1e-8)
    assert "max |error|" in capsys.readouterr().out


@pytest.mark.slow
def test_fit_blur_prints_truth_and_error(tmp_path, capsys):
    image = np.random.default_rng(1).random((40, 40))
    np.save(tmp_path / "image.npy", image)
    argv = ["fit", "--image", str(tmp_path / "image.npy"), "--blur", "1,0.5,0.5,1",
            "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "true covariance" in printed and "max |error|" in printed
    record = json.loads((tmp_path / "fit.json").read_text())
    np.testing.assert_allclose(record["estimate"]["covariance"], [[1, 0.5], [0.5, 1]], atol=1e-8)
    assert record["estimate"]["angle_deg"] == pytest.approx(45.0, abs=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--blur", "1,2"], "expected 1, 3 or 4 comma-separated numbers"),
        (["--blur", "1,2,3,1"], "must be symmetric"),
        (["--blur", "1,2,2,1"], "must be positive definite"),
        (["--edge", "sobel", "--noise", "-1"], "--noise must be >= 0"),
        (["--edge", "sobel", "--steps", "0"], "--steps must be a positive int"),
        (["--blur", "1", "--size", "5"], "--size must be a positive int"),
    ],
)
def test_fit_bad_values_exit_2(argv, message, tmp_path, capsys):
    np.save(tmp_path / "image.npy", np.zeros((8, 8)))
    code = main(["fit", "--image", str(tmp_path / "image.npy"), "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("jaxconv fit: error: ")


def test_fit_target_of_another_shape_exit_2(tmp_path, capsys):
    np.save(tmp_path / "image.npy", np.zeros((8, 8)))
    np.save(tmp_path / "target.npy", np.zeros((8, 9)))
    code = main(["fit", "--image", str(tmp_path / "image.npy"), "--target",
                 str(tmp_path / "target.npy"), "--out", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "--target must have the image's shape (8, 8); got (8, 9)" in capsys.readouterr().err


# --- usage errors are found before JAX is imported ---------------------------------------------


def _run_cli(args, cwd, *, importtime=True):
    """Runs ``python [-X importtime] -m jaxconv ARGS``: (exit status, stderr lines, imports)."""
    flags = ["-X", "importtime"] if importtime else []
    proc = subprocess.run(
        [sys.executable, *flags, "-m", "jaxconv", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "JAXCONV_CACHE_DIR": "off"},
        timeout=300,
        check=False,
    )
    lines = proc.stderr.splitlines()
    imported = {ln.rsplit("|", 1)[1].strip() for ln in lines if ln.startswith("import time:")}
    return proc.returncode, [ln for ln in lines if not ln.startswith("import time:")], imported


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "image.npy", np.zeros((8, 8)))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "afile").write_text("x")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "--image", "/nonexistent.png", "--blur", "1"],
         "jaxconv fit: error: --image does not exist; got '/nonexistent.png'."),
        (["fit", "--image", "bad.png", "--blur", "1"], "--image must be a readable image"),
        (["fit", "--image", "image.npy", "--target", "afile"], "--target must end in one of"),
        (["fit", "--image", "image.npy", "--blur", "1"],
         "--blur is too wide for the image of shape (8, 8)"),
        (["fit", "--blur", "1,x"], "--blur: expected 1, 3 or 4 comma-separated numbers"),
        (["fit", "--edge", "sobel", "--seed", "-1"], "--seed must be an int in [0, 2**32); got -1"),
        (["fit", "--edge", "sobel", "--out", "afile"], "--out must be a folder; got the existing"),
        (["demo", "--out", "afile/figures"], "--out cannot be created: '"),
        (["fit", "--edge", "sobel", "--checkpoint", "."], "--checkpoint must be a file"),
        (["fit", "--edge", "sobel", "--learning-rate", "0.1"],
         "--learning-rate only goes with --optimizer adam"),
        (["fit", "--edge", "sobel", "--optimizer", "adam", "--learning-rate", "inf"],
         "--learning-rate must be a finite number > 0; got inf."),
        (["fit", "--blur", "1", "--axis", "0"], "--axis only goes with --edge"),
        (["fit", "--edge", "sobel", "--noise", "nan"], "--noise must be >= 0 and finite; got nan."),
        (["fit", "--edge", "sobel", "--bogus"], "unrecognized arguments: --bogus"),
        (["bench", "--dtype", "float32"], "--dtype does not apply to bench"),
        (["--no-progress", "bench"], "--no-progress does not apply to bench"),
    ],
)  # fmt: skip
def test_usage_error_names_the_flag_before_jax_is_imported(args, message, files):
    code, err, imported = _run_cli(args, files)
    assert code == 2
    assert any(message in line for line in err), err
    assert "Traceback" not in "\n".join(err)
    assert "jaxconv" in imported and not {"jax", "jaxlib"} & imported


def test_importtime_sees_jax_when_it_is_imported():
    # The control for the test above: its check of `imported` can fail.
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import jax"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "jax" in {ln.rsplit("|", 1)[1].strip() for ln in proc.stderr.splitlines() if "|" in ln}


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unwritable_out_is_a_usage_error(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["demo", "--out", str(locked / "figures")]) == 2
    assert f"--out cannot be written: '{locked}' (Permission denied)" in capsys.readouterr().err


def test_seed_limits():
    _cli.check_seed(0)
    _cli.check_seed(2**32 - 1)
    with pytest.raises(
        _cli.UsageError, match=r"--seed must be an int in \[0, 2\*\*32\); got 4294967296"
    ):
        _cli.check_seed(2**32)


def test_dog_needs_an_image_as_large_as_its_kernel(tmp_path, capsys):
    assert 2 * jaxconv.GaussianEdge().radius + 1 == _cli_fit._DOG_SIZE
    np.save(tmp_path / "image.npy", np.zeros((12, 40)))
    argv = ["fit", "--image", str(tmp_path / "image.npy"), "--edge", "sobel", "--model", "dog"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--model dog needs an image of at least 13×13 pixels (its kernel's size); got " in err


def test_blur_that_fits_is_accepted_up_to_the_largest_variance():
    shape = (17, 40)  # 8 σ along axis 0 must fit in 17 rows: σ <= 1
    assert _cli_fit.blur_radius(np.eye(2), shape, "1") == (8, 8)
    with pytest.raises(_cli.UsageError, match="Use variances up to 1, or a larger --image"):
        _cli_fit.blur_radius(np.diag([1.1, 1.0]), shape, "1.1,0,1")


# --- help ----------------------------------------------------------------------------------------


def _commands():
    parser = _cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.parametrize("command", ["demo", "fit", "bench"])
def test_help_states_every_default(command):
    sub = _commands()[command]
    required = {a for g in sub._mutually_exclusive_groups if g.required for a in g._group_actions}
    for action in sub._actions:
        if action.option_strings and action.dest != "help" and action not in required:
            assert "(default: " in action.help, action.option_strings
    text = " ".join(sub.format_help().split())
    assert "(default: %" not in text  # every %(default)s was filled in
    if command != "bench":
        assert "--dtype {float64,float32} floating point precision" in text
        assert "(default: float64)" in text and "(default: shown when stderr is a terminal" in text


def test_help_lists_inputs_outputs_and_models():
    commands = _commands()
    fit = " ".join(commands["fit"].format_help().split())
    for suffix in (*_io._TEXT_SUFFIXES, *_io._NPY_SUFFIXES, *_io._IMAGE_SUFFIXES):
        assert re.search(re.escape(suffix) + "(?![a-z])", fit), suffix
    assert "Writes into --out: fit.json" in fit and "fit.png" in fit
    assert "(default: jaxconv-fit)" in fit and "(default: lm)" in fit
    assert "dog, an oriented first Derivative Of a Gaussian" in fit
    assert "not a difference of Gaussians" in fit
    assert "converted to gray with the ITU-R BT.601 luma" in fit
    demo = " ".join(commands["demo"].format_help().split())
    assert "Writes into --out: numbered PNG figures" in demo and "results.json" in demo
    assert "(default: jaxconv-demo)" in demo
    bench = " ".join(commands["bench"].format_help().split())
    assert "--dtype" not in bench.split("options:")[1] and "--no-progress" not in bench
    assert "pip install -e '.[bench]'" in bench


# --- learning rate, colour inputs ----------------------------------------------------------------


def test_learning_rate_reaches_the_optimizer(tmp_path, capsys):
    ndimage = pytest.importorskip("scipy.ndimage")
    image = np.random.default_rng(0).random((16, 16))
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "target.npy", ndimage.sobel(image, axis=1))
    argv = ["fit", "--image", str(tmp_path / "image.npy"), "--target", str(tmp_path / "target.npy"),
            "--model", "free", "--optimizer", "adam", "--learning-rate", "0.2", "--steps", "5",
            "--out", str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert record["optimizer"] == "adam(lr=0.2, warmup-cosine)"  # the model's default is 0.05
    assert record["steps"] == 5


@pytest.mark.parametrize(("mode", "note"), [("RGB", "RGB"), ("RGBA", "RGBA"), ("L", None)])
def test_colour_image_turned_gray_says_so(mode, note, tmp_path, capsys):
    image = pytest.importorskip("PIL.Image")
    rgba = np.random.default_rng(0).integers(0, 256, (6, 5, 4), dtype=np.uint8)
    path = tmp_path / "photo.png"
    image.fromarray(rgba[..., : len(mode)].squeeze(), mode=mode).save(path)
    # The note comes while the arguments are checked: this --blur is then too wide (exit 2).
    assert main(["fit", "--image", str(path), "--blur", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("jaxconv fit: error: --blur is too wide")
    if note is None:
        assert len(err) == 1
        return
    expected = (f"jaxconv fit: note: --image '{path}' is {note}: converted {note} to gray with "
                "ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B)")  # fmt: skip
    assert err[0] == expected + (", alpha dropped" if note == "RGBA" else "")
    luma = rgba[..., :3] / 255.0 @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(_cli_fit.read_input("--image", path), luma, rtol=1e-12)


# --- progress bars -------------------------------------------------------------------------------

_EAGER_BARS = """
import sys, tqdm.std
init = tqdm.std.tqdm.__init__
def eager(self, *args, **kwargs):  # draw at once, however fast the fit is
    kwargs["delay"] = 0
    init(self, *args, **kwargs)
tqdm.std.tqdm.__init__ = eager
from jaxconv._cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _read_all(fd, seconds):
    chunks, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_bars_only_on_a_terminal(terminal, tmp_path):
    if terminal:
        pty = pytest.importorskip("pty")
        fcntl, termios = pytest.importorskip("fcntl"), pytest.importorskip("termios")
    image = np.random.default_rng(0).random((16, 16))
    np.save(tmp_path / "image.npy", image)
    argv = ["fit", "--image", "image.npy", "--edge", "sobel", "--optimizer", "adam",
            "--steps", "30", "--out", "out"]  # fmt: skip
    cmd = [sys.executable, "-c", _EAGER_BARS, *argv]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAXCONV_CACHE_DIR": "off"}
    if terminal:
        master, slave = pty.openpty()
        # tqdm sizes the bar to the terminal: a new pty is 0 columns wide, which draws nothing.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        err = _read_all(master, 300)
        os.close(master)
        code = proc.wait(timeout=60)
    else:
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
        code, err = proc.returncode, proc.stderr
    assert code == 0, err
    assert (tmp_path / "out" / "fit.json").is_file()
    if terminal:
        assert "\r" in err and "fit:" in err  # the control: a terminal gets the bar
    else:
        assert "\r" not in err and "\x1b" not in err


# --- bench runs only the checkout's script -------------------------------------------------------


def test_bench_never_runs_a_script_from_the_working_directory(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    (cwd / "benchmarks").mkdir(parents=True)
    marker = tmp_path / "pwned"
    (cwd / "benchmarks" / "bench_convolve.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef main(argv):\n    return 0\n"
    )
    monkeypatch.chdir(cwd)
    checkout = Path(jaxconv.__file__).resolve().parent.parent
    assert _cli._find_benchmark() == checkout / "benchmarks" / "bench_convolve.py"
    # Run the whole command against a stand-in checkout, so the real benchmark does not run.
    fake = tmp_path / "checkout"
    (fake / "benchmarks").mkdir(parents=True)
    (fake / "pyproject.toml").write_text("")
    record = tmp_path / "argv.json"
    (fake / "benchmarks" / "bench_convolve.py").write_text(
        f"import json, pathlib\ndef main(argv):\n"
        f"    pathlib.Path({str(record)!r}).write_text(json.dumps(argv))\n"
    )
    monkeypatch.setattr(_cli, "_CHECKOUT", fake)
    assert main(["bench", "--quick"]) == 0
    assert json.loads(record.read_text()) == ["--quick"]
    assert not marker.exists()


def test_bench_without_a_checkout_says_so(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site-packages"  # an installed wheel: no pyproject.toml next to jaxconv/
    (site / "benchmarks").mkdir(parents=True)
    (site / "benchmarks" / "bench_convolve.py").write_text("raise SystemExit(99)\n")
    monkeypatch.setattr(_cli, "_CHECKOUT", site)
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    assert "is installed without one; clone the repository" in err
