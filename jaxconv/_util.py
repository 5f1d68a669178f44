"""Argument helpers shared by every layer: concrete values, dtypes, per-axis arguments, checks.

The lowest layer of the package (it imports no other jaxconv module); error messages follow the
project's form ``fn: `arg` must be ...; got VALUE.``
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def concrete(x: Any) -> np.ndarray | None:
    """`x` as numpy when its value is known at trace time, else None."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def device_array(value: Any) -> jax.Array:
    """``jnp.asarray(value)`` (same dtype and weak type), without compiling for a host value.

    jnp.asarray copies a host value through a jitted program (``jit(stage)`` in the compile
    log), one compile per shape and dtype; ``jax.device_put`` copies without one. A sweep of
    filters on new images or kernels on new covariances then compiles only its own programs.
    """
    if isinstance(value, jax.Array):
        return value
    if isinstance(value, (bool, int, float, complex)):
        return jax.device_put(value)  # weak-typed, as jnp.asarray's
    host = np.asarray(value)
    if host.dtype.kind in "biufc":
        return jax.device_put(host)
    return jnp.asarray(value)  # other dtypes, and the errors, as jnp.asarray's


def float_dtype(dtype: Any, *values: Any) -> Any:
    """The floating dtype of a kernel: `dtype` if given, else inferred from `values` (x64-aware)."""
    if dtype is not None:
        dtype = jnp.dtype(dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"`dtype` must be a floating dtype; got {dtype}.")
        return dtype
    flat: list = []
    stack = [v for v in values if v is not None]
    while stack:
        v = stack.pop()
        if isinstance(v, (tuple, list)):
            stack.extend(u for u in v if u is not None)
        else:
            flat.append(v)
    # A weak Python float turns ints into the default float but keeps float32 as float32.
    out = jnp.result_type(*flat, float)
    if not jnp.issubdtype(out, jnp.floating):
        raise TypeError(f"expected real inputs; got dtype {out}.")
    return out


def per_axis(value: Any, ndim: int, name: str, fn: str) -> tuple:
    """A scalar repeated `ndim` times, or a sequence of exactly `ndim` entries."""
    if isinstance(value, (list, tuple)):
        if len(value) != ndim:
            raise ValueError(
                f"{fn}: `{name}` must be a scalar or have one entry per axis "
                f"({ndim}); got {value!r}."
            )
        return tuple(value)
    if np.ndim(value) == 1 and not isinstance(value, jax.core.Tracer):
        return per_axis(list(np.asarray(value)), ndim, name, fn)
    return (value,) * ndim


def per_axis_ints(
    value: Any, ndim: int, name: str, fn: str, *, minimum: int = 0, note: str = ""
) -> tuple[int, ...]:
    """`value` (an int or one per axis) as a tuple of `ndim` Python ints >= `minimum` (0 or 1).

    Traced values are refused: these ints set static shapes. `note` is added to the message.
    """
    out = per_axis(value, ndim, name, fn)
    for v in out:
        if isinstance(v, jax.core.Tracer) or not isinstance(v, (int, np.integer)) or v < minimum:
            kind = "non-negative" if minimum == 0 else "positive"
            raise ValueError(
                f"{fn}: `{name}` must be a {kind} int or one per axis{note}; got {value!r}."
            )
    return tuple(int(v) for v in out)


def check_real(value: Any, name: str, fn: str, what: str = "a real number") -> None:
    """A TypeError unless `value` (an array or a scalar, maybe traced) holds real numbers."""
    dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
    if dtype.kind not in "biuf" and dtype != jnp.bfloat16:
        raise TypeError(f"{fn}: `{name}` must be {what}; got {value!r}.")


def check_positive(value: Any, name: str, fn: str) -> None:
    """Eager check that a concrete σ (or variance) is finite and > 0; traced values pass."""
    v = concrete(value)
    if v is not None and not (np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError(f"{fn}: `{name}` must be finite and > 0; got {np.asarray(v).tolist()}.")
