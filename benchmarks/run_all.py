"""Regenerates every committed benchmark result and the tables that cite them, in one command.

Runs, one after another (each in its own process, nothing else of ours running), from the
repository root::

    python benchmarks/bench_convolve.py --out benchmarks/results/bench_convolve.json
    python benchmarks/bench_filters.py  --out benchmarks/results/bench_filters.json
    python benchmarks/bench_fit.py --repeats 15 --out benchmarks/results/bench_fit.json
    python benchmarks/acceptance_fit.py --out benchmarks/results/acceptance_fit.json
    python benchmarks/bench_scaling.py  --out benchmarks/results/bench_scaling.json
    python benchmarks/bench_script.py   --out benchmarks/results/bench_script.json

then ``python benchmarks/tables.py``, which rewrites the tables in README.md,
benchmarks/README.md and benchmarks/FIT.md from those files. About 15 minutes on the 2-core VM
(``--only NAME ...`` runs some of them, ``bench_`` may be left out of a NAME; the tables of the
others keep their committed results).
``calibrate_methods.py`` (the cost model's constants, ~15 min) is not part of it.

Usage::

    python benchmarks/run_all.py
    python benchmarks/run_all.py --only bench_filters bench_fit
    python benchmarks/run_all.py --only script
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import tables

HERE = Path(__file__).resolve().parent
# script -> its arguments besides --out
SCRIPTS = {
    "bench_convolve": [],
    "bench_filters": [],
    "bench_fit": ["--repeats", "15"],
    "acceptance_fit": [],
    "bench_scaling": [],
    "bench_script": [],
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_all.py", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS),
                        type=lambda s: s if s in SCRIPTS else f"bench_{s}",
                        help="run only these scripts (script = bench_script)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    walls = {}
    for name in args.only:
        out = (HERE / "results" / f"{name}.json").relative_to(tables.ROOT)
        cmd = [sys.executable, f"benchmarks/{name}.py", *SCRIPTS[name], "--out", str(out)]
        print(f"\n=== {' '.join(cmd)}", flush=True)
        start = time.monotonic()
        subprocess.run(cmd, cwd=tables.ROOT, check=True)
        walls[name] = time.monotonic() - start
    for name, wall in walls.items():
        print(f"{name}: {wall:.0f} s")
    return tables.main([])


if __name__ == "__main__":
    raise SystemExit(main())
