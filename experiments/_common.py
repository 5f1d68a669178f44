"""Shared plumbing for the experiment scripts: arguments, timing, provenance and output files.

Every experiment is a script ``experiments/eN_<name>.py`` with a ``main(argv=None) -> dict``
function (so a test can run it in-process), the options ``--out``, ``--seed`` and ``--quick``,
and it writes ``results.json`` (configuration, metrics, versions, device, timings) and its
figures into ``--out``. Only the public ``jaxconv`` API is used.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import jax
import matplotlib
import numpy as np

import jaxconv

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import jaxconv.plot as jplot

_PACKAGES = ("jaxconv", "jax", "jaxlib", "numpy", "optax", "scipy", "matplotlib", "scikit-learn")


def parse_args(name: str, doc: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses the options every experiment shares; `name` gives the default output folder."""
    summary = (doc or name).strip().splitlines()[0]
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=summary)
    parser.add_argument(
        "--out", type=Path, default=Path("results") / name, help="output folder (created)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--quick", action="store_true", help="a smaller run, for tests (seconds)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def versions() -> dict[str, str | None]:
    """Installed versions of the packages the experiments use, and Python's."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def device() -> dict[str, Any]:
    """Where JAX runs: backend, device kind and count, and the host's CPU count."""
    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
        "x64": bool(jax.config.jax_enable_x64),
    }


class Run:
    """Collects configuration, metrics and timings of one experiment and writes them out.

    Examples:
        run = Run("e1_convolve_1d", args, config={"n": 1000})
        with run.timer("convolve"):
            ...
        run.metrics["max_abs_diff"] = 1e-17
        run.savefig(fig, "convolve_1d.png")
        results = run.finish()
    """

    def __init__(self, name: str, args: argparse.Namespace, config: dict[str, Any]) -> None:
        self.name = name
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.config = {"seed": args.seed, "quick": args.quick, **config}
        self.metrics: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.files: list[str] = []
        self.argv = getattr(args, "argv", [])
        self._start = time.perf_counter()

    @contextlib.contextmanager
    def timer(self, label: str) -> Iterator[None]:
        """Adds the wall time of the block, in seconds, to ``timings[label]``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - t0

    def savefig(self, fig: Any, filename: str) -> Path:
        """Saves a matplotlib figure at its own dpi into the output folder and closes it.

        ``jaxconv.plot`` makes figures at 100 dpi (10-point text is 14 pixels) and lays images out
        pixel for pixel at that dpi, so saving at another dpi would shrink text and images.
        """
        path = self.out / filename
        jplot.save_figure(fig, path, bbox_inches="tight")
        plt.close(fig)
        self.files.append(filename)
        return path

    def add_file(self, path: str | os.PathLike[str]) -> None:
        """Records a file written by other means (e.g. an animation)."""
        self.files.append(os.path.relpath(path, self.out))

    def finish(self) -> dict[str, Any]:
        """Writes ``results.json`` and prints a summary; returns the results as written."""
        self.timings["total"] = time.perf_counter() - self._start
        results = {
            "experiment": self.name,
            "config": self.config,
            "metrics": self.metrics,
            "versions": versions(),
            "device": device(),
            "timings_s": self.timings,
            "files": sorted({*self.files, "results.json"}),
            "command": " ".join([f"python experiments/{self.name}.py", *self.argv]),
        }
        path = jaxconv.save_json_atomic(self.out / "results.json", results)
        print(f"{self.name}: wrote {len(results['files'])} files to {self.out}/ ({path.name})")
        for key, value in self.metrics.items():
            if np.isscalar(value):
                print(f"  {key}: {value:.6g}" if isinstance(value, float) else f"  {key}: {value}")
        return json.loads(path.read_text())


def enable_x64() -> None:
    """Float64 throughout: the comparisons against scipy are at round-off level."""
    jax.config.update("jax_enable_x64", True)
