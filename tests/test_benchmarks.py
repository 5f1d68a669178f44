"""The benchmark scripts run (`--quick`, tiny sizes) and write well-formed results.

Timings are not checked (they are not tests); the outputs' agreement with the references is.
OpenCV is an optional peer: the scripts run without it, and its entries are tested only where it
is installed.
"""

import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
NO_CV2 = "OpenCV (cv2) is an optional benchmark peer: pip install -e '.[bench]'"


@pytest.fixture(autouse=True)
def _on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    """bench_convolve --quick on 48² images, and the JSON it wrote."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_convolve

        out = tmp_path_factory.mktemp("conv") / "conv.json"
        bench_convolve.main(["--quick", "--sizes", "48", "--repeats", "1", "--out", str(out)])
    finally:
        sys.path.remove(str(BENCHMARKS))
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def filters():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_filters

        return bench_filters.main(["--quick", "--sizes", "40", "--repeats", "1"])
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_bench_convolve_quick(conv):
    assert conv["machine"]["cpu_count"] and conv["versions"]["jax"]
    assert conv["command"].startswith("python benchmarks/bench_convolve.py --quick")
    assert conv["complete"] is True
    assert {c["kernel"] for c in conv["cases"]} == {"3x3", "7x7", "gauss30x30"}
    for case in conv["cases"]:
        entries = case["entries"]
        for name in ("jaxconv auto", "lax.conv_general_dilated", "jax.scipy.signal.fftconvolve"):
            assert name in entries, name
        assert entries["jaxconv auto"]["grad"]["median_ms"] > 0
        for name, rec in entries.items():
            assert rec["rel_error"] < 1e-4, (case["kernel"], name)
            assert rec["first_call_s"] > 0 and rec["new_values_s"] > 0, name
        best = case["summary"]["best"]
        assert {"scipy", "jax.scipy", "lax"} <= set(best)
        # the fastest entry of each library, as the headline ratios promise
        scipy_times = [e["median_ms"] for n, e in entries.items() if n.startswith("scipy.")]
        assert best["scipy"]["median_ms"] == min(scipy_times)


def test_bench_convolve_cv2_entries(conv):
    pytest.importorskip("cv2", reason=NO_CV2)
    assert conv["missing_peers"] == {}
    for case in conv["cases"]:
        assert case["entries"]["cv2.filter2D"]["rel_error"] < 1e-4, case["kernel"]
        assert case["summary"]["best"]["OpenCV"]["entry"] == "cv2.filter2D"


def test_bench_filters_quick(filters):
    names = {r["filter"] for r in filters["results"]}
    assert names == {"gaussian σ=1", "gaussian σ=3", "gaussian σ=8", "sobel"}
    for rec in filters["results"]:
        jx = rec["entries"]["jaxconv"]
        assert jx["rel_error"] < 1e-5
        assert jx["first_call_s"] > 0 and jx["new_values_s"] > 0
        assert ("new_sigma_s" in jx) == rec["filter"].startswith("gaussian")


def test_bench_filters_cv2_entries(filters):
    pytest.importorskip("cv2", reason=NO_CV2)
    for rec in filters["results"]:
        assert rec["entries"]["cv2"]["rel_error"] < 1e-5


def test_missing_peer_is_left_out_and_recorded(monkeypatch):
    import bench_filters

    monkeypatch.setitem(sys.modules, "cv2", None)  # as if OpenCV were not installed
    payload = bench_filters.main(["--quick", "--sizes", "16", "--repeats", "1"])
    assert "pip install opencv-python-headless" in payload["missing_peers"]["cv2"]
    for rec in payload["results"]:
        assert set(rec["entries"]) == {"jaxconv", "scipy.ndimage"}
        assert rec["jaxconv_over_cv2"] is None and rec["targets"]["<= 1.5x cv2"] is None


def _device_check(tmp_path, *args):
    cmd = [sys.executable, str(BENCHMARKS / "device_check.py"), "--out", str(tmp_path), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    return proc, json.loads((tmp_path / "summary.json").read_text())


def test_device_check_quick_on_cpu(tmp_path):
    proc, summary = _device_check(tmp_path, "--device", "cpu", "--quick")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert summary["status"] == "ok" and summary["failed_stages"] == []
    assert summary["probe"]["packages"]["jax"] == jax.__version__
    assert summary["probe"]["device_kind"] == "cpu"
    assert set(summary["stages"]) == {"tests", "bench_convolve", "bench_filters", "bench_fit"}
    for stage in summary["stages"].values():
        assert stage["rc"] == 0 and stage["wall_s"] > 0 and (tmp_path / stage["log"]).is_file()
    assert summary["tests"]["passed"] >= 2 and summary["tests"]["failed"] == 0
    results = summary["results"]
    assert {r["backend"] for r in results.values()} == {"cpu"}
    # agreement with the scipy references, as recorded (float32 convolutions, float64 fits)
    assert results["bench_convolve"]["max_rel_error"] < 1e-4
    assert results["bench_filters"]["max_rel_error"] < 1e-5
    assert results["bench_fit"]["max_rel_error"] < 1e-8
    conv_entries = results["bench_convolve"]["cases"][0]["entries"]
    assert "lax.conv_general_dilated" in conv_entries
    assert (tmp_path / "bench_fit.json").is_file()


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="a GPU is present")
def test_device_check_without_a_gpu_says_so(tmp_path):
    proc, summary = _device_check(tmp_path, "--device", "gpu")
    assert proc.returncode == 2
    assert "NO GPU: jax.devices('gpu') failed" in proc.stderr
    assert "pip install -U 'jax[cuda12]'" in proc.stderr
    assert summary["status"] == "no-gpu" and summary["stages"] == {}


def test_device_check_skips_stages_once_the_budget_is_spent(tmp_path):
    proc, summary = _device_check(tmp_path, "--device", "cpu", "--quick", "--budget-s", "5")
    assert proc.returncode == 1 and summary["status"] == "failures"
    assert set(summary["failed_stages"]) == {
        "tests",
        "bench_convolve",
        "bench_filters",
        "bench_fit",
    }
    assert all("budget spent" in s["skipped"] for s in summary["stages"].values())


def test_device_check_writes_to_OUT(tmp_path, monkeypatch):
    import device_check

    monkeypatch.setenv("OUT", str(tmp_path / "collected"))
    assert device_check.parse_args([]).out == tmp_path / "collected"
    assert device_check.parse_args(["--out", "x"]).out == Path("x")
    monkeypatch.delenv("OUT")
    assert device_check.parse_args(["--venv", "/v"]).python == "/v/bin/python"


def _docs(root):
    """Documents with the tables' markers (and text around them that must survive)."""
    docs = {
        "README.md": ["convolve", "filters"],
        "benchmarks/README.md": ["convolve", "filters", "fit", "scaling", "script"],
        "benchmarks/FIT.md": ["acceptance"],
    }
    for doc, blocks in docs.items():
        text = "".join(
            f"before {b}\n<!-- begin: {b} (gen) -->\nold\n<!-- end: {b} -->\n" for b in blocks
        )
        (root / doc).parent.mkdir(parents=True, exist_ok=True)
        (root / doc).write_text(text)


def test_tables_rendered_from_results(tmp_path, conv, filters):
    import _bench
    import tables

    _docs(tmp_path)
    results = tmp_path / "benchmarks" / "results"
    results.mkdir()
    conv = {**conv, "config": {**conv["config"], "quick": False}}
    (results / "bench_convolve.json").write_text(json.dumps(conv))
    filters = {**filters, "config": {**filters["config"], "quick": False}}
    _bench.write_json(results / "bench_filters.json", filters, ["--sizes", "40"])
    texts, missing = tables.render(tmp_path, results)
    readme = texts[tmp_path / "README.md"]
    assert readme.count("before ") == 2 and "\nold\n" not in readme
    assert conv["command"] in readme and "python benchmarks/bench_filters.py --sizes 40" in readme
    assert (
        "[`benchmarks/results/bench_convolve.json`](benchmarks/results/bench_convolve.json)"
        in readme
    )
    speedups = tables.convolve_speedups(conv)
    assert f"jax.scipy.signal {tables.span(speedups['jax.scipy'])}" in readme
    assert len(speedups["scipy"]) == len(conv["cases"])
    bench_readme = texts[tmp_path / "benchmarks" / "README.md"]
    assert (
        "(results/bench_convolve.json)" in bench_readme and "Every entry, median ms" in bench_readme
    )
    assert bench_readme.count("\nold\n") == 3  # fit, scaling, script: no results, left alone
    blocks = sorted(m.split(":")[1].split()[0] for m in missing)
    assert blocks == ["acceptance", "fit", "scaling", "script"]


def test_tables_refuse_quick_results(tmp_path, conv):
    import tables

    (tmp_path / "bench_convolve.json").write_text(json.dumps(conv))
    with pytest.raises(ValueError, match=r"tables: `.*bench_convolve.json` is a --quick run"):
        tables.load("bench_convolve", tmp_path)


def test_tables_refuse_unfinished_results(tmp_path, conv):
    import tables

    stopped = {**conv, "config": {**conv["config"], "quick": False}, "complete": False}
    (tmp_path / "bench_convolve.json").write_text(json.dumps(stopped))
    with pytest.raises(ValueError, match="is from a run that did not finish; got complete=False"):
        tables.load("bench_convolve", tmp_path)


def test_tables_need_exactly_one_block():
    import tables

    with pytest.raises(ValueError, match="replace_block: `name` must mark exactly one block"):
        tables.replace_block("no markers here", "convolve", "x")


def test_committed_tables_match_committed_results():
    import tables

    if not list(tables.RESULTS.glob("*.json")):
        pytest.skip("no results committed yet: python benchmarks/run_all.py writes them")
    assert tables.main(["--check"]) == 0


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    """bench_script --quick, run as a user would (its own process), and the JSON it wrote."""
    out = tmp_path_factory.mktemp("script") / "script.json"
    cmd = [sys.executable, str(BENCHMARKS / "bench_script.py"), "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def _bound(fig):
    return float(fig["target"].removeprefix("<= "))


def test_bench_script_quick(script):
    assert script["complete"] is True and script["config"]["quick"] is True
    assert script["command"].startswith("python benchmarks/bench_script.py --quick --out")
    assert "load average" in script["machine"]["uptime_start"]
    assert "load average" in script["machine"]["uptime_end"]
    assert script["versions"]["checkout"]["commit"]
    r = script["results"]
    fits = r["in_process"]["fits"]
    assert len(fits) == script["config"]["fits"] == 3
    assert fits[0]["compiles"] >= 1  # a fresh process compiles its first fit
    assert [f["target"] for f in fits] == [None, "<= 0.5", "<= 0.5"]
    for f in fits:
        assert f["jaxconv_s"] > 0 and f["scipy_s"] > 0
        assert f["ratio"] == pytest.approx(f["jaxconv_s"] / f["scipy_s"], rel=1e-3)
        # both recover the covariance that made the target (pixels²)
        assert f["jaxconv_error"] < 1e-6 and f["scipy_error"] < 1e-6
    worst = max(f["ratio"] for f in fits[1:])
    assert r["in_process"]["max_ratio_after_first"]["value"] == pytest.approx(worst, rel=1e-3)
    fp = r["fresh_process"]
    for name in ("jaxconv, no cache", "jaxconv, cache warm", "scipy"):
        run = fp[name]
        assert 0 < run["min_s"] <= run["median_s"] <= run["max_s"]
        # the process's wall time holds its imports and fits (last round), and start-up
        assert 0 < run["import_s"] and 0 < run["first_fit_s"] < run["sum_of_fits_s"], name
        assert run["import_s"] + run["sum_of_fits_s"] < run["max_s"], name
        assert run["max_error"] < 1e-6, name
    assert fp["jaxconv, no cache"]["xla_compilations"] >= 1
    assert fp["cache_fill_events"]["cache_misses"] >= 1 and fp["cache_files"] >= 1
    assert fp["jaxconv, cache warm"]["events"]["cache_hits"] >= 1
    ratio = fp["jaxconv, no cache"]["median_s"] / fp["scipy"]["median_s"]
    assert fp["no_cache_over_scipy"]["value"] == pytest.approx(ratio, rel=1e-3)
    sw = r["filter_sweep"]
    assert len(sw["sigmas"]) == 5 and sw["size"] == 512
    assert sw["jaxconv_rel_error"] < 1e-5 and sw["scipy_rel_error"] < 1e-5
    assert sw["compiles_first_pass"]["value"] >= 1 and sw["compiles_warm_passes"] == 0
    tiles = r["tiles"]
    for call in ("first", "second"):
        assert tiles[call]["jaxconv_error"] < 1e-6 and tiles[call]["scipy_error"] < 1e-6
        assert tiles[call]["jaxconv_s"] > 0 and tiles[call]["scipy_loop_s"] > 0
    assert tiles["second_call_compiles"]["value"] == tiles["second"]["compiles"]
    # every target: its value, an upper bound, and whether the value is within it
    assert len(script["targets"]) == 5
    for name, fig in script["targets"].items():
        assert fig["met"] == (fig["value"] <= _bound(fig)), name


def test_bench_script_needs_two_fits():
    cmd = [sys.executable, str(BENCHMARKS / "bench_script.py"), "--quick", "--fits", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert "`--fits` must be at least 2 (a first fit and the ones after it); got 1." in proc.stderr


def test_tables_render_the_script_scenario(tmp_path, script):
    import tables

    _docs(tmp_path)
    results = tmp_path / "benchmarks" / "results"
    results.mkdir()
    payload = {**script, "config": {**script["config"], "quick": False}}
    (results / "bench_script.json").write_text(json.dumps(payload))
    texts, _ = tables.render(tmp_path, results)
    text = texts[tmp_path / "benchmarks" / "README.md"]
    assert script["command"] in text and "(results/bench_script.json)" in text
    block = text.split("<!-- begin: script")[1].split("<!-- end: script")[0]
    fits = script["results"]["in_process"]["fits"]
    assert f"1. One process, {len(fits)} new pairs" in block
    for i, f in enumerate(fits):
        assert f"| {i + 1} | " + ", ".join(f"{s:.2f}" for s in f["sigmas"]) in block
    # the table of targets: the rows with a target say whether it was met, in the JSON's order
    lines = block.split("2. Every target")[1].splitlines()
    rows = [line.strip("| ").split(" | ") for line in lines if line.startswith("|")][2:]
    met = [row[-1] for row in rows if row[-2] != "–"]
    words = {True: "yes", False: "**no**"}
    assert met == [words[fig["met"]] for fig in script["targets"].values()]
    assert script["machine"]["uptime_end"].split("load average:")[-1].strip() in block


def test_run_all_names_the_script_benchmark(capsys):
    import run_all

    assert "bench_script" in run_all.parse_args([]).only
    assert run_all.parse_args(["--only", "script", "bench_fit"]).only == [
        "bench_script",
        "bench_fit",
    ]
    with pytest.raises(SystemExit):
        run_all.parse_args(["--only", "nonesuch"])
    assert "invalid choice: 'bench_nonesuch'" in capsys.readouterr().err
