"""Gaussian kernels and the `Gaussian` type, against scipy.stats, scipy.ndimage, scipy.special."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compile_count import compile_count
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads
from scipy import ndimage, special, stats

import jaxconv
from jaxconv._kernels.buckets import radius_bucket

SEED_COV = [[1.0, 0.5], [0.5, 1.0]]


def impulse_response_1d(sigma, order, radius):
    """scipy.ndimage.gaussian_filter1d's convolution kernel, read off its impulse response."""
    delta = np.zeros(2 * radius + 1)
    delta[radius] = 1.0
    return ndimage.gaussian_filter1d(delta, sigma, order=order, mode="constant", radius=radius)


# --- densities ------------------------------------------------------------------------------------
def test_seed_kernel_equals_multivariate_normal_pdf():
    grid = np.mgrid[-3:3:0.2, -3:3:0.2]
    k = jaxconv.gaussian_kernel(cov=SEED_COV, grid=grid, normalize=False)
    ref = stats.multivariate_normal([0, 0], SEED_COV).pdf(np.dstack(grid))
    assert k.shape == ref.shape == (30, 30)
    assert k.dtype == jnp.float64
    np.testing.assert_allclose(k, ref, rtol=1e-13, atol=0)


def test_seed_1d_pdfs():
    x = np.linspace(-10, 10, 1000)
    np.testing.assert_allclose(jaxconv.normal_pdf(x), stats.norm.pdf(x), rtol=1e-14, atol=0)
    u = jaxconv.uniform_pdf(x, loc=-3, scale=6)
    np.testing.assert_array_equal(u, stats.uniform.pdf(x, loc=-3, scale=6))
    grid = np.arange(-5.0, 5.0, 0.5)  # hits both ends of the support exactly
    np.testing.assert_array_equal(
        jaxconv.uniform_pdf(grid, -3.0, 6.0), stats.uniform.pdf(grid, loc=-3, scale=6)
    )
    np.testing.assert_allclose(
        jaxconv.normal_pdf(x, loc=1.5, scale=0.7), stats.norm.pdf(x, 1.5, 0.7), rtol=1e-13
    )
    k = jaxconv.gaussian_kernel(1.0, grid=x, normalize=False)
    np.testing.assert_allclose(k, stats.norm.pdf(x), rtol=1e-13, atol=0)


@pytest.mark.parametrize(
    "mean, cov",
    [
        ([0.3], [[2.0]]),
        ([0.0, 1.0, -1.0], [[2.0, 0.3, -0.4], [0.3, 1.0, 0.2], [-0.4, 0.2, 1.5]]),
        ([0.5, -0.5], [0.7, 1.9]),
    ],
)
def test_multivariate_normal_pdf(mean, cov):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, len(mean)))
    ref = stats.multivariate_normal(mean, np.diag(cov) if np.ndim(cov) == 1 else cov).pdf(x)
    np.testing.assert_allclose(
        jaxconv.multivariate_normal_pdf(x, mean, cov), ref, rtol=1e-13, atol=0
    )


# --- discretisations ------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.3])
def test_scipy_discretization_matches_ndimage(sigma):
    radius = int(4.0 * sigma + 0.5)
    k = jaxconv.gaussian_kernel(sigma**2, discretization="scipy")
    np.testing.assert_allclose(k, impulse_response_1d(sigma, 0, radius), rtol=1e-14, atol=1e-17)
    # "sample" is the same sampled, sum-normalised kernel (and the same default radius)
    np.testing.assert_allclose(jaxconv.gaussian_kernel(sigma**2), k, rtol=1e-13, atol=1e-17)


def test_separable_2d_sample_kernel_matches_ndimage():
    sig = (0.9, 1.7)
    k = jaxconv.gaussian_kernel([s**2 for s in sig], radius=(3, 5))
    ref = np.outer(impulse_response_1d(sig[0], 0, 3), impulse_response_1d(sig[1], 0, 5))
    np.testing.assert_allclose(k, ref, rtol=1e-13, atol=1e-17)


def test_full_covariance_sample_kernel():
    cov = np.array([[2.0, -0.8], [-0.8, 1.0]])
    k = jaxconv.gaussian_kernel(cov)  # default radius int(4 sqrt(Σ_aa) + 0.5)
    assert k.shape == (13, 9)
    pts = np.dstack(np.mgrid[-6:7, -4:5])
    ref = stats.multivariate_normal([0, 0], cov).pdf(pts)
    np.testing.assert_allclose(k, ref / ref.sum(), rtol=1e-13, atol=0)
    # spacing and mean: densities at (i * h0, j * h1)
    h, mu = (0.5, 0.25), [0.3, -0.2]
    k = jaxconv.gaussian_kernel(cov, mean=mu, radius=3, spacing=h, normalize=False)
    g = np.mgrid[-3:4, -3:4].astype(float)
    pts = np.dstack([g[0] * h[0], g[1] * h[1]])
    np.testing.assert_allclose(k, stats.multivariate_normal(mu, cov).pdf(pts), rtol=1e-13)


@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.5])
def test_discrete_analogue(sigma):
    t, r = sigma**2, 40
    n = np.arange(-r, r + 1)
    k = jaxconv.gaussian_kernel(t, radius=r, discretization="discrete", normalize=False)
    np.testing.assert_allclose(k, special.ive(n, t), rtol=0, atol=1e-15)
    assert abs(float(jnp.sum(k * n**2)) - t) < 1e-12  # exact variance at every scale
    # semigroup: T(t1) * T(t2) = T(t1 + t2)
    k2 = jaxconv.gaussian_kernel(0.7, radius=r, discretization="discrete", normalize=False)
    both = np.convolve(k, k2, mode="same")
    np.testing.assert_allclose(both, special.ive(n, t + 0.7), rtol=0, atol=1e-14)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_integrate_discretization(sigma):
    r = 12
    n = np.arange(-r, r + 1)
    k = jaxconv.gaussian_kernel(sigma**2, radius=r, discretization="integrate", normalize=False)
    ref = stats.norm.cdf(n + 0.5, scale=sigma) - stats.norm.cdf(n - 0.5, scale=sigma)
    np.testing.assert_allclose(k, ref, rtol=1e-9, atol=1e-16)
    if sigma >= 1.0:  # pixel integration adds 1/12 px² of variance
        var = float(jnp.sum(k * n**2) / jnp.sum(k))
        assert abs(var - (sigma**2 + 1 / 12)) < 1e-6


def test_kernel_properties():
    for disc in ("sample", "integrate", "discrete", "scipy"):
        k = jaxconv.gaussian_kernel([1.3, 0.6], radius=(4, 3), discretization=disc)
        assert abs(float(k.sum()) - 1.0) < 1e-13
        np.testing.assert_allclose(k, k[::-1, ::-1], rtol=1e-13, atol=1e-17)
        assert float(k.min()) >= 0.0 or disc == "discrete"
    k = jaxconv.gaussian_kernel([[2.0, 0.6], [0.6, 1.0]], radius=3)
    np.testing.assert_allclose(k, k[::-1, ::-1], rtol=1e-14)  # x -> -x for a zero mean


def test_dtype_is_inferred():
    assert jaxconv.gaussian_kernel(1.0, radius=2).dtype == jnp.float64
    assert jaxconv.gaussian_kernel(np.float32(1.0), radius=2).dtype == jnp.float32
    k = jaxconv.gaussian_kernel(jnp.eye(2, dtype=jnp.float32), radius=2)
    assert k.dtype == jnp.float32
    k = jaxconv.gaussian_kernel(1.0, radius=2, discretization="discrete", dtype=jnp.float32)
    assert k.dtype == jnp.float32


def test_truncation():
    for r in (3,):
        ref = 2 * stats.norm.sf(r + 0.5)
        np.testing.assert_allclose(jaxconv.gaussian_truncation(1.0, r), ref, rtol=1e-10)
        ref2 = 1 - (1 - 2 * stats.norm.sf((r + 0.5) / 2.0)) * (1 - ref)
        np.testing.assert_allclose(jaxconv.gaussian_truncation([4.0, 1.0], r), ref2, rtol=1e-10)
    cov = np.array([[4.0, 1.5], [1.5, 2.0]])
    for r in (4,):
        b = r + 0.5
        inside = stats.multivariate_normal([0, 0], cov).cdf([b, b], lower_limit=[-b, -b])
        bound = float(jaxconv.gaussian_truncation(cov, r))
        assert 1 - inside - 1e-6 <= bound <= 1.0
        union = 2 * stats.norm.sf(b / 2.0) + 2 * stats.norm.sf(b / np.sqrt(2.0))
        assert bound <= union + 1e-15
    # under jit and grad
    val = jax.jit(lambda t: jaxconv.gaussian_truncation(t, 3))(2.0)
    assert np.isclose(val, 2 * stats.norm.sf(3.5 / np.sqrt(2.0)))
    assert float(jax.grad(lambda t: jaxconv.gaussian_truncation(t, 3))(2.0)) > 0


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_chi2_tail_closed_form_matches_scipy(n):
    # The ball bound of gaussian_truncation: P(chi2_n > 2x) without gammaincc's series/fractions.
    from jaxconv._kernels.gaussian import _chi2_tail

    x = np.concatenate([[0.0], np.geomspace(1e-6, 300.0, 60)])
    got = np.asarray(_chi2_tail(n, jnp.asarray(x)))
    np.testing.assert_allclose(got, stats.chi2.sf(2 * x, df=n), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(got, special.gammaincc(n / 2, x), rtol=1e-12, atol=1e-300)
    check_grads(lambda t: _chi2_tail(n, t), (jnp.asarray([0.3, 2.0, 9.0]),), order=2)


def test_traced_sigma_needs_static_radius():
    with pytest.raises(ValueError, match=r"traced.*radius"):
        jax.jit(lambda c: jaxconv.gaussian_kernel(c))(1.0)
    f = jax.jit(lambda c: jaxconv.gaussian_kernel(c, radius=3, discretization="discrete"))
    np.testing.assert_allclose(
        f(1.5), jaxconv.gaussian_kernel(1.5, radius=3, discretization="discrete"), rtol=1e-14
    )


def test_kernel_gradients():
    def f(cov, mean):
        return jaxconv.gaussian_kernel(cov, mean=mean, radius=(2, 3))

    cov = jnp.array([[1.5, 0.4], [0.4, 0.8]])
    # order 1 here; second order through kernel and filter is in test_filters.py
    check_grads(jax.jit(f), (cov, jnp.array([0.2, -0.1])), order=1, modes=["fwd", "rev"])

    def g(v):  # the diagonal discretisations, differentiable in the variances
        kw = dict(radius=3, normalize=False)
        return jnp.stack(
            [jaxconv.gaussian_kernel(v, discretization=d, **kw) for d in ("integrate", "discrete")]
        )

    check_grads(jax.jit(g), (jnp.array([1.2, 0.7]),), order=1, modes=["fwd", "rev"])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(cov=[[1.0, 2.0], [2.0, 1.0]]), ValueError, "`cov` must be positive definite"),
        (dict(cov=[[1.0, 0.5], [0.4, 1.0]]), ValueError, "`cov` must be symmetric"),
        (dict(cov=[[1.0, np.nan], [np.nan, 1.0]]), ValueError, "`cov` must be finite"),
        (dict(cov=np.ones((2, 3))), ValueError, "square"),
        (dict(cov=[1.0, -1.0]), ValueError, r"variances\) must be > 0"),
        (dict(cov=1.0, shape=4, discretization="discrete"), ValueError, "must be odd"),
        (dict(cov=1.0, radius=-1), ValueError, "`radius` must be a non-negative int"),
        (dict(cov=1.0, radius=2, discretization="bessel"), ValueError, "`discretization`"),
        (dict(cov=1.0, radius=2, mean=0.5, discretization="discrete"), NotImplementedError, "mean"),
        (
            dict(cov=[[1.0, 0.2], [0.2, 1.0]], discretization="integrate"),
            NotImplementedError,
            "axis",
        ),
        (dict(cov=[1.0, 2.0], mean=[0.0, 0.0, 0.0]), ValueError, "`mean` must have shape"),
        (dict(cov=1.0, grid=np.mgrid[0:2, 0:2], radius=1), ValueError, "at most one"),
    ],
)
def test_kernel_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        jaxconv.gaussian_kernel(**kwargs)


# --- the Gaussian parameter type ----------------------------------------------------------------
def test_gaussian_constructors_and_readouts():
    g = jaxconv.Gaussian.from_covariance(SEED_COV)
    np.testing.assert_allclose(g.covariance, SEED_COV, rtol=1e-14)
    np.testing.assert_allclose(g.precision_matrix, np.linalg.inv(SEED_COV), rtol=1e-13)
    np.testing.assert_allclose(g.logdet, np.log(np.linalg.det(SEED_COV)), rtol=1e-13)
    np.testing.assert_allclose(g.sigmas, np.sqrt([1.5, 0.5]), rtol=1e-13)
    np.testing.assert_allclose(g.angle, np.pi / 4, rtol=1e-13)
    np.testing.assert_allclose(
        jaxconv.Gaussian.isotropic(2.0, ndim=3).covariance, 4 * np.eye(3), rtol=1e-14
    )
    np.testing.assert_allclose(
        jaxconv.Gaussian.from_sigmas([1.0, 3.0]).covariance, np.diag([1.0, 9.0]), rtol=1e-14
    )
    cov3 = np.array([[2.0, 0.3, -0.4], [0.3, 1.0, 0.2], [-0.4, 0.2, 1.5]])
    g3 = jaxconv.Gaussian.from_covariance(cov3, mean=[1.0, 2.0, 3.0])
    np.testing.assert_allclose(g3.covariance, cov3, rtol=1e-14)
    np.testing.assert_allclose(g3.sigmas, np.sqrt(np.linalg.eigvalsh(cov3))[::-1], rtol=1e-13)
    assert len(jax.tree_util.tree_leaves(g3)) == 3


def test_from_cholesky_matches_numpy_and_traced_reads_lower_triangle():
    chol = np.linalg.cholesky(SEED_COV)
    got = jaxconv.Gaussian.from_cholesky(chol).covariance
    np.testing.assert_allclose(got, SEED_COV, rtol=1e-14)
    # Traced, the upper triangle cannot be checked; only the lower one is read (documented).
    upper = chol + np.triu(np.ones((2, 2)), 1)
    traced = jax.jit(lambda c: jaxconv.Gaussian.from_cholesky(c).covariance)(upper)
    np.testing.assert_allclose(traced, SEED_COV, rtol=1e-14)


def test_from_angle_convention():
    # θ from the x (last) axis towards y (first): the σ1 axis is (sin θ, cos θ) in (row, col).
    theta = np.deg2rad(30.0)
    g = jaxconv.Gaussian.from_angle(3.0, 1.5, theta)
    u = np.array([np.sin(theta), np.cos(theta)])
    c = np.asarray(g.covariance)
    np.testing.assert_allclose(c @ u, 9.0 * u, rtol=1e-13)
    np.testing.assert_allclose(g.sigmas, [3.0, 1.5], rtol=1e-13)
    np.testing.assert_allclose(g.angle, theta, rtol=1e-13)
    # σ1 < σ2 reads back sorted, with the angle turned by π/2 (modulo π)
    g = jaxconv.Gaussian.from_angle(1.0, 2.0, 0.3)
    np.testing.assert_allclose(g.sigmas, [2.0, 1.0], rtol=1e-13)
    np.testing.assert_allclose(g.angle, 0.3 + np.pi / 2, rtol=1e-13)
    # the kernel is elongated along that direction: θ = 0 stretches along the x axis
    k = np.asarray(jaxconv.Gaussian.from_angle(3.0, 1.0, 0.0).kernel(radius=6))
    assert k[6, 9] > k[9, 6]


@settings(max_examples=15)
@given(
    st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    st.lists(st.floats(-5, 5), min_size=3, max_size=3),
)
def test_any_raw_parameters_give_an_spd_covariance(log_diag, offdiag):
    g = jaxconv.Gaussian(jnp.asarray(log_diag), jnp.asarray(offdiag))
    c = np.asarray(g.covariance)
    np.testing.assert_array_equal(c, c.T)
    assert np.all(np.linalg.eigvalsh(c) > 0)
    np.testing.assert_allclose(np.log(np.linalg.det(c)), g.logdet, rtol=1e-8, atol=1e-8)


def test_gaussian_kernel_and_gradients():
    g = jaxconv.Gaussian.from_covariance(SEED_COV, mean=[0.2, -0.3])
    pts = np.dstack(np.mgrid[-3:4, -3:4])
    ref = stats.multivariate_normal([0.2, -0.3], SEED_COV).pdf(pts)
    np.testing.assert_allclose(g.kernel(radius=3, normalize=False), ref, rtol=1e-13)
    # (check_grads through Gaussian -> kernel -> filter, to second order: test_filters.py)
    grads = jax.grad(lambda p: p.kernel(radius=2)[1, 2])(g)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(g)
    ref = jaxconv.gaussian_truncation(SEED_COV, 3, mean=g.mean)
    np.testing.assert_allclose(g.truncation(3), ref, rtol=1e-12)
    # an axis-aligned Gaussian also gives the diagonal-only discretisations
    k = jaxconv.Gaussian.from_sigmas([1.0, 2.0]).kernel(radius=3, discretization="discrete")
    np.testing.assert_allclose(
        k, jaxconv.gaussian_kernel([1.0, 4.0], radius=3, discretization="discrete"), rtol=1e-13
    )


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: jaxconv.Gaussian.from_covariance([[1.0, 2.0], [2.0, 1.0]]), "eigenvalues"),
        (lambda: jaxconv.Gaussian.from_covariance([[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (lambda: jaxconv.Gaussian.from_covariance([1.0, 2.0]), r"\(N, N\) matrix"),
        (lambda: jaxconv.Gaussian.isotropic(-1.0), "`sigma` must be finite and > 0"),
        (lambda: jaxconv.Gaussian.isotropic(0.0), "`sigma`"),
        (lambda: jaxconv.Gaussian.from_sigmas([1.0, 0.0]), "`sigmas`"),
        (lambda: jaxconv.Gaussian.from_angle(1.0, -2.0, 0.1), "`sigma2`"),
        (lambda: jaxconv.Gaussian.from_sigmas([1.0, 2.0], mean=[0.0]), "`mean` must have"),
        (lambda: jaxconv.Gaussian.isotropic(1.0, ndim=3).angle, "2-D"),
        (lambda: jaxconv.Gaussian(jnp.zeros(2), jnp.zeros(2)).covariance, "`offdiag`"),
        (lambda: jaxconv.Gaussian.from_cholesky([[1.0, 0.5], [0.5, 1.0]]), "lower triangular"),
        (lambda: jaxconv.gaussian_kernel(1.0, truncate=np.nan), r"`truncate` must be a finite"),
        (lambda: jaxconv.gaussian_kernel(1.0, truncate=-1.0), r"`truncate` must be a finite"),
    ],
)
def test_gaussian_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- derivative kernels ---------------------------------------------------------------------------
@pytest.mark.parametrize("sigma, order", [(1.0, (0, 1)), (1.5, (2, 1)), ((0.7, 2.0), (1, 3))])
def test_derivative_kernel_matches_ndimage(sigma, order):
    k = jaxconv.gaussian_derivative_kernel(sigma, order)
    sig = sigma if isinstance(sigma, tuple) else (sigma, sigma)
    radii = [int(4 * s + 0.5) for s in sig]
    ref = np.outer(
        *(impulse_response_1d(s, o, r) for s, o, r in zip(sig, order, radii, strict=True))
    )
    np.testing.assert_allclose(k, ref, rtol=1e-12, atol=1e-16)
    k2 = jaxconv.gaussian_derivative_kernel(sigma, order, discretization="sample")
    np.testing.assert_allclose(k2, ref, rtol=1e-12, atol=1e-16)
    if sum(order) % 2:  # odd derivatives are antisymmetric and sum to zero
        assert abs(float(k.sum())) < 1e-14


def test_derivative_kernel_full_covariance():
    cov = np.array([[1.5, 0.5], [0.5, 1.0]])
    r = 4
    pts = np.dstack(np.mgrid[-r : r + 1, -r : r + 1]).astype(float)
    p = stats.multivariate_normal([0, 0], cov).pdf(pts)
    grad = -np.einsum("ab,ijb->ija", np.linalg.inv(cov), pts) * p[..., None]  # ∇p = -Σ⁻¹x p
    for axis, order in ((0, (1, 0)), (1, (0, 1))):
        k = jaxconv.gaussian_derivative_kernel(
            cov=cov, order=order, radius=r, discretization="sample"
        )
        np.testing.assert_allclose(k, grad[..., axis] / p.sum(), rtol=1e-12, atol=1e-17)
        k = jaxconv.gaussian_derivative_kernel(
            cov=cov, order=order, radius=r, discretization="sample", normalize=False
        )
        np.testing.assert_allclose(k, grad[..., axis], rtol=1e-12, atol=1e-17)


def test_derivative_moments_for_every_discretization():
    n = np.arange(-10, 11)
    for disc in ("sample", "integrate", "discrete"):  # "scipy" is checked against ndimage above
        for order in range(1, 4):
            k = jaxconv.gaussian_derivative_kernel(1.1, order, radius=10, discretization=disc)
            # applying the order-n derivative to x^n gives n! (convolution: (-1)^n Σ k x^n)
            moment = float(jnp.sum(k * (-n) ** order))
            assert abs(moment - special.factorial(order)) < 2e-3 * special.factorial(order)
            if order % 2:
                assert abs(float(k.sum())) < 1e-14


def test_laplace_dog_and_oriented_kernels():
    sigma = 1.3
    r = int(4 * sigma + 0.5)
    g0, g2 = impulse_response_1d(sigma, 0, r), impulse_response_1d(sigma, 2, r)
    np.testing.assert_allclose(
        jaxconv.gaussian_laplace_kernel(sigma), np.outer(g2, g0) + np.outer(g0, g2), rtol=1e-12
    )
    delta = np.zeros((21, 21))
    delta[10, 10] = 1.0
    ref = ndimage.gaussian_laplace(delta, sigma, mode="constant")[10 - r : 11 + r, 10 - r : 11 + r]
    np.testing.assert_allclose(jaxconv.gaussian_laplace_kernel(sigma), ref, atol=1e-15)
    dog = jaxconv.difference_of_gaussians_kernel(1.0, 2.0)
    ref = ndimage.gaussian_filter(delta, 1.0, mode="constant") - ndimage.gaussian_filter(
        delta, 2.0, mode="constant"
    )
    np.testing.assert_allclose(dog, ref[2:19, 2:19], atol=1e-15)
    assert abs(float(dog.sum())) < 1e-14
    assert jaxconv.difference_of_gaussians_kernel(1.0).shape == (13, 13)  # high = 1.6 σ
    theta = 0.4
    gx = jaxconv.gaussian_derivative_kernel(1.0, (0, 1))
    gy = jaxconv.gaussian_derivative_kernel(1.0, (1, 0))
    k = jaxconv.oriented_derivative_kernel(1.0, theta)
    np.testing.assert_allclose(k, np.cos(theta) * gx + np.sin(theta) * gy, rtol=1e-14)
    # steering: the response to a ramp along (sin θ, cos θ) is maximal at θ
    rows, cols = np.mgrid[-4:5, -4:5]
    ramp = np.sin(theta) * rows + np.cos(theta) * cols
    resp = [
        float(jnp.sum(jaxconv.oriented_derivative_kernel(1.0, t) * ramp[::-1, ::-1]))
        for t in (theta - 0.2, theta, theta + 0.2)
    ]
    assert resp[1] > max(resp[0], resp[2])
    check_grads(
        jax.jit(lambda s, t: jaxconv.oriented_derivative_kernel(s, t, radius=2)), (1.0, 0.3), 1
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: jaxconv.gaussian_derivative_kernel(-1.0, 1), "`sigma` must be finite and > 0"),
        (lambda: jaxconv.gaussian_derivative_kernel(1.0, -1), "`order`"),
        (lambda: jaxconv.gaussian_derivative_kernel(1.0, (1, 0, 0), radius=(1, 1)), "`radius`"),
        (lambda: jaxconv.gaussian_derivative_kernel(), "exactly one"),
        (lambda: jaxconv.difference_of_gaussians_kernel(2.0, 1.0), "at least"),
        (lambda: jaxconv.gaussian_laplace_kernel((1.0, 1.0), ndim=3), "`ndim`"),
    ],
)
def test_derivative_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- compiled programs reused across σ (issue 14) -------------------------------------------------
# The kernel's half-size is static and comes from a bucket
# (jaxconv._kernels.buckets.radius_bucket); the true radius and σ are traced, the taps beyond the
# radius zero. A sweep of σ from 0.5 to 16 (radius 2 to 64) then compiles one program per bucket:
# 8, 16, 32 and 64.
SWEEP = np.geomspace(0.5, 16, 20)
RESWEEP = np.geomspace(0.55, 15.5, 7)  # new σ, in the same buckets
SMALL = np.random.default_rng(14).normal(size=(29, 23))  # smaller than the largest buckets
FILTERS = {
    "gaussian_filter": (jaxconv.gaussian_filter, ndimage.gaussian_filter, {}),
    "gaussian_filter-order": (jaxconv.gaussian_filter, ndimage.gaussian_filter, {"order": (1, 2)}),
    "gaussian_filter1d": (jaxconv.gaussian_filter1d, ndimage.gaussian_filter1d, {"order": 1}),
    "gaussian_laplace": (jaxconv.gaussian_laplace, ndimage.gaussian_laplace, {}),
    "gaussian_gradient_magnitude": (
        jaxconv.gaussian_gradient_magnitude,
        ndimage.gaussian_gradient_magnitude,
        {},
    ),
}


def test_radius_bucket():
    assert [radius_bucket(r) for r in (0, 1, 8, 9, 16, 17, 64, 65)] == [
        8,
        8,
        8,
        16,
        16,
        32,
        64,
        128,
    ]
    assert radius_bucket(3, floor=2) == 4


@pytest.mark.parametrize("name", list(FILTERS))
def test_filter_sigma_sweep_compiles_once_per_bucket(name):
    ours, scipys, kw = FILTERS[name]
    x = SMALL[:, : 23 - len(name) % 5]  # a shape of its own: earlier tests compiled nothing for it
    with compile_count() as n:
        out = [ours(x, s, **kw) for s in SWEEP]
    assert n.value <= 4, n.events
    for s, y in zip(SWEEP, out, strict=True):
        np.testing.assert_allclose(y, scipys(x, s, **kw), rtol=1e-12, atol=1e-12)
    with compile_count() as n:
        out = [ours(x, s, **kw) for s in RESWEEP]
    assert n.value == 0
    for s, y in zip(RESWEEP, out, strict=True):
        np.testing.assert_allclose(y, scipys(x, s, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "make, order",
    [
        (lambda s: jaxconv.gaussian_kernel(s * s, discretization="scipy"), 0),
        (lambda s: jaxconv.gaussian_kernel(s * s), 0),  # "sample": the same values
        (lambda s: jaxconv.gaussian_derivative_kernel(s, 2), 2),
    ],
    ids=["kernel-scipy", "kernel-sample", "derivative"],
)
def test_kernel_sigma_sweep_compiles_once_per_bucket(make, order):
    with compile_count() as n:
        kernels = [make(s) for s in SWEEP]
    assert n.value <= 4, n.events
    with compile_count() as n:
        kernels += [make(s) for s in RESWEEP]
    assert n.value == 0
    for s, k in zip([*SWEEP, *RESWEEP], kernels, strict=True):
        ref = impulse_response_1d(s, order, int(4.0 * s + 0.5))
        np.testing.assert_allclose(k, ref, rtol=1e-13, atol=1e-16)


def test_kernel_buckets_in_nd_and_full_covariance():
    # 2-D kernels of a diagonal and of a full covariance, and a full-covariance derivative: a new
    # covariance of the same buckets compiles nothing; values against scipy.ndimage and scipy.stats.
    cov = np.array([[2.0, 0.6], [0.6, 1.1]])
    calls = [
        lambda c: jaxconv.gaussian_kernel(np.diag(c), discretization="scipy"),
        lambda c: jaxconv.gaussian_kernel(c),
        lambda c: jaxconv.gaussian_derivative_kernel(cov=c, order=(1, 0), discretization="sample"),
    ]
    for call in calls:
        call(cov)
    scaled = cov * 1.3  # radii (6, 5) -> (7, 5): bucket 8 still
    with compile_count() as n:
        ks = [call(scaled) for call in calls]
    assert n.value == 0
    sd = np.sqrt(np.diag(scaled))
    r = [int(4.0 * s + 0.5) for s in sd]
    ref = np.outer(impulse_response_1d(sd[0], 0, r[0]), impulse_response_1d(sd[1], 0, r[1]))
    np.testing.assert_allclose(ks[0], ref, rtol=1e-13, atol=1e-17)
    grid = np.stack(np.mgrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1], -1)
    pdf = stats.multivariate_normal([0, 0], scaled).pdf(grid)
    np.testing.assert_allclose(ks[1], pdf / pdf.sum(), rtol=1e-12)
    # d/dy of the density: -(Σ⁻¹ d)_y times the density
    dy = -(grid @ np.linalg.inv(scaled))[..., 0] * pdf
    np.testing.assert_allclose(ks[2], dy / pdf.sum(), rtol=1e-10, atol=1e-15)


ALL_MODES = ("reflect", "constant", "nearest", "mirror", "wrap", "grid-mirror", "grid-constant",
             "grid-wrap")  # fmt: skip


@pytest.mark.parametrize("radius", [8, 9, 16, 17])  # a bucket's size, and one more
@pytest.mark.parametrize("n", [5, 40])  # an image smaller than the bucket, and larger
def test_bucket_edges_match_ndimage_in_every_mode(radius, n):
    x = np.random.default_rng(radius * n).normal(size=(n, 7))
    sigma = (radius + 0.2) / 4.0  # scipy's radius int(4 σ + 0.5) is `radius`
    assert int(4.0 * sigma + 0.5) == radius
    for mode in ALL_MODES:
        for order in (0, 1):
            ref = ndimage.gaussian_filter1d(x, sigma, 0, order, mode=mode, cval=0.7)
            y = jaxconv.gaussian_filter1d(x, sigma, 0, order, mode=mode, cval=0.7)
            np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12, err_msg=mode)
        # the user's radius, on both axes (radius > 7, the second axis' length)
        ref = ndimage.gaussian_filter(x, 1.3, mode=mode, cval=0.7, radius=radius)
        y = jaxconv.gaussian_filter(x, 1.3, mode=mode, cval=0.7, radius=radius)
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12, err_msg=mode)
