"""Boundary (signal-extension) modes shared by every convolution and filter.

scipy.signal and scipy.ndimage name the same extensions differently, and `numpy.pad` uses yet
another vocabulary (its ``"reflect"`` is ndimage's ``"mirror"``). Every public name is mapped here
onto one canonical set, so the rest of jaxconv speaks a single language:

=============  ============================================  =========================
canonical      accepted names                                extension of ``a b c d``
=============  ============================================  =========================
``constant``   fill, pad, constant, grid-constant            ``v v | a b c d | v v``
``wrap``       wrap, circular, grid-wrap                     ``c d | a b c d | a b``
``symmetric``  symm, symmetric, reflect, grid-mirror         ``b a | a b c d | d c``
``mirror``     mirror                                        ``c b | a b c d | c b``
``edge``       nearest, edge                                 ``a a | a b c d | d d``
=============  ============================================  =========================
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

BOUNDARY_ALIASES: dict[str, str] = {
    "fill": "constant",
    "pad": "constant",
    "constant": "constant",
    "grid-constant": "constant",
    "wrap": "wrap",
    "circular": "wrap",
    "grid-wrap": "wrap",
    "symm": "symmetric",
    "symmetric": "symmetric",
    "reflect": "symmetric",
    "grid-mirror": "symmetric",
    "mirror": "mirror",
    "nearest": "edge",
    "edge": "edge",
}

# numpy.pad's name for each canonical extension.
_NUMPY_PAD_MODE = {
    "constant": "constant",
    "wrap": "wrap",
    "symmetric": "symmetric",
    "mirror": "reflect",
    "edge": "edge",
}


def canonical_boundaries(boundary: str | Sequence[str], naxes: int, fn: str) -> tuple[str, ...]:
    """Maps a boundary name (or one name per axis) onto canonical names, one per axis."""
    if isinstance(boundary, jax.core.Tracer):
        raise TypeError(f"{fn}: `boundary` must be a static string; got a traced value.")
    if isinstance(boundary, str):
        names = (boundary,) * naxes
    elif isinstance(boundary, (tuple, list)):
        names = tuple(boundary)
    else:
        raise ValueError(
            f"{fn}: `boundary` must be one of {sorted(BOUNDARY_ALIASES)} or one per convolved "
            f"axis; got {boundary!r}."
        )
    if len(names) != naxes:
        raise ValueError(
            f"{fn}: `boundary` must be one name or one per convolved axis ({naxes}); "
            f"got {boundary!r}."
        )
    out = []
    for name in names:
        if not isinstance(name, str) or name not in BOUNDARY_ALIASES:
            raise ValueError(
                f"{fn}: `boundary` must be one of {sorted(BOUNDARY_ALIASES)}; got {name!r}."
            )
        out.append(BOUNDARY_ALIASES[name])
    return tuple(out)


def pad(
    x: jax.Array,
    axes: Sequence[int],
    pads: Sequence[tuple[int, int]],
    boundaries: Sequence[str],
    fillvalue: jax.typing.ArrayLike = 0,
) -> jax.Array:
    """Extends `x` along `axes` by ``pads[i] = (before, after)`` with canonical `boundaries`.

    Extensions wider than the axis repeat the rule (a periodic continuation for ``wrap``,
    ``symmetric`` and ``mirror``), which is what scipy.ndimage does.
    """
    for axis, (lo, hi), mode in zip(axes, pads, boundaries, strict=True):
        if lo == 0 and hi == 0:
            continue
        widths = [(0, 0)] * x.ndim
        widths[axis] = (lo, hi)
        if mode == "constant":
            # Select the fill value on a constant mask: differentiable in both the signal and
            # the (possibly traced) fill value (lax.pad's transpose fails for the fill alone),
            # and a NaN or inf fill stays outside (``x + fill * mask`` made inf·0 = NaN inside).
            inside = np.pad(np.ones(x.shape[axis], bool), (lo, hi))
            inside = inside.reshape([-1 if i == axis else 1 for i in range(x.ndim)])
            x = jnp.where(inside, jnp.pad(x, widths), jnp.asarray(fillvalue).astype(x.dtype))
        else:
            x = jnp.pad(x, widths, mode=_NUMPY_PAD_MODE[mode])
    return x
