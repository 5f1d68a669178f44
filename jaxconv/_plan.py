"""The *plan* of a jaxconv convolution or filter: what it computes, captured from a real call.

Every convolution and linear filter in jaxconv ends in the primitive
:func:`jaxconv.correlate_padded` (extend by ``(lo, hi)`` with a boundary mode, then take the valid
correlation), applied once (``convolve``, ``correlate2d``, ...) or as a short plan of terms of
successive 1-D or N-D correlations combined by a sum or a norm (the ndimage filters of
``_filters.py``, run by ``_filters._run``). :func:`capture` runs a public function with that final
call intercepted, so all of its own argument handling (scipy's centring rules, kernel
construction, validation) happens exactly as usual, and returns the plan: the distributed
(``_halo``) and out-of-core (``_tiled``) executors then run it without a second implementation
of any convolution.
"""

import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxconv import _boundary, _convolve, _edges, _filters, _gaussian_filters


class Op(NamedTuple):
    """One ``correlate_padded(x, kernel, axes=axes, pads=pads, boundary=boundaries)`` step."""

    kernel: Any  # one dimension per axis in `axes`, or `x.ndim` dimensions (then may be batched)
    axes: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    boundaries: tuple[str, ...]  # canonical names (see _boundary)


class Plan(NamedTuple):
    """What a public function computes: ``combine(term(x) for term in terms)``."""

    x: jax.Array
    terms: tuple[tuple[Op, ...], ...]
    fill: Any
    combine: str  # "first", "sum" or "norm" (as in _filters._run)
    method: str
    precision: Any
    out_dtype: Any


class _Captured(Exception):
    def __init__(self, plan: Plan):
        super().__init__("plan captured")
        self.plan = plan


_CAPTURING = contextvars.ContextVar("jaxconv_capturing_plan", default=False)
_PATCH_LOCK = threading.RLock()


def _capture_correlate(original, x, k, axes, pads, boundaries, fillvalue, method, precision, fn):
    """Stands in for ``_convolve._correlate``, the last call of the convolve family."""
    if not _CAPTURING.get():
        return original(x, k, axes, pads, boundaries, fillvalue, method, precision, fn)
    out_dtype, compute = _convolve._result_dtype(x, k)
    op = Op(k.astype(compute), tuple(axes), tuple(map(tuple, pads)), tuple(boundaries))
    plan = Plan(x.astype(compute), ((op,),), fillvalue, "first", method, precision, out_dtype)
    raise _Captured(plan)


def _capture_run(original, x, weights, cval, *, plan, combine, method, precision, output=None):
    """Stands in for ``_filters._run``, the executor of every ndimage-style filter."""
    if not _CAPTURING.get():
        return original(
            x, weights, cval, plan=plan, combine=combine, method=method, precision=precision,
            output=output,
        )  # fmt: skip
    if output is not None and np.dtype(output).kind not in "fc":
        # scipy.ndimage truncates every 1-D pass to an integer `output`; the distributed and
        # tiled executors only cast the final result, which would differ, so they refuse.
        raise NotImplementedError(
            f"`output` must be a float or complex dtype for the sharded and tiled filters; got "
            f"{np.dtype(output)}. Filter with output=None and cast the result."
        )
    terms = []
    for term, term_w in zip(plan, weights, strict=True):
        ops = []
        for (axes, modes, origins), w in zip(term, term_w, strict=True):
            if isinstance(w, _filters.Built):  # one program per recipe, less its zero taps
                w = w.recipe.crop(_build_kernel(w), w.params)
            w = w.astype(_filters.real_dtype(x))
            # ndimage's centring, exactly as in _filters._correlate.
            pads = tuple(
                (m // 2 + o, m - 1 - m // 2 - o) for m, o in zip(w.shape, origins, strict=True)
            )
            bounds = _boundary.canonical_boundaries(modes, len(axes), "filter")
            ops.append(Op(w, tuple(axes), pads, bounds))
        terms.append(tuple(ops))
    out_dtype = x.dtype if output is None else np.dtype(output)
    raise _Captured(Plan(x, tuple(terms), cval, combine, method, precision, out_dtype))


_build_kernel = jax.jit(_filters.Built.kernel)


@contextlib.contextmanager
def _intercepting() -> Iterator[None]:
    # The patched functions check a context variable, so other threads that call jaxconv while a
    # plan is captured here run normally.
    with _PATCH_LOCK:
        saved = (_convolve._correlate, _filters._run)
        _convolve._correlate = functools.partial(_capture_correlate, saved[0])
        _filters._run = functools.partial(_capture_run, saved[1])
        token = _CAPTURING.set(True)
        try:
            yield
        finally:
            _CAPTURING.reset(token)
            _convolve._correlate, _filters._run = saved


# The public functions whose whole computation is the plan `capture` returns: argument checks,
# kernels, then one call of `_convolve._correlate` or of `_filters._run`. A function that calls the
# engine twice (a difference of Gaussians, convolve_separable) would be captured half-way.
PLANNED = frozenset(
    {
        *(_convolve.convolve, _convolve.correlate, _convolve.convolve2d, _convolve.correlate2d),
        *(_convolve.correlate_padded, _filters.laplace, _filters.uniform_filter),
        *(_filters.ndimage_correlate, _filters.ndimage_convolve, _gaussian_filters.gaussian_filter),
        *(_gaussian_filters.gaussian_filter1d, _gaussian_filters.gaussian_laplace),
        *(_gaussian_filters.gaussian_gradient_magnitude, _edges.sobel, _edges.prewitt),
        *(_edges.scharr, _edges.edge_magnitude),
    }
)


def capture(fn: Callable, *args: Any, **kwargs: Any) -> tuple[Plan | None, Any]:
    """Runs ``fn(*args, **kwargs)`` up to its final correlation; returns ``(plan, None)``.

    All argument checking and kernel construction happen as in a normal call; only the last step
    (which would compute) is replaced. A function that never reaches it runs to the end and
    ``(None, result)`` is returned. `fn` must be in :data:`PLANNED`.
    """
    if fn not in PLANNED:
        raise ValueError(f"capture: {fn!r} is not a single-plan jaxconv function.")
    with _intercepting():
        try:
            result = fn(*args, **kwargs)
        except _Captured as captured:
            return captured.plan, None
    return None, result
