"""Runs every experiment in experiments/ with --quick, in-process, and checks what it wrote.

The experiments compare jaxconv with scipy, numpy and known truths; here their numbers are held
to tolerances, so an experiment that rots (or a regression it would show) fails a test.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def _load(name):
    path = EXPERIMENTS / f"{name}.py"
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(name, tmp_path, *extra):
    out = tmp_path / name
    results = _load(name).main(["--quick", "--out", str(out), "--seed", "0", *extra])
    written = json.loads((out / "results.json").read_text())
    assert written["experiment"] == name
    assert written["config"]["quick"] is True
    for key in ("config", "metrics", "versions", "device", "timings_s"):
        assert written[key], key
    assert written["versions"]["jax"] and written["device"]["backend"]
    assert written["timings_s"]["total"] > 0
    for filename in written["files"]:
        assert (out / filename).stat().st_size > 0, filename
    assert any(f.endswith(".png") for f in written["files"])
    assert results["metrics"] == written["metrics"]
    return written["metrics"], written["files"], out


def test_every_experiment_is_tested():
    scripts = {p.stem for p in EXPERIMENTS.glob("e[0-9]*_*.py")}
    tested = {n for n in _NAMES}
    assert scripts == tested


def test_e1_convolve_1d(tmp_path):
    m, files, _ = _run("e1_convolve_1d", tmp_path)
    assert m["max_rel_diff_vs_np_convolve"] < 1e-12
    assert m["max_abs_diff_pdf_normal"] < 1e-15
    assert m["max_abs_diff_pdf_uniform"] == 0
    # ∫ f(x - t) g(t) dt for N(0, 1) ⊛ U(-3, 3) peaks at (Φ(3) - Φ(-3)) / 6 = 0.16621;
    # the discrete sum is that over the grid step, times the seed's 1/20.
    assert m["peak_scaled"] == pytest.approx(0.16621 / m["grid_step"] / 20, rel=2e-3)
    assert m["max_abs_err_dx_scaled_vs_integral"] < 2e-3
    assert "convolve_1d.png" in files


def test_e2_photo_blur(tmp_path):
    m, files, _ = _run("e2_photo_blur", tmp_path)
    assert m["kernel_shape"] == [30, 30]
    assert m["max_abs_diff_kernel_vs_scipy_stats"] < 1e-15
    assert m["max_rel_diff_vs_scipy_convolve2d"] < 1e-12
    assert all(d < 1e-11 for d in m["max_abs_diff_by_method"].values())
    assert m["median_s_jaxconv"] > 0
    assert "photo_blur.png" in files


def test_e3_gaussian_contour(tmp_path):
    m, files, _ = _run("e3_gaussian_contour", tmp_path)
    assert m["max_rel_diff_vs_scipy_stats"] < 1e-12
    assert m["peak"] == pytest.approx(1 / (2 * np.pi * np.sqrt(0.75)), rel=1e-12)
    assert 0.98 < m["mass_in_square"] < 1.0
    assert "gaussian_contour.png" in files


def test_e4_edges(tmp_path):
    m, files, _ = _run("e4_edges", tmp_path)
    for op in ("sobel", "prewitt"):
        scale = m[f"{op}_magnitude_max"]
        assert scale > 0.1
        for key in ("axis0", "axis1", "magnitude", "convolve2d_kernel"):
            assert m[f"{op}_max_abs_diff_{key}_vs_ndimage"] < 1e-12 * scale, (op, key)
    assert "edges.png" in files


@pytest.mark.slow
def test_e5_learn_blur(tmp_path):
    m, files, out = _run("e5_learn_blur", tmp_path)
    fits = m["fits"]
    truth = np.array([[1.0, 0.5], [0.5, 1.0]])
    # Noise-free and matched: least squares recovers Σ to round-off, Adam from a wrong start
    # gets close in the few --quick steps.
    assert fits["lm"]["relative_error"] < 1e-8
    np.testing.assert_allclose(fits["lm"]["covariance"], truth, atol=1e-8)
    assert fits["lm"]["angle_deg"] == pytest.approx(45.0, abs=1e-6)
    np.testing.assert_allclose(fits["lm"]["sigmas"], [np.sqrt(1.5), np.sqrt(0.5)], rtol=1e-8)
    assert fits["adam_from_isotropic"]["relative_error"] < 0.05
    # With noise, the error is a few standard errors at most, and the standard errors match
    # the Cramér–Rao bound (the fit is efficient).
    noisy = fits["noisy"]
    assert noisy["error_over_crb"] < 4
    np.testing.assert_allclose(noisy["covariance_stderr"], noisy["crb_covariance"], rtol=0.2)
    assert "learn_blur.gif" in files and "table.md" in files
    assert "| true |" in (out / "table.md").read_text()


@pytest.mark.slow
def test_e6_learn_edges(tmp_path):
    m, files, _ = _run("e6_learn_edges", tmp_path)
    for op in ("sobel", "prewitt"):
        assert m[f"{op}_lm_axis1_max_tap_error"] < 1e-8  # linear least squares: exact
        assert m[f"{op}_adam_max_tap_error"] < 0.5 * m[f"{op}_adam_start_max_tap_error"]
        assert 0.3 < m[f"{op}_noisy_error_over_crb"] < 3
        assert m[f"{op}_noisy_rms_stderr"] == pytest.approx(m[f"{op}_noisy_rms_crb"], rel=0.2)
    assert m["patch_gram_condition_number"] > 100
    assert "learn_sobel.gif" in files and "kernels.png" in files


@pytest.mark.slow
def test_e8_noise_vs_crb(tmp_path):
    m, files, _ = _run("e8_noise_vs_crb", tmp_path)
    assert m["all_converged"]
    # 4 draws per level in --quick: the sample std is within a factor ~2.5 of its expectation.
    assert 0.3 < m["std_over_crb_min"] <= m["std_over_crb_max"] < 3
    for row in m["levels"]:
        assert row["sigma1"]["crb"] == pytest.approx(
            row["noise_std"] / m["levels"][0]["noise_std"] * m["levels"][0]["sigma1"]["crb"]
        )
        for q in ("sigma1", "sigma2", "angle_deg"):
            assert row[q]["mean_stderr"] == pytest.approx(row[q]["crb"], rel=0.3)
    assert "noise_vs_crb.png" in files


def test_e7_changing_filters(tmp_path):
    pytest.importorskip("sklearn")
    m, files, _ = _run("e7_changing_filters", tmp_path)
    assert m["conv_layer_max_abs_diff_vs_scipy"] < 1e-5  # float32 layer vs float64 scipy
    assert m["test_accuracy_before"] < 0.4  # ten classes: chance is 0.1
    assert m["test_accuracy"] > 0.8  # a few epochs on 1347 digits
    assert m["first_layer_relative_change"] > 0.05  # the filters changed
    assert len(m["history"]["train_loss"]) == 6
    assert m["history"]["train_loss"][-1] < m["history"]["train_loss"][0]
    assert "filters_before_after.png" in files


_NAMES = [
    name.removeprefix("test_")
    for name, obj in list(globals().items())
    if name[:6] == "test_e" and name[6].isdigit() and callable(obj)
]
