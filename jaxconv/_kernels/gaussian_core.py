"""Building blocks of the Gaussian kernels: argument checks and 1-D discretisations.

Private: the public functions live in ``_kernels/gaussian.py`` (see its docstring for the
discretisations) and ``_kernels/derivatives.py``.
"""

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from jaxconv._kernels.buckets import radius_bucket
from jaxconv._util import check_real, concrete, device_array, per_axis_ints

DISCRETIZATIONS = ("sample", "integrate", "discrete", "scipy")


# --- helpers shared by the kernel modules --------------------------------------------------------


def check_discretization(discretization: Any, fn: str, allowed: Sequence[str] = DISCRETIZATIONS):
    if not isinstance(discretization, str) or discretization not in allowed:
        raise ValueError(
            f"{fn}: `discretization` must be one of {tuple(allowed)}; got {discretization!r}."
        )


def static_radius(radius: Any, ndim: int, fn: str) -> tuple[int, ...]:
    """`radius` (an int or one per axis) as a tuple of non-negative Python ints."""
    return per_axis_ints(radius, ndim, "radius", fn, note=" (static, not traced)")


def traced_size_error(fn: str, name: str) -> ValueError:
    return ValueError(
        f"{fn}: `{name}` is traced (under jit or grad), so the kernel size cannot "
        "depend on it; pass a static `radius=` (from an upper bound on σ, e.g. "
        "ceil(truncate * σ_max)) and check `gaussian_truncation` for the bias."
    )


def check_truncate(truncate: Any, fn: str) -> float:
    """`truncate` as a float: concrete (it sets the kernel's size), finite and >= 0."""
    if isinstance(truncate, jax.core.Tracer):
        raise TypeError(
            f"{fn}: `truncate` must be a concrete number, not traced: it sets the kernel's "
            "radius, which is static under jit (pass `radius=` to fix the size instead)."
        )
    check_real(truncate, "truncate", fn)
    if np.ndim(truncate) != 0 or not (np.isfinite(truncate) and truncate >= 0):
        raise ValueError(f"{fn}: `truncate` must be a finite number >= 0; got {truncate!r}.")
    return float(truncate)


def scipy_radius(sd: Any, truncate: float, fn: str, name: str = "sigma") -> int:
    """scipy.ndimage's rule ``int(truncate * sd + 0.5)`` for a concrete standard deviation."""
    truncate = check_truncate(truncate, fn)
    value = concrete(sd)
    if value is None:
        raise traced_size_error(fn, name)
    return int(truncate * float(value) + 0.5)


def outer(factors: Sequence[jax.Array]) -> jax.Array:
    """Outer product of 1-D arrays: an N-D separable kernel."""
    return functools.reduce(lambda a, b: a[..., None] * b, factors)


def hermite(order: int, z: jax.Array) -> jax.Array:
    """Probabilists' Hermite polynomial He_order(z): d^n/dz^n e^{-z²/2} = (-1)^n He_n e^{-z²/2}."""
    h_prev, h = jnp.ones_like(z), z
    if order == 0:
        return h_prev
    for n in range(1, order):
        h_prev, h = h, z * h - n * h_prev
    return h


# --- 1-D kernels (one axis of a separable kernel) ------------------------------------------------
def _cut(a: jax.Array, keep: jax.Array | None) -> jax.Array:
    """`a` with the taps outside `keep` (a bucket's true extent) exactly zero."""
    return a if keep is None else jnp.where(keep, a, jnp.zeros((), a.dtype))


def scipy_kernel_1d(
    sigma: jax.Array, order: int, radius: int, keep: jax.Array | None = None
) -> jax.Array:
    """``scipy.ndimage._filters._gaussian_kernel1d`` operation by operation, in jnp (σ traced).

    `keep` (optional, traced): the taps of the true radius inside a larger static `radius`; the
    others are zero and left out of the sum, so the kept taps are scipy's kernel.
    """
    x = jnp.arange(-radius, radius + 1, dtype=sigma.dtype)  # exact integers; squares round once
    sigma2 = sigma * sigma
    phi = _cut(jnp.exp(-0.5 / sigma2 * (x * x)), keep)
    phi = phi / phi.sum()
    if order == 0:
        return phi
    # f = q(x) phi(x) with q a polynomial; f' = (q' + q p') phi where p' = -x / sigma².
    q = jnp.zeros(order + 1, sigma.dtype).at[0].set(1)
    d_op = jnp.asarray(np.diag(np.arange(1, order + 1), 1), sigma.dtype)
    p_op = jnp.diag(jnp.ones(order, sigma.dtype) / -sigma2, -1)
    q_deriv = d_op + p_op
    for _ in range(order):
        q = q_deriv @ q
    powers = jnp.stack([x**p for p in range(order + 1)], axis=-1)
    return (powers @ q) * phi


def discrete_kernel_1d(t: jax.Array, order: int, radius: int, size: int) -> jax.Array:
    """Lindeberg's T(n; t) = e^{-t} I_n(t) (or its central-difference derivative) for |n| <= r.

    The inverse real FFT of ``exp(-t (1 - cos ω))`` on `size` points equals the kernel plus its
    periodic aliases ``T(n + j·size)``, negligible once ``size - r`` exceeds about 12σ.
    Derivatives use Lindeberg's difference operators: ``δx = (T[n+1] - T[n-1]) / 2`` (``i sin ω``)
    and ``δxx = T[n+1] - 2 T[n] + T[n-1]`` (``2 cos ω - 2``), ``order = 2 k + j`` as δxx^k δx^j.
    """
    w = 2.0 * np.pi * np.arange(size // 2 + 1) / size
    spectrum = jnp.exp(-t * jnp.asarray(1.0 - np.cos(w), t.dtype))
    factor = (2.0 * np.cos(w) - 2.0) ** (order // 2)
    if order % 2:
        spectrum = spectrum * jnp.asarray(1j * np.sin(w) * factor)
    elif order:
        spectrum = spectrum * jnp.asarray(factor, t.dtype)
    full = jnp.fft.irfft(spectrum, n=size)
    return full[np.arange(-radius, radius + 1) % size].astype(t.dtype)


def discrete_fft_size(radius: int, sd: Any) -> int:
    """FFT length with negligible aliasing: 5r + 17 covers σ <= r / 3; more if σ is known."""
    size = 5 * radius + 17
    value = None if sd is None else concrete(sd)
    if value is not None:
        size = max(size, radius + math.ceil(12.0 * float(value)) + 17)
    return size


def separable_kernel(
    spread: Any,
    form: str,
    mean: jax.Array | None,
    offsets: Sequence[np.ndarray],
    h: Sequence[float],
    orders: Sequence[int],
    discretization: str,
    normalize: bool,
    dtype: Any,
    radii: Sequence[int] | None = None,
) -> jax.Array:
    """Outer product of the 1-D (derivative) kernels of each axis at ``offsets[a] * h[a]``.

    `spread` is a covariance as `form` says (``"scalar"``, ``"diag"`` or ``"full"``, whose
    diagonal is used: see :func:`parse_cov`) or, for ``"sd"``, a sequence of per-axis standard
    deviations. `normalize` divides each axis by the sum of its order-0 kernel (scipy's scaling);
    otherwise values are densities (per unit length, derivatives per unit length^order).

    With `radii` (concrete ints), ``offsets[a]`` is a bucket's ``-B..B`` and the taps beyond
    ``radii[a]`` are exactly zero: the radii are traced, so every radius of a bucket runs the
    same compiled program (crop the result with :func:`crop`). One program per static
    configuration: an eager call costs one dispatch, not dozens.
    """
    keys, sizes = [], []
    for a, off in enumerate(offsets):
        off = np.asarray(off)
        start = off[0] if off.size else 0
        if np.array_equal(off, start + np.arange(off.size)):
            # Whole steps (every caller but odd kernel shapes): the jit key is (start, count), not
            # a tuple of every offset, which cost seconds to build and hash for a radius of 10^6.
            keys.append((float(start), int(off.size)))
        else:
            keys.append(tuple(float(o) for o in off))
        size = None
        if discretization == "discrete":
            sd = _concrete_sd(spread, form, a)
            size = discrete_fft_size(int(off[-1]), None if sd is None else sd / h[a])
            if radii is not None:  # in a bucket too: a σ-dependent length would recompile
                size = radius_bucket(size)
        sizes.append(size)
    if radii is not None:
        radii = np.asarray(radii, np.int32)
    return _separable_kernel(
        spread, mean, radii,
        form=form, offsets=tuple(keys), h=tuple(float(v) for v in h),
        orders=tuple(int(o) for o in orders), discretization=discretization,
        normalize=bool(normalize), sizes=tuple(sizes), dtype=np.dtype(dtype),
    )  # fmt: skip


def _concrete_sd(spread: Any, form: str, axis: int) -> float | None:
    """The standard deviation of `axis` when it is known at trace time."""
    if form == "sd":
        value = concrete(spread[axis])
        return None if value is None else float(value)
    value = concrete(spread)
    if value is None:
        return None
    var = value if form == "scalar" else (value[axis] if form == "diag" else value[axis, axis])
    return math.sqrt(float(var))


@functools.partial(
    jax.jit,
    static_argnames=(
        "form", "offsets", "h", "orders", "discretization", "normalize", "sizes", "dtype"
    ),
)  # fmt: skip
def _separable_kernel(
    spread, mean, radii, *, form, offsets, h, orders, discretization, normalize, sizes, dtype
):
    ndim = len(orders)
    if form == "sd":
        sds = [jnp.asarray(s, dtype) for s in spread]
    else:
        spread = spread.astype(dtype)
        var = jnp.diagonal(spread) if form == "full" else jnp.broadcast_to(spread, (ndim,))
        sds = [jnp.sqrt(var[a]) for a in range(ndim)]
    factors = []
    for a in range(ndim):
        sd = sds[a]
        keep = None
        if radii is not None:
            start, count = offsets[a]
            keep = jnp.abs(jnp.arange(count, dtype=jnp.int32) + int(start)) <= radii[a]
        k = _axis_kernel_values(
            sd, None if mean is None else mean[a].astype(dtype), offsets[a], h[a],
            order=orders[a], discretization=discretization, normalize=normalize,
            size=sizes[a], keep=keep,
        )  # fmt: skip
        # A traced σ cannot be checked (a concrete one is, eagerly): σ <= 0, NaN or inf give
        # NaN rather than, for a negative σ, the kernel of |σ|.
        factors.append(jnp.where((sd > 0) & jnp.isfinite(sd), k, jnp.nan))
    return outer(factors).astype(dtype)


def crop(kernel: jax.Array, buckets: Sequence[int], radii: Sequence[int]) -> jax.Array:
    """The centre ``2 r + 1`` taps per axis of a kernel of half-sizes `buckets`, on the host.

    An eager slice of a device array compiles a program per output shape (per radius); copying
    the kernel to the host and back compiles nothing. A traced kernel is sliced in its trace.
    """
    index = tuple(slice(b - r, b + r + 1) for b, r in zip(buckets, radii, strict=True))
    if isinstance(kernel, jax.core.Tracer):
        return kernel[index]
    return jax.device_put(np.ascontiguousarray(np.asarray(kernel)[index]))  # no `stage` program


def _axis_kernel_values(sd, mu, offsets, h, *, order, discretization, normalize, size, keep=None):
    """`offsets`: every offset, or ``(start, count)`` for ``start + arange(count)``; `keep`: the
    taps inside the true radius (the others are zero and left out of the normalisation)."""
    dtype = sd.dtype
    mu = jnp.zeros((), dtype) if mu is None else mu
    if len(offsets) == 2 and isinstance(offsets[1], int):
        start, count = offsets
        x = (jnp.arange(count, dtype=dtype) + start) * h  # an iota, not a constant of every tap
        last = start + count - 1
    else:
        x = jnp.asarray(np.asarray(offsets) * h, dtype)
        last = offsets[-1]
    if discretization == "scipy":
        return scipy_kernel_1d(sd / h, order, int(last), keep) / h**order
    if discretization == "discrete":
        r = int(last)
        k = _cut(discrete_kernel_1d((sd / h) ** 2, order, r, size), keep)
        if not normalize:
            return k / h ** (order + 1)
        k0 = k if order == 0 else _cut(discrete_kernel_1d((sd / h) ** 2, 0, r, size), keep)
        return k / k0.sum() / h**order
    if discretization == "sample":
        z = (x - mu) / sd
        g0 = _cut(jnp.exp(-0.5 * z * z), keep)
        k = g0 if order == 0 else (-1) ** order * hermite(order, z) / sd**order * g0
        return k / g0.sum() if normalize else k / (sd * math.sqrt(2.0 * math.pi))
    # "integrate": cell [x - h/2, x + h/2]; the order-k kernel integrates the k-th derivative.
    a = (x - 0.5 * h - mu) / sd
    b = (x + 0.5 * h - mu) / sd
    # Φ(b) - Φ(a), taken in the lower tail on either side of the mean to keep its precision.
    right = a > 0
    mass = _cut(ndtr(jnp.where(right, -a, b)) - ndtr(jnp.where(right, -b, a)), keep)
    if order == 0:
        k = mass
    else:
        j = order - 1  # d^j/dx^j of the density at the cell edges

        def deriv(z):
            c = (-1) ** j / math.sqrt(2.0 * math.pi)
            return c * hermite(j, z) * jnp.exp(-0.5 * z * z) / sd ** (j + 1)

        k = _cut(deriv(b) - deriv(a), keep)
    return k / mass.sum() if normalize else k / h


def gaussian_taps(
    sd: jax.Array, radius: jax.Array, bucket: int, order: int, discretization: str, size: int | None
) -> jax.Array:
    """A filter's 1-D kernel at offsets ``-bucket..bucket``, zero beyond the traced `radius`.

    For use inside a jitted program, σ traced: a σ <= 1e-15 gives a delta (the identity, as
    skipping the axis, with a finite gradient), a negative, NaN or infinite σ gives NaN.
    """
    tiny = sd <= 1e-15
    valid = (sd >= 0) & jnp.isfinite(sd)
    safe = jnp.where(tiny | ~valid, jnp.ones((), sd.dtype), sd)  # double `where`: finite grad
    offsets = jnp.arange(-bucket, bucket + 1, dtype=jnp.int32)
    k = _axis_kernel_values(
        safe, None, (float(-bucket), 2 * bucket + 1), 1.0, order=order,
        discretization=discretization, normalize=True, size=size, keep=jnp.abs(offsets) <= radius,
    )  # fmt: skip
    delta = (offsets == 0).astype(k.dtype)
    return jnp.where(valid, jnp.where(tiny, delta, k), jnp.nan)


# --- covariance arguments ------------------------------------------------------------------------
def parse_cov(cov: Any, fn: str, name: str = "cov") -> tuple[jax.Array, str]:
    """Returns (cov as an array, form) with form "scalar", "diag" (variances) or "full".

    Concrete values are validated eagerly (finite; variances > 0; matrices square, symmetric and
    positive definite); traced values cannot be checked and are used as given.
    """
    try:
        arr = device_array(cov)
    except TypeError as err:
        raise TypeError(f"{fn}: `{name}` must be an array of numbers; got {type(cov)}.") from err
    if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[0] != arr.shape[1]) or arr.size == 0:
        raise ValueError(
            f"{fn}: `{name}` must be a variance, a vector of per-axis variances or "
            f"a square (N, N) covariance matrix; got shape {arr.shape}."
        )
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: `{name}` must be real; got dtype {arr.dtype}.")
    form = ("scalar", "diag", "full")[arr.ndim]
    value = concrete(cov)
    if value is not None:
        value = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{fn}: `{name}` must be finite; got {value.tolist()}.")
        if form != "full":
            if np.any(value <= 0):
                raise ValueError(f"{fn}: `{name}` (variances) must be > 0; got {value.tolist()}.")
        else:
            scale = max(np.max(np.abs(value)), np.finfo(float).tiny)
            if np.max(np.abs(value - value.T)) > 1e-8 * scale:
                raise ValueError(f"{fn}: `{name}` must be symmetric; got {value.tolist()}.")
            eig = np.linalg.eigvalsh(0.5 * (value + value.T))
            if eig[0] <= 1e-14 * eig[-1] or eig[-1] <= 0:
                raise ValueError(
                    f"{fn}: `{name}` must be positive definite; got {value.tolist()} "
                    f"with eigenvalues {eig.tolist()}."
                )
    return arr, form


def cov_ndim(arr: jax.Array, form: str) -> int | None:
    return None if form == "scalar" else arr.shape[0]


def diagonal_variances(arr: jax.Array, form: str, ndim: int, discretization: str, fn: str):
    """Per-axis variances for the axis-aligned discretisations (a full matrix must be diagonal)."""
    if form == "scalar":
        return jnp.broadcast_to(arr, (ndim,))
    if form == "diag":
        return arr
    value = concrete(arr)
    if value is None or np.any(value[~np.eye(ndim, dtype=bool)] != 0):
        raise NotImplementedError(
            f"{fn}: discretization={discretization!r} needs an axis-aligned covariance; got a "
            f"{'traced' if value is None else 'non-diagonal'} (N, N) `cov`. Pass the per-axis "
            "variances as a vector (e.g. jnp.diagonal(cov)) or use discretization='sample'."
        )
    return jnp.diagonal(arr)
