"""N-D convolution and correlation: scipy.signal's semantics, boundary modes and fast methods."""

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxconv._conv import boundary as _boundary
from jaxconv._conv import memory as _memory
from jaxconv._conv import methods as _methods
from jaxconv._conv.methods import promote
from jaxconv._conv.plan import Built, Op, Plan, combine_terms, finish, real_dtype
from jaxconv._util import concrete

MODES = ("full", "same", "valid")
_PRECISIONS = {
    None: lax.Precision.HIGHEST,
    "highest": lax.Precision.HIGHEST,
    "high": lax.Precision.HIGH,
    "default": lax.Precision.DEFAULT,
}
_LOW_PRECISION = (jnp.bfloat16, jnp.float16)


def _check_static(fn: str, **options: Any) -> None:
    for name, value in options.items():
        if isinstance(value, jax.core.Tracer) or (
            isinstance(value, (tuple, list)) and any(isinstance(v, jax.core.Tracer) for v in value)
        ):
            raise TypeError(
                f"{fn}: `{name}` must be a static Python value (mark it static under jit); "
                "got a traced value."
            )


def _as_array(fn: str, name: str, value: Any, allow_empty: bool = False) -> jax.Array:
    dtype = value.dtype if isinstance(value, jax.Array) else np.asarray(value).dtype
    if dtype.kind not in "biufcV" or (dtype.kind == "V" and dtype != jnp.bfloat16):
        raise TypeError(f"{fn}: `{name}` must have a numeric dtype; got {dtype}.")
    arr = jnp.asarray(value)
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{fn}: `{name}` must not be empty; got shape {arr.shape}.")
    return arr


def check_fillvalue(fn: str, name: str, value: Any, dtype: Any) -> None:
    """scipy's rule for a fill value: one number, and complex only for complex results."""
    value_dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
    if value_dtype.kind not in "biufc" and value_dtype != jnp.bfloat16:
        raise TypeError(f"{fn}: `{name}` must be a number; got {value!r}.")
    if np.size(value) != 1:
        raise ValueError(f"{fn}: `{name}` must be a scalar; got shape {np.shape(value)}.")
    if jnp.issubdtype(value_dtype, jnp.complexfloating) and not jnp.issubdtype(
        dtype, jnp.complexfloating
    ):
        shown = value if isinstance(value, complex) else f"a value of dtype {value_dtype}"
        raise ValueError(
            f"{fn}: `{name}` must be real when the inputs are real (its imaginary part would be "
            f"lost); got {shown}."
        )


def _precision(fn: str, precision: Any) -> Any:
    if isinstance(precision, lax.Precision):
        return precision
    if isinstance(precision, str):
        precision = precision.lower()
    if precision not in _PRECISIONS:
        raise ValueError(
            f"{fn}: `precision` must be a jax.lax.Precision or one of "
            f"'highest', 'high', 'default'; got {precision!r}."
        )
    return _PRECISIONS[precision]


def _normalize_axes(fn: str, in1: jax.Array, in2: jax.Array, axes: Any) -> tuple[jax.Array, tuple]:
    """Returns `in2` reshaped to `in1.ndim` dimensions and the sorted convolved `axes`."""
    axes_t = tuple(axes) if isinstance(axes, (tuple, list, np.ndarray)) else (axes,)
    if not axes_t or not all(isinstance(a, (int, np.integer)) for a in axes_t):
        raise ValueError(
            f"{fn}: `axes` must be an int or a non-empty sequence of ints; got {axes!r}."
        )
    in_range = all(-in1.ndim <= a < in1.ndim for a in axes_t)
    norm = tuple(sorted(int(a) % in1.ndim for a in axes_t)) if in_range else ()
    if not in_range or len(set(norm)) != len(norm):
        raise ValueError(
            f"{fn}: `axes` must be distinct axes of an array with {in1.ndim} dimensions; "
            f"got {axes!r}."
        )
    if in2.ndim == len(norm) and in2.ndim != in1.ndim:
        shape = [1] * in1.ndim
        for a, s in zip(norm, in2.shape, strict=True):
            shape[a] = s
        in2 = in2.reshape(shape)
    elif in2.ndim != in1.ndim:
        raise ValueError(
            f"{fn}: `in1` and `in2` must have the same number of dimensions, or `in2` one per "
            f"axis in `axes`; got in1.ndim={in1.ndim}, in2.ndim={in2.ndim}, axes={axes!r}."
        )
    return in2, norm


def _prepare(fn, in1, in2, mode, method, axes, boundary, precision, allow_empty=False):
    """Validates everything static and returns the pieces of a convolution problem.

    Two inputs of 0 dimensions (or a 0-d `in2`) leave no axis to convolve: `axes` is then ``()``.
    """
    _check_static(fn, mode=mode, method=method, axes=axes, boundary=boundary)
    if mode not in MODES:
        raise ValueError(f"{fn}: `mode` must be one of {MODES}; got {mode!r}.")
    method = _methods.check_method(fn, method)
    in1 = _as_array(fn, "in1", in1, allow_empty)
    in2 = _as_array(fn, "in2", in2, allow_empty)
    if axes is None and in2.ndim > in1.ndim:
        raise ValueError(
            f"{fn}: `in2` must not have more dimensions than `in1`; "
            f"got in1.ndim={in1.ndim}, in2.ndim={in2.ndim}."
        )
    if axes is None:
        conv_axes = tuple(range(in1.ndim - in2.ndim, in1.ndim))
        in2 = in2.reshape((1,) * (in1.ndim - in2.ndim) + in2.shape)
    else:
        in2, conv_axes = _normalize_axes(fn, in1, in2, axes)
    for a in range(in1.ndim):
        if a not in conv_axes and 1 not in (in1.shape[a], in2.shape[a]):
            if in1.shape[a] != in2.shape[a]:
                raise ValueError(
                    f"{fn}: axis {a} is not convolved, so `in1` and `in2` must match there or "
                    f"one must be 1; got shapes {in1.shape} and {in2.shape}."
                )
    boundaries = _boundary.canonical_boundaries(boundary, len(conv_axes), fn)
    return in1, in2, conv_axes, boundaries, _precision(fn, precision), method


def _result_dtype(in1: jax.Array, in2: jax.Array) -> tuple[Any, Any]:
    """(output dtype, compute dtype): ints/bools become float, half precisions compute in f32."""
    dtype = promote(in1, in2)
    if not jnp.issubdtype(dtype, jnp.inexact):
        dtype = promote(float)
    compute = jnp.float32 if dtype in _LOW_PRECISION else dtype
    return dtype, compute


def _plan(
    n: Sequence[int], k: jax.Array, axes: Sequence[int], batch: int, method: str, fn: str
) -> tuple[str, Any]:
    """Picks the method (for "auto") and, for separable kernels, their rank-1 terms.

    `k` is the kernel with `x`'s dimensions; only its shape along `axes` matters, and its value
    where it is concrete and shared by the batch (the separable method needs both).
    """
    d = len(axes)
    m = tuple(k.shape[a] for a in axes)
    terms = None
    separable_useful = d >= 2 and min(m) >= 3 and math.prod(m) > 16
    if method == "separable" or (method == "auto" and separable_useful):
        shared = all(s == 1 for i, s in enumerate(k.shape) if i not in axes)
        value = concrete(k) if shared else None
        if value is not None:
            value = np.moveaxis(value, axes, range(-d, 0)).reshape(m)
            value = value.astype(np.promote_types(value.dtype, np.float32))  # half: in float32
            rtol = 10 * np.finfo(np.result_type(value.dtype, np.float32)).eps * max(m)
            terms = _methods.separable_terms(value, rtol)
        if method == "separable":
            if terms is None:
                raise NotImplementedError(
                    f"{fn}: method='separable' needs a concrete (not traced), low-rank kernel "
                    f"shared by the batch; got a kernel of shape {k.shape} that is traced or of "
                    "high rank. Use jaxconv.convolve_separable with 1-D factors instead."
                )
            return "separable", terms
    if method == "auto":
        backend = jax.default_backend()
        rank = len(terms) if terms is not None else None
        method = _methods.auto_method(n, m, batch, backend, rank)
    return method, (terms if method == "separable" else None)


# --- plans and their executor --------------------------------------------------------------------
def planned(build: Callable) -> Callable:
    """The public function whose body is the plan builder `build`, run by :func:`run`.

    `build` checks the arguments and returns a :class:`~jaxconv._conv.plan.Plan` (or, for degenerate
    inputs, the finished result); the public function has its name, signature and docstring, and
    exposes it as ``fn.plan(*args, **kwargs)`` for the sharded and tiled executors. The planned
    functions are those with a ``plan`` attribute.
    """

    @functools.wraps(build)
    def public(*args: Any, **kwargs: Any) -> jax.Array:
        plan = build(*args, **kwargs)
        return run(plan) if isinstance(plan, Plan) else plan

    public.plan = build
    return public


def run(plan: Plan) -> jax.Array:
    """Runs a plan on the default device: the executor of every planned public function."""
    if plan.program:
        structure = tuple(tuple((op.axes, op.pads, op.boundaries) for op in t) for t in plan.terms)
        weights = tuple(tuple(op.kernel for op in t) for t in plan.terms)
        out = _run_terms(plan.x, weights, plan.fill, plan=structure, combine=plan.combine,
                         method=plan.method, precision=plan.precision,
                         output=plan.rounding)  # fmt: skip
    else:
        ((op,),) = plan.terms
        out = _correlate(plan.x, op.kernel, op.axes, op.pads, op.boundaries, plan.fill,
                         plan.method, plan.precision, plan.fn)  # fmt: skip
    return finish(plan, out)


def _single(fn, x, k, axes, pads, boundaries, fillvalue, method, precision) -> Plan:
    """The plan of one correlation of `x` with `k` (`k` with `x`'s dimensions), run eagerly."""
    out_dtype, compute = _result_dtype(x, k)
    op = Op(k, tuple(axes), pads, tuple(boundaries))
    return Plan(x, ((op,),), fillvalue, "first", method, precision, out_dtype, compute, fn=fn)


@functools.partial(jax.jit, static_argnames=("plan", "combine", "method", "precision", "output"))
def _run_terms(x, weights, cval, *, plan, combine, method, precision, output=None):
    """Runs terms of successive correlations and combines them (see ``_plan.combine_terms``).

    ``plan[t][s] = (axes, pads, boundaries)`` is step s of term t, with kernel ``weights[t][s]``
    (an array, or a :class:`~jaxconv._conv.plan.Built` one). One jitted function per filter
    structure: eager calls compile once per shape. With an `output` dtype every step's result is
    rounded to it, as scipy.ndimage stores each 1-D pass in `output` (a float-to-int conversion
    truncates toward zero, as C's does).
    """

    def store(y):
        return y if output is None else y.astype(output).astype(y.dtype)

    outs = []
    for term, term_w in zip(plan, weights, strict=True):
        y = x
        for (axes, pads, boundaries), w in zip(term, term_w, strict=True):
            w = (w.kernel() if isinstance(w, Built) else w).astype(real_dtype(y))
            y = correlate_padded(y, w, axes=axes, pads=pads, boundary=boundaries, fillvalue=cval,
                                 method=method, precision=precision)  # fmt: skip
            y = store(y)
        outs.append(y)
    out = combine_terms(outs, combine)
    if output is not None:
        return out.astype(output)
    # Half-precision inputs are computed in float32 (by the engine) and returned as given.
    return out.astype(x.dtype) if x.dtype.itemsize < 4 else out


@planned
def correlate_padded(
    x: jax.typing.ArrayLike,
    k: jax.typing.ArrayLike,
    *,
    axes: Sequence[int],
    pads: Sequence[tuple[int, int]],
    boundary: str | Sequence[str] = "constant",
    fillvalue: jax.typing.ArrayLike = 0.0,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Extends `x` along `axes` by `pads` with `boundary`, then takes the valid correlation.

    This is the primitive behind every convolution and filter in jaxconv:
    ``out[i] = sum_j xpad[i + j] k[j]`` over `axes` (no conjugation, no flip), with the other axes
    of `x` and `k` broadcast. `k` has the same number of dimensions as `x`, or one per axis in
    `axes`. The length of the output along ``axes[i]`` is ``n + before + after - m + 1``.
    """
    fn = "correlate_padded"
    x, k, axes, boundaries, prec, method = _prepare(
        fn, x, k, "valid", method, axes, boundary, precision
    )
    check_fillvalue(fn, "fillvalue", fillvalue, _result_dtype(x, k)[0])
    if len(pads) != len(axes):
        raise ValueError(f"{fn}: `pads` must hold one (before, after) pair per axis; got {pads!r}.")
    return _single(fn, x, k, axes, tuple(map(tuple, pads)), boundaries, fillvalue, method, prec)


def _correlate(x, k, axes, pads, boundaries, fillvalue, method, precision, fn):
    """Extends `x` by `pads` along `axes` and correlates it with `k` (the engine's last step).

    The options are checked and the method planned here, in Python (a concrete kernel may be
    inspected for low rank); the arrays then go through one jitted program, so an eager call
    compiles one program per shape and options instead of one per array operation.
    """
    out_dtype, compute = _result_dtype(x, k)
    extended = list(x.shape)
    for a, (lo, hi) in zip(axes, pads, strict=True):
        extended[a] += lo + hi
    for a in axes:
        if extended[a] < k.shape[a]:
            raise ValueError(
                f"{fn}: the kernel (shape {k.shape}) is larger than the extended input "
                f"(shape {tuple(extended)}) along axis {a}."
            )
    if _full_swap(x.shape, k.shape, axes, pads, boundaries, fillvalue, method):
        # full correlate(x, k) == full correlate(flip(k), flip(x)). Done here, below the plan,
        # so the sharded executor keeps the plan's `x` as the sharded operand.
        x, k = (_reorient(a, axes=tuple(axes), flip=True, conj=False) for a in (k, x))
        pads = tuple((k.shape[a] - 1, k.shape[a] - 1) for a in axes)
    # A kernel reaching far beyond the input is folded first (exactly; see fold_plan): the
    # method, the memory check and the program then see the small problem.
    n = [x.shape[a] for a in axes]
    specs, pads = _methods.fold_plan(n, [k.shape[a] for a in axes], pads, boundaries)
    if any(specs):
        k = _methods.fold_kernel(k.astype(compute), axes, specs)
    ext = [nn + lo + hi for nn, (lo, hi) in zip(n, pads, strict=True)]
    m = [k.shape[a] for a in axes]
    others = [i for i in range(x.ndim) if i not in axes]
    batch_shape = np.broadcast_shapes(
        tuple(x.shape[i] for i in others), tuple(k.shape[i] for i in others)
    )
    requested = method
    method, terms = _plan(ext, k, axes, math.prod(batch_shape), method, fn)
    if requested == "auto" and method in _methods.SPREADING:
        # An FFT turns one NaN or inf into an all-NaN result; direct sums keep it local, as
        # scipy.signal.convolve2d's (always direct) do. Only concrete data can be inspected.
        fill = fillvalue if "constant" in boundaries else None
        if _methods.holds_nonfinite(x, fill) or _methods.holds_nonfinite(k):
            step = (ext, m, math.prod(batch_shape))
            method = _methods.local_method([step], jax.default_backend())
    out_shape = list(batch_shape)
    for a, e, mm in zip(axes, ext, m, strict=True):
        out_shape.insert(a, e - mm + 1)
    _memory.check(fn, method, compute, x_size=x.size, k_size=k.size, out_shape=out_shape, n=ext,
                  m=m, batch_x=x.size // math.prod(n), batch_k=k.size // math.prod(m))  # fmt: skip
    if terms is not None:
        terms = [[np.asarray(f, compute) for f in t] for t in terms]
    return _correlate_jit(x, k, fillvalue, terms, axes=tuple(axes), pads=tuple(map(tuple, pads)),
                          boundaries=tuple(boundaries), method=method, precision=precision,
                          compute=np.dtype(compute), out_dtype=np.dtype(out_dtype))  # fmt: skip


@functools.partial(
    jax.jit,
    static_argnames=("axes", "pads", "boundaries", "method", "precision", "compute", "out_dtype"),
)
def _correlate_jit(
    x, k, fillvalue, terms, *, axes, pads, boundaries, method, precision, compute, out_dtype
):
    d = len(axes)
    x = _boundary.pad(x.astype(compute), axes, pads, boundaries, fillvalue)
    # Convolved axes go last, in order; batch axes broadcast in front.
    x = jnp.moveaxis(x, axes, range(-d, 0))
    k = jnp.moveaxis(k.astype(compute), axes, range(-d, 0))
    out = _methods.valid_correlate(x, k, d, method, precision, terms)
    return jnp.moveaxis(out, range(-d, 0), axes).astype(out_dtype)


@functools.partial(jax.jit, static_argnames=("axes", "flip", "conj"))
def _reorient(a, *, axes, flip, conj):
    """``flip(conj(a))`` over `axes`, either part optional (one small program, not two)."""
    a = jnp.conj(a) if conj else a
    return jnp.flip(a, axes) if flip else a


def _valid_swap(fn: str, s1: Sequence[int], s2: Sequence[int], axes: Sequence[int]) -> bool:
    """scipy's rule for mode='valid': the larger input plays the signal, or it is an error."""
    ok1 = all(s1[a] >= s2[a] for a in axes)
    ok2 = all(s2[a] >= s1[a] for a in axes)
    if not (ok1 or ok2):
        raise ValueError(
            f"{fn}: for mode='valid', one input must be at least as large as the other along "
            f"every convolved axis; got shapes {tuple(s1)} and {tuple(s2)}."
        )
    return not ok1


def _full_swap(x_shape, k_shape, axes, pads, boundaries, fillvalue, method) -> bool:
    """Whether a full correlation should run with its operands swapped: convolution commutes.

    Only for mode 'full' (pads of ``m - 1`` per side) with a zero extension (a constant boundary
    with a concrete fill value of 0; any other extension applies to `x` only) and a kernel larger
    than `x`: then `x`'s extension is the smaller (100² with 3000²: 3198² samples, not 6098²).
    A ``separable`` kernel stays the kernel.
    """
    m = [k_shape[a] for a in axes]
    if method == "separable" or any(p != (k - 1, k - 1) for p, k in zip(pads, m, strict=True)):
        return False
    if any(b != "constant" for b in boundaries) or isinstance(fillvalue, jax.core.Tracer):
        return False
    fill = concrete(fillvalue)
    if fill is None or np.any(fill != 0):
        return False
    now = math.prod(x_shape[a] + 2 * (k - 1) for a, k in zip(axes, m, strict=True))
    return math.prod(k + 2 * (x_shape[a] - 1) for a, k in zip(axes, m, strict=True)) < now


def _same_batch(in1: jax.Array, in2: jax.Array, axes: Sequence[int]) -> jax.Array:
    """`in2` cut to `in1`'s length 1 on the batch axes it would broadcast, for mode='same'.

    scipy (``fftconvolve``/``oaconvolve`` with `axes`) crops the broadcast full result to `in1`'s
    shape on every axis, centred: a batch axis of length 1 in `in1` keeps the result of
    kernel ``(k - 1) // 2`` of the `k` along that axis, so only that kernel is computed.
    """
    index = tuple(
        slice((k - 1) // 2, (k - 1) // 2 + 1) if a not in axes and n == 1 and k > 1 else slice(None)
        for a, (n, k) in enumerate(zip(in1.shape, in2.shape, strict=True))
    )
    return in2[index]


def _degenerate(in1, in2, axes, mode, conj_flip):
    """The result when no axis is convolved (0-d inputs) or an input is empty.

    With no convolved axis the convolution is the (broadcast) product, as in scipy. An empty input
    gives an empty result (as scipy's ``fftconvolve``), of the shape the mode gives with every
    axis where an input is empty of length 0 (scipy's ``fftconvolve`` returns shape ``(0,)``).
    """
    dtype = _result_dtype(in1, in2)[0]
    if in1.size and in2.size:
        k = jnp.conj(in2) if conj_flip and jnp.iscomplexobj(in2) else in2
        return in1.astype(dtype) * k.astype(dtype)
    shape = []
    for a, (n, m) in enumerate(zip(in1.shape, in2.shape, strict=True)):
        if a not in axes:
            size = np.broadcast_shapes((n,), (m,))[0]
            shape.append(n if mode == "same" and size else size)
        elif 0 in (n, m):
            shape.append(0)
        else:
            shape.append({"full": n + m - 1, "same": n, "valid": abs(n - m) + 1}[mode])
    return jnp.zeros(shape, dtype)


def _convolve_impl(
    fn, in1, in2, mode, method, axes, boundary, fillvalue, precision, conj_flip, late_centre=False
):
    in1, in2, axes, boundaries, prec, method = _prepare(
        fn, in1, in2, mode, method, axes, boundary, precision, allow_empty=True
    )
    check_fillvalue(fn, "fillvalue", fillvalue, _result_dtype(in1, in2)[0])
    if mode == "valid":
        swap = _valid_swap(fn, in1.shape, in2.shape, axes)
    if mode == "same":
        in2 = _same_batch(in1, in2, axes)
    if not axes or in1.size == 0 or in2.size == 0:
        return _degenerate(in1, in2, axes, mode, conj_flip)
    # correlate(a, b) == convolve(a, reverse(conj(b))), and a convolution correlates with the
    # reversed kernel: so correlate's kernel is conj(b) as is, unless scipy's valid-mode rule
    # swaps the operands (then reverse(conj(b)) is the signal and reverse(a) the kernel).
    conj = conj_flip and jnp.iscomplexobj(in2)
    if mode == "valid" and swap:
        if conj_flip:
            in2 = _reorient(in2, axes=axes, flip=True, conj=conj)
        in1, in2 = in2, in1
        w = _reorient(in2, axes=axes, flip=True, conj=False)
    elif conj_flip:
        w = _reorient(in2, axes=axes, flip=False, conj=True) if conj else in2
    else:
        w = _reorient(in2, axes=axes, flip=True, conj=False)
    m = [in2.shape[a] for a in axes]
    if mode == "full":
        pads = tuple((k - 1, k - 1) for k in m)
    elif mode == "same":
        # scipy centres the output in the full result, starting at (m - 1) // 2; correlate2d
        # starts at m // 2 (one sample later for even kernels).
        starts = [k // 2 if late_centre else (k - 1) // 2 for k in m]
        pads = tuple((k - 1 - s, s) for k, s in zip(m, starts, strict=True))
    else:
        pads = tuple((0, 0) for _ in m)
    return _single(fn, in1, w, axes, pads, boundaries, fillvalue, method, prec)


@planned
def convolve(
    in1: jax.typing.ArrayLike,
    in2: jax.typing.ArrayLike,
    mode: str = "full",
    *,
    method: str = "auto",
    axes: int | Sequence[int] | None = None,
    boundary: str | Sequence[str] = "fill",
    fillvalue: jax.typing.ArrayLike = 0,
    precision: Any = None,
) -> jax.Array:
    r"""N-D convolution, equal to ``scipy.signal.convolve`` (and ``np.convolve`` in 1-D).

    .. math:: (x * k)[n] = \sum_j k[j]\, \tilde x[n - j]

    where :math:`\tilde x` is `in1` extended beyond its edges by `boundary`.

    Args:
      in1: signal, shape ``(..., *spatial)``.
      in2: kernel with the same number of dimensions as `in1` (every axis is convolved, as in
        scipy), or fewer: then it acts on the trailing axes and `in1`'s leading axes are a batch
        (a 0-d `in2` convolves no axis: the result is the product). With `axes`, `in2` may also
        have exactly one dimension per axis in `axes`, in increasing axis order. Axes that are
        not convolved broadcast (each pair equal, or one of them 1).
      mode: ``"full"`` (every overlap), ``"same"`` (shape of `in1`, centred as scipy does:
        the full output from index ``(m - 1) // 2``; on a batch axis where `in1` has length 1 and
        `in2` length k, the result of kernel ``(k - 1) // 2``, as scipy's ``fftconvolve``) or
        ``"valid"`` (no extension needed; the larger input plays the signal, as in scipy).
      method: ``"auto"`` (cost model, see :func:`choose_method`), ``"direct"`` (XLA
        convolution), ``"shift"`` (fused shift-and-add), ``"separable"`` (1-D passes over a
        concrete low-rank kernel), ``"fft"`` or ``"os"`` (overlap-save FFT blocks).
      axes: axes to convolve over; default as described for `in2`.
      boundary: extension of `in1`: ``"fill"``/``"constant"`` (with `fillvalue`), ``"wrap"``,
        ``"symm"``/``"reflect"`` (half-sample symmetric), ``"mirror"`` (whole-sample),
        ``"nearest"``/``"edge"``; or one name per convolved axis.
      fillvalue: value outside `in1` for the constant boundary (a scalar; may be traced;
        complex only when the result is complex, as in scipy).
      precision: matmul/convolution precision for the ``direct`` method; defaults to
        ``"highest"`` so results agree with scipy on GPUs too (no TF32).

    Returns:
      The convolution; ints and bools are promoted to float, float16/bfloat16 are computed in
      float32 and returned in their own dtype. An empty input gives an empty result (the mode's
      shape, length 0 along the empty axes; scipy's ``fftconvolve`` returns shape ``(0,)``).

    Raises:
      ValueError: on an unknown option, incompatible shapes or a complex `fillvalue` for real
        inputs.
      TypeError: on a non-numeric input or a traced static option.
      MemoryError: (``OutOfMemoryError``) when the plan's estimated peak memory exceeds what the
        device can give, at the call (at trace time under jit), not at the first use of the
        result; the message gives both sizes. ``JAXCONV_MEMORY_CHECK=0`` turns the check off
        (estimates and limits: ``jaxconv/_conv/memory.py``).

    Examples:
      >>> import jaxconv
      >>> jaxconv.convolve([1.0, 2.0, 3.0], [0.0, 1.0, 0.5]).tolist()
      [0.0, 1.0, 2.5, 4.0, 1.5]

    Note:
      For 1-D inputs this equals ``np.convolve`` in every mode, except ``"same"`` with a kernel
      longer than the signal, where NumPy returns the kernel's length and scipy (and jaxconv)
      the signal's.
    """
    return _convolve_impl(
        "convolve", in1, in2, mode, method, axes, boundary, fillvalue, precision, False
    )


@planned
def correlate(
    in1: jax.typing.ArrayLike,
    in2: jax.typing.ArrayLike,
    mode: str = "full",
    *,
    method: str = "auto",
    axes: int | Sequence[int] | None = None,
    boundary: str | Sequence[str] = "fill",
    fillvalue: jax.typing.ArrayLike = 0,
    precision: Any = None,
) -> jax.Array:
    r"""N-D cross-correlation, equal to ``scipy.signal.correlate`` (``np.correlate`` in 1-D).

    ``correlate(a, b) == convolve(a, flip(conj(b)))``:
    :math:`z[n] = \sum_j \tilde x[n + j - (m - 1)]\, \overline{k[j]}` in ``"full"`` mode.
    Arguments are those of :func:`convolve`.

    Examples:
      >>> import jaxconv
      >>> jaxconv.correlate([1.0, 2.0, 3.0], [0.0, 1.0, 0.5]).tolist()
      [0.5, 2.0, 3.5, 3.0, 0.0]
    """
    return _convolve_impl(
        "correlate", in1, in2, mode, method, axes, boundary, fillvalue, precision, True
    )


def convolve_separable(
    in1: jax.typing.ArrayLike,
    kernels: Sequence[jax.typing.ArrayLike],
    mode: str = "full",
    *,
    axes: Sequence[int] | None = None,
    boundary: str | Sequence[str] = "fill",
    fillvalue: jax.typing.ArrayLike = 0,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """Convolution with a separable kernel given by its 1-D factors, one pass per axis.

    Equals ``convolve(in1, k_1 ⊗ k_2 ⊗ ..., mode, axes=axes, ...)`` at a cost of
    ``sum(len(k_i))`` instead of ``prod(len(k_i))`` multiply-adds per sample. The factors may be
    traced and are differentiable (this is the fast path of the Gaussian filters).

    Args:
      in1: signal, shape ``(..., *spatial)``.
      kernels: one 1-D kernel per convolved axis.
      mode, boundary, fillvalue, precision: as in :func:`convolve`.
      axes: the axes the factors act on, in order; defaults to the last ``len(kernels)`` axes.
      method: method of each 1-D pass (see :func:`convolve`; ``"separable"`` is not allowed).

    Examples:
      >>> import jaxconv
      >>> jaxconv.convolve_separable([[0.0, 1.0, 0.0]], [[1.0], [1.0, 2.0]], "same").tolist()
      [[0.0, 1.0, 2.0]]
    """
    fn = "convolve_separable"
    _check_static(fn, mode=mode, method=method, axes=axes, boundary=boundary)
    if isinstance(kernels, (jax.Array, np.ndarray)) or not len(kernels):
        raise TypeError(f"{fn}: `kernels` must be a non-empty sequence of 1-D arrays.")
    factors = [_as_array(fn, f"kernels[{i}]", k) for i, k in enumerate(kernels)]
    for i, f in enumerate(factors):
        if f.ndim != 1:
            raise ValueError(f"{fn}: `kernels[{i}]` must be 1-D; got shape {f.shape}.")
    if method == "separable":
        raise ValueError(f"{fn}: `method` must be a 1-D method, not 'separable'.")
    x = _as_array(fn, "in1", in1)
    if axes is None:
        axes = tuple(range(x.ndim - len(factors), x.ndim))
    if len(factors) != (1 if isinstance(axes, (int, np.integer)) else len(axes)):
        raise ValueError(
            f"{fn}: need one kernel per axis in `axes`; got {len(factors)} for {axes!r}."
        )
    shape = tuple(f.shape[0] for f in factors)
    user_axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    x, _, _, boundaries, prec, method = _prepare(
        fn, x, jnp.zeros(shape, factors[0].dtype), mode, method, user_axes, boundary, precision
    )
    user_axes = tuple(a % x.ndim for a in user_axes)
    # Boundaries were given for the sorted axes; re-order them to follow `user_axes`.
    by_axis = dict(zip(sorted(user_axes), boundaries, strict=True))
    boundaries = tuple(by_axis[a] for a in user_axes)
    pads = []
    for a, f in zip(user_axes, factors, strict=True):
        k = f.shape[0]
        if mode == "valid" and x.shape[a] < k:
            raise ValueError(
                f"{fn}: for mode='valid', `in1` must be at least as long as each kernel; got "
                f"{x.shape[a]} < {k} on axis {a}."
            )
        pads.append(
            {"full": (k - 1, k - 1), "same": (k - 1 - (k - 1) // 2, (k - 1) // 2)}.get(mode, (0, 0))
        )
    dtype = _result_dtype(x, jnp.zeros((), promote(*factors)))[0]
    check_fillvalue(fn, "fillvalue", fillvalue, dtype)
    return _separable_jit(x, factors, fillvalue, axes=user_axes, pads=tuple(pads),
                          boundaries=boundaries, method=method, precision=prec,
                          dtype=np.dtype(dtype))  # fmt: skip


@functools.partial(
    jax.jit, static_argnames=("axes", "pads", "boundaries", "method", "precision", "dtype")
)
def _separable_jit(x, factors, fillvalue, *, axes, pads, boundaries, method, precision, dtype):
    """The passes of :func:`convolve_separable`, one program for an eager call."""
    x = _boundary.pad(x.astype(dtype), axes, pads, boundaries, fillvalue)
    for a, f in zip(axes, factors, strict=True):
        w = jnp.flip(f).reshape([-1 if i == a else 1 for i in range(x.ndim)])
        x = _correlate(
            x, w, (a,), ((0, 0),), ("constant",), 0, method, precision, "convolve_separable"
        )
    return x


def _check_2d(fn: str, in1: Any, in2: Any) -> None:
    for name, value in (("in1", in1), ("in2", in2)):
        if np.ndim(value) < 2:
            raise ValueError(f"{fn}: `{name}` must be at least 2-D; got shape {np.shape(value)}.")


@planned
def convolve2d(
    in1: jax.typing.ArrayLike,
    in2: jax.typing.ArrayLike,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: jax.typing.ArrayLike = 0,
    *,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """2-D convolution, equal to ``scipy.signal.convolve2d`` for every mode and boundary.

    Unlike ``jax.scipy.signal.convolve2d``, every boundary (``"fill"`` with any `fillvalue`,
    ``"wrap"``, ``"symm"``, and also ``"mirror"`` and ``"nearest"``) is supported. Leading axes of
    `in1` (and of `in2`) are batch axes; the last two are convolved. Other arguments are those of
    :func:`convolve`.

    Examples:
      >>> import jaxconv
      >>> x = [[1.0, 2.0], [3.0, 4.0]]
      >>> jaxconv.convolve2d(x, [[1.0]], boundary="wrap").tolist()
      [[1.0, 2.0], [3.0, 4.0]]
    """
    _check_2d("convolve2d", in1, in2)
    return _convolve_impl(
        "convolve2d", in1, in2, mode, method, (-2, -1), boundary, fillvalue, precision, False
    )


@planned
def correlate2d(
    in1: jax.typing.ArrayLike,
    in2: jax.typing.ArrayLike,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: jax.typing.ArrayLike = 0,
    *,
    method: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """2-D cross-correlation, equal to ``scipy.signal.correlate2d`` for every mode and boundary.

    Arguments are those of :func:`convolve2d`.
    """
    _check_2d("correlate2d", in1, in2)
    fn = "correlate2d"
    if mode == "valid" and np.ndim(in1) == np.ndim(in2):
        s1, s2 = np.shape(in1), np.shape(in2)
        if _valid_swap(fn, s1, s2, (-2, -1)):
            # scipy swaps the operands and reverses the result: the conjugate lands on `in1`.
            plan = _convolve_impl(
                fn, in2, in1, mode, method, (-2, -1), boundary, fillvalue, precision, True
            )
            if not isinstance(plan, Plan):
                return jnp.flip(plan, (-2, -1))
            return plan._replace(flip=(-2, -1))
    return _convolve_impl(
        fn, in1, in2, mode, method, (-2, -1), boundary, fillvalue, precision, True, True
    )


def choose_method(
    in1: jax.typing.ArrayLike,
    in2: jax.typing.ArrayLike,
    mode: str = "full",
    *,
    axes: int | Sequence[int] | None = None,
    backend: str | None = None,
) -> str:
    """The method ``method="auto"`` uses for these inputs, like ``scipy.signal.choose_conv_method``.

    The model is per backend. On CPU it estimates the run time of each method from its work (taps
    × outputs for ``shift``/``direct``, ``N log N`` for ``fft`` and for the blocks of ``os``, the
    sum of 1-D lengths × rank for ``separable``) with constants fitted by
    ``benchmarks/calibrate_methods.py`` (documented in ``jaxconv/_conv/cost.py``: FFT costs grow for
    transforms larger than cache, ``os`` works in bands of rows) and takes the cheapest;
    ``separable`` is a candidate only for concrete kernels of low numerical rank. The kernel
    gradient is itself a valid correlation and gets its own method from the same model.
    Before planning, a kernel that reaches far past `in1` is folded exactly (taps that read only
    the extension merge; see ``jaxconv._conv.methods.fold_plan``), and in mode ``"full"`` with a
    zero fill the larger input plays the signal (convolution commutes).
    On GPU (cuDNN) and TPU (MXU) it uses ``direct`` up to
    1024 (GPU) or 4096 (TPU) taps and ``fft`` beyond.

    Args:
      in1, in2, mode, axes: as in :func:`convolve` (only shapes, and concreteness of `in2`, matter).
      backend: ``"cpu"``, ``"gpu"`` or ``"tpu"``; defaults to ``jax.default_backend()``.

    Returns:
      One of ``"direct"``, ``"shift"``, ``"separable"``, ``"fft"``, ``"os"``.
    """
    fn = "choose_method"
    in1, in2, axes, *_ = _prepare(fn, in1, in2, mode, "auto", axes, "fill", None, True)
    if mode == "valid" and _valid_swap(fn, in1.shape, in2.shape, axes):
        in1, in2 = in2, in1
    full = tuple((in2.shape[a] - 1,) * 2 for a in axes)
    if mode == "full" and _full_swap(in1.shape, in2.shape, axes, full, ("constant",), 0, "auto"):
        in1, in2 = in2, in1  # as convolve does with the default boundary
    if not axes or in1.size == 0 or in2.size == 0:
        return "direct"  # nothing to convolve: a product, or an empty result
    if mode == "same":
        in2 = _same_batch(in1, in2, axes)
    m = [in2.shape[a] for a in axes]
    pads = [{"full": (k - 1, k - 1), "same": (k - 1 - (k - 1) // 2, (k - 1) // 2)}.get(mode, (0, 0))
            for k in m]  # fmt: skip
    specs, pads = _methods.fold_plan([in1.shape[a] for a in axes], m, pads, ("constant",) * len(m))
    if any(specs):  # a kernel far longer than `in1` in mode 'same', folded as convolve does
        in2 = _methods.fold_kernel(in2, axes, specs)
        m = [in2.shape[a] for a in axes]
    n = [in1.shape[a] + lo + hi for a, (lo, hi) in zip(axes, pads, strict=True)]
    batch_shape = jnp.broadcast_shapes(
        tuple(s for i, s in enumerate(in1.shape) if i not in axes),
        tuple(s for i, s in enumerate(in2.shape) if i not in axes),
    )
    if backend is not None and backend not in ("cpu", "gpu", "tpu"):
        raise ValueError(f"{fn}: `backend` must be 'cpu', 'gpu' or 'tpu'; got {backend!r}.")
    if backend is None or backend == jax.default_backend():
        return _plan(n, in2, axes, math.prod(batch_shape), "auto", fn)[0]
    return _methods.auto_method(n, m, math.prod(batch_shape), backend)
