"""The *plan* of a jaxconv convolution or filter: what it computes, as data.

Every convolution and linear filter in jaxconv ends in the primitive
:func:`jaxconv.correlate_padded` (extend by ``(lo, hi)`` with a boundary mode, then take the valid
correlation), applied once (``convolve``, ``correlate2d``, ...) or as a short plan of terms of
successive 1-D or N-D correlations combined by a sum or a norm (the ndimage filters). A public
function is a *plan builder* (argument checks, scipy's centring rules, kernels) made callable by
``_convolve.planned``, which runs the plan with the one executor ``_convolve.run``; the builder
stays reachable as ``fn.plan(...)``, so the distributed (``_halo``) and out-of-core (``_tiled``)
executors run the same plans (in the form :func:`resolved` gives) without a second implementation
of any convolution.

This module holds only data and what the executors share; it imports no other jaxconv module.
"""

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Op(NamedTuple):
    """One ``correlate_padded(x, kernel, axes=axes, pads=pads, boundary=boundaries)`` step."""

    kernel: Any  # one dimension per axis in `axes`, or `x.ndim` (then may be batched); or Built
    axes: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]  # ndimage's centring (origins) already applied
    boundaries: tuple[str, ...]  # canonical names (see _boundary)


class Plan(NamedTuple):
    """What a public function computes: ``finish(combine(term(x) for term in terms))``.

    A term runs its ops in turn. Two ways to run, both by ``_convolve.run``: a single correlation
    planned eagerly (``program=False``, the convolve family: a concrete kernel may be inspected
    for low rank, and the engine may swap the operands of a full correlation), or every term in
    one jitted program (``program=True``, the ndimage filters: :class:`Built` kernels are
    computed inside it, and with `rounding` every step's result is rounded to that dtype, as
    scipy.ndimage stores each 1-D pass in ``output``).
    """

    x: jax.Array
    terms: tuple[tuple[Op, ...], ...]
    fill: Any
    combine: str  # "first", "sum", "norm" or "root" (see combine_terms)
    method: str
    precision: Any
    out_dtype: Any
    compute: Any  # dtype of the kernels (and, when not `program`, of `x`) in the computation
    program: bool = False
    rounding: Any = None  # a dtype (ndimage's `output`) or None
    flip: tuple[int, ...] = ()  # axes reversed at the end (correlate2d's valid-mode swap)
    fn: str = "correlate_padded"  # the public function, for messages


def finish(plan: Plan, out: jax.Array) -> jax.Array:
    """What happens after the plan's last correlation and combination."""
    return jnp.flip(out, plan.flip) if plan.flip else out


def combine_terms(outs: Sequence[jax.Array], how: str) -> jax.Array:
    """The terms of a filter combined: "first", "sum", "norm" or "root".

    ``"norm"`` is the magnitude ``sqrt(Σ |o|²)`` (real for complex terms); ``"root"`` is scipy's
    ``generic_gradient_magnitude``, ``sqrt(Σ o²)``, complex for complex terms. Both are computed
    as ``s · sqrt(Σ (o / s)²)`` with ``s = max |o|``, as ``hypot`` does, so they do not overflow
    where the squares would (float32 terms beyond ~1.8e19). A NaN term gives NaN (missing data
    is not "no edge"); an infinite one gives inf (for ``"norm"`` even beside a NaN, as
    ``np.hypot``; ``"root"`` gives NaN there, as ``sqrt(inf² + NaN)``). Where every term is 0 the
    result is 0 with gradient 0 (not NaN).
    """
    if how == "first":
        return outs[0]
    if how == "sum":
        return sum(outs[1:], outs[0])
    scale = functools.reduce(jnp.maximum, [jnp.abs(o) for o in outs])  # NaN propagates
    regular = (scale > 0) & (scale < jnp.inf)  # 0, inf and NaN are handled apart
    one = jnp.ones((), scale.dtype)
    s = jnp.where(regular, scale, one)  # double `where`s: finite gradients everywhere
    ys = [o / s.astype(o.dtype) for o in outs]  # explicit casts: strict promotion holds
    if how == "norm":
        total = sum(jnp.real(y * jnp.conj(y)) for y in ys)
        # hypot's rule: an infinite term wins over a NaN one
        scale = jnp.where(functools.reduce(jnp.logical_or, map(jnp.isinf, outs)), jnp.inf, scale)
    else:
        total = sum(y * y for y in ys)
    other = jnp.where(scale == 0, jnp.zeros((), scale.dtype), scale)  # 0 with gradient 0
    mag = jnp.sqrt(jnp.where(regular, total, one.astype(total.dtype))) * s.astype(total.dtype)
    return jnp.where(regular, mag, other.astype(total.dtype))


def real_dtype(x: jax.Array) -> Any:
    """Dtype of a filter's kernel weights: float32 for complex64 and for half precisions.

    The engine would compute half precisions in float32 anyway (rounding the weights to bfloat16
    loses 3 digits).
    """
    dtype = jnp.finfo(x.dtype).dtype
    return jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype


@jax.tree_util.register_pytree_node_class
class Built:
    """A kernel computed inside the filter's program, from traced `params` by a static `recipe`.

    A pytree whose leaves are the params and whose structure holds the recipe, so a jitted
    program is keyed on the recipe, not the params' values: a new σ reuses the compiled program,
    and the kernel's taps cost no program of their own. `recipe` is hashable, with a ``shape``,
    ``build(params) -> kernel`` (traceable) and ``crop(kernel, params)``, which drops the zero
    taps that a static size adds (for :func:`resolved`: the halo and tile executors would
    otherwise exchange and read wider halos).
    """

    def __init__(self, recipe: Any, params: Any):
        self.recipe, self.params = recipe, params

    @property
    def shape(self) -> tuple[int, ...]:
        return self.recipe.shape

    def kernel(self) -> jax.Array:
        return self.recipe.build(self.params)

    def tree_flatten(self):
        return (self.params,), self.recipe

    @classmethod
    def tree_unflatten(cls, recipe, children):
        return cls(recipe, children[0])


_build_kernel = jax.jit(Built.kernel)  # one program per recipe (bucket), not per σ


def _resolved_op(op: Op, dtype: Any) -> Op:
    k, pads = op.kernel, op.pads
    if isinstance(k, Built):
        full = k.shape
        k = k.recipe.crop(_build_kernel(k), k.params)
        # The crop drops as many zero taps on each side (odd sizes): the reach shrinks by as many.
        cut = [(m - c) // 2 for m, c in zip(full, k.shape, strict=True)]
        pads = tuple((lo - c, hi - c) for (lo, hi), c in zip(pads, cut, strict=True))
    return op._replace(kernel=k.astype(dtype), pads=pads)


def resolved(plan: Plan) -> Plan:
    """The plan as the halo and tile executors take it: every kernel an array of the compute
    dtype, a :class:`Built` one cropped to its true radius (its pads shrunk to match), and `x`
    in the compute dtype (for the convolve family; a filter's `x` is already float).

    Raises ``NotImplementedError`` for an integer `rounding`: scipy.ndimage truncates every 1-D
    pass to an integer ``output``; those executors only cast the final result, which would differ.
    """
    if plan.rounding is not None and np.dtype(plan.rounding).kind not in "fc":
        raise NotImplementedError(
            f"`output` must be a float or complex dtype for the sharded and tiled filters; got "
            f"{np.dtype(plan.rounding)}. Filter with output=None and cast the result."
        )
    terms = tuple(tuple(_resolved_op(op, plan.compute) for op in term) for term in plan.terms)
    x = plan.x if plan.program else plan.x.astype(plan.compute)
    return plan._replace(x=x, terms=terms)


def filtered_axes(plan: Plan) -> set[int]:
    """The axes of `x` that some step of the plan correlates along."""
    return {a for term in plan.terms for op in term for a in op.axes}
