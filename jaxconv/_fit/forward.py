"""The forward model of a fit on the pixels its loss sees, and the checks of a fit's inputs.

Shared by :func:`jaxconv.fit`, :func:`jaxconv.standard_errors` and
:func:`jaxconv.cramer_rao_bound`, so all three validate and predict identically.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxconv._conv.convolve import correlate_padded
from jaxconv._fit.models import Model


def check_data(fn: str, image: Any, target: Any = None, *, batched: bool = False) -> tuple:
    """`image` (and `target`) as float arrays of one shape, finite; clear errors otherwise."""
    arrays = []
    for name, value in (("image", image), ("target", target)):
        if value is None:
            arrays.append(None)
            continue
        try:  # a jax.Array stays where it is, so a sharded batch keeps its layout
            arr = value if isinstance(value, jax.Array) else np.asarray(value)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{fn}: `{name}` must be an array of numbers; got {type(value)}."
            ) from err
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise TypeError(f"{fn}: `{name}` must have a numeric dtype; got {arr.dtype}.")
        if np.iscomplexobj(arr):
            raise TypeError(f"{fn}: `{name}` must be real; got dtype {arr.dtype}.")
        if arr.ndim < 1 + batched or arr.size == 0:
            what = "a non-empty batch (B, ...)" if batched else "a non-empty array"
            raise ValueError(f"{fn}: `{name}` must be {what}; got shape {arr.shape}.")
        if isinstance(arr, jax.Array) and not _on_host(arr):
            bad = int(_count_nonfinite(arr))
        else:  # numpy reads a host array in place: no program to compile
            host = np.asarray(arr)
            bad = int(host.size - np.count_nonzero(np.isfinite(host)))
        if bad:
            raise ValueError(
                f"{fn}: `{name}` must be finite; got {bad} non-finite values (NaN or inf)."
            )
        arrays.append(arr)
    x, y = arrays
    if y is not None and x.shape != y.shape:
        raise ValueError(
            f"{fn}: `image` and `target` must have the same shape; got {x.shape} and {y.shape}."
        )
    dtype = jnp.result_type(*(a for a in arrays if a is not None), float)
    # astype keeps a jax.Array's sharding (a batch spread over devices stays spread).
    return tuple(
        a if a is None else a.astype(dtype) if isinstance(a, jax.Array) else jnp.asarray(a, dtype)
        for a in arrays
    )


def _on_host(x: jax.Array) -> bool:
    return x.is_fully_addressable and all(d.platform == "cpu" for d in x.devices())


@jax.jit
def _count_nonfinite(x: jax.Array) -> jax.Array:
    # One compiled program per shape, where eager jnp would compile three small ones.
    return x.size - jnp.count_nonzero(jnp.isfinite(x))


def check_model(fn: str, model: Any) -> Model:
    if not isinstance(model, Model):
        raise TypeError(
            f"{fn}: `model` must be a jaxconv model (GaussianBlur, FreeKernel, GaussianEdge, "
            f"KernelModel, PredictionModel, or a subclass of Model); got {type(model).__name__}."
        )
    return model


def _output_shape(model: Model, params: Any, shape: tuple) -> tuple:
    """Shape of the model's kernel (or prediction), traced once per model and parameter types."""
    avals = jax.tree_util.tree_map(lambda v: jax.ShapeDtypeStruct(jnp.shape(v), jnp.result_type(v)),
                                   params)  # fmt: skip
    leaves = tuple((a.shape, a.dtype) for a in jax.tree_util.tree_leaves(avals))
    key = (model, jax.tree_util.tree_structure(avals), leaves, tuple(shape))
    try:
        hit = _SHAPES.get(key)
    except TypeError:  # an unhashable model: no caching
        hit, key = None, None
    if hit is not None:
        return hit
    if model.is_kernel:
        out = tuple(jax.eval_shape(model.kernel, avals).shape)
    else:
        image = jax.ShapeDtypeStruct(tuple(shape), jnp.result_type(float))
        out = tuple(jax.eval_shape(model.predict, avals, image).shape)
    if key is not None:
        if len(_SHAPES) > 256:
            _SHAPES.clear()
        _SHAPES[key] = out
    return out


_SHAPES: dict = {}


def resolve_border(fn: str, model: Model, params: Any, shape: tuple, border: Any) -> tuple:
    """Checks what `model` returns for an image of `shape`; returns the loss border per axis."""
    ndim = len(shape)
    if model.is_kernel:
        kshape = _output_shape(model, params, shape)
        if len(kshape) != ndim:
            raise ValueError(
                f"{fn}: `model` must return a kernel with {ndim} axes like `image`; "
                f"got shape {kshape}."
            )
        if any(k > n for k, n in zip(kshape, shape, strict=True)):
            raise ValueError(
                f"{fn}: the kernel of `model` (shape {kshape}) must not be larger than `image` "
                f"(shape {shape})."
            )
        default = tuple(m // 2 for m in kshape) if model.border is None else model.border
    else:
        pshape = _output_shape(model, params, shape)
        if pshape != tuple(shape):
            raise ValueError(
                f"{fn}: `model` must return a prediction of shape {tuple(shape)} like `image`; "
                f"got {pshape}."
            )
        default = model.border or 0
    if border is None:
        border = default
    b = (border,) * ndim if np.ndim(border) == 0 else tuple(border)
    if len(b) != ndim or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in b):
        raise ValueError(
            f"{fn}: `border` must be a non-negative int or one per axis ({ndim}); got {border!r}."
        )
    if any(n - 2 * v < 1 for n, v in zip(shape, b, strict=True)):
        raise ValueError(
            f"{fn}: `border` {tuple(b)} leaves no pixels of `image` (shape {tuple(shape)}) "
            "for the loss."
        )
    return tuple(int(v) for v in b)


def convolve_interior(
    image: jax.Array, kernel: jax.Array, border: tuple, boundary: str, method: str = "auto"
) -> jax.Array:
    """``convolve(image, kernel, mode="same", boundary=...)`` without `border` pixels per edge.

    Only the pixels the loss keeps are computed; where the border is at least the kernel's
    reach no boundary extension is needed at all (a valid correlation of a crop). `kernel` may
    carry leading axes (a stack of kernels): the output then has them too.
    """
    x = image
    d = image.ndim
    spatial = kernel.shape[kernel.ndim - d :]
    pads = []
    for a, (m, n, b) in enumerate(zip(spatial, image.shape, border, strict=True)):
        # "same" output i reads the extended input from i - m // 2 (scipy's centring).
        start = b - m // 2
        stop = start + (n - 2 * b) + m - 1
        x = jax.lax.slice_in_dim(x, max(0, start), min(n, stop), axis=a)
        pads.append((max(0, -start), max(0, stop - n)))
    lead = kernel.ndim - d
    return correlate_padded(
        x.reshape((1,) * lead + x.shape),
        jnp.flip(kernel, tuple(range(lead, kernel.ndim))),
        axes=tuple(range(lead, kernel.ndim)),
        pads=tuple(pads),
        boundary=boundary,
        method=method,
    )


def convolve_circular(image: jax.Array, kernel: jax.Array) -> jax.Array:
    """``convolve(image, kernel, mode="same", boundary="wrap")`` by FFTs of `image`'s size.

    `kernel` (odd sizes, no larger than `image`; leading axes: a stack of kernels) is placed
    with its centre at the origin, so no padding enlarges the transforms whatever its size.
    """
    d = image.ndim
    axes = tuple(range(kernel.ndim - d, kernel.ndim))
    spatial = kernel.shape[kernel.ndim - d :]
    pads = [(0, 0)] * (kernel.ndim - d) + [
        (0, n - m) for n, m in zip(image.shape, spatial, strict=True)
    ]
    k = jnp.roll(jnp.pad(kernel, pads), [-(m // 2) for m in spatial], axis=axes)
    fx = jnp.fft.rfftn(image)
    return jnp.fft.irfftn(fx * jnp.fft.rfftn(k, axes=axes), s=image.shape, axes=axes)


def crop(x: jax.Array, border: Any) -> jax.Array:
    """`x` on the pixels the loss sees, `border` pixels in from each edge of its last axes.

    A static `border` (a tuple) crops them off. A traced one (an int array, one per axis: a
    fit whose border follows a traced kernel radius) keeps the shape and sets them to zero,
    so they add nothing to a sum of squares.
    """
    if isinstance(border, tuple):
        lead = (slice(None),) * (x.ndim - len(border))
        shape = x.shape[x.ndim - len(border) :]
        return x[lead + tuple(slice(b, n - b) for b, n in zip(border, shape, strict=True))]
    mask = jnp.ones((), x.dtype)
    for a, n in enumerate(x.shape[x.ndim - border.shape[0] :]):
        i = jnp.arange(n)
        mask = mask[..., None] * ((i >= border[a]) & (i < n - border[a])).astype(x.dtype)
    return x * mask


def pixel_count(shape: tuple, border: Any) -> Any:
    """How many pixels of an image of `shape` the loss sees (traced for a traced `border`)."""
    if isinstance(border, tuple):
        return int(np.prod([n - 2 * b for n, b in zip(shape, border, strict=True)]))
    return jnp.prod(jnp.asarray(shape) - 2 * border)


def forward(
    model: Model, params: Any, image: jax.Array, border: Any, boundary: str, method: str
) -> jax.Array:
    """The model's prediction on the interior (the pixels the loss compares).

    With a traced `border` (see :func:`crop`), the kernel's taps must reach no further than it
    (a :class:`GaussianBlur` of a traced radius): the prediction is then a circular
    convolution over the whole image (:func:`convolve_circular`), exact on the interior, with
    the pixels outside it zero; `boundary` and `method` are not used.
    """
    if not isinstance(border, tuple):
        return crop(convolve_circular(image, model.kernel(params)), border)
    if model.is_kernel:
        return convolve_interior(image, model.kernel(params), border, boundary, method)
    return crop(model.predict(params, image), border)


def forward_and_jacobian(
    model: Model, params: Any, image: jax.Array, border: tuple, boundary: str, method: str
) -> tuple[jax.Array, jax.Array]:
    """Flattened prediction on the interior and its transposed Jacobian ``(n params, m pixels)``.

    For kernel models the prediction is linear in the kernel, so ``∂pred/∂θ_i = image ⊛ ∂k/∂θ_i``:
    the kernel and its n derivative kernels (``jax.jacfwd`` of the small kernel function) go
    through one convolution call as a stack of n + 1 kernels, sharing the image's FFT. (Inside
    the LM loop, where XLA hoists the image's FFT out of the loop, ``jax.jacfwd`` through the
    convolution is faster, and :func:`jaxconv._fit.lstsq.lm_step` uses that.)
    """
    x, unravel = ravel_pytree(params)
    if not model.is_kernel:

        def pred(x):
            p = forward(model, unravel(x), image, border, boundary, method).ravel()
            return p, p

        jac, p = jax.jacfwd(pred, has_aux=True)(x)
        return p, jac.T

    def kern(x):
        k = model.kernel(unravel(x))
        return k, k

    dk, k = jax.jacfwd(kern, has_aux=True)(x)  # dk: (*kernel, n)
    stack = jnp.concatenate([k[None], jnp.moveaxis(dk, -1, 0)], axis=0)
    if isinstance(border, tuple):
        out = convolve_interior(image, stack, border, boundary, method)
    else:
        out = crop(convolve_circular(image, stack), border)
    return out[0].ravel(), out[1:].reshape(x.shape[0], -1)
