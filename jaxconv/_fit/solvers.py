r"""A fit's solvers behind one interface: Levenberg–Marquardt, and any optax transformation.

A :class:`Solver` is a small frozen object (hashable: a fit's programs are compiled per solver)
whose methods are traced, over one (image, target) pair's problem (``_fit_step.Problem``: the
loss, the residual, and its Jacobian):

* ``init(problem, params, limits) -> state``, the solver's state at the start;
* ``step(problem, params, state, limits) -> Step``: one iteration, giving the new parameters
  and state, the loss *before* it, and a :class:`~jaxconv._fit.lstsq.Status`;
* ``finish(problem, params, state, information)``: the final loss and, if asked, ``JᵀJ`` and
  the residual for the standard errors.

`limits` holds the traced step cap and tolerance. The fit loop (``_fit/step.py``) runs any
solver the same way; :func:`solver_for` turns a fit's ``optimizer`` option into one.
"""

import abc
import dataclasses
import functools
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxconv._fit import lstsq as _lstsq
from jaxconv._fit.lstsq import Reason, Status

PATIENCE = 10  # steps in a row within `tol` before a gradient fit counts as converged


class Step(NamedTuple):
    """What one solver iteration gives.

    Attributes:
      params: the parameters after the step.
      state: the solver's state after it.
      loss: the loss of the parameters *before* the step.
      status: a :class:`Status` (RUNNING, CONVERGED, STALLED, or NONFINITE: then the loop keeps
        the parameters and state from before the step).
      reason: the solver's detail on CONVERGED (LM's :class:`Reason`), for the message.
      counted: whether this was an optimizer step (LM's first call only evaluates the start).
    """

    params: Any
    state: Any
    loss: jax.Array
    status: jax.Array
    reason: jax.Array
    counted: jax.Array


class Solver(abc.ABC):
    """Base class of a fit's solvers (see the module docstring).

    Attributes:
      name: a name for reports (``FitResult.optimizer``) and checkpoints.
      default_steps: the step cap when a fit gives none.
    """

    name: str
    default_steps: ClassVar[int]

    def check(self, fn: str, loss: Any) -> None:
        """Raises, naming `fn`, if the solver cannot minimise `loss` (default: it can)."""
        return None

    @abc.abstractmethod
    def init(self, problem: Any, params: Any, limits: Any) -> Any:
        """The solver's state at `params` (traced)."""

    @abc.abstractmethod
    def step(self, problem: Any, params: Any, state: Any, limits: Any) -> Step:
        """One iteration from `params` (traced)."""

    def finish(self, problem: Any, params: Any, state: Any, information: bool) -> tuple:
        """``(loss, JᵀJ, residual)`` at the final `params`; the last two None unless asked.

        The default evaluates them: the Jacobian through the model's kernel (one forward
        model in the program, whose prediction also gives the loss).
        """
        if not information:
            return problem.loss(params), None, None
        resid, jacobian_t = problem.residual_and_jacobian(params)
        return jnp.sum(resid * resid) / problem.count, _lstsq.gram(jacobian_t), resid

    @abc.abstractmethod
    def message(self, status: int, reason: int) -> str:
        """A sentence for the statuses the solver itself gives (CONVERGED, STALLED)."""


# --- Levenberg–Marquardt -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LevenbergMarquardt(Solver):
    """:func:`jaxconv.least_squares`'s iteration on the residual over the loss's pixels.

    Its tolerance is the fit's `tol`: ``xtol = gtol = tol``, ``ftol = tol²`` (the cost is
    quadratic in the parameters near the optimum: tol² on it is tol on them).
    """

    name: str = "lm"
    default_steps: ClassVar[int] = 100

    def check(self, fn: str, loss: Any) -> None:
        if loss != "mse":
            raise NotImplementedError(
                f"{fn}: optimizer='lm' minimises a sum of squares, so it needs loss='mse'; "
                f"got loss={loss!r}. Use an optax optimizer for other losses."
            )

    def init(self, problem: Any, params: Any, limits: Any) -> _lstsq.LMState:
        # Not evaluated yet: the first step evaluates the start (one compiled Jacobian).
        x, unravel = ravel_pytree(params)
        return _lstsq.lm_init(problem.residual(unravel), x, size=problem.size)

    def step(self, problem: Any, params: Any, state: _lstsq.LMState, limits: Any) -> Step:
        _, unravel = ravel_pytree(params)
        first = ~jnp.isfinite(state.cost)  # this step only evaluates the start
        tol = limits.tol
        lm = _lstsq.lm_step(problem.residual(unravel), state, ftol=tol**2, xtol=tol, gtol=tol)
        cost = jnp.where(first, lm.cost, state.cost)  # before the step (after evaluating it)
        loss = 2.0 * cost / problem.count
        return Step(unravel(lm.x), lm, loss, lm.status, lm.reason, ~first)

    def finish(self, problem: Any, params: Any, state: _lstsq.LMState, information: bool):
        # The solver already holds the residual and JᵀJ at its parameters.
        loss = 2.0 * state.cost / problem.count
        return (loss, state.gram, state.residual) if information else (loss, None, None)

    def message(self, status: int, reason: int) -> str:
        return _lstsq.message(status, reason) + "."


# --- optax ---------------------------------------------------------------------------------------
class OptaxState(NamedTuple):
    """The optax transformation's state, and the loss history that the tolerance looks at."""

    inner: Any
    prev_loss: jax.Array
    stall: jax.Array  # steps in a row whose loss changed by at most tol · loss


@dataclasses.dataclass(frozen=True)
class Optax(Solver):
    """Gradient steps of an optax transformation: ``optimizer.update`` and ``apply_updates``.

    Args:
      transformation: an optax ``GradientTransformation``, or a function of the fit's traced
        step cap returning one (a schedule over the fit's length; hashable, e.g. a frozen
        dataclass, so that equal ones share compiled programs).
      name: for reports.
    """

    transformation: Any
    name: str = ""
    default_steps: ClassVar[int] = 300

    def optimizer(self, steps: jax.Array) -> optax.GradientTransformation:
        t = self.transformation
        return t if isinstance(t, optax.GradientTransformation) else t(steps)

    def init(self, problem: Any, params: Any, limits: Any) -> OptaxState:
        dtype = ravel_pytree(params)[0].dtype
        inner = self.optimizer(limits.steps).init(params)
        return OptaxState(inner, jnp.asarray(jnp.inf, dtype), jnp.asarray(0, jnp.int32))

    def step(self, problem: Any, params: Any, state: OptaxState, limits: Any) -> Step:
        loss, grads = jax.value_and_grad(problem.loss)(params)
        finite = jnp.isfinite(loss) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)])
        )
        optimizer = self.optimizer(limits.steps)
        extra = {}
        if isinstance(optimizer, optax.GradientTransformationExtraArgs):
            extra = dict(value=loss, grad=grads, value_fn=problem.loss)
        updates, inner = optimizer.update(grads, state.inner, params, **extra)
        new = optax.apply_updates(params, updates)
        new = jax.tree_util.tree_map(lambda p, q: p.astype(q.dtype), new, params)
        small = jnp.abs(state.prev_loss - loss) <= limits.tol * jnp.abs(loss)
        stall = jnp.where(small, state.stall + 1, 0).astype(jnp.int32)
        status = jnp.where(stall >= PATIENCE, Status.CONVERGED, Status.RUNNING)
        status = jnp.where(finite, status, Status.NONFINITE).astype(jnp.int32)
        reason = jnp.asarray(Reason.NONE, jnp.int32)
        return Step(new, OptaxState(inner, loss, stall), loss, status, reason, jnp.asarray(True))

    def message(self, status: int, reason: int) -> str:
        return f"converged: the loss changed by at most tol·loss for {PATIENCE} steps."


@dataclasses.dataclass(frozen=True)
class WarmupCosineAdam:
    """The default optimizer: Adam, linear warmup over 5% of the steps, cosine decay to 1e-3.

    optax's ``warmup_cosine_decay_schedule`` takes its lengths as Python ints, so a fit would
    compile again for every `steps`; this one builds the same schedule (the same arithmetic)
    from the traced step cap, inside the fit's programs. Calling it with the step cap gives the
    transformation (see :class:`Optax`).
    """

    learning_rate: float

    def schedule(self, count: jax.Array, steps: jax.Array) -> jax.Array:
        """The learning rate at step `count` of a fit of at most `steps` steps."""
        peak = self.learning_rate
        alpha = peak * 1e-3 / peak  # optax's end_value / peak_value
        real = jnp.result_type(float)  # float64 under x64, as optax's Python-float lengths give
        warmup = (steps // 20).astype(real)
        decay = steps.astype(real) - warmup
        count = jnp.asarray(count).astype(real)
        rise = (0.0 - peak) * (1 - jnp.clip(count, 0, warmup) / jnp.maximum(warmup, 1)) + peak
        t = jnp.minimum(count - warmup, decay)
        fall = peak * ((1 - alpha) * (0.5 * (1 + jnp.cos(jnp.pi * t / decay))) + alpha)
        return jnp.where(count < warmup, rise, fall)

    def __call__(self, steps: jax.Array) -> optax.GradientTransformation:
        return optax.adam(lambda count: self.schedule(count, steps))


@functools.lru_cache(maxsize=4)
def _lbfgs() -> optax.GradientTransformation:
    return optax.lbfgs()  # one object, so fits with "lbfgs" share compiled programs


def solver_for(fn: str, optimizer: Any, learning_rate: Any, loss: Any, model: Any) -> Solver:
    """The solver of a fit's (checked) `optimizer` option; None is not accepted here.

    Raises:
      ValueError: the default Adam's learning rate (`learning_rate`, else the model's) is
        not a number > 0.
      NotImplementedError: the solver cannot minimise `loss`.
    """
    if optimizer == "lm":
        solver = LevenbergMarquardt()
    elif optimizer == "lbfgs":
        solver = Optax(_lbfgs(), "lbfgs")
    elif optimizer == "adam":
        lr = model.learning_rate if learning_rate is None else learning_rate
        if not (isinstance(lr, (int, float, np.floating)) and lr > 0):
            raise ValueError(f"{fn}: `learning_rate` must be a number > 0; got {lr!r}.")
        solver = Optax(WarmupCosineAdam(float(lr)), f"adam(lr={lr}, warmup-cosine)")
    else:
        solver = Optax(optimizer, type(optimizer).__name__)
    solver.check(fn, loss)
    return solver
