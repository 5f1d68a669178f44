"""Multi-host example: a Gaussian filter and a convolution of one image split over every device.

The same script runs as one process on one host (all of its devices) or as one process per host
of a cluster, joined by ``jax.distributed.initialize``. Each process builds only the rows of the
global image its devices hold (``jax.make_array_from_callback``), jaxconv.sharded filters them with
a halo exchange between neighbouring devices (across hosts where blocks meet at a host boundary),
and each process checks its own rows against scipy.ndimage / scipy.signal computed from the same
deterministic image. Process 0 writes ``results.json``.

One host, several devices (CPU devices are simulated with an XLA flag; GPUs/TPUs are used as
they are)::

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python experiments/multihost_example.py

Several processes, here two on one machine with 4 CPU devices each (on a cluster, run one per host
with its own ``--process-id`` and the first host's address as ``--coordinator``)::

    python experiments/multihost_example.py --coordinator localhost:12355 \\
        --num-processes 2 --process-id 0 --local-devices 4 &
    python experiments/multihost_example.py --coordinator localhost:12355 \\
        --num-processes 2 --process-id 1 --local-devices 4

On SLURM, Open MPI or a Cloud TPU pod, ``--auto`` lets ``jax.distributed.initialize()`` read the
cluster's environment instead. Options: ``--size`` (rows and columns of the image), ``--sigma``,
``--out``, ``--seed`` and ``--quick`` (a small image).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--coordinator", help="host:port of process 0 (several processes)")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--local-devices", type=int, default=None, help="CPU devices per process")
    parser.add_argument("--auto", action="store_true", help="jax.distributed.initialize() as is")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--sigma", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("results") / "multihost_example")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a 128 x 96 image")
    return parser.parse_args(argv)


def image(rows: slice, cols: slice, seed: int, shape: tuple[int, int]) -> Any:
    """Rows and columns of a deterministic global test image: smooth waves plus hashed noise.

    Any process computes any part of it without the rest, as a cluster would read its own tiles.
    """
    import numpy as np

    r = np.arange(shape[0])[rows][:, None].astype(np.float64)
    c = np.arange(shape[1])[cols][None, :].astype(np.float64)
    waves = np.sin(2 * np.pi * r / 37.0) * np.cos(2 * np.pi * c / 23.0)
    noise = np.sin((r * 12.9898 + c * 78.233 + seed) * 43758.5453) % 1.0
    return waves + 0.5 * noise


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.local_devices is not None:  # before JAX starts: simulated CPU devices
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=" + str(
            args.local_devices
        )
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    jax.config.update("jax_enable_x64", True)
    if args.auto:
        jax.distributed.initialize()
    elif args.num_processes > 1:
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    import numpy as np
    import scipy.ndimage as ndi
    import scipy.signal as ss
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    import jaxconv.sharded

    shape = (128, 96) if args.quick else (args.size, args.size)
    n = jax.device_count()
    if shape[0] % n:
        raise SystemExit(f"--size {shape[0]} must be a multiple of the device count {n}.")
    # One mesh axis over every device of every process, in process order, so that each process
    # holds a contiguous band of rows.
    mesh = Mesh(np.asarray(jax.devices()), ("rows",))
    sharding = NamedSharding(mesh, P("rows", None))
    x = jax.make_array_from_callback(
        shape, sharding, lambda index: image(index[0], index[1], args.seed, shape)
    )
    kernel = np.outer([1.0, 4.0, 6.0, 4.0, 1.0], [1.0, 2.0, 0.0, -2.0, -1.0]) / 16.0

    timings = {}
    t0 = time.perf_counter()
    blurred = jaxconv.sharded.gaussian_filter(x, args.sigma, mode="wrap")  # layout from `x`
    blurred.block_until_ready()
    timings["gaussian_filter_first_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    edges = jaxconv.sharded.convolve2d(x, kernel, "same", "symm")
    edges.block_until_ready()
    timings["convolve2d_first_s"] = time.perf_counter() - t0

    # Each process checks the rows it holds against scipy on the whole (reproducible) image.
    full = image(slice(None), slice(None), args.seed, shape)
    references = {
        "gaussian_filter": (blurred, ndi.gaussian_filter(full, args.sigma, mode="wrap")),
        "convolve2d": (edges, ss.convolve2d(full, kernel, "same", "symm")),
    }
    errors = {}
    for name, (out, ref) in references.items():
        worst = 0.0
        for shard in out.addressable_shards:
            worst = max(worst, float(np.abs(np.asarray(shard.data) - ref[shard.index]).max()))
        errors[name] = worst / float(np.abs(ref).max())
    # Every process's worst error, gathered across hosts.
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(np.asarray(list(errors.values())))
    worst = np.asarray(gathered).reshape(-1, len(errors)).max(axis=0)

    results = {
        "config": {**{k: str(v) for k, v in vars(args).items()}, "shape": list(shape)},
        "devices": n,
        "processes": jax.process_count(),
        "local_devices": jax.local_device_count(),
        "backend": jax.default_backend(),
        "mesh": {str(k): int(v) for k, v in mesh.shape.items()},
        "rel_error": dict(zip(errors, map(float, worst), strict=True)),
        "timings_s": timings,
    }
    print(f"process {jax.process_index()}: {json.dumps(results['rel_error'])}", flush=True)
    if jax.process_index() == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
        print(json.dumps(results, indent=1))
    ok = all(e <= 1e-12 for e in results["rel_error"].values())
    if not ok:
        print("error above 1e-12", file=sys.stderr)
    return results


if __name__ == "__main__":
    sys.exit(0 if all(v <= 1e-12 for v in main()["rel_error"].values()) else 1)
