r"""The traced core of :func:`jaxconv.fit`: the problem, the loop state, its chunks, the finish.

The loop follows optax: a pure, jitted step, run many steps per dispatch in a ``lax.while_loop``
chunk so Python never sits in the inner loop. A step is one iteration of the fit's solver
(``_fit/solvers.py``: Levenberg–Marquardt or an optax transformation, behind one interface) on the
:class:`Problem` of one (image, target) pair; around it the loop counts steps, stops on the
step cap, and keeps the best parameters seen (returning them if the loss or its gradient
turns non-finite). Between chunks the host updates the progress bar, calls the callback and
writes checkpoints (``_fit/loop.py``). Batched fits (:func:`jaxconv.fit_batch`) ``vmap`` the
same chunk over many pairs, each stopping on its own; on one CPU device, over groups of pairs
run in turn (see :func:`pair_group`).
"""

import collections
import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxconv._fit.forward import crop, forward, forward_and_jacobian, pixel_count
from jaxconv._fit.lstsq import Reason, Status
from jaxconv._fit.models import Model
from jaxconv._fit.solvers import Solver
from jaxconv._fit.uncertainty import from_information

_MAX_UNCERTAINTY_PARAMS = 512


class Carry(NamedTuple):
    """The loop's state (one fit; batched fits stack it)."""

    params: Any
    state: Any  # the solver's
    step: jax.Array
    status: jax.Array  # a Status
    reason: jax.Array  # the solver's detail on how it converged (for the message)
    best_params: Any
    best_loss: jax.Array


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything static about a fit (hashable: one compile per configuration).

    `model` is the static part of the model (:meth:`Model.split`); `border` the loss border,
    or None where it is traced (:class:`Settings`).
    """

    model: Model
    solver: Solver
    loss: Any
    border: tuple | None
    boundary: Any
    method: str
    chunk: int
    batched: bool
    group: int = 0  # batched fits: pairs per vmapped group (0: the whole batch in one vmap)


class Settings(NamedTuple):
    """What a fit's programs take as arguments: new values reuse the compiled programs.

    Attributes:
      steps: the step cap (int32).
      tol: the tolerance (the data's float dtype).
      model: the model's traced part (:meth:`Model.split`), e.g. a Gaussian's kernel radius.
      border: the loss border per axis (int32) where `Config.border` is None, else None.
    """

    steps: jax.Array
    tol: jax.Array
    model: Any = None
    border: Any = None


@dataclasses.dataclass(frozen=True)
class Problem:
    """What a solver minimises on one (image, target) pair: the loss, or the residual's squares.

    `model` is bound (its traced part put back); `border` a static tuple, or traced (a mask,
    see :func:`jaxconv._fit.forward.crop`).
    """

    model: Model
    border: Any
    boundary: Any
    method: str
    loss_fn: Any  # "mse", "mae" or a callable
    image: jax.Array
    target: jax.Array

    @classmethod
    def of(cls, cfg: Config, s: Settings, image: jax.Array, target: jax.Array) -> "Problem":
        border = cfg.border if cfg.border is not None else s.border
        model = cfg.model.bind(s.model)
        return cls(model, border, cfg.boundary, cfg.method, cfg.loss, image, target)

    @property
    def count(self) -> Any:
        """Pixels the loss sees (traced for a traced border)."""
        return pixel_count(self.image.shape, self.border)

    @property
    def size(self) -> int:
        """The residual's length."""
        return crop(self.target, self.border).size

    def predict(self, params: Any) -> jax.Array:
        """The prediction on the pixels the loss sees."""
        return forward(self.model, params, self.image, self.border, self.boundary, self.method)

    def loss(self, params: Any) -> jax.Array:
        pred, t = self.predict(params), crop(self.target, self.border)
        if self.loss_fn == "mse":
            return jnp.sum((pred - t) ** 2) / self.count
        if self.loss_fn == "mae":
            return jnp.sum(jnp.abs(pred - t)) / self.count
        return jnp.asarray(self.loss_fn(pred, t)).reshape(())

    def residual(self, unravel: Callable) -> Callable:
        """``x -> prediction - target``, flattened, of the flat parameters `x`."""
        t = jnp.ravel(crop(self.target, self.border))
        return lambda x: jnp.ravel(self.predict(unravel(x))) - t

    def residual_and_jacobian(self, params: Any) -> tuple[jax.Array, jax.Array]:
        """The residual and its transposed Jacobian, through :func:`forward_and_jacobian`."""
        pred, jac = forward_and_jacobian(
            self.model, params, self.image, self.border, self.boundary, self.method
        )
        return pred - jnp.ravel(crop(self.target, self.border)), jac


# Image bytes per group: 8 pairs of 64² in float64 (the temporaries are ~10x the images).
_GROUP_BYTES = 2**18


def pair_group(image: jax.Array) -> int:
    """Pairs per vmapped group of a batched fit on `image` ``(B, ...)``; 0 for one vmap of all.

    On one CPU device the batch runs as groups of pairs, one after another (``lax.map`` with a
    ``batch_size``): a single vmap over the whole batch makes every operation one pass over
    temporaries of all pairs (an LM evaluation holds the spectra of the kernel and its
    derivatives per pair), which outgrow the cache. On 256 pairs of 64² in float64 one
    evaluation took 86 ms in one vmap and 35 ms in groups of 8 (groups of 1-32: 34-40 ms, of 64:
    60 ms). Each group's loop also stops when *its* pairs have converged, not the slowest pair of
    the batch. Accelerators, and batches spread over several devices, keep one vmap.
    """
    devices = image.devices()
    if len(devices) > 1 or any(d.platform != "cpu" for d in devices):
        return 0
    pair = image[0].size * image.dtype.itemsize
    group = max(1, _GROUP_BYTES // pair)
    return 0 if group >= image.shape[0] else int(group)


def each_pair(group: int, fn: Callable, *args: Any) -> Any:
    """`fn` (of one pair's arguments) over the batch: one vmap, or `group`-sized groups in turn."""
    if not group:
        return jax.vmap(fn)(*args)
    return lax.map(lambda a: fn(*a), args, batch_size=group)


def _per_pair(cfg: Config, one: Callable, *args: Any) -> Any:
    """`one` (of one pair's arguments) on a fit's arguments, batched or not."""
    return each_pair(cfg.group, one, *args) if cfg.batched else one(*args)


# --- the programs (traced) -----------------------------------------------------------------------
def init_params(static: tuple, image: jax.Array, target: jax.Array, key: Any = None) -> Any:
    """The model's starting parameters (over a batch: one key per pair, see `each_pair`).

    Without `key`, ``PRNGKey(0)`` is made in the program (none compiled to make it).
    """
    model, batched, group = static
    key = jax.random.PRNGKey(0) if key is None else key
    if batched:
        keys = jax.random.split(key, image.shape[0])
        return each_pair(group, model.init, image, target, keys)
    return model.init(image, target, key)


def init_carry(cfg: Config, s: Settings, params: Any, image: jax.Array, target: jax.Array) -> Carry:
    """The loop state before the first step (one per pair for batched fits)."""

    def one(params, image, target):
        dtype = ravel_pytree(params)[0].dtype
        carry = Carry(
            params=params,
            state=cfg.solver.init(Problem.of(cfg, s, image, target), params, s),
            step=jnp.asarray(0, jnp.int32),
            status=jnp.asarray(Status.RUNNING, jnp.int32),
            reason=jnp.asarray(Reason.NONE, jnp.int32),
            best_params=params,
            best_loss=jnp.asarray(jnp.inf, dtype),
        )
        # Strong dtypes everywhere, so a carry restored from a checkpoint has the same types.
        return jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype=jnp.result_type(v)), carry)

    return _per_pair(cfg, one, params, image, target)


def _where(pred: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)


def _step(cfg: Config, s: Settings, c: Carry, problem: Problem) -> tuple[Carry, jax.Array]:
    """One solver step with the loop's bookkeeping (step count and cap, best parameters).

    Returns the new carry and the loss before the step.
    """
    out = cfg.solver.step(problem, c.params, c.state, s)
    finite = out.status != Status.NONFINITE  # else: keep the state from before the step
    step = c.step + out.counted.astype(jnp.int32)
    capped = (out.status == Status.RUNNING) & (step >= s.steps)
    better = finite & (out.loss < c.best_loss)
    return Carry(
        params=_where(finite, out.params, c.params),
        state=_where(finite, out.state, c.state),
        step=jnp.where(finite, step, c.step),
        status=jnp.where(capped, Status.MAX_STEPS, out.status).astype(jnp.int32),
        reason=jnp.asarray(out.reason, jnp.int32),
        best_params=_where(better, c.params, c.best_params),
        best_loss=jnp.where(better, out.loss, c.best_loss),
    ), out.loss


def run_chunk(cfg: Config, s: Settings, carry: Carry, image: jax.Array, target: jax.Array) -> tuple:
    """Up to `cfg.chunk` steps in one ``lax.while_loop``, recording (loss, params) per step."""

    def one(carry, image, target):
        problem = Problem.of(cfg, s, image, target)
        dtype = carry.best_loss.dtype
        start = carry.step
        hist = (
            jnp.full((cfg.chunk,), jnp.nan, dtype),
            jax.tree_util.tree_map(
                lambda p: jnp.full((cfg.chunk, *p.shape), jnp.nan, p.dtype), carry.params
            ),
        )

        def cond(state):
            i, c, _ = state
            return (i < cfg.chunk) & (c.status == Status.RUNNING)

        def body(state):
            i, c, (hl, hp) = state
            # Entry k holds step start + k (an LM evaluation step is overwritten by the next).
            k = c.step - start
            new, loss = _step(cfg, s, c, problem)
            hp = jax.tree_util.tree_map(lambda h, v: h.at[k].set(v), hp, c.params)
            return i + 1, new, (hl.at[k].set(loss), hp)

        _, carry, hist = lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), carry, hist))
        return carry, hist

    return _per_pair(cfg, one, carry, image, target)


def finish(cfg: Config, s: Settings, carry: Carry, image: jax.Array, target: jax.Array) -> tuple:
    """Final parameters, loss, derived quantities, diagnostics and (least squares) uncertainty.

    The final parameters are the last ones, or the best seen if the fit hit a non-finite value.
    Standard errors come with ``loss="mse"`` fits of at most 512 parameters, from the solver's
    ``JᵀJ`` and residual (an LM solver holds them; others evaluate them, and the loss with
    them, so the program holds one forward model, not two).
    """

    def one(carry, image, target):
        problem = Problem.of(cfg, s, image, target)
        model = problem.model
        params = _where(carry.status == Status.NONFINITE, carry.best_params, carry.params)
        information = cfg.loss == "mse" and (
            ravel_pytree(params)[0].size <= _MAX_UNCERTAINTY_PARAMS
        )
        loss, gram, resid = cfg.solver.finish(problem, params, carry.state, information)
        unc = None
        if information:
            unc = from_information(model, params, gram, resid, count=problem.count)
        return params, loss, model.derived(params), model.diagnostics(params), unc

    return _per_pair(cfg, one, carry, image, target)


# --- compile cache -------------------------------------------------------------------------------
_COMPILED: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 64
# XLA:CPU's (newer) MLIR fusion emitters took 2.5x as long to compile a fit's programs as its
# classic emitters (an LM chunk on 256²: 2.3 -> 0.94 s of CPU; the finish 1.3 -> 0.76 s), for
# the same run time on a batch of 256 tiles and +15% on one pair's chunk (20 against 18 ms).
# A fit compiles once and runs a few chunks: the classic emitters win on CPU. For one pair, whose
# fit is mostly its compile, LLVM's optimisation level 1 (of 3) cut the first fit_gaussian's
# backend compile (256² float64, 4 programs) from 1.04 to 0.83 s with the same warm fit (~30 ms);
# remeasured on this 2-core VM: 1.22 -> 1.05 s (median of 4 processes; the LM chunk 0.66 -> 0.53 s).
# A batch runs long enough to keep the default level: at level 1 the LM chunk of 256 tiles of 64²
# ran 6-8% slower in fit_gaussian_tiles (403 against 434 ms, median of 25) and 0-4% in fit_batch.
# The finish (small matrices, run once) skips LLVM's optimisations: 0.36 -> 0.16 s of CPU, the
# same 0.2 ms.
_CPU_BATCH = {"xla_cpu_use_fusion_emitters": False}
_CPU_OPTIONS = {**_CPU_BATCH, "xla_backend_optimization_level": 1}
_CPU_ONCE = {**_CPU_BATCH, "xla_backend_optimization_level": 0}


def _compile(lowered: Any, leaves: list, options: dict) -> Any:
    platforms = {d.platform for v in leaves if isinstance(v, jax.Array) for d in v.devices()}
    if (platforms or {jax.default_backend()}) == {"cpu"}:
        try:
            return lowered.compile(compiler_options=options)
        except jax.errors.JaxRuntimeError:  # an XLA without these options: its defaults
            pass
    return lowered.compile()


def _aval_key(v: Any) -> tuple:
    """What a compiled program is specific to in an argument: shape, dtype, weak type, sharding.

    Arrays (jax and numpy) read their attributes: ``jnp.result_type`` on every leaf (a carry
    has ~40) made the four look-ups of a warm ``fit_gaussian`` cost 0.39 ms, now 0.10 ms. A
    numpy dtype that jit would canonicalise (float64 without x64) only keys a separate entry.
    """
    if isinstance(v, (jax.Array, np.ndarray)):
        return (v.shape, v.dtype, getattr(v, "weak_type", False), getattr(v, "sharding", None))
    return (jnp.shape(v), jnp.result_type(v), False, None)


def compiled(
    fn: Callable, static: Any, *args: Any, batched: bool = False
) -> tuple[Callable, float]:
    """``jax.jit(fn)`` compiled ahead of time for these argument types; and the compile time.

    `batched`: a program of a batched fit (compiled for its run time, see `_CPU_BATCH`).
    """
    leaves, treedef = jax.tree_util.tree_flatten(args)
    avals = tuple(map(_aval_key, leaves))
    key = (fn, static, treedef, avals)
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key], 0.0
    t0 = time.perf_counter()
    options = _CPU_ONCE if fn is finish else _CPU_BATCH if batched else _CPU_OPTIONS
    exe = _compile(jax.jit(fn, static_argnums=0).lower(static, *args), leaves, options)
    _COMPILED[key] = exe
    if len(_COMPILED) > _CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return exe, time.perf_counter() - t0
