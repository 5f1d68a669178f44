"""Convolutions and filters over several devices: batch sharding and spatial domain decomposition.

Each function here is the twin of the jaxconv function of the same name: it takes the same
arguments, plus two keyword-only ones, and returns the same values (to round-off):

* ``mesh``: a :class:`jax.sharding.Mesh`; default: a 1-D mesh over all devices (or the mesh of
  an input that is already a :class:`~jax.sharding.NamedSharding` array);
* ``spec``: a :class:`jax.sharding.PartitionSpec` for the input (a tuple of mesh axis names, None
  or tuples of names, one entry per leading axis of the input; missing entries are None).

Axes of the input that the function does not filter (batch axes: the leading axes of a stack of
images, with ``axes=(-2, -1)`` for the ndimage filters) are simply sharded. Filtered axes named in
`spec` are split into blocks, and every block exchanges a halo with its neighbours
(``lax.ppermute`` inside ``jax.shard_map``) before the single-device engine filters it; the
global edges follow the boundary mode (``wrap``, ``reflect``/``symm``, ``mirror``,
``nearest``/``edge`` and ``constant`` with any value), so the result equals the single-device one
to round-off, and it is differentiable (gradients also flow back through the halo exchange).

Default layout (no `spec`): the first batch axis, if the input has one, is sharded over as many
devices as divide its length (or, if that leaves over half of them idle, over all of them, padded,
with the result gathered: jax arrays are sharded evenly); otherwise the filtered axis that takes
the most devices is split over as many as divide its length and leave each block at least as wide
as the halo.

A halo comes from the adjacent block only: kernels up to the block size are supported, and a wider
halo raises a ``ValueError`` naming the axis and the sizes. An axis that is split must have a
length divisible by its number of blocks.

:func:`fit_batch` spreads independent fits over the devices, and :func:`apply_tiled` runs any
of these functions out of core on one device: a memory-mapped ``.npy`` file in, another out, in
tiles with halos, under a memory cap (see its documentation).

Examples:
  >>> import numpy as np, jaxconv, jaxconv.sharded
  >>> x = np.random.default_rng(0).random((64, 48))
  >>> y = jaxconv.sharded.gaussian_filter(x, 2.0, mode="wrap")  # all devices, rows split
  >>> bool(np.allclose(y, jaxconv.gaussian_filter(x, 2.0, mode="wrap")))
  True

Multi-host: call ``jax.distributed.initialize(...)`` first and pass global arrays (see
``experiments/multihost_example.py``); the mesh then spans every process's devices.
"""

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxconv
from jaxconv._conv import convolve as _convolve
from jaxconv._conv.plan import Op, Plan, filtered_axes, finish, resolved
from jaxconv._filters import edges as _edges
from jaxconv._filters import gaussian as _gaussian_filters
from jaxconv._filters import ndimage as _filters
from jaxconv._parallel import halo as _halo
from jaxconv._parallel.tiled import apply_tiled

_DEFAULT_AXIS = "d"


# --- layout --------------------------------------------------------------------------------------
def _mesh_for(names: tuple[str, ...]) -> Mesh:
    """All devices on a mesh with the given axis names, as square as the device count allows."""
    devices = jax.devices()
    n, sizes = len(devices), []
    for i in range(len(names) - 1):
        rest = len(names) - i  # the largest divisor of n not above its rest-th root
        size = max(d for d in range(1, n + 1) if n % d == 0 and d**rest <= n)
        sizes.append(size)
        n //= size
    sizes = sorted([*sizes, n], reverse=True)  # the first (outer) axes get the most devices
    return Mesh(np.asarray(devices).reshape(sizes), names)


def _normalize_spec(fn: str, spec: Any, ndim: int) -> tuple:
    if isinstance(spec, P):
        entries = tuple(spec)
    elif isinstance(spec, (tuple, list)):
        entries = tuple(spec)
    else:
        raise TypeError(
            f"{fn}: `spec` must be a jax.sharding.PartitionSpec or a tuple of mesh axis names; "
            f"got {type(spec).__name__}."
        )
    if len(entries) > ndim:
        raise ValueError(
            f"{fn}: `spec` has {len(entries)} entries for an input with {ndim} dimensions; "
            f"got {spec!r}."
        )
    for e in entries:
        names = _halo.names_of(e)
        if not all(isinstance(n, str) for n in names):
            raise TypeError(
                f"{fn}: `spec` entries must be None, a mesh axis name or a tuple of names; "
                f"got {spec!r}."
            )
    return entries + (None,) * (ndim - len(entries))


def _check_mesh(fn: str, mesh: Any, spec: tuple) -> None:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{fn}: `mesh` must be a jax.sharding.Mesh; got {type(mesh).__name__}.")
    used = [n for e in spec for n in _halo.names_of(e)]
    for n in used:
        if n not in mesh.axis_names:
            raise ValueError(
                f"{fn}: `spec` names mesh axis {n!r}, which `mesh` lacks; its axes are "
                f"{mesh.axis_names}."
            )
    if len(set(used)) != len(used):
        raise ValueError(f"{fn}: `spec` uses a mesh axis twice; got {spec!r}.")


def _input_layout(x: Any) -> tuple[Mesh, tuple] | None:
    sharding = getattr(x, "sharding", None)
    if isinstance(sharding, NamedSharding) and sharding.mesh.size > 1:
        return sharding.mesh, tuple(sharding.spec)
    return None


def _default_layout(fn: str, plan: Plan, mesh: Mesh | None) -> tuple[Mesh, tuple]:
    x, filtered = plan.x, filtered_axes(plan)
    batch = [a for a in range(x.ndim) if a not in filtered and x.shape[a] > 1]
    devices = jax.devices() if mesh is None else None
    spec = [None] * x.ndim
    if batch:
        axis = batch[0]
        if mesh is None:
            # Devices that divide the batch (an uneven batch is padded, and its result gathered,
            # since jax arrays are sharded evenly), unless that leaves over half of them idle.
            top = min(len(devices), x.shape[axis])
            s = max(d for d in range(1, top + 1) if x.shape[axis] % d == 0)
            mesh = Mesh(np.asarray(devices[: s if 2 * s >= top else top]), (_DEFAULT_AXIS,))
    elif filtered:
        axis = min(filtered)
        if mesh is None:
            # The filtered axis that takes the most devices: as many as divide its length and
            # leave every block at least as wide as the halo (the first such axis on a tie).
            best = (1, axis)
            for a in sorted(filtered):
                for s in range(min(len(devices), x.shape[a]), best[0], -1):
                    trial = [None] * x.ndim
                    trial[a] = _DEFAULT_AXIS
                    if x.shape[a] % s == 0 and _fits(plan, devices[:s], trial, fn):
                        best = (s, a)
                        break
            spec[best[1]] = _DEFAULT_AXIS
            return Mesh(np.asarray(devices[: best[0]]), (_DEFAULT_AXIS,)), tuple(spec)
    else:
        axis = 0
        mesh = mesh if mesh is not None else Mesh(np.asarray(devices[:1]), (_DEFAULT_AXIS,))
    names = mesh.axis_names
    spec[axis] = names[0] if len(names) == 1 else tuple(names)
    return mesh, tuple(spec)


def _fits(plan: Plan, devices: list, spec: list, fn: str) -> bool:
    try:
        _halo.schedule(plan, Mesh(np.asarray(devices), (_DEFAULT_AXIS,)), tuple(spec), fn)
    except ValueError:
        return False
    return True


def _layout(fn: str, plan: Plan, mesh: Any, spec: Any) -> tuple[Mesh, tuple]:
    ndim = plan.x.ndim
    if spec is None:
        if mesh is None:
            found = _input_layout(plan.x)
            if found is not None:
                mesh, spec = found
                spec = _normalize_spec(fn, spec, ndim)
                _check_mesh(fn, mesh, spec)
                return mesh, spec
        else:
            _check_mesh(fn, mesh, ())
        return _default_layout(fn, plan, mesh)
    spec = _normalize_spec(fn, spec, ndim)
    if mesh is None:
        names = tuple(dict.fromkeys(n for e in spec for n in _halo.names_of(e)))
        found = _input_layout(plan.x)
        if found is not None and set(names) <= set(found[0].axis_names):
            mesh = found[0]  # the input's own mesh, re-laid out by `spec`
        else:
            mesh = _mesh_for(names or (_DEFAULT_AXIS,))
    _check_mesh(fn, mesh, spec)
    return mesh, spec


def _pad_batch(plan: Plan, mesh: Mesh, spec: tuple) -> tuple[Plan, tuple]:
    """Pads unfiltered (batch) axes to a multiple of their shard count; returns the true sizes."""
    filtered = filtered_axes(plan)
    x, sizes = plan.x, plan.x.shape
    widths = [(0, 0)] * x.ndim
    for a, entry in enumerate(spec):
        s = _halo.shards(mesh, entry)
        if a not in filtered and x.shape[a] % s:
            widths[a] = (0, -x.shape[a] % s)
    if not any(hi for _, hi in widths):
        return plan, sizes

    def pad_kernel(op: Op) -> Op:
        k = op.kernel
        if k.ndim != x.ndim:
            return op
        kw = [w if k.shape[a] == x.shape[a] else (0, 0) for a, w in enumerate(widths)]
        return op._replace(kernel=jnp.pad(k, kw))

    terms = tuple(tuple(pad_kernel(op) for op in term) for term in plan.terms)
    return plan._replace(x=jnp.pad(x, widths), terms=terms), sizes


def _run(fn: str, single: Callable, args, kwargs, mesh, spec) -> jax.Array:
    plan = single.plan(*args, **kwargs)
    if not isinstance(plan, Plan):  # a degenerate input (empty, or no axis): the result itself
        return plan
    plan = resolved(plan)
    mesh, spec = _layout(fn, plan, mesh, spec)
    padded, sizes = _pad_batch(plan, mesh, spec)
    out = _halo.execute(padded, mesh, spec, fn)
    if padded is not plan:
        filtered = filtered_axes(plan)
        out = out[tuple(slice(0, n) if a not in filtered else slice(None) for a, n in
                        enumerate(sizes))]  # fmt: skip
    return finish(plan, out)


# --- the twins -----------------------------------------------------------------------------------
_EXTRA = (
    inspect.Parameter("mesh", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any),
    inspect.Parameter("spec", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any),
)


def _with_mesh_and_spec(single: Callable) -> inspect.Signature:
    """`single`'s signature plus `mesh` and `spec` (before its ``**kwargs``, if it has them)."""
    sig = inspect.signature(single)
    params = list(sig.parameters.values())
    var_kw = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    params = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return sig.replace(parameters=[*params, *_EXTRA, *var_kw])


def _twin(single: Callable) -> Callable:
    """The sharded version of a planned jaxconv function (same signature, plus `mesh`, `spec`).

    Generated rather than written out, so that each twin follows its single-device function's
    arguments exactly, and runs the plan that function's ``plan`` builds.
    """
    name = single.__name__
    fn = f"sharded.{name}"
    if not hasattr(single, "plan"):
        raise TypeError(f"{name} is not a planned jaxconv function (it has no `plan`).")

    @functools.wraps(single)
    def twin(*args: Any, mesh: Any = None, spec: Any = None, **kwargs: Any) -> jax.Array:
        return _run(fn, single, args, kwargs, mesh, spec)

    twin.__signature__ = _with_mesh_and_spec(single)
    twin.__module__ = __name__
    twin.__doc__ = (
        f"Sharded :func:`jaxconv.{name}`: the same arguments and result, over several devices.\n\n"
        "    Args:\n"
        f"      *args, **kwargs: those of :func:`jaxconv.{name}`.\n"
        "      mesh: a :class:`jax.sharding.Mesh`; default all devices (see the module).\n"
        "      spec: a :class:`jax.sharding.PartitionSpec` of the input; default: batch axis\n"
        "        sharded if there is one, else the first filtered axis split.\n\n"
        "    Returns:\n"
        f"      What :func:`jaxconv.{name}` returns, as an array sharded over `mesh`.\n\n"
        "    Raises:\n"
        f"      ValueError: as :func:`jaxconv.{name}`; also a split axis that the mesh does not\n"
        "        divide, or a halo wider than a block.\n"
    )
    return twin


def _fit_batch_twin(single: Callable) -> Callable:
    """The sharded version of :func:`jaxconv.fit_batch` (pairs spread over the devices)."""

    @functools.wraps(single)
    def fit_batch(model: Any, images: Any, targets: Any, *, mesh: Any = None, spec: Any = None,
                  **options: Any) -> Any:  # fmt: skip
        fn = "sharded.fit_batch"
        batch = np.shape(images)[0] if np.ndim(images) else 0
        if spec is None:
            if mesh is None:  # the most devices that divide the batch (pairs are not padded)
                devices = jax.devices()
                s = max(d for d in range(1, min(len(devices), max(batch, 1)) + 1) if batch % d == 0)
                mesh = Mesh(np.asarray(devices[:s]), (_DEFAULT_AXIS,))
            _check_mesh(fn, mesh, ())
            names = mesh.axis_names
            spec = (names[0] if len(names) == 1 else tuple(names),)
        spec = _normalize_spec(fn, spec, max(np.ndim(images), 1))
        if mesh is None:
            mesh = _mesh_for(tuple(dict.fromkeys(n for e in spec for n in _halo.names_of(e))))
        _check_mesh(fn, mesh, spec)
        s = _halo.shards(mesh, spec[0])
        if batch % s:
            raise ValueError(
                f"{fn}: the {batch} pairs must split evenly over the {s} devices of mesh axis "
                f"{spec[0]!r}."
            )
        sharding = NamedSharding(mesh, P(*spec))
        images, targets = (jax.device_put(np.asarray(a), sharding) for a in (images, targets))
        return single(model, images, targets, **options)

    fit_batch.__signature__ = _with_mesh_and_spec(single)  # before the fit options
    fit_batch.__module__ = __name__
    fit_batch.__doc__ = """Sharded :func:`jaxconv.fit_batch`: the pairs spread over the devices.

    The pairs are placed along the first axis of `mesh` (a ``NamedSharding``, default: as many
    devices as divide the batch) and the vectorised fit is compiled for that layout, so each
    device fits its own pairs; the pairs are independent, so the result is that of
    :func:`jaxconv.fit_batch`. Arguments are its own, plus `mesh` and `spec` (a PartitionSpec of
    the batch axis and, optionally, others). The returned parameters keep that layout.
    """
    return fit_batch


convolve = _twin(_convolve.convolve)
correlate = _twin(_convolve.correlate)
convolve2d = _twin(_convolve.convolve2d)
correlate2d = _twin(_convolve.correlate2d)
correlate_padded = _twin(_convolve.correlate_padded)

gaussian_filter = _twin(_gaussian_filters.gaussian_filter)
gaussian_filter1d = _twin(_gaussian_filters.gaussian_filter1d)
gaussian_laplace = _twin(_gaussian_filters.gaussian_laplace)
gaussian_gradient_magnitude = _twin(_gaussian_filters.gaussian_gradient_magnitude)
sobel = _twin(_edges.sobel)
prewitt = _twin(_edges.prewitt)
scharr = _twin(_edges.scharr)
edge_magnitude = _twin(_edges.edge_magnitude)
laplace = _twin(_filters.laplace)
uniform_filter = _twin(_filters.uniform_filter)
ndimage_correlate = _twin(_filters.ndimage_correlate)
ndimage_convolve = _twin(_filters.ndimage_convolve)
fit_batch = _fit_batch_twin(jaxconv.fit_batch)

__all__ = [
    "apply_tiled",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "correlate_padded",
    "edge_magnitude",
    "fit_batch",
    "gaussian_filter",
    "gaussian_filter1d",
    "gaussian_gradient_magnitude",
    "gaussian_laplace",
    "laplace",
    "ndimage_convolve",
    "ndimage_correlate",
    "prewitt",
    "scharr",
    "sobel",
    "uniform_filter",
]
