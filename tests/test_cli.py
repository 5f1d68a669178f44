"""The ``jaxconv`` command line: arguments, exit codes, messages, and the demo's outputs."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxconv import _cli
from jaxconv._cli import main


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    # main() turns on JAX's persistent compilation cache, a process-wide setting: not in tests.
    monkeypatch.setenv("JAXCONV_CACHE_DIR", "off")


def test_compilation_cache_folder(monkeypatch, tmp_path):
    assert _cli.cache_folder() is None  # "off" (the fixture)
    monkeypatch.delenv("JAXCONV_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _cli.cache_folder() == tmp_path / "jaxconv" / "xla"
    monkeypatch.setenv("JAXCONV_CACHE_DIR", str(tmp_path / "c"))
    assert _cli.cache_folder() == tmp_path / "c"


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
    from jaxconv._demo import run_demo

    seed_stages = ("convolve_1d", "gaussian_contour", "photo_blur", "edges")
    results = run_demo(tmp_path, quick=True, progress=False, stages=seed_stages)
    assert list(results["stages"]) == list(seed_stages)
    printed = capsys.readouterr().out
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
    from jaxconv._demo import _numpy_convolve2d_same

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
