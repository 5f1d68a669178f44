"""The benchmark scripts run (`--quick`, tiny sizes) and write well-formed results.

Timings are not checked (they are not tests); the outputs' agreement with the references is.
"""

import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(autouse=True)
def _on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def test_bench_convolve_quick(tmp_path):
    import bench_convolve

    out = tmp_path / "conv.json"
    payload = bench_convolve.main(["--quick", "--sizes", "48", "--repeats", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["machine"]["cpu_count"] and saved["versions"]["jax"]
    kernels = {c["kernel"] for c in payload["cases"]}
    assert kernels == {"3x3", "7x7", "gauss30x30"}
    for case in payload["cases"]:
        assert "jaxconv auto" in case["entries"] and "cv2.filter2D" in case["entries"]
        assert case["entries"]["jaxconv auto"]["grad"]["median_ms"] > 0
        for name, rec in case["entries"].items():
            assert rec["rel_error"] < 1e-4, (case["kernel"], name)


def test_bench_filters_quick(tmp_path):
    import bench_filters

    payload = bench_filters.main(["--quick", "--sizes", "40", "--repeats", "1"])
    names = {r["filter"] for r in payload["results"]}
    assert names == {"gaussian σ=1", "gaussian σ=3", "gaussian σ=8", "sobel"}
    for rec in payload["results"]:
        assert rec["entries"]["jaxconv"]["rel_error"] < 1e-5
        assert rec["entries"]["cv2"]["rel_error"] < 1e-5
