"""``jaxconv fit``: recover a blur or an edge filter from an (image, target) pair, from the shell.

The target is a file, or is made from the image with a known covariance (``--blur``) or edge
filter (``--edge``), optionally with noise; then the known truth is printed next to the estimate.
Writes ``fit.json`` (parameters, standard errors, truth, loss, status, timings) and ``fit.png``.
:func:`check_fit` checks every argument and reads the inputs without JAX; :func:`fit_command`
then builds the target and fits.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

import jaxconv
from jaxconv import io as _io
from jaxconv._cli.args import UsageError, check_positive, check_writable

# The target's Gaussian kernel reaches 8 σ along each axis: the mass it leaves out is < 1e-14, and
# it covers the kernel fit_gaussian sizes for the true blur (mass 1e-8 with a margin 1.25: 7.2 σ).
_KERNEL_SIGMAS = 8.0
# GaussianEdge()'s kernel: radius ceil(6 σ) at its starting σ = 1 (a test keeps the two equal).
_DOG_SIZE = 13


@dataclasses.dataclass(frozen=True)
class FitInputs:
    """What :func:`check_fit` read and settled: gray float64 images, the model, the blur."""

    model: str
    image: np.ndarray
    target: np.ndarray | None  # None: made from the image (--blur or --edge)
    cov: np.ndarray | None = None  # --blur's covariance
    radius: tuple[int, ...] | None = None  # of --blur's kernel


def parse_cov(text: str) -> np.ndarray:
    """``"v"`` (isotropic variance), ``"Sxx,Sxy,Syy"`` or ``"Sxx,Sxy,Syx,Syy"`` -> (2, 2)."""
    try:
        v = [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError:
        v = []
    if len(v) == 1:
        cov = np.eye(2) * v[0]
    elif len(v) == 3:
        cov = np.array([[v[0], v[1]], [v[1], v[2]]])
    elif len(v) == 4:
        cov = np.array(v).reshape(2, 2)
    else:
        raise UsageError(
            f'--blur: expected 1, 3 or 4 comma-separated numbers like "1,0.5,0.5,1"; got {text!r}.'
        )
    if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T):
        raise UsageError(
            f"--blur: the covariance must be symmetric and finite; got {cov.tolist()}."
        )
    if np.linalg.eigvalsh(cov).min() <= 0:
        raise UsageError(f"--blur: the covariance must be positive definite; got {cov.tolist()}.")
    return cov


def read_input(flag: str, path: Path) -> np.ndarray:
    """Reads an input file as a gray float64 image; a usage error naming `flag` if it cannot.

    A colour image is converted with load_image's own luma weights, with a note on stderr.
    """
    try:
        image = _io.load_image(path, as_gray=False)
    except (OSError, ValueError, TypeError) as err:
        message = str(err)
        if message.startswith("load_image: `path`"):  # "`path` must be ...; got ..."
            message = flag + message.removeprefix("load_image: `path`")
        elif isinstance(err, OSError) and err.strerror:
            message = f"{flag} cannot be read ({err.strerror}); got '{path}'."
        else:
            message = f"{flag}: {message}"
        raise UsageError(message) from None
    if image.ndim == 3:
        kind = "RGBA" if image.shape[-1] == 4 else "RGB"
        print(f"jaxconv fit: note: {flag} '{path}' is {kind}: converted {kind} to gray with ITU-R "
              "BT.601 luma (0.299 R + 0.587 G + 0.114 B)"
              + (", alpha dropped" if kind == "RGBA" else ""), file=sys.stderr)  # fmt: skip
        image = image[..., :3] @ _io._LUMA_601
    return image


def blur_radius(cov: np.ndarray, shape: tuple[int, ...], text: str) -> tuple[int, ...]:
    """The target kernel's radius per axis; a usage error if that kernel does not fit the image."""
    radius = tuple(math.ceil(_KERNEL_SIGMAS * math.sqrt(v)) for v in np.diag(cov))
    if any(2 * r + 1 > n for r, n in zip(radius, shape, strict=True)):
        largest = min(((n - 1) // 2 / _KERNEL_SIGMAS) ** 2 for n in shape)
        raise UsageError(
            f"--blur is too wide for the image of shape {shape}: its kernel (radius {radius}, "
            f"{_KERNEL_SIGMAS:g} σ per axis) must fit in it; got {text!r}. Use variances up to "
            f"{largest:.3g}, or a larger --image."
        )
    return radius


def check_fit(args: argparse.Namespace) -> FitInputs:
    """Checks every `jaxconv fit` argument and reads the inputs, without JAX.

    Raises:
        UsageError: naming the flag at fault.
    """
    model = args.model or ("free" if args.edge else "gaussian")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be a positive int; got {args.steps}.")
    if not args.noise >= 0 or not math.isfinite(args.noise):
        raise UsageError(f"--noise must be >= 0 and finite; got {args.noise}.")
    if args.size is not None and (model != "free" or args.size < 1):
        raise UsageError(
            f"--size must be a positive int, and only goes with --model free; got --size "
            f"{args.size} with --model {model}."
        )
    if args.axis is not None and args.edge is None:
        raise UsageError(f"--axis only goes with --edge; got --axis {args.axis} without it.")
    if args.learning_rate is not None and args.optimizer != "adam":
        raise UsageError(
            "--learning-rate only goes with --optimizer adam (lm and lbfgs size their own "
            f"steps); got --optimizer {args.optimizer}."
        )
    check_positive("--learning-rate", args.learning_rate)
    cov = None if args.blur is None else parse_cov(args.blur)
    check_writable("--out", args.out, folder=True)
    if args.checkpoint is not None:
        check_writable("--checkpoint", args.checkpoint, folder=False)
    image = _io.default_image() if args.image is None else read_input("--image", args.image)
    target = None if args.target is None else read_input("--target", args.target)
    if target is not None and target.shape != image.shape:
        raise UsageError(f"--target must have the image's shape {image.shape}; got {target.shape}.")
    if model == "free" and (args.size or 3) > min(image.shape):
        raise UsageError(
            f"--size must be at most the image's smaller side {min(image.shape)}; "
            f"got {args.size or 3}."
        )
    if model == "dog" and _DOG_SIZE > min(image.shape):
        raise UsageError(
            f"--model dog needs an image of at least {_DOG_SIZE}×{_DOG_SIZE} pixels (its "
            f"kernel's size); got shape {image.shape}."
        )
    radius = None if cov is None else blur_radius(cov, image.shape, args.blur)
    return FitInputs(model, image, target, cov, radius)


def _data(args: argparse.Namespace, inputs: FitInputs) -> tuple[np.ndarray, np.ndarray, dict]:
    """The image, the target and what is known about the truth."""
    dtype = np.dtype(args.dtype)
    image = inputs.image.astype(dtype)
    truth: dict[str, Any] = {}
    if inputs.target is not None:
        target = inputs.target.astype(dtype)
    elif inputs.cov is not None:
        kernel = jaxconv.gaussian_kernel(inputs.cov.astype(dtype), radius=inputs.radius)
        target = np.asarray(jaxconv.convolve(image, kernel, mode="same", boundary="symm"))
        truth = {"covariance": inputs.cov}
    else:
        axis = 1 if args.axis is None else args.axis
        target = np.asarray(getattr(jaxconv, args.edge)(image, axis=axis))
        kernel = np.asarray(getattr(jaxconv, f"{args.edge}_kernel")(axis=axis))
        size = args.size or 3
        if inputs.model == "free" and size % 2 and size > 3:  # centred in the larger kernel
            kernel = np.pad(kernel, (size - 3) // 2)
        truth = {"kernel": kernel}
    if args.noise > 0:
        rng = np.random.default_rng(args.seed)
        target = target + args.noise * rng.standard_normal(target.shape).astype(dtype)
    return image, target, truth


def _fit(args: argparse.Namespace, model: str, image: np.ndarray, target: np.ndarray) -> Any:
    import jax

    options = {
        "optimizer": args.optimizer,
        "steps": args.steps,
        "learning_rate": args.learning_rate,
        "progress": args.progress,
        "checkpoint": None if args.checkpoint is None else os.fspath(args.checkpoint),
    }
    if model == "gaussian":
        return jaxconv.fit_gaussian(image, target, **options)
    if model == "free":
        size = args.size or 3
        # LM solves this linear problem from zeros at once; gradient methods start from noise.
        init = None if args.optimizer == "lm" else "random"
        spec = jaxconv.FreeKernel((size, size), init_kernel=init)
    else:
        spec = jaxconv.GaussianEdge()
    return jaxconv.fit(spec, image, target, key=jax.random.PRNGKey(args.seed), **options)


def _fmt(value: Any, err: Any) -> str:
    """A number or nested list, each entry as ``value ± err`` when `err` is given."""
    v = np.asarray(value, float)
    e = None if err is None else np.asarray(err, float)
    if v.ndim == 0:
        return f"{float(v):.6g}" + ("" if e is None else f" ± {float(e):.2g}")
    parts = [_fmt(v[i], None if e is None else e[i]) for i in range(v.shape[0])]
    return "[" + ", ".join(parts) + "]"


def _print_entry(name: str, width: int, value: Any, err: Any) -> None:
    value = np.asarray(value)
    if value.ndim < 2:
        print(f"  {name:<{width}}  {_fmt(value, err)}")
        return
    for i, row in enumerate(value):  # a matrix, one row per line
        label = name if i == 0 else ""
        print(f"  {label:<{width}}  {_fmt(row, None if err is None else np.asarray(err)[i])}")


def _report(model: str, res: Any, truth: dict[str, Any]) -> dict[str, Any]:
    """Prints the recovered parameters ± standard errors; returns them for fit.json."""
    derived = {k: np.asarray(v) for k, v in res.derived.items()}
    stderr = {k: np.asarray(v) for k, v in (res.stderr or {}).items()}
    if "angle" in derived:
        derived["angle_deg"] = np.degrees(derived.pop("angle"))
        if "angle" in stderr:
            stderr["angle_deg"] = np.degrees(stderr.pop("angle"))
    if "theta" in derived:  # θ is 2π-periodic (θ + π with the opposite gain is the same filter)
        derived["theta_deg"] = np.degrees(derived.pop("theta")) % 360.0
        if "theta" in stderr:
            stderr["theta_deg"] = np.degrees(stderr.pop("theta"))
    print(f"jaxconv fit: model {model}, optimizer {res.optimizer}: {res.status} after "
          f"{res.steps} steps, loss {float(res.loss):.4g}, {res.wall_time:.1f} s "
          f"({res.compile_time:.1f} s compiling)")  # fmt: skip
    if isinstance(res, jaxconv.GaussianFitResult):
        print(f"  (kernel discretisation assumed: {res.discretization!r}, radius {res.radius})")
    width = max(len(k) for k in [*derived, *("true " + t for t in truth)])
    for name, value in derived.items():
        _print_entry(name, width, value, stderr.get(name))
    for name, value in truth.items():
        _print_entry("true " + name, width, value, None)
        if name in derived and np.shape(derived[name]) == np.shape(value):
            print(f"  {'max |error|':<{width}}  {np.max(np.abs(derived[name] - value)):.3g}")
    return {"estimate": derived, "stderr": stderr, "truth": truth}


def _figure(model: str, res: Any, truth: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    import jaxconv.plot as jplot

    panels = 3 if (truth or model == "gaussian") else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
    loss = np.asarray(res.history)
    jplot.loss_curve(loss, ax=axes[0], log=bool(np.all(loss > 0)))
    jplot.kernel(np.asarray(res.model.kernel(res.params)), ax=axes[1], title="fitted kernel")
    if model == "gaussian":
        cov = np.asarray(res.derived["covariance"])
        if "covariance" in truth:
            jplot.covariance_comparison(truth["covariance"], cov, ax=axes[2])
        else:
            jplot.covariance_ellipse(cov, ax=axes[2], label="fitted")
            axes[2].set_title("fitted covariance (2σ)")
    elif "kernel" in truth:
        jplot.kernel(truth["kernel"], ax=axes[2], title="true kernel")
    fig.tight_layout()
    jplot.save_figure(fig, path)
    plt.close(fig)


def fit_command(args: argparse.Namespace, inputs: FitInputs) -> int:
    """Runs ``jaxconv fit`` on what :func:`check_fit` returned; returns the exit status."""
    image, target, truth = _data(args, inputs)
    model = inputs.model
    res = _fit(args, model, image, target)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = _report(model, res, truth)
    record = {
        "model": model,
        "optimizer": res.optimizer,
        "status": res.status,
        "message": res.message,
        "steps": res.steps,
        "loss": res.loss,
        "wall_time_s": res.wall_time,
        "compile_time_s": res.compile_time,
        "image": "shipped photo" if args.image is None else os.fspath(args.image),
        "target": os.fspath(args.target) if args.target else (args.blur or args.edge),
        "noise_std": args.noise,
        "history": res.history,
        **report,
    }
    _io.save_json_atomic(out / "fit.json", record)
    _figure(model, res, truth, out / "fit.png")
    print(f"jaxconv fit: wrote {out / 'fit.json'} and {out / 'fit.png'}")
    return 0
