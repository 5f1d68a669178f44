r"""Levenberg–Marquardt least squares with exact JAX Jacobians, jitted in one ``lax.while_loop``.

Minimises :math:`\tfrac12 \lVert r(p) \rVert^2` over a pytree of parameters ``p`` for a residual
function ``r`` written in JAX. Each iteration solves the damped normal equations

.. math:: (J^T J + λ D)\, δ = -J^T r, \qquad D = \operatorname{diag}(J^T J)

(Marquardt's scaling, with D the running maximum over iterations as in MINPACK, so the method is
invariant to rescaling each parameter), accepts the step when the gain ratio
:math:`ρ = (\text{actual decrease}) / (\text{predicted decrease})` is positive, and updates λ by
Nielsen's rule (:math:`λ \leftarrow λ \max(1/3, 1 - (2ρ - 1)^3)` on success, :math:`λ
\leftarrow λ ν,\ ν \leftarrow 2ν` on failure). J comes from ``jax.jacfwd`` (one forward pass
pushes all tangents through at once: the right mode for the few parameters of a blur model) or
``jax.jacrev``, never from finite differences, so a blur fit converges in a handful of forward
passes.

Why not a library: optimistix (the well-kept JAX choice) would pull in equinox, lineax and
jaxtyping for what is here about sixty lines of numerics, and its solvers are not written to run
a fixed number of iterations per dispatch, which ``jaxconv.fit`` needs for its progress bar,
callbacks and checkpoints (:func:`lm_init` / :func:`lm_step` expose exactly that). The stopping
rules follow ``scipy.optimize.least_squares(method="lm")`` (MINPACK): `ftol` on the relative
decrease of the cost, `xtol` on the relative step, `gtol` on the cosine between the residual and
each Jacobian column.
"""

import enum
import functools
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxconv._linalg import UNROLL, cholesky, solve_lower, solve_upper


class Status(enum.IntEnum):
    """How an iterative solve stands or ended: :func:`least_squares` and every fit share it.

    int32 inside a traced loop. A fit reports it by name (:attr:`label`); the LM solver also
    records *why* it converged, as a :class:`Reason`.
    """

    RUNNING = 0
    CONVERGED = 1
    MAX_STEPS = 2
    NONFINITE = 3
    STALLED = 4
    CALLBACK = 5  # a fit's callback asked to stop

    @property
    def label(self) -> str:
        """The name a :class:`jaxconv.FitResult` reports: ``"converged"``, ``"non-finite"``, ..."""
        return "non-finite" if self is Status.NONFINITE else self.name.lower()


class Reason(enum.IntEnum):
    """Which of MINPACK's tests stopped a converged Levenberg–Marquardt solve (for messages)."""

    NONE = 0
    FTOL = 1
    XTOL = 2
    GTOL = 3
    PRECISION = 4


_CONVERGED = {
    Reason.FTOL: "converged (ftol: relative decrease of the cost)",
    Reason.XTOL: "converged (xtol: relative step size)",
    Reason.GTOL: "converged (gtol: gradient orthogonal to the residual)",
    Reason.PRECISION: "converged (no step can decrease the cost beyond its round-off)",
}
_MESSAGES = {
    Status.RUNNING: "running",
    Status.MAX_STEPS: "max_steps",
    Status.NONFINITE: "non-finite residual or Jacobian at the start point",
    Status.STALLED: "stalled (damping exceeded 1e16; no step decreases the cost)",
}


def message(status: int, reason: int) -> str:
    """What an LM solve's `status` (and, when converged, `reason`) means."""
    if status == Status.CONVERGED:
        return _CONVERGED[Reason(reason)]
    return _MESSAGES[Status(status)]


_MAX_DAMPING = 1e16


class LMState(NamedTuple):
    """State of the solver over the flattened parameter vector ``x`` (a pytree of arrays)."""

    x: jax.Array  # (n,) parameters
    residual: jax.Array  # (m,) r(x)
    jacobian_t: jax.Array  # (n, m) ∂r/∂x transposed: row i is ∂r/∂x_i (contiguous reductions)
    gram: jax.Array  # (n, n) JᵀJ
    gradient: jax.Array  # (n,) Jᵀr
    cost: jax.Array  # ½ ‖r‖²
    damping: jax.Array  # λ
    nu: jax.Array  # growth factor of λ after a rejected step
    scale: jax.Array  # (n,) D, running max of diag(JᵀJ)
    step: jax.Array  # iterations done (accepted or not)
    nfev: jax.Array  # residual (+ Jacobian) evaluations
    status: jax.Array  # a Status (int32): RUNNING until one of the stopping rules fires
    reason: jax.Array  # a Reason (int32): which test stopped a converged solve


class LeastSquaresResult(NamedTuple):
    """What :func:`least_squares` returns.

    Attributes:
      params: the solution, a pytree like the initial parameters.
      cost: ``½ ‖r‖²`` at the solution.
      residual: ``r(params)``, shape ``(m,)``.
      jacobian: ``∂r/∂x`` at the solution over the flattened parameters, shape ``(m, n)``
        (flattening order of ``jax.flatten_util.ravel_pytree``).
      steps: iterations done; nfev: residual evaluations (each with its Jacobian).
      status: int code (1 converged, 2 step cap, 3 non-finite start, 4 stalled); success:
        whether a tolerance was met; :attr:`message` explains `status` (when it is a concrete
        scalar); reason: which test stopped a converged solve (1 ftol, 2 xtol, 3 gtol, 4 the
        cost's round-off).
    """

    params: Any
    cost: jax.Array
    residual: jax.Array
    jacobian: jax.Array
    steps: jax.Array
    nfev: jax.Array
    status: jax.Array
    success: jax.Array
    reason: jax.Array

    @property
    def message(self) -> str:
        """What `status` means (for a concrete, unbatched result)."""
        code, reason = concrete_int(self.status), concrete_int(self.reason)
        if code is None or reason is None:
            return "see `status` (traced or batched)"
        return message(code, reason)


def value_and_jacobian(fun: Callable, x: jax.Array, jac: str = "fwd") -> tuple:
    """``(fun(x), (∂fun/∂x)ᵀ)``, the Jacobian transposed to ``(n, m)``, in one traced pass."""

    def both(x):
        r = fun(x)
        return r, r

    if jac == "fwd":
        jacobian, r = jax.jacfwd(both, has_aux=True)(x)
    else:
        jacobian, r = jax.jacrev(both, has_aux=True)(x)
    return r, jacobian.T


# The Jacobian is kept transposed, (n, m), so that its products reduce along contiguous rows, and
# small products are multiply-and-reduce: XLA:CPU compiles each `dot` into its own tiled loop nest
# (about 0.1 s apiece), while these fuse into one cheap reduction. Above _SMALL parameters the
# O(m n²) Gram matrix goes back to a real matrix product.
_SMALL = 16


def gram(jt: jax.Array) -> jax.Array:
    """The Gram matrix ``JᵀJ`` from the transposed Jacobian ``jt``, shape ``(n, m)``."""
    if jt.shape[0] > _SMALL:
        return jt @ jt.T
    return jnp.sum(jt[:, None, :] * jt[None, :, :], axis=-1)


def normal_equations(jt: jax.Array, r: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(JᵀJ, Jᵀr, ‖r‖²)`` from one Gram matrix of the rows of ``[Jᵀ; rᵀ]`` (one pass over J)."""
    n = jt.shape[0]
    a = gram(jnp.concatenate([jt, r[None, :]], axis=0))
    return a[:n, :n], a[:n, n], a[n, n]


def matvec(a: jax.Array, x: jax.Array) -> jax.Array:
    """``a x`` for a small square `a`."""
    return jnp.sum(a * x[None, :], axis=1)


def lm_init(
    fun: Callable, x: jax.Array, *, damping: float = 1e-3, size: int | None = None
) -> LMState:
    """The solver's state at the start point `x` (flat), *not yet evaluated* (cost = inf).

    The first :func:`lm_step` evaluates the residual and Jacobian at `x` (and counts no
    iteration), so one compiled step serves for the start too. `size`, the residual's length
    if the caller knows it, saves tracing `fun` for it.
    """
    r = jax.eval_shape(fun, x) if size is None else jax.ShapeDtypeStruct((size,), x.dtype)
    dtype = x.dtype
    return LMState(
        x=x,
        residual=jnp.zeros(r.shape, dtype),
        jacobian_t=jnp.zeros((x.shape[0], *r.shape), dtype),
        gram=jnp.zeros((x.shape[0], x.shape[0]), dtype),
        gradient=jnp.zeros(x.shape, dtype),
        cost=jnp.asarray(jnp.inf, dtype),
        damping=jnp.asarray(damping, dtype),
        nu=jnp.asarray(2.0, dtype),
        scale=jnp.ones(x.shape, dtype),
        step=jnp.asarray(0, jnp.int32),
        nfev=jnp.asarray(0, jnp.int32),
        status=jnp.asarray(Status.RUNNING, jnp.int32),
        reason=jnp.asarray(Reason.NONE, jnp.int32),
    )


def lm_step(
    fun: Callable,
    state: LMState,
    *,
    ftol: float = 1e-10,
    xtol: float = 1e-10,
    gtol: float = 1e-10,
    jac: str = "fwd",
    vjac: Callable | None = None,
) -> LMState:
    """One Levenberg–Marquardt iteration: a trial step, accepted or rejected (pure, jittable).

    On a state not yet evaluated (from :func:`lm_init`) it only evaluates the start. `vjac`,
    if given, replaces ``value_and_jacobian(fun, ·)`` (a caller that knows its structure); it
    returns the residual and the transposed Jacobian ``(n, m)``.
    """
    s = state
    first = ~jnp.isfinite(s.cost)
    jtj, g = s.gram, s.gradient  # of the current point (zeros before the first evaluation)
    small_grad = ~first & _orthogonal(jtj, g, s.cost, gtol)

    damped = jtj + jnp.diag(s.damping * s.scale)
    delta = jnp.where(first, 0.0, -spd_solve(damped, g))
    x_new = s.x + delta
    r_new, j_new = value_and_jacobian(fun, x_new, jac) if vjac is None else vjac(x_new)
    jtj_new, g_new, rr_new = normal_equations(j_new, r_new)
    cost_new = 0.5 * rr_new
    predicted = -(jnp.sum(g * delta) + 0.5 * jnp.sum(delta * matvec(jtj, delta)))
    actual = s.cost - cost_new
    ok = jnp.isfinite(cost_new) & jnp.all(jnp.isfinite(jtj_new)) & jnp.all(jnp.isfinite(delta))
    rho = actual / jnp.where(predicted > 0, predicted, 1.0)
    accept = jnp.where(first, ok, ok & (predicted > 0) & (rho > 0) & ~small_grad)

    grow = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
    new_damping = jnp.where(accept, s.damping * grow, s.damping * s.nu)
    new_nu = jnp.where(accept, 2.0, 2.0 * s.nu)
    diag_new = jnp.diagonal(jtj_new)
    new_scale = jnp.where(
        first, jnp.where(diag_new > 0, diag_new, 1.0), jnp.maximum(s.scale, diag_new)
    )
    keep = first | small_grad

    def pick(new, old):
        return jnp.where(accept, new, old)

    out = LMState(
        x=pick(x_new, s.x),
        residual=pick(r_new, s.residual),
        jacobian_t=pick(j_new, s.jacobian_t),
        gram=pick(jtj_new, s.gram),
        gradient=pick(g_new, s.gradient),
        cost=pick(cost_new, s.cost),
        damping=jnp.where(keep, s.damping, new_damping),
        nu=jnp.where(keep, s.nu, new_nu),
        scale=pick(new_scale, s.scale),
        step=s.step + jnp.where(first, 0, 1).astype(jnp.int32),
        nfev=s.nfev + 1,
        status=s.status,
        reason=s.reason,
    )

    # Look ahead: the gradient test and the size of the *next* step, from the state this step
    # leaves. A converged fit then stops here instead of evaluating one more step whose change
    # is below `xtol` (the evaluation is the whole cost of a step: this saves one of ~6). That
    # last step is still taken, unevaluated: near the optimum it squares the error (the
    # residual and Jacobian kept are those of the point before it, closer than `xtol`).
    orthogonal = _orthogonal(out.gram, out.gradient, out.cost, gtol)
    delta_next = spd_solve(out.gram + jnp.diag(out.damping * out.scale), out.gradient)
    xnorm = jnp.linalg.norm(out.x)
    step_next = jnp.linalg.norm(delta_next) <= xtol * (xtol + xnorm)
    # After a rejected step the damping grew, which shrinks the next step without bringing x
    # closer: there, as before, only the step just tried counts.
    step_tried = jnp.linalg.norm(delta) <= xtol * (xtol + jnp.linalg.norm(s.x))
    small_step = ok & jnp.where(accept, step_next, ~first & step_tried)
    small_decrease = ~first & ok & (jnp.abs(actual) <= ftol * s.cost) & (predicted <= ftol * s.cost)
    # A rejected step that promised less than the cost's own round-off: x is final.
    roundoff = 64 * jnp.finfo(s.cost.dtype).eps * s.cost
    at_precision = ok & ~accept & (predicted <= roundoff)
    reason = jnp.select(
        [ok & orthogonal, small_decrease, small_step, at_precision],
        [Reason.GTOL, Reason.FTOL, Reason.XTOL, Reason.PRECISION],
        Reason.NONE,
    ).astype(jnp.int32)
    status = jnp.select(
        [first & ~ok, reason != Reason.NONE, out.damping > _MAX_DAMPING],
        [Status.NONFINITE, Status.CONVERGED, Status.STALLED],
        Status.RUNNING,
    ).astype(jnp.int32)
    final = ok & accept & step_next & (reason == Reason.XTOL)
    return out._replace(x=jnp.where(final, out.x - delta_next, out.x), status=status, reason=reason)


def _orthogonal(jtj: jax.Array, g: jax.Array, cost: jax.Array, gtol: float) -> jax.Array:
    """MINPACK's gtol test: every column of J within cosine `gtol` of orthogonal to r (or r = 0)."""
    rnorm = jnp.sqrt(2.0 * cost)
    cosine = jnp.max(jnp.abs(g) / jnp.sqrt(jnp.maximum(jnp.diagonal(jtj), 1e-300)))
    return (rnorm == 0) | (cosine <= gtol * rnorm)


def spd_inverse(a: jax.Array) -> jax.Array:
    """Inverse of a symmetric positive (semi-)definite matrix, equilibrated by its diagonal.

    Through ``eigh`` rather than Cholesky: on CPU, XLA expands the triangular solves behind
    ``cho_solve`` into loops that take seconds to compile, ``eigh`` is one LAPACK call; after
    equilibration the two are equally accurate for the small systems solved here.
    """
    d = jnp.sqrt(jnp.diagonal(a))
    d = jnp.where(d > 0, d, 1.0)
    w, v = jnp.linalg.eigh(a / jnp.outer(d, d))
    return jnp.sum((v / w)[:, None, :] * v[None, :, :], axis=-1) / jnp.outer(d, d)


def spd_solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a⁻¹ b`` for a symmetric positive-definite `a`, equilibrated by its diagonal.

    Up to 4 unknowns by an unrolled Cholesky factorisation (a few scalar operations: an LM
    step solves two such systems, where a batched ``eigh`` call cost more than the solve);
    larger systems through ``eigh`` (see :func:`spd_inverse`).
    """
    d = jnp.sqrt(jnp.diagonal(a))
    d = jnp.where(d > 0, d, 1.0)
    a = a / jnp.outer(d, d)
    if a.shape[0] <= UNROLL:
        chol = cholesky(a)
        return solve_upper(chol.T, solve_lower(chol, b / d)) / d
    w, v = jnp.linalg.eigh(a)
    coef = jnp.sum(v * (b / d)[:, None], axis=0) / w  # Vᵀ (b / d) / w
    return matvec(v, coef) / d


def _check_tolerances(fn: str, **tols: Any) -> None:
    for name, value in tols.items():
        if not isinstance(value, (int, float, np.floating)) or not value >= 0:
            raise ValueError(f"{fn}: `{name}` must be a number >= 0; got {value!r}.")


def least_squares(
    fun: Callable[..., jax.Array],
    params: Any,
    *,
    args: tuple = (),
    steps: int = 100,
    ftol: float = 1e-15,
    xtol: float = 1e-10,
    gtol: float = 1e-10,
    damping: float = 1e-3,
    jac: str = "fwd",
    max_steps: int | None = None,
) -> LeastSquaresResult:
    r"""Solves ``min ½ ‖fun(params)‖²`` by Levenberg–Marquardt, as scipy.optimize.least_squares.

    The whole solve is one jitted ``lax.while_loop``; it works under ``jit`` and ``vmap`` (e.g.
    over many independent problems: each stops on its own tolerances).

    Args:
      fun: residual function ``fun(params, *args)`` of a pytree of float arrays, returning an
        array (any shape; it is flattened). Must be written in JAX.
      params: initial parameters (a pytree of float arrays).
      args: extra arrays passed to `fun` (traced: new data reuses the compiled solver, as in
        ``scipy.optimize.least_squares(..., args=...)``).
      steps: iteration cap (each iteration evaluates `fun` and its Jacobian once); the name
        :func:`jaxconv.fit` uses.
      ftol: stop when the actual and predicted relative decreases of the cost are below it
        (the cost is quadratic near the optimum, so ``ftol = ε²`` means parameters to about ε).
      xtol: stop when the next step is ``‖δ‖ <= xtol (xtol + ‖x‖)``; that step is taken
        without evaluating `fun` at its end (near the optimum it squares the error).
      gtol: stop when every column of J is nearly orthogonal to r (cosine below `gtol`).
      damping: initial λ (relative to the diagonal of JᵀJ).
      jac: ``"fwd"`` (``jax.jacfwd``; best for few parameters) or ``"rev"``.
      max_steps: deprecated name of `steps` (warns).

    Returns:
      A :class:`LeastSquaresResult`.

    Raises:
      ValueError: on a bad tolerance, `steps` or `jac`.

    Examples:
      >>> import jax.numpy as jnp, jaxconv
      >>> t = jnp.linspace(0.0, 1.0, 20)
      >>> sol = jaxconv.least_squares(lambda p: p[0] * jnp.exp(p[1] * t) - 2 * jnp.exp(-t),
      ...                             jnp.array([1.0, 0.0]))
      >>> [round(float(v), 6) for v in sol.params]
      [2.0, -1.0]
    """
    fn = "least_squares"
    if max_steps is not None:
        warnings.warn(
            f"{fn}: `max_steps` is deprecated and will be removed; use `steps` (as jaxconv.fit).",
            DeprecationWarning,
            stacklevel=2,
        )
        steps = max_steps
    _check_tolerances(fn, ftol=ftol, xtol=xtol, gtol=gtol, damping=damping)
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"{fn}: `steps` must be a positive int; got {steps!r}.")
    if jac not in ("fwd", "rev"):
        raise ValueError(f"{fn}: `jac` must be 'fwd' or 'rev'; got {jac!r}.")
    x0, unravel = ravel_pytree(params)
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        raise TypeError(f"{fn}: `params` must hold float arrays; got dtype {x0.dtype}.")
    flat_fun = FlatFun.of(fun, params)
    state = _solve(flat_fun, x0, tuple(args), int(steps), ftol, xtol, gtol, damping, jac)
    status = jnp.where(state.status == Status.RUNNING, Status.MAX_STEPS, state.status)
    return LeastSquaresResult(
        params=unravel(state.x),
        cost=state.cost,
        residual=state.residual,
        jacobian=state.jacobian_t.T,
        steps=state.step,
        nfev=state.nfev,
        status=status,
        success=status == Status.CONVERGED,
        reason=state.reason,
    )


class FlatFun(NamedTuple):
    """``x -> ravel(fun(unflatten(x)))``, hashable so that jit caches one compile per `fun`."""

    fun: Callable
    treedef: Any
    shapes: tuple
    dtypes: tuple

    @classmethod
    def of(cls, fun: Callable, params: Any) -> "FlatFun":
        leaves, treedef = jax.tree_util.tree_flatten(params)
        shapes = tuple(tuple(jnp.shape(v)) for v in leaves)
        dtypes = tuple(jnp.result_type(v) for v in leaves)
        return cls(fun, treedef, shapes, dtypes)

    def unravel(self, x: jax.Array) -> Any:
        sizes = [int(np.prod(s)) for s in self.shapes]
        parts = jnp.split(x, np.cumsum(sizes)[:-1]) if sizes else []
        leaves = [
            p.reshape(s).astype(d) for p, s, d in zip(parts, self.shapes, self.dtypes, strict=True)
        ]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def __call__(self, x: jax.Array, *args: Any) -> jax.Array:
        return jnp.ravel(self.fun(self.unravel(x), *args)).astype(x.dtype)


def concrete_int(x: Any) -> int | None:
    """`x` as a Python int when it is a concrete scalar, else None (traced or batched)."""
    try:
        value = np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None
    return int(value) if value.ndim == 0 else None


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7, 8))
def _solve(fun, x0, args, max_steps, ftol, xtol, gtol, damping, jac):
    fun = _bind(fun, args)

    def cond(s):
        return (s.status == Status.RUNNING) & (s.step < max_steps)

    def body(s):
        return lm_step(fun, s, ftol=ftol, xtol=xtol, gtol=gtol, jac=jac)

    return lax.while_loop(cond, body, lm_init(fun, x0, damping=damping))


def _bind(fun: Callable, args: tuple) -> Callable:
    return lambda x: fun(x, *args)
