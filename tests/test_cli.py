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
def test_absent_gpu_is_a_clear_error_with_exit_2(capsys):
    assert main(["demo", "--device", "gpu", "--out", os.devnull]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jaxconv demo: error: --device gpu: no GPU is visible to JAX")
    assert "--device cpu" in err
    assert "\n" not in err


def test_runtime_error_is_one_line_and_exit_1(tmp_path, capsys):
    missing = tmp_path / "missing.txt"
    code = main(["fit", "--image", str(missing), "--blur", "1,0,0,1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("jaxconv fit: error: ") and "does not exist" in err
    assert "Traceback" not in err


def test_traceback_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCONV_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        main(["fit", "--image", str(tmp_path / "missing.txt"), "--blur", "1,0,0,1"])


def test_bench_without_the_benchmark_script(monkeypatch, capsys):
    monkeypatch.setattr(_cli, "_find_benchmark", lambda: None)
    assert main(["bench"]) == 1
    assert "benchmarks/bench_convolve.py" in capsys.readouterr().err


def test_bench_passes_its_arguments(tmp_path, monkeypatch):
    script = tmp_path / "bench_convolve.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys
            def main(argv):
                with open(argv[-1], "w") as f:
                    json.dump(argv, f)
                return 0
            """
        )
    )
    monkeypatch.setattr(_cli, "_find_benchmark", lambda: script)
    record = tmp_path / "argv.json"
    assert main(["bench", "--quick", str(record)]) == 0
    assert json.loads(record.read_text()) == ["--quick", str(record)]


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
    if "max_abs_diff_vs_scipy_convolve2d" in stages["photo_blur"]["metrics"]:
        assert stages["photo_blur"]["metrics"]["max_abs_diff_vs_scipy_convolve2d"] < 1e-10
    assert results["versions"]["jax"] == jax.__version__
    assert np.isfinite(results["total_seconds"])
