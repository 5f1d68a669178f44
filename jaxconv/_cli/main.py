"""The ``jaxconv`` command line: ``demo``, ``fit`` and ``bench``.

``jaxconv demo`` reproduces the seed notebook's figures with jaxconv and shows filters learned;
``jaxconv fit`` recovers a blur or an edge filter from an (image, target) pair; ``jaxconv bench``
runs the convolution benchmark table of a source checkout.

Each command checks all of its arguments first (flags and values, input files, output paths,
sizes), without importing JAX: this module and ``import jaxconv`` do not import it, so a usage
error is reported in milliseconds, before anything is computed or written. Compiled programs are
cached on disk (see :func:`enable_compilation_cache`), which makes every run after the first faster.

Exit codes:
  0    success.
  1    a runtime error: one line on stderr, no traceback (set ``JAXCONV_TRACEBACK=1`` to see it).
  2    a usage error, naming the flag: an unknown flag or bad value, a missing or unreadable input
       file, an ``--out`` or ``--checkpoint`` that cannot be written, a ``--blur`` too wide for the
       image. Found before JAX is imported, except a requested ``--device`` that is not present.
  130  interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxconv import __version__
from jaxconv import io as _io
from jaxconv._cli.args import UsageError, check_writable

_EXAMPLES = """\
examples:
  jaxconv demo                          # every figure, a learned blur and edge filter (~1 min)
  jaxconv demo --quick --out /tmp/d     # the same, smaller (seconds)
  jaxconv fit --blur 1,0.5,0.5,1        # recover the seed's covariance from the shipped photo
  jaxconv fit --edge sobel --model free --noise 0.01
  jaxconv fit --image a.png --target b.png --model gaussian --optimizer adam --steps 300
  jaxconv bench --quick                 # the convolution benchmark table
"""
_INPUTS = (
    "Input files (--image, --target) are read by jaxconv.load_image, by extension: text "
    f"({', '.join(_io._TEXT_SUFFIXES)}: one image row per line, numbers separated by spaces or, "
    "in .csv, commas), NumPy arrays (.npy; pickles are refused) and images decoded by Pillow "
    f"({', '.join(_io._IMAGE_SUFFIXES)}; 8- and 16-bit samples are scaled to [0, 1]). A colour "
    "image is converted to gray with the ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B (alpha "
    "dropped), and a note on stderr says so."
)
_MODELS = (
    "Models (--model): gaussian, a Gaussian blur with a full 2×2 covariance (fit_gaussian; prints "
    "the covariance, σ's and angle); free, every tap of a SIZE×SIZE kernel; dog, an oriented first "
    "Derivative Of a Gaussian, gain·(cos θ ∂x + sin θ ∂y)G_σ (jaxconv.GaussianEdge; prints σ, θ "
    "and the gain) -- not a difference of Gaussians."
)
_PROGRESS_DEFAULT = "shown when stderr is a terminal or in a notebook, never written to logs"
_CHECKOUT = Path(__file__).resolve().parents[2]  # the source checkout, if jaxconv runs from one
_SEED_LIMIT = 2**32  # numpy's default_rng and jax.random.PRNGKey both take any seed below this


def _paragraphs(*texts: str) -> str:
    return "\n\n".join(textwrap.fill(t, width=78) for t in texts)


def _common_options(*names: str) -> argparse.ArgumentParser:
    # SUPPRESS lets an option go before or after the sub-command without one default hiding the
    # other; _defaults() fills in what neither gave. It also hides the default from argparse's
    # help, so each help text states its default itself.
    common = argparse.ArgumentParser(add_help=False)
    if "device" in names:
        common.add_argument(
            "--device",
            choices=("auto", "cpu", "gpu"),
            default=argparse.SUPPRESS,
            help="where JAX runs (default: auto, JAX's default backend)",
        )
    if "dtype" in names:
        common.add_argument(
            "--dtype",
            choices=("float64", "float32"),
            default=argparse.SUPPRESS,
            help="floating point precision of images, kernels and fits (default: float64)",
        )
    if "progress" in names:
        common.add_argument(
            "--no-progress",
            dest="progress",
            action="store_false",
            default=argparse.SUPPRESS,
            help=f"hide progress bars (default: {_PROGRESS_DEFAULT})",
        )
    return common


# bench takes --device only: it times float32 (its peers' precision) and shows no progress bars.
_BENCH_REFUSES = {
    "dtype": ("--dtype", "it times float32, the precision of its peers"),
    "progress": ("--no-progress", "it shows no progress bars"),
}


def _parser() -> argparse.ArgumentParser:
    common = _common_options("device", "dtype", "progress")
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="jaxconv",
        description="Differentiable convolution, Gaussian and edge filters, and filter fitting "
        "in JAX. Run `jaxconv COMMAND --help` for a command's inputs, outputs and defaults.",
        epilog=_EXAMPLES,
        formatter_class=raw,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"jaxconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        formatter_class=raw,
        help="reproduce the seed's figures and learn a blur and an edge filter",
        description=_paragraphs(
            "Reproduces every figure of the seed notebook with jaxconv (1-D normal ⊛ uniform, "
            "the Gaussian contour, the shipped photo blurred with the 30×30 kernel, Sobel and "
            "Prewitt edges), then learns a blur and an edge filter.",
            "Writes into --out: numbered PNG figures and GIF animations of each stage "
            "(01_convolve_1d.png, ...), and results.json (every metric, the configuration, "
            "versions, device and timings). It reads no input: the photo ships with jaxconv.",
        ),
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("jaxconv-demo"),
        help="output folder (default: %(default)s)",
    )
    demo.add_argument(
        "--quick", action="store_true", help="a smaller, faster run, in seconds (default: off)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")

    fit = sub.add_parser(
        "fit",
        parents=[common],
        formatter_class=raw,
        help="recover a blur or edge filter from an (image, target) pair",
        description=_paragraphs(
            "Fits a filter so that filtering IMAGE reproduces the target, and prints the "
            "recovered parameters ± standard errors. The target is a file (--target), or made "
            "from the image with a known blur (--blur) or edge filter (--edge), and then the "
            "truth is printed next to the estimate.",
            _INPUTS,
            _MODELS,
            "Writes into --out: fit.json (estimate, standard errors, truth, loss history, status, "
            "timings) and fit.png (loss curve, fitted kernel, and the truth or the fitted "
            "covariance ellipse); with --checkpoint, also that file.",
        ),
    )
    fit.add_argument(
        "--image",
        type=Path,
        help="sharp image file (default: the shipped photo, 200×300 gray)",
    )
    target = fit.add_mutually_exclusive_group(required=True)
    target.add_argument("--target", type=Path, help="observed (filtered) image file, same shape")
    target.add_argument(
        "--blur",
        metavar="COV",
        help='make the target with this Gaussian covariance: "V" (isotropic variance), '
        '"Sxx,Sxy,Syy" or "Sxx,Sxy,Syx,Syy", e.g. "1,0.5,0.5,1"',
    )
    target.add_argument(
        "--edge",
        choices=("sobel", "prewitt"),
        help="make the target with this scipy.ndimage edge filter",
    )
    fit.add_argument(
        "--axis", type=int, choices=(0, 1), help="axis of the --edge filter (default: 1, columns)"
    )
    fit.add_argument(
        "--model",
        choices=("gaussian", "free", "dog"),
        help="filter model: gaussian blur, free kernel, or dog = derivative of Gaussian (not a "
        "difference of Gaussians); see above (default: gaussian for --blur and --target, free "
        "for --edge)",
    )
    fit.add_argument("--size", type=int, help="kernel size for --model free (default: 3)")
    fit.add_argument(
        "--noise",
        type=float,
        default=0.0,
        metavar="S",
        help="add N(0, S²) noise to the target (default: %(default)s)",
    )
    fit.add_argument(
        "--optimizer",
        choices=("lm", "adam", "lbfgs"),
        default="lm",
        help="lm: Levenberg-Marquardt; adam: Adam with a warmup-cosine schedule; lbfgs: optax's "
        "L-BFGS (default: %(default)s)",
    )
    fit.add_argument(
        "--steps", type=int, help="maximum optimiser steps (default: 100 for lm, else 300)"
    )
    fit.add_argument(
        "--learning-rate",
        type=float,
        metavar="LR",
        help="peak learning rate of --optimizer adam (default: the model's, 0.05)",
    )
    fit.add_argument(
        "--checkpoint",
        type=Path,
        help="checkpoint file, written during the fit; resumes if it exists (default: none)",
    )
    fit.add_argument(
        "--out", type=Path, default=Path("jaxconv-fit"), help="output folder (default: %(default)s)"
    )
    fit.add_argument(
        "--seed", type=int, default=0, help="random seed of noise and start (default: %(default)s)"
    )

    sub.add_parser(
        "bench",
        parents=[_common_options("device")],
        formatter_class=raw,
        help="run the convolution benchmark table against installed peers",
        description=_paragraphs(
            "Runs benchmarks/bench_convolve.py of the source checkout jaxconv is imported from "
            "(never a file of the current folder) and prints its table. It needs a checkout and "
            "the bench extra: pip install -e '.[bench]' in the checkout.",
            "Arguments jaxconv does not know are passed to it (e.g. `jaxconv bench --quick`; "
            "`jaxconv bench -- --help` lists them; `--out FILE` writes its results as JSON). It "
            "times float32, the precision its peers use, so --dtype does not apply.",
        ),
    )
    return parser


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    for name, value in (("device", "auto"), ("dtype", "float64"), ("progress", True)):
        if not hasattr(args, name) and not (args.command == "bench" and name in _BENCH_REFUSES):
            setattr(args, name, value)
    return args


def check_seed(seed: int) -> None:
    """A usage error unless `seed` is an int in ``[0, 2**32)``."""
    if not 0 <= seed < _SEED_LIMIT:
        raise UsageError(f"--seed must be an int in [0, 2**32); got {seed}.")


def select_device(device: str) -> Any:
    """Makes `device` ("auto", "cpu" or "gpu") JAX's default; returns the device.

    Raises:
        UsageError: the requested kind of device is not present.
    """
    import jax

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
    # Only the checkout this package is imported from: a path resolved from the working directory
    # would run whatever benchmarks/bench_convolve.py the current folder holds.
    script = _CHECKOUT / "benchmarks" / "bench_convolve.py"
    return script if (_CHECKOUT / "pyproject.toml").is_file() and script.is_file() else None


def _check_bench(args: argparse.Namespace) -> Path:
    for name, (flag, why) in _BENCH_REFUSES.items():
        given = hasattr(args, name) or any(
            a == flag or a.startswith(flag + "=") for a in args.bench_args
        )
        if given:
            raise UsageError(f"{flag} does not apply to bench: {why}.")
    path = _find_benchmark()
    if path is None:
        raise RuntimeError(
            "jaxconv bench runs benchmarks/bench_convolve.py of a source checkout, and this "
            f"jaxconv (imported from {Path(__file__).resolve().parent}) is installed without one; "
            "clone the repository and run `pip install -e '.[bench]'` in it."
        )
    return path


def _bench(path: Path, bench_args: Sequence[str]) -> int:
    argv = [a for a in bench_args if a != "--"]
    spec = importlib.util.spec_from_file_location("jaxconv_bench_convolve", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        try:
            spec.loader.exec_module(module)
        except ModuleNotFoundError as err:
            raise RuntimeError(
                f"the benchmark needs the peers it compares against (missing: {err.name}); "
                f"install them with: cd {_CHECKOUT} && pip install -e '.[bench]'"
            ) from err
        if not hasattr(module, "main"):
            raise RuntimeError(f"{path} has no main(argv) function to call.")
        status = module.main(argv)  # prints the table; returns its results (or a status)
    finally:
        sys.path.remove(str(path.parent))
    return status if isinstance(status, int) else 0


def _check(args: argparse.Namespace) -> Any:
    """Every check that needs no JAX; returns what the command needs (loaded inputs, a path)."""
    if args.command == "bench":
        return _check_bench(args)
    check_seed(args.seed)
    if args.command == "demo":
        check_writable("--out", args.out, folder=True)
        return None
    from jaxconv._cli.fit import check_fit

    return check_fit(args)


def _run(args: argparse.Namespace, checked: Any) -> int:
    import jax  # only now, with every argument checked

    from jaxconv._compile_cache import enable_compilation_cache

    select_device(args.device)
    enable_compilation_cache()  # on in the command line; off by default in the library
    if args.command == "bench":
        return _bench(checked, args.bench_args)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    if args.command == "demo":
        from jaxconv._cli.demo import run_demo

        run_demo(args.out, quick=args.quick, seed=args.seed, dtype=args.dtype,
                 progress=args.progress)  # fmt: skip
        return 0
    from jaxconv._cli.fit import fit_command

    return fit_command(args, checked)


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
        return _run(args, _check(args))
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
