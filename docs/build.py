"""Redraws the figures in ``docs/`` with the current code and records them in ``manifest.json``.

    python docs/build.py           # runs the demo (float64, CPU, seed 0), copies its figures here
    python docs/build.py --check   # exit status 1, saying why, if docs/ is out of step

The figures are exactly what ``jaxconv demo`` writes (this calls the same ``run_demo`` with the
CLI's defaults). ``manifest.json`` records the sha256 of the files that draw them (``SOURCES``)
and of each figure, with its pixel size, dpi, frame count, bytes and legibility (smallest text
in pixels, fewest figure pixels per image pixel). ``tests/test_demo.py`` runs :func:`stale`, so
a change to the drawing code, or to a figure, without rerunning this script fails the tests.
The numbers drawn come from the whole library, whose own tests check them; hashing all of it
would make every library change redraw the docs, so only the drawing code and the photo are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("jaxconv/plot.py", "jaxconv/_cli/demo.py", "data/chelsea.txt")
FIGURES = (".png", ".gif")
COMMAND = "python docs/build.py"


def sha256(path: Path, text: bool = False) -> str:
    """Hex sha256 of a file; `text` files with line ends normalised (a Windows checkout)."""
    data = path.read_bytes()
    return hashlib.sha256(data.replace(b"\r\n", b"\n") if text else data).hexdigest()


def sources(root: Path) -> dict[str, str]:
    return {name: sha256(root / name, text=True) for name in SOURCES}


def stale(root: Path = ROOT) -> list[str]:
    """Why ``root/docs`` is out of step with the code that draws it; empty if it is not."""
    docs = root / "docs"
    path = docs / "manifest.json"
    if not path.is_file():
        return [f"docs/manifest.json is missing: run `{COMMAND}`."]
    manifest = json.loads(path.read_text())
    problems = [
        f"{name} changed since docs/ was drawn: run `{COMMAND}`."
        for name, digest in sources(root).items()
        if manifest["sources"].get(name) != digest
    ]
    for name, entry in manifest["figures"].items():
        if not (docs / name).is_file():
            problems.append(f"docs/{name} is in the manifest but missing: run `{COMMAND}`.")
        elif sha256(docs / name) != entry["sha256"]:
            problems.append(f"docs/{name} is not the figure the manifest records: run `{COMMAND}`.")
    problems += [
        f"docs/{p.name} is not in docs/manifest.json: remove it or run `{COMMAND}`."
        for p in sorted(docs.iterdir())
        if p.suffix in FIGURES and p.name not in manifest["figures"]
    ]
    return problems


def build(root: Path = ROOT) -> dict:
    """Runs the demo into a temporary folder, replaces the figures in docs/, writes the manifest."""
    import jax

    jax.config.update("jax_enable_x64", True)  # the CLI's default dtype, float64
    from jaxconv._cli.demo import environment, run_demo

    docs = root / "docs"
    with tempfile.TemporaryDirectory() as tmp:
        results = run_demo(tmp, progress=False)
        for old in docs.iterdir():
            if old.suffix in FIGURES:
                old.unlink()
        figures = {}
        for name, entry in sorted(results["figures"].items()):
            shutil.copyfile(Path(tmp) / name, docs / name)
            figures[name] = {"what": results["files"][name], **entry,
                             "sha256": sha256(docs / name)}  # fmt: skip
    manifest = {
        "command": COMMAND,
        "sources": sources(root),
        "figures": figures,
        "demo_seconds": results["total_seconds"],
        **environment(),
    }
    (docs / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="docs/build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    manifest = build()
    for name, entry in manifest["figures"].items():
        w, h = entry["px"]
        print(f"docs/{name:<24} {w:>5} x {h:<4} px  {entry['frames']:>3} frame(s) "
              f"{entry['bytes'] / 1e3:8.1f} kB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
