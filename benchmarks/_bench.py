"""Shared plumbing for the benchmark scripts: timing, machine description, tables and JSON.

Timings follow one protocol for every implementation: call once and time it (``first_call_s``:
for a freshly jitted JAX function this includes tracing and compiling), optionally time one call
on new inputs of the same shapes (``new_values_s``: no recompilation expected) or with a new
parameter (``new_sigma_s``), then time ``repeats`` warm calls, each ended by
``jax.block_until_ready`` (a no-op on NumPy results), and report their median. The
implementations compared in one table are timed *interleaved* (round r times every
implementation once, in a fresh random order), so that a change in machine load affects them
alike and their ratios stay meaningful. Implementations
whose first call takes longer than ``slow_s`` are timed only twice, so that a slow peer does
not stall the run; their records say how many repeats they got.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxconv

try:
    import resource
except ImportError:  # not on Windows: no page-fault counts there
    resource = None

_PACKAGES = ("jaxconv", "jax", "jaxlib", "numpy", "scipy", "opencv-python-headless")
# Optional peers: module -> the pip package that provides it. A benchmark leaves a missing peer's
# entries out and records why in its JSON ("missing_peers").
OPTIONAL_PEERS = {"cv2": "opencv-python-headless"}
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def parse_args(name: str, doc: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """Options every benchmark shares."""
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=(doc or name).splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write results (JSON) here")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="image sizes (square)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per entry")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--slow-s", type=float, default=2.0, help="time entries slower than this only twice"
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [128] if args.quick else [512, 2048]
    if args.repeats is None:
        args.repeats = 3 if args.quick else 15
    return args


def optional_peers() -> tuple[dict[str, Any], dict[str, str]]:
    """The optional peers that import, and the reason for each that does not."""
    found, missing = {}, {}
    for module, package in OPTIONAL_PEERS.items():
        try:
            found[module] = importlib.import_module(module)
        except ImportError as err:
            missing[module] = (
                f"not importable ({err}); its entries are left out. Install it with "
                f"`pip install {package}` (or `pip install -e '.[bench]'` in a checkout)"
            )
            print(f"note: {module} {missing[module]}", file=sys.stderr)
    return found, missing


def to_device(x: np.ndarray) -> jax.Array:
    """`x` on JAX's default device, the copy finished (so that no timed call waits for it)."""
    return jax.block_until_ready(jax.device_put(x))


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "system": platform.system(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        # A persistent compilation cache would make first calls load, not compile.
        "jax_compilation_cache_dir": jax.config.jax_compilation_cache_dir,
        "loadavg_start": list(os.getloadavg()),
    }


def time_call(fn: Callable[[], Any], repeats: int, slow_s: float) -> dict[str, Any]:
    """Median (and min, max) wall time in ms of `fn()`, after one (timed) first call."""
    warm = _seconds(fn)
    n = repeats if warm < slow_s else min(repeats, 2)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    ms = [1e3 * t for t in times]
    return {
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "repeats": n,
        "first_call_s": warm,
    }


def _seconds(fn: Callable[[], Any], results: dict[str, Any] | None = None, key: str = "") -> float:
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    elapsed = time.perf_counter() - start
    if results is not None:
        results[key] = out
    return elapsed


def time_interleaved(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    slow_s: float,
    fast_repeats: int = 1,
    once: dict[str, dict[str, Callable[[], Any]]] | None = None,
    first_results: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """`time_call` for several implementations at once, interleaving their timed calls.

    Every implementation's first call is timed on its own (``first_call_s``), followed by the
    calls ``once[name]`` gives, each timed once (``once[name][label]`` -> ``{label}_s``, e.g.
    ``new_values_s``); `first_results`, if given, receives the first calls' outputs. Then each
    round times every implementation once, in a fresh random (seeded) order; those whose first
    call took less than ``slow_s / 10`` are timed `fast_repeats` times per round, their calls
    shuffled among the others (more samples of the cheap entries for the same rounds of the
    expensive ones, so their medians are not the middle of 3 noisy calls).
    """
    warm, extra = {}, {}
    for name, fn in fns.items():
        warm[name] = _seconds(fn, first_results, name)
        extra[name] = {f"{k}_s": _seconds(f) for k, f in (once or {}).get(name, {}).items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    faults: dict[str, list[int]] = {name: [] for name in fns}
    calls = [n for n in fns for _ in range(fast_repeats if warm[n] < slow_s / 10 else 1)]
    order = np.random.default_rng(0)
    for r in range(repeats):
        # A new order every round: an entry timed right after a heavy one finds the caches cold
        # (and, on some machines, memory to fault in again); a fixed order biased the same
        # entries every round (jaxconv's "auto" always ran after jax.scipy's fftconvolve, and
        # timed up to 1.9x slower than the identical program forced to "shift").
        for name in order.permutation(calls):
            fn = fns[name]
            if warm[name] >= slow_s and r >= 2:
                continue
            before = minor_faults()
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(1e3 * (time.perf_counter() - start))
            faults[name].append(minor_faults() - before)
    return {
        name: {
            "median_ms": statistics.median(ms),
            "min_ms": min(ms),
            "max_ms": max(ms),
            "repeats": len(ms),
            "first_call_s": warm[name],
            **extra[name],
            # Pages the call touched for the first time: memory the allocator handed out fresh
            # (zero-filled by the kernel). Unlike times, a count the machine's load does not move.
            "page_faults_mib": statistics.median(faults[name]) * _PAGE / 2**20,
        }
        for name, ms in times.items()
    }


def minor_faults() -> int:
    """Minor page faults of this process so far (0 where `resource` is missing)."""
    return 0 if resource is None else resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def rel_error(out: Any, ref: np.ndarray) -> float:
    """Largest absolute difference from `ref`, relative to the largest entry of `ref`."""
    out = np.asarray(out, dtype=np.float64)
    return float(np.max(np.abs(out - ref)) / max(np.max(np.abs(ref)), 1e-300))


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r:.2f}" if r < 100 else f"{r:.0f}"


def fmt_targets(targets: dict[str, bool | None]) -> str:
    """ "name: yes/NO" for each target; None is a target whose peer is not installed."""
    words = {True: "yes", False: "NO", None: "peer missing"}
    return ", ".join(f"{k}: {words[v]}" for k, v in targets.items())


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    line = "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def compact(obj: Any, digits: int = 4) -> Any:
    """`obj` with every float rounded to `digits` significant digits (small, readable JSON)."""
    if isinstance(obj, dict):
        return {str(k): compact(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [compact(v, digits) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    return obj


def write_json(
    path: Path, payload: dict[str, Any], argv: Sequence[str] | None = None, complete: bool = True
) -> None:
    """Writes `payload` (medians and ratios, 4 significant digits) to `path`, atomically.

    The command that produced it (`argv`: the script's arguments, default ``sys.argv[1:]``) and
    the date are recorded, for the tables that cite it. Scripts also write after each case with
    ``complete=False``, so that a run stopped by a time limit keeps what it measured.
    """
    payload["machine"]["loadavg_end"] = list(os.getloadavg())
    args = sys.argv[1:] if argv is None else argv
    payload["command"] = shlex.join(["python", f"benchmarks/{payload['benchmark']}.py", *args])
    payload["date_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    payload["complete"] = complete
    jaxconv.save_json_atomic(path, compact(payload))  # strict JSON, atomic, stale .tmp removed
    print(f"\nwrote {path}")
