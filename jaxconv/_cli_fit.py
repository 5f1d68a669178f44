"""``jaxconv fit``: recover a blur or an edge filter from an (image, target) pair, from the shell.

The target is a file, or is made from the image with a known covariance (``--blur``) or edge
filter (``--edge``), optionally with noise; then the known truth is printed next to the estimate.
Writes ``fit.json`` (parameters, standard errors, truth, loss, status, timings) and ``fit.png``.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxconv
from jaxconv._cli import UsageError
from jaxconv._io import default_image, load_image, save_json_atomic


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
    if not np.allclose(cov, cov.T) or not np.all(np.isfinite(cov)):
        raise UsageError(
            f"--blur: the covariance must be symmetric and finite; got {cov.tolist()}."
        )
    if np.linalg.eigvalsh(cov).min() <= 0:
        raise UsageError(f"--blur: the covariance must be positive definite; got {cov.tolist()}.")
    return cov


def _data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The image, the target and what is known about the truth."""
    dtype = np.dtype(args.dtype)
    image = (default_image() if args.image is None else load_image(args.image)).astype(dtype)
    truth: dict[str, Any] = {}
    if args.target is not None:
        target = load_image(args.target).astype(dtype)
        if target.shape != image.shape:
            raise ValueError(
                f"--target must have the image's shape {image.shape}; got {target.shape}."
            )
    elif args.blur is not None:
        cov = parse_cov(args.blur)
        # A radius of 6.5 σ leaves < 1e-9 of the mass out: the target is the model's own blur.
        radius = math.ceil(6.5 * math.sqrt(np.linalg.eigvalsh(cov).max()))
        kernel = jaxconv.gaussian_kernel(cov.astype(dtype), radius=radius)
        target = np.asarray(jaxconv.convolve(image, kernel, mode="same", boundary="symm"))
        truth = {"covariance": cov}
    else:
        target = np.asarray(getattr(jaxconv, args.edge)(image, axis=args.axis))
        truth = {"kernel": np.asarray(getattr(jaxconv, f"{args.edge}_kernel")(axis=args.axis))}
    if args.noise < 0:
        raise UsageError(f"--noise must be >= 0; got {args.noise}.")
    if args.noise > 0:
        rng = np.random.default_rng(args.seed)
        target = target + args.noise * rng.standard_normal(target.shape).astype(dtype)
    return image, target, truth


def _fit(args: argparse.Namespace, image: np.ndarray, target: np.ndarray) -> Any:
    model = args.model or ("free" if args.edge else "gaussian")
    if args.size is not None and (model != "free" or args.size < 1):
        raise UsageError("--size must be a positive int, and only goes with --model free.")
    options = {
        "optimizer": args.optimizer,
        "steps": args.steps,
        "progress": args.progress,
        "checkpoint": None if args.checkpoint is None else os.fspath(args.checkpoint),
    }
    if model == "gaussian":
        return model, jaxconv.fit_gaussian(image, target, **options)
    if model == "free":
        size = args.size or 3
        # LM solves this linear problem from zeros at once; gradient methods start from noise.
        init = None if args.optimizer == "lm" else "random"
        spec = jaxconv.FreeKernel((size, size), init_kernel=init)
    else:
        spec = jaxconv.GaussianEdge()
    key = jax.random.PRNGKey(args.seed)
    return model, jaxconv.fit(spec, image, target, key=key, **options)


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
    if hasattr(res, "discretization"):
        print(f"  (kernel discretisation assumed: {res.discretization!r}, radius {res.radius})")
    width = max(len(k) for k in [*derived, *("true " + t for t in truth)])
    for name, value in derived.items():
        _print_entry(name, width, value, stderr.get(name))
    for name, value in truth.items():
        _print_entry("true " + name, width, value, None)
        if name in derived:
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
    fig.savefig(path, dpi=80)
    plt.close(fig)


def fit_command(args: argparse.Namespace) -> int:
    """Runs ``jaxconv fit``; returns the exit status."""
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be a positive int; got {args.steps}.")
    image, target, truth = _data(args)
    model, res = _fit(args, image, target)
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
    save_json_atomic(out / "fit.json", record)
    _figure(model, res, truth, out / "fit.png")
    print(f"jaxconv fit: wrote {out / 'fit.json'} and {out / 'fit.png'}")
    return 0
