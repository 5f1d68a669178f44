"""Standard errors and Cramér–Rao bounds against numpy, scipy.optimize.curve_fit and Monte Carlo."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.optimize
import scipy.signal
import scipy.stats

import jaxconv

X = np.asarray(jaxconv.default_image())[:64, :64]
SOBEL = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])  # the convolution kernel of ndimage.sobel


def _patch_matrix(x):
    """Design matrix of a 3×3 'same' convolution on the interior, built with numpy slicing."""
    h, w = x.shape
    cols = [x[2 - a : h - a, 2 - b : w - b].ravel() for a in range(3) for b in range(3)]
    return np.stack(cols, 1)


def test_cramer_rao_bound_of_a_linear_model_equals_numpy():
    a = _patch_matrix(X)
    np.testing.assert_allclose(a @ SOBEL.ravel(), ndi.sobel(X, 1)[1:-1, 1:-1].ravel(), atol=1e-12)
    expected = 0.01**2 * np.linalg.inv(a.T @ a)
    crb = jaxconv.cramer_rao_bound(jaxconv.FreeKernel((3, 3)), jnp.asarray(SOBEL), X, 0.01)
    np.testing.assert_allclose(crb.covariance, expected, rtol=1e-8)
    np.testing.assert_allclose(crb.stderr, np.sqrt(np.diag(expected)).reshape(3, 3), rtol=1e-8)
    np.testing.assert_allclose(crb.derived["kernel"], crb.stderr, rtol=1e-12)
    assert crb.dof == a.shape[0] - 9 and float(crb.noise_std) == 0.01


def test_linear_fit_spread_and_coverage_match_the_bound():
    # For a linear model the least-squares estimate is exactly N(truth, CRB): check both.
    rng = np.random.default_rng(0)
    n, s = 200, 0.01
    y = ndi.sobel(X, 1)
    targets = y + s * rng.standard_normal((n, *X.shape))
    res = jaxconv.fit_batch(jaxconv.FreeKernel((3, 3)), np.broadcast_to(X, targets.shape),
                            targets, optimizer="lm", progress=False)  # fmt: skip
    a = _patch_matrix(X)
    crb = s * np.sqrt(np.diag(np.linalg.inv(a.T @ a))).reshape(3, 3)
    spread = np.std(np.asarray(res.params), axis=0, ddof=1)
    np.testing.assert_allclose(spread / crb, 1.0, atol=0.2)
    stderr = np.asarray(res.stderr["kernel"])
    np.testing.assert_allclose(np.mean(stderr, 0) / crb, 1.0, atol=0.02)
    covered = np.abs(np.asarray(res.params) - SOBEL) <= 1.96 * stderr
    assert 0.92 <= covered.mean() <= 0.98
    np.testing.assert_allclose(np.asarray(res.uncertainty.noise_std), s, rtol=0.05)


def _log_cholesky(cov):
    chol = np.linalg.cholesky(cov)
    return np.array([np.log(chol[0, 0]), np.log(chol[1, 1]), chol[1, 0]])


def _kernel_np(p, r):
    chol = np.array([[np.exp(p[0]), 0.0], [p[2], np.exp(p[1])]])
    grid = np.stack(np.mgrid[-r : r + 1, -r : r + 1], -1)
    k = scipy.stats.multivariate_normal([0, 0], chol @ chol.T).pdf(grid)
    return k / k.sum()


def test_standard_errors_match_scipy_curve_fit():
    rng = np.random.default_rng(1)
    r = 7
    p_true = _log_cholesky([[1.0, 0.5], [0.5, 1.0]])
    y = scipy.signal.convolve2d(X, _kernel_np(p_true, r), mode="same", boundary="symm")
    y = y + 0.01 * rng.standard_normal(y.shape)
    model = jaxconv.GaussianBlur(radius=r)
    res = jaxconv.fit(model, X, y, optimizer="lm", progress=False)
    fitted = np.array([*np.asarray(res.params.log_diag), *np.asarray(res.params.offdiag)])

    def f(_, *p):  # 'valid' on the same interior the fit's loss sees (border = radius)
        return scipy.signal.fftconvolve(X, _kernel_np(p, r), mode="valid").ravel()

    popt, pcov = scipy.optimize.curve_fit(f, None, y[r:-r, r:-r].ravel(), p0=fitted)
    np.testing.assert_allclose(fitted, popt, rtol=1e-6)
    ours = np.array([*np.asarray(res.uncertainty.stderr.log_diag),
                     *np.asarray(res.uncertainty.stderr.offdiag)])  # fmt: skip
    np.testing.assert_allclose(ours, np.sqrt(np.diag(pcov)), rtol=1e-3)
    u = jaxconv.standard_errors(model, res.params, X, y)
    np.testing.assert_allclose(u.covariance, res.uncertainty.covariance, rtol=1e-6)
    crb = jaxconv.cramer_rao_bound(model, res.params, X, float(u.noise_std))
    np.testing.assert_allclose(crb.covariance, u.covariance, rtol=1e-9)


@pytest.mark.slow
def test_gaussian_blur_spread_and_coverage_match_the_bound():
    rng = np.random.default_rng(2)
    n, s, r = 100, 0.01, 7
    cov = np.array([[1.0, 0.5], [0.5, 1.0]])
    y = scipy.signal.convolve2d(X, _kernel_np(_log_cholesky(cov), r), mode="same", boundary="symm")
    targets = y + s * rng.standard_normal((n, *X.shape))
    model = jaxconv.GaussianBlur(radius=r)
    res = jaxconv.fit_batch(model, np.broadcast_to(X, targets.shape), targets, optimizer="lm",
                            progress=False)  # fmt: skip
    est = np.asarray(res.derived["covariance"]).reshape(n, 4)[:, [0, 1, 3]]
    stderr = np.asarray(res.stderr["covariance"]).reshape(n, 4)[:, [0, 1, 3]]
    crb = jaxconv.cramer_rao_bound(model, model.params_from(cov), X, s)
    bound = np.asarray(crb.derived["covariance"]).ravel()[[0, 1, 3]]
    spread = est.std(0, ddof=1)
    assert np.all(spread / bound < 1.3) and np.all(spread / bound > 0.75)
    covered = np.abs(est - cov.ravel()[[0, 1, 3]]) <= 1.96 * stderr
    assert 0.9 <= covered.mean() <= 0.99


@pytest.mark.parametrize(
    ("noise", "match"),
    [
        (0.0, r"cramer_rao_bound: `noise_std` must be a finite number > 0; got 0.0"),
        (float("nan"), r"cramer_rao_bound: `noise_std` must be a finite number > 0; got nan"),
        ("a", r"cramer_rao_bound: `noise_std` must be a number > 0; got 'a'"),
    ],
)
def test_cramer_rao_bound_errors(noise, match):
    with pytest.raises(ValueError, match=match):
        jaxconv.cramer_rao_bound(jaxconv.FreeKernel((3, 3)), jnp.asarray(SOBEL), X, noise)


def test_standard_errors_errors():
    with pytest.raises(ValueError, match=r"standard_errors: `image` and `target` must have"):
        jaxconv.standard_errors(jaxconv.FreeKernel((3, 3)), jnp.asarray(SOBEL), X, X[1:])
    with pytest.raises(TypeError, match=r"standard_errors: `model` must be a jaxconv model"):
        jaxconv.standard_errors(None, jnp.asarray(SOBEL), X, X)
