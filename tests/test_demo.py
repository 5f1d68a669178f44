"""The figures in docs/: in step with the code that draws them, legible, shown by the README.

``docs/build.py`` redraws them with ``jaxconv demo``'s code and records, in
``docs/manifest.json``, the sha256 of that code and of every figure; :func:`stale` compares.
"""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build_module():
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()
MANIFEST = json.loads((ROOT / "docs" / "manifest.json").read_text())


def test_docs_are_in_step_with_the_code_that_draws_them():
    assert build.stale(ROOT) == []


def _copy(tmp_path: Path) -> Path:
    """The drawing code, the photo and docs/ in a folder of the repository's layout."""
    for name in build.SOURCES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path


def test_docs_check_fails_when_code_or_figures_change(tmp_path):
    root = _copy(tmp_path)
    assert build.stale(root) == []
    plot = root / "jaxconv" / "plot.py"
    plot.write_text(plot.read_text() + "\n# a change to the drawing code\n")
    (problem,) = build.stale(root)
    assert problem == "jaxconv/plot.py changed since docs/ was drawn: run `python docs/build.py`."
    shutil.copyfile(ROOT / "jaxconv" / "plot.py", plot)
    crlf = root / "jaxconv" / "_cli/demo.py"  # a Windows checkout's line ends are the same code
    crlf.write_bytes(crlf.read_bytes().replace(b"\n", b"\r\n"))
    assert build.stale(root) == []

    figure = root / "docs" / "04_edges.png"
    figure.write_bytes(figure.read_bytes() + b"\0")
    (root / "docs" / "05_learn_blur.gif").unlink()
    (root / "docs" / "extra.png").write_bytes(b"")
    assert build.stale(root) == [
        "docs/04_edges.png is not the figure the manifest records: run `python docs/build.py`.",
        "docs/05_learn_blur.gif is in the manifest but missing: run `python docs/build.py`.",
        "docs/extra.png is not in docs/manifest.json: remove it or run `python docs/build.py`.",
    ]
    (root / "docs" / "manifest.json").unlink()
    assert build.stale(root) == ["docs/manifest.json is missing: run `python docs/build.py`."]


def test_docs_check_command_exit_status(capsys):
    assert build.main(["--check"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", sorted(MANIFEST["figures"]))
def test_docs_figures_are_legible_and_small(name):
    entry = MANIFEST["figures"][name]
    assert entry["dpi"] >= 100
    assert entry["min_text_px"] >= 12.5  # 9 points at 100 dpi
    if entry["min_image_scale"] is not None:  # photos and kernels: a figure pixel per pixel
        assert entry["min_image_scale"] >= 0.999
    assert entry["bytes"] <= 1_500_000
    if name.endswith(".gif"):
        assert entry["frames"] >= 40


def test_docs_photo_figures_show_the_photo_at_native_size():
    for name in ("03_photo_blur.png", "04_edges.png"):
        w, h = MANIFEST["figures"][name]["px"]
        columns = 2 if name.startswith("03") else 3
        assert w >= columns * 300 and h >= 200 * (1 if columns == 2 else 2), name


def test_readme_shows_the_figures_docs_records():
    readme = (ROOT / "README.md").read_text()
    shown = set(re.findall(r"\(docs/([\w.]+\.(?:png|gif))\)", readme))
    assert shown and shown <= set(MANIFEST["figures"])
    listed = (ROOT / "docs" / "README.md").read_text()
    assert all(f"`{name}`" in listed for name in MANIFEST["figures"])


@pytest.mark.slow
def test_demo_quick_records_its_figures(tmp_path):
    from jaxconv._cli.demo import run_demo

    results = run_demo(tmp_path, quick=True, progress=False, stages=["learn_edge"])
    entry = results["figures"]["06_learn_edge.gif"]
    assert entry["frames"] == 16 and entry["min_image_scale"] >= 1
    assert results["figures"]["06_learn_edge.png"]["min_text_px"] >= 12.5
