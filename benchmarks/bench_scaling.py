"""Weak and strong scaling of jaxconv.sharded over 1, 2, 4 and 8 devices.

Two workloads, each a float32 Gaussian filter (σ = 3, ``mode="reflect"``, scipy's kernel radius
12) through :mod:`jaxconv.sharded`, the input placed on the mesh beforehand (``jax.device_put``
with a ``NamedSharding``) so that only the filter is timed:

* **spatial** — one image split into row blocks with a halo exchange (``lax.ppermute``).
  Strong: a ``size × size`` image whatever the device count; weak: ``size / 8`` rows per device
  (so both meet at 8 devices).
* **batch** — a stack of ``size/2 × size/2`` images, ``axes=(1, 2)``, sharded along the stack.
  Strong: 8 images; weak: one image per device.

Each device count runs in its own process, with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and ``JAX_PLATFORMS=cpu``. Reported: median
time, speedup ``t1 / tN`` and efficiency ``t1 / (N tN)`` (strong), ``t1 / tN`` (weak); every
output is checked against scipy.ndimage (float64), and the N = 1 run also times the plain
single-device function.

**On CPU this measures overheads only.** The forced host "devices" are one process's threads
sharing the machine's cores (2 on the development machine), so there is little or no extra compute
to scale onto: the numbers show what sharding costs (halo exchange, per-device dispatch, smaller
blocks); a strong-scaling efficiency falling towards ``1 / N`` is the expected outcome, and a gain
up to the core count is XLA:CPU running one device per core. Run it on a multi-GPU or TPU host
(without the flag, ``--platform gpu``) for real scaling.

Usage::

    python benchmarks/bench_scaling.py                 # 1024² strong / 128 rows per device weak
    python benchmarks/bench_scaling.py --quick         # 256², 3 repeats
    python benchmarks/bench_scaling.py --sizes 2048 --out results/scaling.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _bench

DEVICE_COUNTS = (1, 2, 4, 8)
SIGMA = 3.0
_WORKER_ENV = "JAXCONV_SCALING_WORKER"


def _problems(size: int, n: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    """(workload, kind) -> (sharded axis role, input shape) for `n` devices."""
    half = max(size // 2, 8)
    return {
        "spatial strong": ("spatial", (size, size)),
        "spatial weak": ("spatial", (max(size // 8, 8) * n, size)),
        "batch strong": ("batch", (8, half, half)),
        "batch weak": ("batch", (n, half, half)),
    }


def _worker(config: dict[str, Any]) -> dict[str, Any]:
    """Times every problem on this process's devices (run with the XLA flag set)."""
    import jax
    import numpy as np
    import scipy.ndimage as ndi
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    import jaxconv
    import jaxconv.sharded

    n = jax.device_count()
    mesh = Mesh(np.asarray(jax.devices()), ("d",))
    rng = np.random.default_rng(config["seed"])
    records = []
    for name, (role, shape) in _problems(config["size"], n).items():
        x = rng.random(shape, dtype=np.float32)
        axes = (1, 2) if role == "batch" else None
        xs = jax.device_put(x, NamedSharding(mesh, P("d")))
        timing = _bench.time_call(
            lambda xs=xs, axes=axes: jaxconv.sharded.gaussian_filter(xs, SIGMA, axes=axes),
            config["repeats"],
            config["slow_s"],
        )
        out = jaxconv.sharded.gaussian_filter(xs, SIGMA, axes=axes)
        ref = ndi.gaussian_filter(x.astype(np.float64), SIGMA, axes=axes)
        record = {"problem": name, "devices": n, "shape": list(shape), **timing}
        record["rel_error"] = _bench.rel_error(out, ref)
        record["spec"] = str(out.sharding.spec)
        if n == 1:  # the plain single-device function, for the cost of the sharded machinery
            single = _bench.time_call(
                lambda x=x, axes=axes: jaxconv.gaussian_filter(x, SIGMA, axes=axes),
                config["repeats"],
                config["slow_s"],
            )
            record["unsharded_median_ms"] = single["median_ms"]
        records.append(record)
    return {"records": records, "machine": _bench.machine()}


def _spawn(n: int, config: dict[str, Any], platform: str) -> dict[str, Any]:
    env = dict(os.environ, JAX_PLATFORMS=platform)
    env[_WORKER_ENV] = json.dumps(config)
    if platform == "cpu":
        flags = env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}"
        env["XLA_FLAGS"] = flags.strip()
    else:  # real accelerators: the first n of them
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(n))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"worker with {n} devices failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tables(records: list[dict[str, Any]], size: int) -> None:
    by = {(r["problem"], r["devices"]): r for r in records}
    for problem in _problems(size, 1):
        base = by.get((problem, 1))
        if base is None:
            continue
        strong = problem.endswith("strong")
        rows = []
        for n in DEVICE_COUNTS:
            r = by.get((problem, n))
            if r is None:
                continue
            speedup = base["median_ms"] / r["median_ms"]
            eff = speedup / n if strong else speedup
            rows.append(
                [
                    str(n),
                    "x".join(map(str, r["shape"])),
                    f"{r['median_ms']:.2f}",
                    _bench.fmt_ratio(speedup) if strong else "-",
                    f"{eff:.2f}",
                    f"{r['rel_error']:.1e}",
                ]
            )
        header = ["devices", "shape", "median ms", "speedup", "efficiency", "rel err"]
        single = base.get("unsharded_median_ms")
        title = f"{problem} scaling (unsharded 1-device call: {single:.2f} ms)"
        _bench.print_table(title, header, rows)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark (one worker process per device count); returns the JSON payload."""
    config_env = os.environ.get(_WORKER_ENV)
    if config_env is not None:
        result = _worker(json.loads(config_env))
        print(json.dumps(result, default=float))
        return result
    parser_argv = list(sys.argv[1:] if argv is None else argv)
    platform = "cpu"
    if "--platform" in parser_argv:
        i = parser_argv.index("--platform")
        platform = parser_argv[i + 1]
        del parser_argv[i : i + 2]
    args = _bench.parse_args("bench_scaling", __doc__, parser_argv)
    if "--sizes" in parser_argv:
        size = args.sizes[0]
    else:
        size = 256 if args.quick else 1024
    config = {"size": size, "repeats": args.repeats, "slow_s": args.slow_s, "seed": args.seed}
    records, machines = [], {}
    for n in DEVICE_COUNTS:
        result = _spawn(n, config, platform)
        records += result["records"]
        machines[n] = result["machine"]
    print("On CPU the devices share the host's cores: these numbers show overheads, not speedup.")
    _tables(records, size)
    payload = {
        "benchmark": "bench_scaling",
        "config": {**config, "sigma": SIGMA, "device_counts": DEVICE_COUNTS, "platform": platform},
        "records": records,
        "machine": machines[DEVICE_COUNTS[-1]],
        "versions": _bench.versions(),
        "note": "CPU host-platform devices share the machine's cores: overheads only.",
    }
    if args.out is not None:
        _bench.write_json(args.out, payload, argv)
    return payload


if __name__ == "__main__":
    main()
