"""The host side of :func:`jaxconv.fit`: the start, rounds, chunks, callbacks, checkpoints.

:func:`run` is every fit entry point's loop: it checks the data, makes the solver of the fit's
:class:`~jaxconv._fit.options.FitOptions`, starts the model, and runs rounds: a fit, then,
while the model grows (:meth:`jaxconv.Model.grow`) and ``max_rounds`` allows, another from
where it stopped. Each round runs the compiled chunks of ``_fit/step.py`` and, between them,
shows progress, calls the callback and writes checkpoints. The public functions and their
documentation are ``_fit/api.py`` and ``_fit/gaussian.py``.
"""

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm.auto as tqdm

from jaxconv._conv.boundary import canonical_boundaries
from jaxconv._fit import checkpoint as _checkpoint
from jaxconv._fit.forward import check_data, check_model, resolve_border
from jaxconv._fit.lstsq import Status
from jaxconv._fit.models import Model
from jaxconv._fit.options import LOSSES, FitOptions
from jaxconv._fit.solvers import Solver, solver_for
from jaxconv._fit.step import (
    Config,
    Settings,
    compiled,
    finish,
    init_carry,
    init_params,
    pair_group,
    run_chunk,
)
from jaxconv._fit.uncertainty import Uncertainty

_LABELS = np.asarray([s.label for s in Status], dtype=object)


@dataclasses.dataclass(frozen=True, repr=False)
class FitResult:
    """What :func:`fit` returns. Batched fits (:func:`fit_batch`) give arrays with a batch axis.

    Attributes:
      params: final parameters (the best seen, if the fit stopped on a non-finite value).
      loss: loss at `params`.
      history: loss at every step, ``(steps + 1,)``: entry i is the loss of
        ``params_history[i]``, the last one of the final parameters.
      params_history: the parameters at every step, a pytree with a leading ``(steps + 1,)``
        axis (for animations of a filter being learned).
      status: ``"converged"``, ``"max_steps"``, ``"non-finite"``, ``"stalled"`` (LM: no step
        decreases the loss any more; at the optimum to round-off) or ``"callback"`` (of the
        last round).
      message: a sentence explaining `status`.
      steps: optimizer steps taken (in all rounds).
      wall_time: seconds for the whole call, compile included; compile_time: seconds compiling.
      best_params, best_loss: the lowest loss seen and its parameters.
      model: the model (its static choices, e.g. the kernel radius, settled).
      optimizer: a name for the optimizer used.
      border: pixels per edge the loss ignored.
      derived: ``model.derived(params)``, e.g. covariance, sigmas and angle of a blur.
      diagnostics: ``model.diagnostics(params)``, e.g. a blur's truncated mass.
      uncertainty: an :class:`Uncertainty` at `params` (``loss="mse"`` fits with at most 512
        parameters), else None.
      rounds: fits run in a row (more than 1 where the model grew: :meth:`Model.grow`); the
        histories, `steps`, `wall_time` and `compile_time` cover them all.
    """

    params: Any
    loss: Any
    history: np.ndarray
    params_history: Any
    status: Any
    message: str
    steps: Any
    wall_time: float
    compile_time: float
    best_params: Any
    best_loss: Any
    model: Model
    optimizer: str
    border: tuple
    derived: dict
    diagnostics: dict
    uncertainty: Uncertainty | None
    rounds: int

    @property
    def stderr(self) -> dict | None:
        """Standard errors of the `derived` quantities (from :attr:`uncertainty`)."""
        return None if self.uncertainty is None else self.uncertainty.derived

    @property
    def success(self) -> Any:
        """Whether the fit converged (or stalled at the optimum) rather than ran out or failed."""
        return np.isin(np.asarray(self.status), ("converged", "stalled"))

    def __repr__(self) -> str:
        loss = np.asarray(self.loss)
        shown = f"{float(loss):.6g}" if loss.ndim == 0 else f"array of shape {loss.shape}"
        return (
            f"{type(self).__name__}(status={self.status!r}, steps={self.steps!r}, loss={shown}, "
            f"optimizer={self.optimizer!r}, wall_time={self.wall_time:.3f}s, "
            f"compile_time={self.compile_time:.3f}s)"
        )


def run(
    fn: str,
    model: Model,
    image: Any,
    target: Any,
    batched: bool,
    params: Any,
    options: FitOptions,
    default_optimizer: str,
) -> FitResult:
    """Fits `model` (rounds while it grows); `options` already merged, `fn` names errors."""
    t_start = time.perf_counter()
    model = check_model(fn, model)
    image, target = check_data(fn, image, target, batched=batched)
    shape = image.shape[batched:]
    canonical_boundaries(options.boundary, len(shape), fn)
    optimizer = default_optimizer if options.optimizer is None else options.optimizer
    solver = solver_for(fn, optimizer, options.learning_rate, options.loss, model)
    params, compile_time = _start(fn, model, image, target, batched, params, options.key)
    model = model.resolve(params, shape)
    rounds = []
    for k in range(options.max_rounds):
        model.check(fn, shape)
        rounds.append(_round(fn, model, image, target, batched, params, options, solver, k))
        grown = None if k + 1 == options.max_rounds else model.grow(rounds[-1].params, shape)
        if grown is None:
            break
        model, params = grown, rounds[-1].params
    return _combine(rounds, compile_time, t_start)


def _start(fn, model, image, target, batched, params, key) -> tuple[Any, float]:
    """The starting parameters (as device arrays) and the seconds spent compiling for them."""
    batch = image.shape[0] if batched else None
    if params is not None:
        return _check_params(fn, params, image.dtype, batch), 0.0
    start = model.start(image.dtype)
    if start is not None:  # on the host: no program to compile
        if batched:
            start = jax.tree_util.tree_map(lambda v: np.broadcast_to(v, (batch, *np.shape(v))),
                                           start)  # fmt: skip
        return jax.tree_util.tree_map(jnp.asarray, start), 0.0
    args = (image, target) if key is None else (image, target, key)
    static = (model, batched, pair_group(image) if batched else 0)
    exe, dt = compiled(init_params, static, *args, batched=batched)
    return exe(*args), dt


def _check_params(fn: str, params: Any, dtype: Any, batch: int | None) -> Any:
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves or not all(jnp.issubdtype(jnp.result_type(v), jnp.floating) for v in leaves):
        raise TypeError(f"{fn}: `params` must be a non-empty pytree of float arrays.")
    if batch is not None and any(jnp.ndim(v) < 1 or jnp.shape(v)[0] != batch for v in leaves):
        raise ValueError(
            f"{fn}: every leaf of `params` must have the batch size {batch} as its leading axis; "
            f"got shapes {[jnp.shape(v) for v in leaves]}."
        )
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), params)


def _round_path(checkpoint: Any, k: int) -> Any:
    if checkpoint is None or k == 0:
        return checkpoint
    return f"{os.fspath(checkpoint)}.round{k}"


def _describe(value: Any) -> str:
    """A stable description for checkpoint fingerprints (no memory addresses)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ", ".join(
            f"{f.name}={_describe(getattr(value, f.name))}" for f in dataclasses.fields(value)
        )
        return f"{type(value).__name__}({fields})"
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    if hasattr(value, "shape") or isinstance(value, (tuple, list, dict)):
        return _checkpoint.digest(value)
    return repr(value)


# --- one round ----------------------------------------------------------------------------------
class _History:
    """Per-step losses and parameters, gathered chunk by chunk on the host."""

    def __init__(self, params: Any, batched: bool):
        self.axis = 1 if batched else 0
        self.treedef = jax.tree_util.tree_structure(params)
        lead = np.shape(jax.tree_util.tree_leaves(params)[0])[: self.axis] if batched else ()
        self.losses = [np.zeros((*lead, 0))]
        self.params = [
            [
                np.zeros((*lead, 0, *np.shape(v)[self.axis :]))
                for v in jax.tree_util.tree_leaves(params)
            ]
        ]

    def add(self, losses: Any, params: Any, n: int) -> tuple:
        cut = (slice(None),) * self.axis + (slice(0, n),)
        hl = np.asarray(losses)[cut]
        hp = [np.asarray(v)[cut] for v in jax.tree_util.tree_leaves(params)]
        self.losses.append(hl)
        self.params.append(hp)
        return hl, hp

    def arrays(self) -> tuple[np.ndarray, list[np.ndarray]]:
        hl = np.concatenate(self.losses, self.axis)
        hp = [np.concatenate(parts, self.axis) for parts in zip(*self.params, strict=True)]
        return hl, hp

    def restore(self, hist: dict) -> None:
        self.losses = [hist["loss"]]
        self.params = [[hist[f"params_{i}"] for i in range(len(self.params[0]))]]


def _round(fn, model, image, target, batched, params, options, solver, k) -> FitResult:
    """One fit of `model` (settled) from `params`: the compiled chunks and the host around them."""
    t_start = time.perf_counter()
    shape = image.shape[batched:]
    one = jax.tree_util.tree_map(lambda v: v[0], params) if batched else params
    static, traced = model.split()
    # The default border follows a traced kernel radius: a mask on the loss, not a crop, so a
    # new radius reuses the compiled programs (user losses see the cropped interior, as ever).
    masked = options.border is None and traced is not None and options.loss in LOSSES
    border = resolve_border(fn, model, one, shape, options.border)
    steps = solver.default_steps if options.steps is None else int(options.steps)
    checkpoint = _round_path(options.checkpoint, k)
    every = options.checkpoint_every
    chunk = options.chunk if checkpoint is None else min(options.chunk, every)
    group = pair_group(image) if batched else 0
    cfg = Config(static, solver, options.loss, None if masked else border, options.boundary,
                 options.method, int(chunk), batched, group)  # fmt: skip
    settings = Settings(
        steps=np.asarray(steps, np.int32),  # numpy: no small conversion programs to compile
        tol=np.asarray(options.tol, image.dtype),
        model=traced,
        border=np.asarray(border, np.int32) if masked else None,
    )
    exe, compile_time = compiled(init_carry, cfg, settings, params, image, target, batched=batched)
    carry = exe(settings, params, image, target)

    history = _History(params, batched)
    if checkpoint is not None:
        named = options.optimizer is None or isinstance(options.optimizer, str)
        fingerprint = {
            "image": _checkpoint.digest(image),
            "target": _checkpoint.digest(target),
            "model": _describe(model),
            "initial params": _checkpoint.digest(params),
            "optimizer": solver.name if named else str(jax.tree_util.tree_structure(carry.state)),
            "options": repr((steps, float(options.tol), _describe(options.loss), border,
                             options.boundary, options.method)),
        }  # fmt: skip
        restored = _checkpoint.load(fn, checkpoint, carry, fingerprint)
        if restored is not None:
            carry, hist, _ = restored
            history.restore(hist)

    def save():
        hl, hp = history.arrays()
        hist = {"loss": hl, **{f"params_{i}": v for i, v in enumerate(hp)}}
        _checkpoint.save(
            checkpoint, carry, hist, fingerprint, {"step": np.asarray(carry.step).tolist()}
        )

    chunk_exe, dt = compiled(run_chunk, cfg, settings, carry, image, target, batched=batched)
    compile_time += dt
    # disable=None: no bar, hence no escape codes, when stderr is not a terminal (a log file).
    bar = tqdm.tqdm(total=steps, initial=int(np.max(np.asarray(carry.step))), desc=fn,
                    unit="step", delay=1.0, disable=None if options.progress else True,
                    leave=False)  # fmt: skip
    try:
        while np.any(np.asarray(carry.status) == Status.RUNNING):
            before = int(np.max(np.asarray(carry.step)))
            carry, (hl, hp) = chunk_exe(settings, carry, image, target)
            after = int(np.max(np.asarray(carry.step)))
            hl, hp = history.add(hl, hp, after - before)
            if options.callback is not None and _call_back(
                options.callback, before, hl, hp, history
            ):
                status = jnp.where(carry.status == Status.RUNNING, Status.CALLBACK, carry.status)
                carry = carry._replace(status=status.astype(jnp.int32))
            bar.update(after - before)
            if hl.size:
                bar.set_postfix(loss=f"{float(np.nanmean(hl[..., -1])):.4g}")
            if checkpoint is not None and (
                after // every > before // every
                or not np.any(np.asarray(carry.status) == Status.RUNNING)
            ):
                save()
    finally:
        bar.close()
    exe, dt = compiled(finish, cfg, settings, carry, image, target)
    return _result(exe(settings, carry, image, target), carry, history, model, border, solver,
                   steps, compile_time + dt, t_start)  # fmt: skip


def _call_back(callback: Callable, start: int, hl, hp, history: _History) -> bool:
    """Calls `callback` for every step of a chunk; True if it asked to stop."""
    axis = history.axis
    for i in range(hl.shape[axis]):
        take = (slice(None),) * axis + (i,)
        params_i = jax.tree_util.tree_unflatten(history.treedef, [v[take] for v in hp])
        loss_i = hl[take] if axis else float(hl[i])
        if callback(start + i, params_i, loss_i):
            return True
    return False


def _result(final, carry, history, model, border, solver, steps, compile_time, t_start):
    params, loss, derived, diagnostics, unc = final
    status = np.asarray(carry.status)
    hl, hp = history.arrays()
    axis = history.axis
    hl = np.concatenate([hl, np.expand_dims(np.asarray(loss), axis)], axis)
    hp = [np.concatenate([h, np.expand_dims(np.asarray(v), axis)], axis)
          for h, v in zip(hp, jax.tree_util.tree_leaves(params), strict=True)]  # fmt: skip
    names = _LABELS[status]
    return FitResult(
        params=params,
        loss=np.asarray(loss) if axis else float(loss),
        history=hl,
        params_history=jax.tree_util.tree_unflatten(history.treedef, hp),
        status=str(names) if status.ndim == 0 else names.astype(str),
        message=_message(solver, steps, status, np.asarray(carry.reason)),
        steps=np.asarray(carry.step) if axis else int(carry.step),
        wall_time=time.perf_counter() - t_start,
        compile_time=compile_time,
        best_params=carry.best_params,
        best_loss=np.asarray(carry.best_loss) if axis else float(carry.best_loss),
        model=model,
        optimizer=solver.name,
        border=border,
        derived=derived,
        diagnostics=diagnostics,
        uncertainty=unc,
        rounds=1,
    )


def _message(solver: Solver, steps: int, status: np.ndarray, reason: np.ndarray) -> str:
    if status.ndim:
        counts = {_LABELS[s]: int(np.sum(status == s)) for s in np.unique(status)}
        return "batch: " + ", ".join(f"{v} {k}" for k, v in counts.items())
    s = Status(int(status))
    if s == Status.NONFINITE:
        return (
            "stopped: the loss or its gradient became non-finite; returning the best params seen."
        )
    if s == Status.CALLBACK:
        return "stopped by the callback."
    if s == Status.MAX_STEPS:
        return f"reached the step cap (steps={steps}) before the tolerance."
    return solver.message(s, int(reason))


def _combine(rounds: list[FitResult], compile_time: float, t_start: float) -> FitResult:
    """One result for a fit's rounds: the last round's, with the histories and counts of all."""
    last = rounds[-1]
    axis = 1 if np.ndim(last.loss) else 0

    def joined(parts):  # earlier rounds without their final entries (the next round's first)
        return np.concatenate([np.delete(p, -1, axis) for p in parts[:-1]] + [parts[-1]], axis)

    return dataclasses.replace(
        last,
        history=joined([r.history for r in rounds]),
        params_history=jax.tree_util.tree_map(
            lambda *hs: joined(hs), *[r.params_history for r in rounds]
        ),
        steps=sum(r.steps for r in rounds),
        compile_time=compile_time + sum(r.compile_time for r in rounds),
        wall_time=time.perf_counter() - t_start,
        rounds=len(rounds),
    )
