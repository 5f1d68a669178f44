r"""The traced core of :func:`jaxconv.fit`: the loop state, one step, a chunk of steps, the finish.

The loop follows optax: a pure, jitted ``step(carry) -> carry`` (value and gradient of the loss,
``optimizer.update``, ``optax.apply_updates``; or one Levenberg–Marquardt iteration), run many
steps per dispatch in a ``lax.while_loop`` chunk so Python never sits in the inner loop. Between
chunks the host updates the progress bar, calls the callback, and writes checkpoints. The step
tracks the best parameters seen and stops on a non-finite loss or gradient (returning them),
on the tolerance, or at the step cap. Batched fits (:func:`fit_batch`) ``vmap`` the same chunk
over many (image, target) pairs, each stopping on its own; on one CPU device, over groups of
pairs run in turn (see :func:`pair_group`).
"""

import collections
import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxconv import _lstsq
from jaxconv._forward import crop, forward, forward_and_jacobian, pixel_count
from jaxconv._models import Model
from jaxconv._uncertainty import from_information

RUNNING, CONVERGED, MAX_STEPS, NONFINITE, STALLED, CALLBACK = range(6)
STATUS = ("running", "converged", "max_steps", "non-finite", "stalled", "callback")
LOSSES = ("mse", "mae")
PATIENCE = 10  # steps in a row within `tol` before a gradient fit counts as converged
_MAX_UNCERTAINTY_PARAMS = 512


class Carry(NamedTuple):
    """The loop's state (one fit; batched fits stack it)."""

    params: Any
    opt_state: Any
    step: jax.Array
    status: jax.Array
    detail: jax.Array  # the LM solver's own status code (for the message)
    prev_loss: jax.Array
    stall: jax.Array
    best_params: Any
    best_loss: jax.Array


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything static about a fit (hashable: one compile per configuration).

    `model` is the static part of the model (:meth:`Model.split`); `border` the loss border,
    or None where it is traced (:class:`Settings`).
    """

    model: Model
    kind: str  # "grad" or "lm"
    optimizer: Any
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
class WarmupCosineAdam:
    """The default optimizer: Adam, linear warmup over 5% of the steps, cosine decay to 1e-3.

    optax's ``warmup_cosine_decay_schedule`` takes its lengths as Python ints, so a fit would
    compile again for every `steps`; this one builds the same schedule (the same arithmetic)
    from the traced step cap, inside the fit's programs.
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

    def transformation(self, steps: jax.Array) -> optax.GradientTransformation:
        return optax.adam(lambda count: self.schedule(count, steps))


def _optimizer(cfg: Config, s: Settings) -> optax.GradientTransformation:
    if isinstance(cfg.optimizer, WarmupCosineAdam):
        return cfg.optimizer.transformation(s.steps)
    return cfg.optimizer


def _bound(cfg: Config, s: Settings) -> tuple[Model, Any]:
    """The model with its traced part, and the border (a static tuple, or traced)."""
    border = cfg.border if cfg.border is not None else s.border
    return cfg.model.bind(s.model), border


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


# --- losses and steps (traced) -------------------------------------------------------------------
def loss_value(
    cfg: Config, s: Settings, params: Any, image: jax.Array, target: jax.Array
) -> jax.Array:
    model, border = _bound(cfg, s)
    pred = forward(model, params, image, border, cfg.boundary, cfg.method)
    t = crop(target, border)
    if cfg.loss == "mse":
        return jnp.sum((pred - t) ** 2) / pixel_count(image.shape, border)
    if cfg.loss == "mae":
        return jnp.sum(jnp.abs(pred - t)) / pixel_count(image.shape, border)
    return jnp.asarray(cfg.loss(pred, t)).reshape(())


def _residual_fn(
    cfg: Config, s: Settings, unravel: Callable, image: jax.Array, target: jax.Array
) -> Callable:
    model, border = _bound(cfg, s)
    t = jnp.ravel(crop(target, border))

    def residual(x):
        pred = forward(model, unravel(x), image, border, cfg.boundary, cfg.method)
        return jnp.ravel(pred) - t

    return residual


def _vjac_fn(
    cfg: Config, s: Settings, unravel: Callable, image: jax.Array, target: jax.Array
) -> Callable:
    """``x -> (residual, Jacobian)`` through :func:`forward_and_jacobian`."""
    model, border = _bound(cfg, s)
    t = jnp.ravel(crop(target, border))

    def vjac(x):
        pred, jac = forward_and_jacobian(model, unravel(x), image, border, cfg.boundary, cfg.method)
        return pred - t, jac

    return vjac


def _lm_tols(s: Settings) -> dict:
    # The cost is quadratic in the parameters near the optimum: tol² on it is tol on them.
    return dict(ftol=s.tol**2, xtol=s.tol, gtol=s.tol)


def init_carry(cfg: Config, s: Settings, params: Any, image: jax.Array, target: jax.Array) -> Carry:
    """The loop state before the first step (one per pair for batched fits)."""
    if cfg.batched:
        one = dataclasses.replace(cfg, batched=False, group=0)
        return each_pair(cfg.group, functools.partial(init_carry, one, s), params, image, target)
    dtype = ravel_pytree(params)[0].dtype
    status = jnp.asarray(RUNNING, jnp.int32)
    detail = jnp.asarray(0, jnp.int32)
    if cfg.kind == "lm":
        # Not evaluated yet: the first LM step evaluates the start (one compiled Jacobian).
        x, unravel = ravel_pytree(params)
        size = crop(target, _bound(cfg, s)[1]).size  # the residual's length
        opt_state = _lstsq.lm_init(_residual_fn(cfg, s, unravel, image, target), x, size=size)
    else:
        opt_state = _optimizer(cfg, s).init(params)
    carry = Carry(
        params=params,
        opt_state=opt_state,
        step=jnp.asarray(0, jnp.int32),
        status=status,
        detail=detail,
        prev_loss=jnp.asarray(jnp.inf, dtype),
        stall=jnp.asarray(0, jnp.int32),
        best_params=params,
        best_loss=jnp.asarray(jnp.inf, dtype),
    )
    # Strong dtypes everywhere, so a carry restored from a checkpoint has the same types.
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype=jnp.result_type(v)), carry)


def _where(pred: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)


def _step(cfg: Config, s: Settings, c: Carry, image: jax.Array, target: jax.Array) -> tuple:
    """One optimizer step; returns the new carry and (loss, params) before the step."""
    step = c.step + 1
    if cfg.kind == "lm":
        _, unravel = ravel_pytree(c.params)
        first = ~jnp.isfinite(c.opt_state.cost)  # this step only evaluates the start
        fun = _residual_fn(cfg, s, unravel, image, target)
        lm = _lstsq.lm_step(fun, c.opt_state, **_lm_tols(s))
        # The loss before the step (after the evaluation, on the first one).
        cost = jnp.where(first, lm.cost, c.opt_state.cost)
        loss = 2.0 * cost / pixel_count(image.shape, _bound(cfg, s)[1])
        params = unravel(lm.x)
        step = jnp.where(first, c.step, step)
        finite = lm.status != _lstsq.NONFINITE
        status = jnp.select(
            [
                (lm.status >= _lstsq.FTOL) & (lm.status <= _lstsq.PRECISION),
                lm.status == _lstsq.STALLED,
                step >= s.steps,
            ],
            [CONVERGED, STALLED, MAX_STEPS],
            RUNNING,
        )
        detail, opt_state, stall = lm.status, lm, c.stall
    else:
        loss, grads = jax.value_and_grad(loss_value, argnums=2)(cfg, s, c.params, image, target)
        finite = jnp.isfinite(loss) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)])
        )
        extra = {}
        optimizer = _optimizer(cfg, s)
        if isinstance(optimizer, optax.GradientTransformationExtraArgs):
            value_fn = functools.partial(loss_value, cfg, s, image=image, target=target)
            extra = dict(value=loss, grad=grads, value_fn=value_fn)
        updates, opt_state = optimizer.update(grads, c.opt_state, c.params, **extra)
        params = optax.apply_updates(c.params, updates)
        params = jax.tree_util.tree_map(lambda p, q: p.astype(q.dtype), params, c.params)
        small = jnp.abs(c.prev_loss - loss) <= s.tol * jnp.abs(loss)
        stall = jnp.where(small, c.stall + 1, 0).astype(jnp.int32)
        status = jnp.select([stall >= PATIENCE, step >= s.steps], [CONVERGED, MAX_STEPS], 0)
        detail = c.detail
    status = jnp.where(finite, status, NONFINITE).astype(jnp.int32)
    better = finite & (loss < c.best_loss)
    new = Carry(
        params=_where(finite, params, c.params),
        opt_state=opt_state if cfg.kind == "lm" else _where(finite, opt_state, c.opt_state),
        step=jnp.where(finite, step, c.step).astype(jnp.int32),
        status=status,
        detail=jnp.asarray(detail, jnp.int32),
        prev_loss=jnp.where(finite, loss, c.prev_loss),
        stall=stall,
        best_params=_where(better, c.params, c.best_params),
        best_loss=jnp.where(better, loss, c.best_loss),
    )
    return new, loss, c.params


def run_chunk(cfg: Config, s: Settings, carry: Carry, image: jax.Array, target: jax.Array) -> tuple:
    """Up to `cfg.chunk` steps in one ``lax.while_loop``, recording (loss, params) per step."""

    def one(carry, image, target):
        dtype = carry.prev_loss.dtype
        start = carry.step
        hist = (
            jnp.full((cfg.chunk,), jnp.nan, dtype),
            jax.tree_util.tree_map(
                lambda p: jnp.full((cfg.chunk, *p.shape), jnp.nan, p.dtype), carry.params
            ),
        )

        def cond(state):
            i, c, _ = state
            return (i < cfg.chunk) & (c.status == RUNNING)

        def body(state):
            i, c, (hl, hp) = state
            # Entry k holds step start + k (an LM evaluation step is overwritten by the next).
            k = c.step - start
            c, loss, params = _step(cfg, s, c, image, target)
            hp = jax.tree_util.tree_map(lambda h, v: h.at[k].set(v), hp, params)
            return i + 1, c, (hl.at[k].set(loss), hp)

        _, carry, hist = lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), carry, hist))
        return carry, hist

    if cfg.batched:
        return each_pair(cfg.group, one, carry, image, target)
    return one(carry, image, target)


def finish(cfg: Config, s: Settings, carry: Carry, image: jax.Array, target: jax.Array) -> tuple:
    """Final parameters, loss, derived quantities, diagnostics and (least squares) uncertainty.

    The final parameters are the last ones, or the best seen if the fit hit a non-finite value.

    An LM fit already holds the residual and JᵀJ at its parameters: they are reused. A
    gradient fit with the mse loss takes its loss from the prediction that comes with the
    Jacobian, so the program holds one forward model, not two.
    """

    model, border = _bound(cfg, s)
    count = pixel_count(image.shape[1:] if cfg.batched else image.shape, border)

    def one(carry, image, target):
        params = _where(carry.status == NONFINITE, carry.best_params, carry.params)
        small = ravel_pytree(params)[0].size <= _MAX_UNCERTAINTY_PARAMS
        if cfg.kind == "lm":
            lm = carry.opt_state
            loss = 2.0 * lm.cost / count
            unc = None
            if small:
                unc = from_information(model, params, lm.gram, lm.residual, count=count)
            return params, loss, model.derived(params), model.diagnostics(params), unc
        if cfg.loss == "mse" and small:
            x, unravel = ravel_pytree(params)
            resid, jacobian_t = _vjac_fn(cfg, s, unravel, image, target)(x)
            unc = from_information(model, params, _lstsq.gram(jacobian_t), resid, count=count)
            loss = jnp.sum(resid * resid) / count
            return params, loss, model.derived(params), model.diagnostics(params), unc
        loss = loss_value(cfg, s, params, image, target)
        return params, loss, model.derived(params), model.diagnostics(params), None

    if cfg.batched:
        return each_pair(cfg.group, one, carry, image, target)
    return one(carry, image, target)


def init_params(static: tuple, image: jax.Array, target: jax.Array, key: Any) -> Any:
    """The model's starting parameters (over a batch: one key per pair, see `each_pair`)."""
    model, batched, group = static
    if batched:
        keys = jax.random.split(key, image.shape[0])
        return each_pair(group, model.init, image, target, keys)
    return model.init(image, target, key)


# --- compile cache -------------------------------------------------------------------------------
_COMPILED: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 64
# XLA:CPU's (newer) MLIR fusion emitters took 2.5x as long to compile a fit's programs as its
# classic emitters (an LM chunk on 256²: 2.3 -> 0.94 s of CPU; the finish 1.3 -> 0.76 s), for
# the same run time on a batch of 256 tiles and +15% on one pair's chunk (20 against 18 ms).
# A fit compiles once and runs a few chunks: the classic emitters win on CPU. Its finish (small
# matrices, run once) also skips LLVM's optimisations: 0.36 -> 0.16 s of CPU, the same 0.2 ms.
_CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
_CPU_ONCE = {**_CPU_OPTIONS, "xla_backend_optimization_level": 0}


def _compile(lowered: Any, leaves: list, once: bool) -> Any:
    platforms = {d.platform for v in leaves if isinstance(v, jax.Array) for d in v.devices()}
    if (platforms or {jax.default_backend()}) == {"cpu"}:
        try:
            return lowered.compile(compiler_options=_CPU_ONCE if once else _CPU_OPTIONS)
        except jax.errors.JaxRuntimeError:  # an XLA without these options: its defaults
            pass
    return lowered.compile()


def compiled(fn: Callable, static: Any, *args: Any) -> tuple[Callable, float]:
    """``jax.jit(fn)`` compiled ahead of time for these argument types; and the compile time."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    avals = tuple(
        (jnp.shape(v), jnp.result_type(v), getattr(v, "weak_type", False),
         getattr(v, "sharding", None))
        for v in leaves
    )  # fmt: skip
    key = (fn, static, treedef, avals)
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key], 0.0
    t0 = time.perf_counter()
    exe = _compile(jax.jit(fn, static_argnums=0).lower(static, *args), leaves, fn is finish)
    _COMPILED[key] = exe
    if len(_COMPILED) > _CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return exe, time.perf_counter() - t0
