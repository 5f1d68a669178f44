"""The "script" scenario of issue 14: fit many new pairs, compile included, side by side with scipy.

A researcher's script fits a new pair, then another, each with a different blur. This times
that, on 256² float64 pairs (crops of the shipped photo, reflected to 512²), each target made by
``scipy.signal.fftconvolve(x, k, mode="same")`` with a sampled ``scipy.stats.multivariate_normal``
kernel (sum-normalised, radius ⌈7 σ₁⌉: truncated mass < 1e-10), for 8 covariances with principal
σ from 0.8 to 6 px at seeded random angles, in a seeded random order:

1. **one process**: 8 consecutive ``jaxconv.fit_gaussian(x, y)`` calls, each timed once (compile
   included; its XLA compilations counted with ``jax.monitoring``), against scipy's peer of
   ``bench_fit.py`` on the same pair (``least_squares(method="lm")`` driving ``fftconvolve``,
   the same three log-Cholesky parameters from Σ = I; median of ``--repeats`` calls). scipy is
   given the radius that made the target, so its model is exact (a favour: jaxconv chooses its
   radius from the data). Target: every fit after the first ≤ 0.5× scipy's time.
2. **a fresh process, no persistent cache**: the whole sequence as a script (imports, loading the
   pairs from an ``.npz``, every fit) run with ``subprocess``, timed from outside around
   ``subprocess.run`` (interpreter start and exit included), against scipy's script doing the
   same with its own imports. Target: ≤ 2× scipy's.
3. **a fresh process, persistent cache warm**: the same script calling
   ``jaxconv.enable_compilation_cache(folder)`` first; one run fills the folder, then runs are
   timed. Target: ≤ 1× scipy's. Its XLA compilations are recorded (programs loaded from the
   cache counted apart). 2 and 3 are timed in ``--rounds`` interleaved rounds (each round runs
   the three scripts in a random order); medians are reported.
4. **a ``gaussian_filter`` sweep**: one 512² float32 image, 20 σ in ``geomspace(0.5, 16)``: the
   first pass (compile included) with its compilation count (target ≤ 4), a second pass (warm),
   against ``scipy.ndimage.gaussian_filter`` (medians over rounds).
5. **``fit_gaussian_tiles`` twice**: a 256² pair, tiles of 64² each blurred with its own
   covariance (σ 0.8–2.5 px), then new data of the same layout: both calls timed, the second
   one's compilations counted (target 0), against a Python loop of scipy's per-tile fits.

The scripts of 2 and 3 run without ``JAXCONV_CACHE_DIR`` and ``JAX_COMPILATION_CACHE_DIR`` (this
script drops them from its own environment too: no cache but the one of 3). Every target is
recorded with its ``value``, ``target`` and ``met``; the machine's ``uptime`` before and after.

Usage::

    python benchmarks/bench_script.py --out benchmarks/results/bench_script.json
    python benchmarks/bench_script.py --quick --out /tmp/script.json   # 3 fits, 5 σ: < 1 min
"""

from __future__ import annotations

import os

# Compile times are what this measures: no persistent cache but the one scenario 3 sets up.
for _var in ("JAXCONV_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR"):
    os.environ.pop(_var, None)

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

import _bench  # noqa: E402
import bench_fit  # noqa: E402  (sets one BLAS thread, as its comment explains, and x64)
import jax  # noqa: E402
import numpy as np  # noqa: E402
import scipy.ndimage as ndi  # noqa: E402
import scipy.signal  # noqa: E402

import jaxconv  # noqa: E402

jax.config.update("jax_enable_x64", True)


class Events:
    """Counts JAX's compile events from now on: ``compiles`` (XLA programs built, those loaded
    from the persistent cache included), ``traces``, ``cache_hits`` and ``cache_misses``."""

    NAMES: ClassVar[dict[str, str]] = {
        "/jax/core/compile/backend_compile_duration": "compiles",
        "/jax/core/compile/jaxpr_trace_duration": "traces",
        "/jax/compilation_cache/cache_hits": "cache_hits",
        "/jax/compilation_cache/cache_misses": "cache_misses",
    }

    def __init__(self):
        self.counts = dict.fromkeys(self.NAMES.values(), 0)
        jax.monitoring.register_event_listener(self._event)
        jax.monitoring.register_event_duration_secs_listener(self._duration)

    def _event(self, event, **kwargs):
        if event in self.NAMES:
            self.counts[self.NAMES[event]] += 1

    def _duration(self, event, duration, **kwargs):
        self._event(event)

    def since(self, before: dict) -> dict:
        return {k: v - before[k] for k, v in self.counts.items()}


def _source(*objs: Any) -> str:
    return "\n\n".join(textwrap.dedent(inspect.getsource(o)) for o in objs)


# The scripts of scenarios 2 and 3: what a user would write, plus a line of JSON on stdout. The
# scipy one runs bench_fit's very peer functions (their source, copied), without jax.
WORKER = """\
from __future__ import annotations
import time
start = time.perf_counter()
import json, sys
from typing import Any
import numpy as np
{imports}
imported = time.perf_counter() - start

{helpers}

with np.load(sys.argv[1]) as f:
    xs, ys, radii = f["x"], f["y"], f["radius"]
{setup}
covs, walls = [], []
for x, y, r in zip(xs, ys, radii):
    t = time.perf_counter()
    covs.append(np.asarray({fit}).tolist())
    walls.append(time.perf_counter() - t)
print(json.dumps({{"covariances": covs, "import_s": imported, "fit_s": walls, **extra}}))
"""
WORKERS = {
    "scipy": {
        "imports": "import scipy.optimize, scipy.signal, scipy.stats",
        "helpers": _source(bench_fit.covariance, bench_fit.kernel_np, bench_fit.scipy_fit),
        "setup": "extra = {}",
        "fit": "covariance(scipy_fit(x, y, int(r)).x)",
    },
    "jaxconv": {
        "imports": "import jax\njax.config.update('jax_enable_x64', True)\nimport jaxconv",
        "helpers": _source(Events),
        "setup": "if len(sys.argv) > 2:\n    jaxconv.enable_compilation_cache(sys.argv[2])\n"
        "events = Events()\nextra = {'events': events.counts}",
        "fit": "jaxconv.fit_gaussian(x, y, progress=False).covariance",
    },
}
CACHE_VARS = ("JAXCONV_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")


def figure(value: float, bound: float) -> dict[str, Any]:
    """A figure with an upper-bound target (every target of the issue is one)."""
    return {"value": value, "target": f"<= {bound:g}", "met": bool(value <= bound)}


def stats(samples: Sequence[float]) -> dict[str, float]:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples)}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - start, out


def cov_of(s1: float, s2: float, angle: float) -> np.ndarray:
    u = np.array([np.sin(angle), np.cos(angle)])  # (row, col) of the σ₁ direction
    v = np.array([np.cos(angle), -np.sin(angle)])
    return s1**2 * np.outer(u, u) + s2**2 * np.outer(v, v)


def blur(x: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, int]:
    """scipy's blur of `x` by Σ (fftconvolve, "same"), and the kernel radius it used."""
    r = int(np.ceil(7 * np.sqrt(np.linalg.eigvalsh(cov)[-1])))
    k = bench_fit.kernel_np(bench_fit.log_cholesky(cov), r)
    return scipy.signal.fftconvolve(x, k, mode="same"), r


def make_pairs(count: int, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`count` pairs (different crops, principal σ₁ from 0.8 to 6 px in a random order)."""
    src = bench_fit.photo(2 * size)
    s1 = rng.permutation(np.geomspace(0.8, 6.0, count))
    s2 = np.maximum(0.8, s1 * rng.uniform(0.4, 1.0, count))
    angles = rng.uniform(0, np.pi, count)
    xs, ys, covs, radii = [], [], [], []
    for a, b, th in zip(s1, s2, angles, strict=True):
        i, j = rng.integers(0, size + 1, 2)
        x = src[i : i + size, j : j + size]
        cov = cov_of(a, b, th)
        y, r = blur(x, cov)
        xs.append(x), ys.append(y), covs.append(cov), radii.append(r)
    return {
        "x": np.stack(xs),
        "y": np.stack(ys),
        "cov": np.stack(covs),
        "radius": np.array(radii),
        "sigmas": np.stack([s1, s2], -1),
        "angle": angles,
    }


def error(cov: Any, truth: np.ndarray) -> float:
    """max |Σ̂ − Σ| (pixels²)."""
    return float(np.max(np.abs(np.asarray(cov) - truth)))


def in_process(pairs: dict, events: Events, repeats: int) -> dict[str, Any]:
    """Scenario 1: consecutive fit_gaussian calls in this process, each against scipy's fit."""
    fits = []
    for i, (x, y, cov, r) in enumerate(
        zip(*(pairs[k] for k in ("x", "y", "cov", "radius")), strict=True)
    ):
        before = dict(events.counts)
        ours_s, res = timed(lambda x=x, y=y: jaxconv.fit_gaussian(x, y, progress=False))
        counts = events.since(before)
        peer = [
            timed(lambda x=x, y=y, r=r: bench_fit.scipy_fit(x, y, int(r))) for _ in range(repeats)
        ]
        scipy_s = statistics.median(t for t, _ in peer)
        ratio = ours_s / scipy_s
        fits.append(
            {
                "sigmas": pairs["sigmas"][i].tolist(),
                "angle": float(pairs["angle"][i]),
                "jaxconv_s": ours_s,
                "scipy_s": scipy_s,
                "ratio": ratio,
                "target": None if i == 0 else "<= 0.5",
                "met": None if i == 0 else ratio <= 0.5,
                "compiles": counts["compiles"],
                "traces": counts["traces"],
                "jaxconv_error": error(res.covariance, cov),
                "scipy_error": error(bench_fit.covariance(peer[-1][1].x), cov),
                "jaxconv_steps": int(res.steps),
                "jaxconv_rounds": res.rounds,
                "jaxconv_radius": list(res.radius),
                "scipy_nfev": int(peer[-1][1].nfev),
                "scipy_radius": int(r),
            }
        )
    return {"fits": fits, "max_ratio_after_first": figure(max(f["ratio"] for f in fits[1:]), 0.5)}


def run_script(path: Path, data: Path, cache: Path | None = None) -> tuple[float, dict]:
    """Wall time of ``python path data [cache]`` from outside, and the JSON line it printed."""
    env = {k: v for k, v in os.environ.items() if k not in CACHE_VARS}
    cmd = [sys.executable, str(path), str(data), *([str(cache)] if cache else [])]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=path.parent, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"bench_script: `{path.name}` failed; got:\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def fresh_processes(pairs: dict, rounds: int, rng: np.random.Generator) -> dict[str, Any]:
    """Scenarios 2 and 3: the whole sequence as a script in fresh processes."""
    with tempfile.TemporaryDirectory(prefix="bench_script_") as tmp:
        folder = Path(tmp)
        data = folder / "pairs.npz"
        np.savez(data, x=pairs["x"], y=pairs["y"], radius=pairs["radius"])
        scripts = {}
        for kind, parts in WORKERS.items():
            scripts[kind] = folder / f"{kind}_script.py"
            scripts[kind].write_text(WORKER.format(**parts))
        cache = folder / "xla_cache"
        runs = {
            "jaxconv, no cache": lambda: run_script(scripts["jaxconv"], data),
            "jaxconv, cache warm": lambda: run_script(scripts["jaxconv"], data, cache),
            "scipy": lambda: run_script(scripts["scipy"], data),
        }
        fill_s, fill = run_script(scripts["jaxconv"], data, cache)
        walls: dict[str, list[float]] = {k: [] for k in runs}
        last: dict[str, dict] = {}
        for _ in range(rounds):
            for name in rng.permutation(list(runs)):
                wall, last[name] = runs[name]()
                walls[name].append(wall)
        cache_files = sum(1 for p in cache.rglob("*") if p.is_file())
    out: dict[str, Any] = {
        "rounds": rounds,
        "cache_fill_s": fill_s,
        "cache_files": cache_files,
        "cache_fill_events": fill["events"],
    }
    for name, samples in walls.items():
        rec = stats(samples)
        rec["import_s"] = last[name]["import_s"]  # numpy and the library, in the last round
        rec["sum_of_fits_s"] = sum(last[name]["fit_s"])
        rec["first_fit_s"] = last[name]["fit_s"][0]
        rec["max_error"] = max(map(error, last[name]["covariances"], pairs["cov"]))
        if "events" in last[name]:
            ev = last[name]["events"]
            rec["events"] = ev
            # with the cache on, a program loaded from it is reported as a compile too
            rec["xla_compilations"] = ev["compiles"] - ev["cache_hits"]
        out[name] = rec
    scipy_s = out["scipy"]["median_s"]
    out["no_cache_over_scipy"] = figure(out["jaxconv, no cache"]["median_s"] / scipy_s, 2.0)
    out["cache_warm_over_scipy"] = figure(out["jaxconv, cache warm"]["median_s"] / scipy_s, 1.0)
    return out


def filter_sweep(size: int, sigmas: np.ndarray, events: Events, rounds: int, rng) -> dict:
    """Scenario 4: gaussian_filter over many σ on one float32 image, against scipy.ndimage."""
    x = rng.standard_normal((size, size)).astype(np.float32)
    ref = [ndi.gaussian_filter(x.astype(np.float64), s) for s in sigmas]

    def ours() -> list:
        return [jaxconv.gaussian_filter(x, s) for s in sigmas]

    def peer() -> list:
        return [ndi.gaussian_filter(x, s) for s in sigmas]

    before = dict(events.counts)
    first_s, first = timed(ours)
    first_counts = events.since(before)
    walls: dict[str, list[float]] = {"jaxconv": [], "scipy.ndimage": []}
    fns = {"jaxconv": ours, "scipy.ndimage": peer}
    before = dict(events.counts)
    for _ in range(rounds):
        for name in rng.permutation(list(fns)):
            walls[name].append(timed(fns[name])[0])
    warm_counts = events.since(before)
    scipy_s = statistics.median(walls["scipy.ndimage"])
    return {
        "size": size,
        "dtype": "float32",
        "sigmas": sigmas.tolist(),
        "rounds": rounds,
        "first_pass_s": first_s,
        "warm_pass": stats(walls["jaxconv"]),
        "scipy_pass": stats(walls["scipy.ndimage"]),
        "first_pass_over_scipy": first_s / scipy_s,
        "warm_pass_over_scipy": statistics.median(walls["jaxconv"]) / scipy_s,
        "compiles_first_pass": figure(first_counts["compiles"], 4),
        "traces_first_pass": first_counts["traces"],
        "compiles_warm_passes": warm_counts["compiles"],
        "jaxconv_rel_error": max(map(_bench.rel_error, first, ref)),
        "scipy_rel_error": max(map(_bench.rel_error, peer(), ref)),
    }


def tile_data(size: int, tile: int, rng: np.random.Generator) -> dict[str, Any]:
    """A pair whose tiles are each blurred with their own Σ (σ 0.8–2.5 px, any angle)."""
    i, j = rng.integers(0, size + 1, 2)
    x = bench_fit.photo(2 * size)[i : i + size, j : j + size]
    n = size // tile
    y = np.empty_like(x)
    covs = np.empty((n, n, 2, 2))
    radii = np.empty((n, n), int)
    for a in range(n):
        for b in range(n):
            covs[a, b] = cov_of(*rng.uniform(0.8, 2.5, 2), rng.uniform(0, np.pi))
            full, radii[a, b] = blur(x, covs[a, b])  # the whole image, so the tile sees its halo
            win = np.s_[a * tile : (a + 1) * tile, b * tile : (b + 1) * tile]
            y[win] = full[win]
    return {"x": x, "y": y, "cov": covs, "radius": radii}


def tiles_twice(size: int, tile: int, events: Events, rng: np.random.Generator) -> dict:
    """Scenario 5: fit_gaussian_tiles on one pair, then on new data of the same layout."""
    out: dict[str, Any] = {"size": size, "tile": tile}
    for call in ("first", "second"):
        d = tile_data(size, tile, rng)
        before = dict(events.counts)
        ours_s, res = timed(
            lambda d=d: jaxconv.fit_gaussian_tiles(d["x"], d["y"], tile=tile, progress=False)
        )
        counts = events.since(before)
        n = size // tile
        win = [(a, b) for a in range(n) for b in range(n)]

        def loop(d=d, win=win) -> list:
            return [
                bench_fit.scipy_fit(
                    d["x"][a * tile : (a + 1) * tile, b * tile : (b + 1) * tile],
                    d["y"][a * tile : (a + 1) * tile, b * tile : (b + 1) * tile],
                    int(d["radius"][a, b]),
                )
                for a, b in win
            ]

        scipy_s, fits = timed(loop)
        peer_covs = np.stack([bench_fit.covariance(f.x) for f in fits]).reshape(n, n, 2, 2)
        out[call] = {
            "jaxconv_s": ours_s,
            "scipy_loop_s": scipy_s,
            "ratio": ours_s / scipy_s,
            "compiles": counts["compiles"],
            "traces": counts["traces"],
            "jaxconv_error": error(res.covariance, d["cov"]),
            "scipy_error": error(peer_covs, d["cov"]),
        }
    out["second_call_compiles"] = figure(out["second"]["compiles"], 0)
    return out


def checkout() -> dict[str, Any]:
    """The commit measured, and whether jaxconv/ differed from it (helpers edit it concurrently)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(root), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "jaxconv_modified": bool(git("status", "--porcelain", "--", "jaxconv")),
    }


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def print_results(r: dict[str, Any]) -> None:
    p = r["in_process"]
    rows = [
        [
            str(i + 1),
            "/".join(f"{s:.2f}" for s in f["sigmas"]),
            f"{f['jaxconv_s']:.3f}",
            str(f["compiles"]),
            f"{f['scipy_s']:.3f}",
            f"{f['ratio']:.2f}",
            f"{f['jaxconv_error']:.1e}",
            f"{f['scipy_error']:.1e}",
        ]
        for i, f in enumerate(p["fits"])
    ]
    header = [
        "fit",
        "σ1/σ2",
        "jaxconv s",
        "compiles",
        "scipy s",
        "ratio",
        "err jaxconv",
        "err scipy",
    ]
    _bench.print_table("1. fit_gaussian, consecutive new pairs in one process", header, rows)
    fp = r["fresh_process"]
    rows = [
        [
            k,
            f"{fp[k]['median_s']:.2f}",
            f"{fp[k]['import_s']:.2f}",
            f"{fp[k]['sum_of_fits_s']:.2f}",
            str(fp[k].get("xla_compilations", "-")),
        ]
        for k in ("jaxconv, no cache", "jaxconv, cache warm", "scipy")
    ]
    _bench.print_table(
        "2-3. the whole sequence in a fresh process (median wall s)",
        ["script", "process s", "imports s", "fits s", "XLA compilations"],
        rows,
    )
    sw, t = r["filter_sweep"], r["tiles"]
    print(
        f"\n4. gaussian_filter sweep ({len(sw['sigmas'])} σ): first pass {sw['first_pass_s']:.2f} s"
        f" ({sw['compiles_first_pass']['value']} compilations), warm "
        f"{sw['warm_pass']['median_s']:.3f} s, scipy.ndimage {sw['scipy_pass']['median_s']:.3f} s"
    )
    print(
        f"5. fit_gaussian_tiles: first {t['first']['jaxconv_s']:.2f} s, second "
        f"{t['second']['jaxconv_s']:.2f} s ({t['second']['compiles']} compilations); scipy "
        f"loop {t['first']['scipy_loop_s']:.2f} s, {t['second']['scipy_loop_s']:.2f} s"
    )
    print(
        "\ntargets: "
        + ", ".join(
            f"{k} {v['value']:.3g} {v['target']}: {'yes' if v['met'] else 'NO'}"
            for k, v in r["targets"].items()
        )
    )


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench_script.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write results (JSON) here")
    parser.add_argument("--quick", action="store_true", help="3 fits, 5 σ, one round: < 1 min")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fits", type=int, default=None, help="pairs in the sequence (8)")
    parser.add_argument("--sigmas", type=int, default=None, help="σ values in the sweep (20)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="fresh-process rounds and sweep passes (3)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="scipy fits per pair (3)")
    args = parser.parse_args(argv)
    if args.fits is not None and args.fits < 2:
        parser.error(
            f"`--fits` must be at least 2 (a first fit and the ones after it); got {args.fits}."
        )
    args.fits = args.fits or (3 if args.quick else 8)
    args.sigmas = args.sigmas or (5 if args.quick else 20)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.repeats = args.repeats or (1 if args.quick else 3)
    size, tiles_size = 256, 128 if args.quick else 256
    rng = np.random.default_rng(args.seed)
    host = _bench.machine()
    host["uptime_start"] = uptime()
    print(f"jaxconv {jaxconv.__version__}, jax {jax.__version__}, {jax.devices()[0]}")
    print(host["uptime_start"])
    results: dict[str, Any] = {}
    payload = {
        "benchmark": "bench_script",
        "config": {
            "quick": args.quick,
            "seed": args.seed,
            "fits": args.fits,
            "size": size,
            "dtype": "float64",
            "sigmas": args.sigmas,
            "rounds": args.rounds,
            "scipy_repeats": args.repeats,
            "tiles_size": tiles_size,
            "tile": 64,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        },
        "versions": {**_bench.versions(), "checkout": checkout()},
        "machine": host,
        "results": results,
    }
    events = Events()
    pairs = make_pairs(args.fits, size, rng)
    steps = {
        "in_process": lambda: in_process(pairs, events, args.repeats),
        "fresh_process": lambda: fresh_processes(pairs, args.rounds, rng),
        "filter_sweep": lambda: filter_sweep(
            512, np.geomspace(0.5, 16, args.sigmas), events, args.rounds, rng
        ),
        "tiles": lambda: tiles_twice(tiles_size, 64, events, rng),
    }
    for name, step in steps.items():
        print(f"\n== {name}", flush=True)
        results[name] = step()
        if args.out is not None:
            _bench.write_json(args.out, payload, argv, complete=False)
    fp, sw = results["fresh_process"], results["filter_sweep"]
    payload["targets"] = {
        "fits after the first / scipy (max)": results["in_process"]["max_ratio_after_first"],
        "fresh process, no cache / scipy": fp["no_cache_over_scipy"],
        "fresh process, cache warm / scipy": fp["cache_warm_over_scipy"],
        "gaussian_filter sweep compilations": sw["compiles_first_pass"],
        "fit_gaussian_tiles second call compilations": results["tiles"]["second_call_compiles"],
    }
    host["uptime_end"] = uptime()
    print_results({**results, "targets": payload["targets"]})
    if args.out is not None:
        _bench.write_json(args.out, payload, argv)
    return payload


if __name__ == "__main__":
    main()
