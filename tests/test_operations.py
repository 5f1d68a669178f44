"""One table of public operations, each checked the same four ways.

For every operation: ``jax.jit`` gives what the eager call gives; ``jax.vmap`` over a leading
batch axis gives the loop of single calls; the output dtype follows the input (float32 in,
float32 out; float64 in, float64 out); and its gradient with respect to the input (and, where it
has one, to its continuous parameter) passes ``jax.test_util.check_grads`` in float64, forward and
reverse. Agreement with scipy is tested per module (``test_convolve.py``, ``test_filters.py``,
``test_scipy_parity.py``, ...); this file checks the transformations once for all of them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxconv

RNG = np.random.default_rng(2026)
K3 = jnp.asarray(RNG.normal(size=(3, 3)))
K5 = jnp.asarray(RNG.normal(size=(5,)))
COV = jnp.asarray([[1.1, 0.3], [0.3, 0.7]])


def _like(kernel: jax.Array, x: jax.Array) -> jax.Array:
    """The kernel in the input's dtype (a float64 kernel promotes float32 data, as in scipy)."""
    return kernel.astype(x.dtype)


# name -> (fn(x, p), input shape, parameter value or None). `p` is the operation's continuous
# parameter (a σ, a covariance, a fill value), differentiated when given.
OPERATIONS = {
    "convolve full": (lambda x, p: jaxconv.convolve(x, _like(K3, x), "full"), (9, 8), None),
    "convolve same fill": (
        lambda x, p: jaxconv.convolve(x, _like(K3, x), "same", fillvalue=p),
        (9, 8),
        0.5,
    ),
    "convolve valid fft": (
        lambda x, p: jaxconv.convolve(x, _like(K3, x), "valid", method="fft"),
        (9, 8),
        None,
    ),
    "correlate reflect": (
        lambda x, p: jaxconv.correlate(x, _like(K3, x), "same", boundary="reflect"),
        (9, 8),
        None,
    ),
    "convolve2d wrap": (
        lambda x, p: jaxconv.convolve2d(x, _like(K3, x), "same", "wrap"),
        (9, 8),
        None,
    ),
    "correlate2d valid": (lambda x, p: jaxconv.correlate2d(x, _like(K3, x), "valid"), (9, 8), None),
    "convolve 1-D": (lambda x, p: jaxconv.convolve(x, _like(K5, x), "same"), (17,), None),
    "correlate_padded": (
        lambda x, p: jaxconv.correlate_padded(
            x, _like(K3, x), axes=(0, 1), pads=((1, 2), (2, 1)), boundary="edge"
        ),
        (9, 8),
        None,
    ),
    "convolve_separable": (
        lambda x, p: jaxconv.convolve_separable(x, [_like(K5, x), _like(K5[::-1], x)], mode="same"),
        (9, 8),
        None,
    ),
    "ndimage_correlate": (
        lambda x, p: jaxconv.ndimage_correlate(x, _like(K3, x), mode="mirror", cval=p),
        (9, 8),
        0.0,
    ),
    "ndimage_convolve constant": (
        lambda x, p: jaxconv.ndimage_convolve(x, _like(K3, x), mode="constant", cval=p),
        (9, 8),
        0.25,
    ),
    "uniform_filter": (lambda x, p: jaxconv.uniform_filter(x, 3, mode="wrap"), (9, 8), None),
    "laplace": (lambda x, p: jaxconv.laplace(x, mode="reflect"), (9, 8), None),
    "gaussian_filter σ": (lambda x, p: jaxconv.gaussian_filter(x, p, radius=3), (9, 8), 1.3),
    "gaussian_filter order": (
        lambda x, p: jaxconv.gaussian_filter(x, p, order=(1, 0), radius=3, mode="nearest"),
        (9, 8),
        0.9,
    ),
    "gaussian_filter cov": (
        lambda x, p: jaxconv.gaussian_filter(x, cov=p, radius=3, mode="wrap"),
        (9, 8),
        jaxconv.Gaussian.from_covariance(COV),
    ),
    "gaussian_filter1d": (
        lambda x, p: jaxconv.gaussian_filter1d(x, p, axis=0, radius=3),
        (9, 8),
        1.1,
    ),
    "gaussian_laplace": (lambda x, p: jaxconv.gaussian_laplace(x, p, radius=3), (9, 8), 1.2),
    "gaussian_gradient_magnitude": (
        lambda x, p: jaxconv.gaussian_gradient_magnitude(x, p, radius=3),
        (9, 8),
        1.0,
    ),
    "sobel": (lambda x, p: jaxconv.sobel(x, 0, mode="nearest"), (9, 8), None),
    "prewitt": (lambda x, p: jaxconv.prewitt(x, 1), (9, 8), None),
    "scharr": (lambda x, p: jaxconv.scharr(x, 0, mode="wrap"), (9, 8), None),
    "edge_magnitude": (lambda x, p: jaxconv.edge_magnitude(x, "sobel"), (9, 8), None),
}
# Every convolution method under jit and vmap (the table's other entries use "auto").
for _method in ("direct", "shift", "fft", "os"):
    OPERATIONS[f"convolve2d wrap {_method}"] = (
        lambda x, p, m=_method: jaxconv.convolve2d(x, _like(K3, x), "same", "wrap", method=m),
        (10, 11),
        None,
    )
NAMES = sorted(OPERATIONS)


def _input(shape: tuple, dtype=np.float64) -> jax.Array:
    # Noise on a ramp: the ramp keeps every gradient magnitude (a norm) away from zero, where it
    # is not differentiable and finite differences are meaningless.
    ramp = 0.5 * np.arange(shape[-1])
    return jnp.asarray(0.3 * RNG.normal(size=shape) + ramp + 3.0, dtype)


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager(name):
    fn, shape, p = OPERATIONS[name]
    x = _input(shape)
    eager = fn(x, p)
    np.testing.assert_allclose(jax.jit(fn)(x, p), eager, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_equals_loop(name):
    fn, shape, p = OPERATIONS[name]
    xs = _input((3, *shape))
    loop = np.stack([np.asarray(fn(x, p)) for x in xs])
    np.testing.assert_allclose(jax.vmap(fn, (0, None))(xs, p), loop, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("name", NAMES)
def test_output_dtype_follows_input(name, dtype):
    fn, shape, p = OPERATIONS[name]
    x = _input(shape, dtype)
    p = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), p)
    out = fn(x, p)
    assert out.dtype == dtype
    ref = fn(x.astype(np.float64), jax.tree_util.tree_map(lambda v: v.astype(np.float64), p))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * float(jnp.max(jnp.abs(ref))))


@pytest.mark.parametrize("name", NAMES)
def test_gradients(name):
    fn, shape, p = OPERATIONS[name]
    x = _input(shape)
    check_grads(lambda a: fn(a, p), (x,), order=1, modes=("fwd", "rev"))
    if p is not None:
        p = jax.tree_util.tree_map(jnp.asarray, p)
        check_grads(lambda q: fn(x, q), (p,), order=1, modes=("fwd", "rev"))
