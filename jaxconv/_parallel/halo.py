"""Spatial domain decomposition: halo exchange with ``lax.ppermute`` inside ``jax.shard_map``.

Every convolution and linear filter in jaxconv ends in the primitive
:func:`jaxconv.correlate_padded` (extend by ``(lo, hi)`` with a boundary mode, then take the valid
correlation), applied once (``convolve``, ``correlate2d``, ...) or as a short *plan*: terms of
successive 1-D or N-D correlations, combined by a sum or a norm (the ndimage filters of
``_filters/ndimage.py``). This module runs such a plan on an array split into blocks over a
device mesh:

* an axis of the array that no step convolves (a batch axis) is simply sharded;
* along a convolved axis split over ``S`` devices, each step first gathers a *window* of its input:
  its own block, a halo from each neighbour (``lax.ppermute``, one hop), and at the global edges the
  boundary extension (``wrap`` comes from the far neighbour through a cyclic permutation; the
  others are computed locally by ``_boundary.pad`` from the first/last samples of the edge block);
  then the step is the single-device :func:`~jaxconv.correlate_padded` with zero padding along the
  split axes. Every step of a plan exchanges its own halo, so even a chain of passes (where the
  boundary rule applies to intermediate results, as in scipy.ndimage) equals the single-device
  result, and the halo is one step's radius, not the whole filter's.

Outputs of another length (``"full"``, ``"valid"``) keep the input's blocks: device ``d``
computes the output samples ``[d b, (d + 1) b)``, plus for ``"full"`` the ``m - 1`` samples that
follow (kept from the last device only), and the tail beyond ``n_out`` of ``"valid"`` is dropped, so
the halos are the kernel's ``(lo, hi)`` in every mode.

A halo must come from the adjacent block (one ``ppermute`` hop): a step whose halo is wider than a
block is rejected with a ``ValueError`` (kernels up to the block size are fine).

The plan of a public function comes from its builder, ``fn.plan(...)`` (see ``_plan``), in the
form ``_plan.resolved`` gives, so the sharded functions accept exactly the arguments of their
single-device twins and no convolution is written twice.
"""

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxconv._conv import boundary as _boundary
from jaxconv._conv import convolve as _convolve
from jaxconv._conv.plan import Op, Plan, combine_terms
from jaxconv._util import concrete


# --- layout and schedule -------------------------------------------------------------------------
def names_of(entry: Any) -> tuple[str, ...]:
    """Mesh axis names of one PartitionSpec entry (None, a name or a tuple of names)."""
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def shards(mesh: Mesh, entry: Any) -> int:
    """Number of blocks an array axis is cut into by one PartitionSpec entry."""
    return math.prod(mesh.shape[n] for n in names_of(entry))


def kernel_extent(op: Op, ndim: int, axis: int) -> int:
    k = op.kernel
    return k.shape[axis] if k.ndim == ndim else k.shape[op.axes.index(axis)]


class Window(NamedTuple):
    """Static description of one halo exchange along one split axis.

    Device ``d`` computes the output samples ``[d b, d b + b + extra)``: its own block's, plus (for
    outputs longer than the input, ``"full"``) the ``extra`` samples of the next block, which only
    the last device's are kept (see :func:`assemble`). Its window is its block, ``lo`` samples
    before it and ``hi`` after it.
    """

    axis: int
    entry: Any  # the PartitionSpec entry: mesh axis name(s)
    shards: int  # S
    block: int  # b, input samples per device
    extra: int  # max(0, n_out - n)
    lo: int
    hi: int  # samples needed after the block (the op's own `hi`, more for "valid")
    boundary: str


def _blocks(n: int, s: int, what: str, axis: int, entry: Any, fn: str) -> int:
    if n % s:
        raise ValueError(
            f"{fn}: axis {axis} of {what} (length {n}) must split evenly over the {s} devices of "
            f"mesh axis {entry!r}; pad it, or choose a `spec`/`mesh` that divides it."
        )
    return n // s


def schedule(plan: Plan, mesh: Mesh, spec: tuple, fn: str) -> tuple[tuple, tuple[int, ...]]:
    """Validates a layout and returns (windows per term and op, global output shape).

    ``windows[t][i]`` lists the :class:`Window` of op ``i`` of term ``t``, one per split axis it
    convolves. Raises ``ValueError`` for an uneven split or a halo wider than a block, and
    ``NotImplementedError`` for a plan that changes an axis's length in more than one step.
    """
    x = plan.x
    out_shape = list(x.shape)
    for a, entry in enumerate(spec):
        s = shards(mesh, entry)
        if s > 1:
            _blocks(x.shape[a], s, "the input", a, entry, fn)
    windows = []
    for t, term in enumerate(plan.terms):
        length = list(x.shape)
        term_windows = []
        for op in term:
            op_windows = []
            for a, (lo, hi), mode in zip(op.axes, op.pads, op.boundaries, strict=True):
                m = kernel_extent(op, x.ndim, a)
                new = length[a] + lo + hi - m + 1
                s = shards(mesh, spec[a])
                if s > 1:
                    if new != length[a] and sum(a in o.axes for o in term) > 1:
                        raise NotImplementedError(
                            f"{fn}: a multi-step plan that changes the length of a split axis."
                        )
                    b = x.shape[a] // s
                    extra = max(0, new - length[a])
                    w = Window(a, spec[a], s, b, extra, lo, extra + m - 1 - lo, mode)
                    _check_halo(w, hi, x.shape[a], fn)
                    op_windows.append(w)
                length[a] = new
            term_windows.append(tuple(op_windows))
        windows.append(tuple(term_windows))
        if t == 0:
            out_shape = length
        elif length != out_shape:  # pragma: no cover - jaxconv's filters never do this
            raise NotImplementedError(f"{fn}: terms of different output shapes.")
    return tuple(windows), tuple(out_shape)


def _check_halo(w: Window, hi: int, n: int, fn: str) -> None:
    # One hop: a halo must fit in the neighbouring block. The global-edge extension is computed
    # from the edge block alone; ``mirror`` skips the edge sample, so it needs one more.
    mirror = w.boundary == "mirror"
    need = max(w.lo, w.hi, max(w.lo, hi) + mirror)
    if need > w.block:
        raise ValueError(
            f"{fn}: the halo along axis {w.axis} needs {need} samples of a neighbouring block, "
            f"but each block holds {w.block} ({n} samples over {w.shards} devices of mesh axis "
            f"{w.entry!r}); use fewer devices along this axis or a smaller kernel "
            "(kernels up to the block size are supported)."
        )


# --- the halo exchange (inside shard_map) --------------------------------------------------------
def _from_left(y, w: Window, h: int, index, fill):
    """The `h` samples before this block: the left neighbour's tail, or the global extension."""
    b, s = w.block, w.shards
    send = lax.slice_in_dim(y, b - h, b, axis=w.axis)
    cyclic = w.boundary == "wrap"
    perm = [(i, i + 1) for i in range(s - 1)] + ([(s - 1, 0)] if cyclic else [])
    recv = lax.ppermute(send, w.entry, perm)
    if cyclic:
        return recv
    slab = lax.slice_in_dim(y, 0, min(b, h + 1), axis=w.axis)
    edge = _boundary.pad(slab, [w.axis], [(h, 0)], [w.boundary], fill)
    edge = lax.slice_in_dim(edge, 0, h, axis=w.axis)
    return jnp.where(index == 0, edge, recv)


def _from_right(y, w: Window, h: int, index, fill):
    """The `h` samples after this block: the right neighbour's head, or the global extension."""
    b, s = w.block, w.shards
    send = lax.slice_in_dim(y, 0, h, axis=w.axis)
    cyclic = w.boundary == "wrap"
    perm = [(i, i - 1) for i in range(1, s)] + ([(0, s - 1)] if cyclic else [])
    recv = lax.ppermute(send, w.entry, perm)
    if cyclic:
        return recv
    slab = lax.slice_in_dim(y, b - min(b, h + 1), b, axis=w.axis)
    edge = _boundary.pad(slab, [w.axis], [(0, h)], [w.boundary], fill)
    edge = lax.slice_in_dim(edge, edge.shape[w.axis] - h, edge.shape[w.axis], axis=w.axis)
    return jnp.where(index == s - 1, edge, recv)


def window(y: jax.Array, w: Window, fill: Any) -> jax.Array:
    """This device's window along ``w.axis``: ``lo + b + hi`` samples of the extended input."""
    index = lax.axis_index(w.entry)
    parts = [y]
    if w.lo:
        parts.insert(0, _from_left(y, w, w.lo, index, fill))
    if w.hi:
        parts.append(_from_right(y, w, w.hi, index, fill))
    return jnp.concatenate(parts, axis=w.axis) if len(parts) > 1 else y


def assemble(out: jax.Array, w: Window, n_out: int) -> jax.Array:
    """Global output along ``w.axis`` from the devices' blocks of ``b + extra`` samples."""
    a, b, s = w.axis, w.block, w.shards
    if w.extra:
        blocks = out.reshape((*out.shape[:a], s, b + w.extra, *out.shape[a + 1 :]))
        body = lax.slice_in_dim(blocks, 0, b, axis=a + 1)
        body = body.reshape((*out.shape[:a], s * b, *out.shape[a + 1 :]))
        tail = lax.slice_in_dim(out, out.shape[a] - w.extra, out.shape[a], axis=a)
        out = jnp.concatenate([body, tail], axis=a)
    return lax.slice_in_dim(out, 0, n_out, axis=a)


# --- execution -----------------------------------------------------------------------------------
class _Const:
    """A concrete kernel as a static (hashable) jit argument, so it stays concrete in the trace.

    Concrete kernels let the engine pick the same method as on one device (e.g. ``separable``,
    which needs the kernel's values at trace time).
    """

    def __init__(self, value: Any):
        self.value = np.asarray(value)
        self._key = (self.value.shape, self.value.dtype.str, self.value.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Const) and self._key == other._key


class _Static(NamedTuple):
    mesh: Mesh
    spec: tuple
    structure: tuple  # per term, per op: (axes, pads, boundaries, kernel slot or _Const)
    windows: tuple
    kernel_specs: tuple
    out_shape: tuple
    combine: str
    method: str
    precision: Any
    out_dtype: Any


def _kernel_spec(op: Op, ndim: int, spec: tuple) -> P:
    if op.kernel.ndim != ndim:
        return P()
    return P(
        *(spec[a] if a not in op.axes and op.kernel.shape[a] > 1 else None for a in range(ndim))
    )


def execute(plan: Plan, mesh: Mesh, spec: tuple, fn: str) -> jax.Array:
    """Runs `plan` with its input laid out as ``NamedSharding(mesh, P(*spec))``."""
    spec = tuple(spec) + (None,) * (plan.x.ndim - len(spec))
    windows, out_shape = schedule(plan, mesh, spec, fn)
    dynamic, kernel_specs, structure = [], [], []
    for term in plan.terms:
        term_structure = []
        for op in term:
            kspec = _kernel_spec(op, plan.x.ndim, spec)
            value = concrete(op.kernel)
            if value is not None and kspec == P():
                slot = _Const(value)
            else:
                slot = len(dynamic)
                dynamic.append(op.kernel)
                kernel_specs.append(kspec)
            term_structure.append((op.axes, op.pads, op.boundaries, slot))
        structure.append(tuple(term_structure))
    static = _Static(
        mesh,
        spec,
        tuple(structure),
        windows,
        tuple(kernel_specs),
        out_shape,
        plan.combine,
        plan.method,
        plan.precision,
        jnp.dtype(plan.out_dtype),
    )
    fill = jnp.asarray(plan.fill)
    return _execute_jit(plan.x, tuple(dynamic), fill, static=static)


@functools.partial(jax.jit, static_argnames=("static",))
def _execute_jit(x, dynamic, fill, *, static: _Static):
    def body(xb, kernels, fill):
        outs = []
        for term, term_windows in zip(static.structure, static.windows, strict=True):
            y = xb
            for (axes, pads, boundaries, slot), op_windows in zip(term, term_windows, strict=True):
                k = jnp.asarray(slot.value) if isinstance(slot, _Const) else kernels[slot]
                local_pads = list(pads)
                for w in op_windows:
                    y = window(y, w, fill)
                    local_pads[axes.index(w.axis)] = (0, 0)
                y = _convolve.correlate_padded(
                    y,
                    k,
                    axes=axes,
                    pads=local_pads,
                    boundary=boundaries,
                    fillvalue=fill,
                    method=static.method,
                    precision=static.precision,
                )
            outs.append(y)
        return combine_terms(outs, static.combine)

    spec = P(*static.spec)
    # check_vma=False: the engine's own primitive (``_methods._valid_p``) does not propagate the
    # varying-manual-axes type, which the checked mode requires of every primitive inside.
    mapped = jax.shard_map(
        body,
        mesh=static.mesh,
        in_specs=(spec, tuple(static.kernel_specs), P()),
        out_specs=spec,
        check_vma=False,
    )
    out = mapped(x, dynamic, fill)
    done = set()
    for op_windows in static.windows[0]:
        for w in op_windows:
            if w.axis not in done and out.shape[w.axis] != static.out_shape[w.axis]:
                out = assemble(out, w, static.out_shape[w.axis])
            done.add(w.axis)
    return out.astype(static.out_dtype)
