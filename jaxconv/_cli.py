"""The ``jaxconv`` command line: ``demo``, ``fit`` and ``bench``.

``jaxconv demo`` reproduces the seed notebook's figures with jaxconv and shows filters learned;
``jaxconv fit`` recovers a blur or an edge filter from an (image, target) pair; ``jaxconv bench``
runs the convolution benchmark table. Exit codes: 0 success, 1 a runtime error (one line on
stderr, no traceback; set ``JAXCONV_TRACEBACK=1`` to see it), 2 a usage error or a requested device
that is not present, 130 interrupted. Compiled programs are cached on disk (see
:func:`enable_compilation_cache`), which makes every run after the first much faster.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from jaxconv import __version__

_EXAMPLES = """\
examples:
  jaxconv demo                          # every figure, a learned blur and edge filter (~1 min)
  jaxconv demo --quick --out /tmp/d     # the same, smaller (seconds)
  jaxconv fit --blur 1,0.5,0.5,1        # recover the seed's covariance from the shipped photo
  jaxconv fit --edge sobel --model free --noise 0.01
  jaxconv fit --image a.png --target b.png --model gaussian --optimizer adam --steps 300
  jaxconv bench --quick                 # the convolution benchmark table
"""


class UsageError(Exception):
    """A problem with the command line that argparse cannot see; exit code 2."""


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS lets the options go before or after the sub-command without one default hiding
    # the other; _defaults() fills in what neither gave.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--device",
        choices=("auto", "cpu", "gpu"),
        default=argparse.SUPPRESS,
        help="where JAX runs (default: auto, JAX's default backend)",
    )
    common.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default=argparse.SUPPRESS,
        help="floating point precision (default: float64)",
    )
    common.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=argparse.SUPPRESS,
        help="hide progress bars",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="jaxconv",
        description="Differentiable convolution, Gaussian and edge filters, and filter fitting "
        "in JAX.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"jaxconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="reproduce the seed's figures and learn a blur and an edge filter",
        description="Reproduces every figure of the seed notebook with jaxconv (1-D normal ⊛ "
        "uniform, the Gaussian contour, the photo blurred with the 30×30 kernel, Sobel and "
        "Prewitt edges), then learns a blur and an edge filter, writing figures, an animation "
        "and results.json.",
    )
    demo.add_argument("--out", type=Path, default=Path("jaxconv-demo"), help="output folder")
    demo.add_argument("--quick", action="store_true", help="a smaller, faster run (seconds)")
    demo.add_argument("--seed", type=int, default=0, help="random seed")

    fit = sub.add_parser(
        "fit",
        parents=[common],
        help="recover a blur or edge filter from an (image, target) pair",
        description="Fits a filter so that filtering IMAGE reproduces the target, and prints "
        "the recovered parameters ± standard errors. The target is a file (--target), or made "
        "from the image with a known blur (--blur) or edge filter (--edge).",
    )
    fit.add_argument("--image", type=Path, help="sharp image (default: the shipped photo)")
    target = fit.add_mutually_exclusive_group(required=True)
    target.add_argument("--target", type=Path, help="observed (filtered) image file")
    target.add_argument(
        "--blur", metavar="COV", help='make the target with this covariance, e.g. "1,0.5,0.5,1"'
    )
    target.add_argument(
        "--edge", choices=("sobel", "prewitt"), help="make the target with this edge filter"
    )
    fit.add_argument("--axis", type=int, choices=(0, 1), default=1, help="--edge axis (default 1)")
    fit.add_argument(
        "--model",
        choices=("gaussian", "free", "dog"),
        help="filter model (default: gaussian for a blur, free for an edge map)",
    )
    fit.add_argument("--size", type=int, help="kernel size for --model free (default 3)")
    fit.add_argument("--noise", type=float, default=0.0, help="add N(0, S²) noise to the target")
    fit.add_argument("--steps", type=int, help="maximum optimiser steps")
    fit.add_argument(
        "--optimizer", choices=("lm", "adam", "lbfgs"), default="lm", help="default: lm"
    )
    fit.add_argument("--checkpoint", type=Path, help="checkpoint file; resumes if it exists")
    fit.add_argument("--out", type=Path, default=Path("jaxconv-fit"), help="output folder")
    fit.add_argument("--seed", type=int, default=0, help="random seed (noise, initialisation)")

    sub.add_parser(
        "bench",
        parents=[common],
        help="run the convolution benchmark table against installed peers",
        description="Runs benchmarks/bench_convolve.py (from a source checkout) and prints its "
        "table; arguments jaxconv does not know are passed to it (e.g. `jaxconv bench --quick`, "
        "`jaxconv bench -- --help`).",
    )
    return parser


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    for name, value in (("device", "auto"), ("dtype", "float64"), ("progress", True)):
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


def select_device(device: str) -> Any:
    """Makes `device` ("auto", "cpu" or "gpu") JAX's default; returns the device.

    Raises:
        UsageError: the requested kind of device is not present.
    """
    if device == "cpu":
        # Before the first computation this also stops JAX probing for accelerators.
        jax.config.update("jax_platforms", "cpu")
    if device == "auto":
        return jax.devices()[0]
    try:
        dev = jax.devices(device)[0]
    except RuntimeError:
        present = ", ".join(sorted({d.platform for d in jax.devices()}))
        raise UsageError(
            f"--device {device}: no {device.upper()} is visible to JAX (present: {present}). "
            "Install a CUDA-enabled jaxlib (pip install -U 'jax[cuda12]') or use --device cpu."
        ) from None
    jax.config.update("jax_default_device", dev)
    return dev


def _find_benchmark() -> Path | None:
    candidates = [Path.cwd() / "benchmarks", Path(__file__).resolve().parent.parent / "benchmarks"]
    for folder in candidates:
        if (folder / "bench_convolve.py").is_file():
            return folder / "bench_convolve.py"
    return None


def _bench(args: argparse.Namespace) -> int:
    path = _find_benchmark()
    if path is None:
        raise RuntimeError(
            "jaxconv bench needs benchmarks/bench_convolve.py, which ships with the source "
            "repository, not the wheel; run it from a checkout."
        )
    argv = [a for a in args.bench_args if a != "--"]
    spec = importlib.util.spec_from_file_location("jaxconv_bench_convolve", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        try:
            spec.loader.exec_module(module)
        except ModuleNotFoundError as err:
            raise RuntimeError(
                f"the benchmark needs the peers it compares against (missing: {err.name}); "
                "install them with: pip install 'jaxconv[bench]'"
            ) from err
        if not hasattr(module, "main"):
            raise RuntimeError(f"{path} has no main(argv) function to call.")
        status = module.main(argv)  # prints the table; returns its results (or a status)
    finally:
        sys.path.remove(str(path.parent))
    return status if isinstance(status, int) else 0


def enable_compilation_cache() -> Path | None:
    """Keeps compiled XLA programs on disk, so a second ``jaxconv demo`` skips most compiles.

    The folder is ``$JAXCONV_CACHE_DIR`` (empty or ``off`` disables the cache), else
    ``$XDG_CACHE_HOME/jaxconv/xla`` or ``~/.cache/jaxconv/xla``. A cache the user configured for
    JAX already is left alone.
    """
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    folder = cache_folder()
    if folder is not None:
        jax.config.update("jax_compilation_cache_dir", os.fspath(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # ~100 small ones
    return folder


def cache_folder() -> Path | None:
    """The compilation cache folder from the environment, or None if turned off."""
    folder = os.environ.get("JAXCONV_CACHE_DIR")
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "jaxconv" / "xla"
    if folder.strip().lower() in ("", "off", "0", "none"):
        return None
    return Path(folder)


def _run(args: argparse.Namespace) -> int:
    select_device(args.device)
    enable_compilation_cache()
    if args.command == "bench":
        return _bench(args)  # the benchmark picks its own dtypes (float32)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    if args.command == "demo":
        from jaxconv._demo import run_demo

        run_demo(args.out, quick=args.quick, seed=args.seed, dtype=args.dtype,
                 progress=args.progress)  # fmt: skip
        return 0
    from jaxconv._cli_fit import fit_command

    return fit_command(args)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (argparse exits 2 on a usage error)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args = _defaults(args)
    args.bench_args = extra
    try:
        return _run(args)
    except UsageError as err:
        print(f"jaxconv {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jaxconv {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `jaxconv fit ... | head`: the reader left, nothing to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as err:
        if os.environ.get("JAXCONV_TRACEBACK"):
            raise
        print(f"jaxconv {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
