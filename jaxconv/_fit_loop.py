"""The host side of :func:`jaxconv.fit`: options, optimizers, chunks, callbacks, checkpoints.

The traced side (one step, a chunk of steps) is ``_fit_step.py``; the public functions and their
documentation are ``_fit.py``.
"""

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm.auto as tqdm

from jaxconv import _checkpoint, _fit_step, _lstsq
from jaxconv._fit_step import (
    CALLBACK,
    LOSSES,
    NONFINITE,
    RUNNING,
    STATUS,
    Config,
    Settings,
    WarmupCosineAdam,
)
from jaxconv._forward import check_data, check_model, resolve_border
from jaxconv._models import Model
from jaxconv._uncertainty import Uncertainty

_DEFAULT_STEPS = {"grad": 300, "lm": 100}


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
        decreases the loss any more; at the optimum to round-off) or ``"callback"``.
      message: a sentence explaining `status`.
      steps: optimizer steps taken.
      wall_time: seconds for the whole call, compile included; compile_time: seconds compiling.
      best_params, best_loss: the lowest loss seen and its parameters.
      model: the model (its static choices, e.g. the kernel radius, settled).
      optimizer: a name for the optimizer used.
      border: pixels per edge the loss ignored.
      derived: ``model.derived(params)``, e.g. covariance, sigmas and angle of a blur.
      diagnostics: ``model.diagnostics(params)``, e.g. a blur's truncated mass.
      uncertainty: an :class:`Uncertainty` at `params` (``loss="mse"`` fits with at most 512
        parameters), else None.
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


# --- optimizers ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _lbfgs() -> optax.GradientTransformation:
    return optax.lbfgs()


def _optimizer(fn: str, optimizer: Any, learning_rate: Any, model: Model):
    """(kind, optax transformation or None, a name for reports)."""
    if isinstance(optimizer, str) or optimizer is None:
        name = "adam" if optimizer is None else optimizer.lower()
        if name == "lm":
            return "lm", None, "lm"
        if name == "lbfgs":
            return "grad", _lbfgs(), "lbfgs"
        if name == "adam":
            lr = model.learning_rate if learning_rate is None else learning_rate
            if not (isinstance(lr, (int, float, np.floating)) and lr > 0):
                raise ValueError(f"{fn}: `learning_rate` must be a number > 0; got {lr!r}.")
            return "grad", WarmupCosineAdam(float(lr)), f"adam(lr={lr}, warmup-cosine)"
        raise ValueError(
            f"{fn}: `optimizer` must be an optax GradientTransformation, 'adam', 'lbfgs' or "
            f"'lm'; got {optimizer!r}."
        )
    if isinstance(optimizer, optax.GradientTransformation):
        return "grad", optimizer, type(optimizer).__name__
    raise TypeError(
        f"{fn}: `optimizer` must be an optax GradientTransformation, 'adam', 'lbfgs' or 'lm'; "
        f"got {type(optimizer).__name__}."
    )


def _check_options(fn, steps, tol, loss, callback, checkpoint_every, chunk, kind):
    for name, value in (("steps", steps), ("checkpoint_every", checkpoint_every), ("chunk", chunk)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{fn}: `{name}` must be a positive int; got {value!r}.")
    if not isinstance(tol, (int, float, np.floating)) or not tol >= 0:
        raise ValueError(f"{fn}: `tol` must be a number >= 0; got {tol!r}.")
    if not (loss in LOSSES or callable(loss)):
        raise ValueError(f"{fn}: `loss` must be one of {LOSSES} or a callable; got {loss!r}.")
    if kind == "lm" and loss != "mse":
        raise NotImplementedError(
            f"{fn}: optimizer='lm' minimises a sum of squares, so it needs loss='mse'; "
            f"got loss={loss!r}. Use an optax optimizer for other losses."
        )
    if callback is not None and not callable(callback):
        raise TypeError(f"{fn}: `callback` must be callable or None; got {type(callback)}.")


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


# --- the host loop -------------------------------------------------------------------------------
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


def run(
    fn, model, image, target, batched, params, optimizer, steps, tol, loss, boundary, border,
    method, learning_rate, key, callback, progress, checkpoint, checkpoint_every, chunk,
):  # fmt: skip
    t_start = time.perf_counter()
    model = check_model(fn, model)
    image, target = check_data(fn, image, target, batched=batched)
    is_lm = isinstance(optimizer, str) and optimizer.lower() == "lm"
    steps = _DEFAULT_STEPS["lm" if is_lm else "grad"] if steps is None else steps
    kind = "lm" if is_lm else "grad"
    _check_options(fn, steps, tol, loss, callback, checkpoint_every, chunk, kind)
    kind, opt, opt_name = _optimizer(fn, optimizer, learning_rate, model)
    if checkpoint is not None:
        chunk = min(chunk, checkpoint_every)
    boundary = boundary if isinstance(boundary, str) else tuple(boundary)

    compile_time = 0.0
    group = _fit_step.pair_group(image) if batched else 0
    if params is None:
        key = jax.random.PRNGKey(0) if key is None else key
        init_exe, compile_time = _fit_step.compiled(
            _fit_step.init_params, (model, batched, group), image, target, key
        )
        params = init_exe(image, target, key)
    else:
        params = _check_params(fn, params, image.dtype, image.shape[0] if batched else None)
    shape = image.shape[batched:]
    model = model.resolve(params, shape)
    one = jax.tree_util.tree_map(lambda v: v[0], params) if batched else params
    static, traced = model.split()
    # The default border follows a traced kernel radius: a mask on the loss, not a crop, so a
    # new radius reuses the compiled programs (user losses see the cropped interior, as ever).
    masked = border is None and traced is not None and loss in LOSSES
    border = resolve_border(fn, model, one, shape, border)
    cfg = Config(static, kind, opt, loss, None if masked else border, boundary, method,
                 int(chunk), batched, group)  # fmt: skip
    settings = Settings(
        steps=np.asarray(steps, np.int32),  # numpy: no small conversion programs to compile
        tol=np.asarray(tol, image.dtype),
        model=traced,
        border=np.asarray(border, np.int32) if masked else None,
    )
    exe, dt = _fit_step.compiled(_fit_step.init_carry, cfg, settings, params, image, target)
    carry = exe(settings, params, image, target)
    compile_time += dt

    history = _History(params, batched)
    fingerprint = None
    if checkpoint is not None:
        fingerprint = {
            "image": _checkpoint.digest(image),
            "target": _checkpoint.digest(target),
            "model": _describe(model),
            "initial params": _checkpoint.digest(params),
            "optimizer": opt_name if opt is None or isinstance(optimizer, (str, type(None)))
            else str(jax.tree_util.tree_structure(carry.opt_state)),
            "options": repr((int(steps), float(tol), _describe(loss), border, boundary, method)),
        }  # fmt: skip

    def save():
        hl, hp = history.arrays()
        hist = {"loss": hl, **{f"params_{i}": v for i, v in enumerate(hp)}}
        _checkpoint.save(
            checkpoint, carry, hist, fingerprint, {"step": np.asarray(carry.step).tolist()}
        )

    if checkpoint is not None:
        restored = _checkpoint.load(fn, checkpoint, carry, fingerprint)
        if restored is not None:
            carry, hist, _ = restored
            history.restore(hist)

    chunk_exe, dt = _fit_step.compiled(_fit_step.run_chunk, cfg, settings, carry, image, target)
    compile_time += dt
    # disable=None: no bar, hence no escape codes, when stderr is not a terminal (a log file).
    bar = tqdm.tqdm(total=int(steps), initial=int(np.max(np.asarray(carry.step))), desc=fn,
                    unit="step", delay=1.0, disable=None if progress else True,
                    leave=False)  # fmt: skip
    try:
        while np.any(np.asarray(carry.status) == RUNNING):
            before = int(np.max(np.asarray(carry.step)))
            carry, (hl, hp) = chunk_exe(settings, carry, image, target)
            after = int(np.max(np.asarray(carry.step)))
            hl, hp = history.add(hl, hp, after - before)
            if callback is not None and _call_back(callback, before, hl, hp, history):
                status = jnp.where(carry.status == RUNNING, CALLBACK, carry.status)
                carry = carry._replace(status=status.astype(jnp.int32))
            bar.update(after - before)
            if hl.size:
                bar.set_postfix(loss=f"{float(np.nanmean(hl[..., -1])):.4g}")
            if checkpoint is not None and (
                after // checkpoint_every > before // checkpoint_every
                or not np.any(np.asarray(carry.status) == RUNNING)
            ):
                save()
    finally:
        bar.close()
    done = (model, border, int(steps), opt_name, compile_time, t_start)
    return _result(cfg, settings, carry, image, target, history, done)


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


def _result(cfg, settings, carry, image, target, history, done) -> FitResult:
    model, border, steps, opt_name, compile_time, t_start = done
    status = np.asarray(carry.status)
    exe, dt = _fit_step.compiled(_fit_step.finish, cfg, settings, carry, image, target)
    compile_time += dt
    params, loss, derived, diagnostics, unc = exe(settings, carry, image, target)
    hl, hp = history.arrays()
    axis = history.axis
    hl = np.concatenate([hl, np.expand_dims(np.asarray(loss), axis)], axis)
    hp = [np.concatenate([h, np.expand_dims(np.asarray(v), axis)], axis)
          for h, v in zip(hp, jax.tree_util.tree_leaves(params), strict=True)]  # fmt: skip
    names = np.asarray(STATUS, dtype=object)[status]
    status_out = str(names) if status.ndim == 0 else names.astype(str)
    return FitResult(
        params=params,
        loss=np.asarray(loss) if axis else float(loss),
        history=hl,
        params_history=jax.tree_util.tree_unflatten(history.treedef, hp),
        status=status_out,
        message=_message(cfg, steps, status, np.asarray(carry.detail)),
        steps=np.asarray(carry.step) if axis else int(carry.step),
        wall_time=time.perf_counter() - t_start,
        compile_time=compile_time,
        best_params=carry.best_params,
        best_loss=np.asarray(carry.best_loss) if axis else float(carry.best_loss),
        model=model,
        optimizer=opt_name,
        border=border,
        derived=derived,
        diagnostics=diagnostics,
        uncertainty=unc,
    )


def _message(cfg: Config, steps: int, status: np.ndarray, detail: np.ndarray) -> str:
    if status.ndim:
        counts = {STATUS[s]: int(np.sum(status == s)) for s in np.unique(status)}
        return "batch: " + ", ".join(f"{v} {k}" for k, v in counts.items())
    s = int(status)
    if s == NONFINITE:
        return (
            "stopped: the loss or its gradient became non-finite; returning the best params seen."
        )
    if s == CALLBACK:
        return "stopped by the callback."
    if s == _fit_step.MAX_STEPS:
        return f"reached the step cap (steps={steps}) before the tolerance."
    if cfg.kind == "lm":
        return _lstsq.STATUS[int(detail)] + "."
    return f"converged: the loss changed by at most tol·loss for {_fit_step.PATIENCE} steps."
