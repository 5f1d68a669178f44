"""Levenberg–Marquardt (jaxconv.least_squares) against scipy.optimize.least_squares."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.signal
import scipy.stats

import jaxconv

T = np.linspace(0.0, 3.0, 40)
Y = 2.5 * np.exp(-1.3 * T) + 0.4 * np.cos(3.0 * T) + 0.01 * np.random.default_rng(0).normal(size=40)


def _model(p, t):
    return p[0] * jnp.exp(-p[1] * t) + p[2] * jnp.cos(p[3] * t)


def _residual(p):
    return _model(p, T) - Y


def test_matches_scipy_on_a_nonlinear_curve_fit():
    x0 = np.array([1.0, 1.0, 0.3, 2.8])
    ref = scipy.optimize.least_squares(
        lambda p: np.asarray(_residual(p)), x0, method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14
    )
    sol = jaxconv.least_squares(_residual, jnp.asarray(x0))
    assert bool(sol.success), sol.message
    np.testing.assert_allclose(sol.params, ref.x, rtol=1e-8)
    np.testing.assert_allclose(sol.cost, ref.cost, rtol=1e-8)
    np.testing.assert_allclose(sol.jacobian, ref.jac, rtol=1e-5, atol=1e-7)


def test_pytree_params_and_reverse_mode_agree():
    def residual(p):
        return _residual(jnp.stack([p["a"], p["b"], p["c"][0], p["c"][1]]))

    p0 = {"a": jnp.asarray(1.0), "b": jnp.asarray(1.0), "c": jnp.asarray([0.3, 2.8])}
    fwd = jaxconv.least_squares(residual, p0)
    rev = jaxconv.least_squares(residual, p0, jac="rev")
    assert set(fwd.params) == {"a", "b", "c"}
    flat = [fwd.params["a"], fwd.params["b"], *fwd.params["c"]]
    np.testing.assert_allclose([rev.params["a"], rev.params["b"], *rev.params["c"]], flat)


def test_gaussian_blur_residual_matches_scipy_fftconvolve():
    # The same problem both ways: a 2-D blur with log-Cholesky parameters, scipy's residual
    # built from scipy.stats and scipy.signal.fftconvolve, ours from jaxconv.
    rng = np.random.default_rng(1)
    x = jaxconv.default_image()[:40, :40]
    r = 5
    grid = np.stack(np.mgrid[-r : r + 1, -r : r + 1], -1)

    def kernel_np(p):
        chol = np.array([[np.exp(p[0]), 0.0], [p[2], np.exp(p[1])]])
        k = scipy.stats.multivariate_normal([0, 0], chol @ chol.T).pdf(grid)
        return k / k.sum()

    truth = np.array([0.1, -0.2, 0.4])
    y = scipy.signal.fftconvolve(x, kernel_np(truth), mode="valid")
    y = y + 0.01 * rng.standard_normal(y.shape)

    def res_np(p):
        return (scipy.signal.fftconvolve(x, kernel_np(p), mode="valid") - y).ravel()

    def res_jax(p):
        g = jaxconv.Gaussian(p[:2], p[2:])
        k = g.kernel(radius=r)
        return (jaxconv.convolve(x, k, mode="valid") - y).ravel()

    ref = scipy.optimize.least_squares(res_np, np.zeros(3), xtol=1e-15, ftol=1e-15, gtol=1e-15)
    sol = jaxconv.least_squares(res_jax, jnp.zeros(3))
    # The optimum is flat along one direction: the costs agree to round-off (ours no higher),
    # the parameters to the precision that flatness allows.
    assert float(sol.cost) <= ref.cost * (1 + 1e-12)
    np.testing.assert_allclose(sol.cost, ref.cost, rtol=1e-12)
    np.testing.assert_allclose(sol.params, ref.x, rtol=1e-5)
    assert bool(sol.success)


def test_vmap_matches_a_loop_and_each_problem_stops_on_its_own():
    ys = np.stack([Y, 1.5 * Y, Y[::-1]])

    def solve(y):
        return jaxconv.least_squares(lambda p: _model(p, T) - y, jnp.array([1.0, 1.0, 0.3, 2.8]))

    batched = jax.vmap(solve)(jnp.asarray(ys))
    for i, y in enumerate(ys):
        one = solve(jnp.asarray(y))
        np.testing.assert_allclose(batched.params[i], one.params, rtol=1e-10, atol=1e-12)
        assert int(batched.steps[i]) == int(one.steps)
    assert batched.message.startswith("see `status`")


def test_linear_problem_is_solved_exactly():
    a = np.random.default_rng(2).normal(size=(30, 4))
    b = np.random.default_rng(3).normal(size=30)
    sol = jaxconv.least_squares(lambda p: jnp.asarray(a) @ p - b, jnp.zeros(4))
    np.testing.assert_allclose(sol.params, np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-10)


def test_a_converged_start_costs_one_evaluation():
    # The convergence tests look ahead from the state a step leaves: started at the optimum,
    # the solver stops after evaluating the start, without trying a step.
    a = np.random.default_rng(2).normal(size=(30, 4))
    b = np.random.default_rng(3).normal(size=30)
    best = np.linalg.lstsq(a, b, rcond=None)[0]
    sol = jaxconv.least_squares(lambda p: jnp.asarray(a) @ p - b, jnp.asarray(best))
    assert bool(sol.success) and int(sol.nfev) == 1 and int(sol.steps) == 0
    np.testing.assert_allclose(sol.params, best, rtol=1e-12)


def test_exact_fit_stops_and_step_cap_is_reported():
    sol = jaxconv.least_squares(lambda p: p - jnp.array([1.0, 2.0]), jnp.zeros(2))
    assert bool(sol.success)
    np.testing.assert_allclose(sol.params, [1.0, 2.0], atol=1e-12)
    capped = jaxconv.least_squares(_residual, jnp.array([1.0, 1.0, 0.3, 2.8]), steps=1)
    assert capped.message == "max_steps" and int(capped.steps) == 1 and not bool(capped.success)


def test_status_is_the_enum_fits_report_and_reason_says_which_test_stopped():
    from jaxconv._fit.lstsq import Reason, Status

    a = np.random.default_rng(2).normal(size=(30, 4))
    best = np.linalg.lstsq(a, np.ones(30), rcond=None)[0]
    sol = jaxconv.least_squares(lambda p: jnp.asarray(a) @ p - 1.0, jnp.asarray(best))
    assert int(sol.status) == Status.CONVERGED and Status(int(sol.status)).label == "converged"
    assert int(sol.reason) == Reason.GTOL  # started at the optimum: the gradient test
    assert sol.message == "converged (gtol: gradient orthogonal to the residual)"
    capped = jaxconv.least_squares(_residual, jnp.array([1.0, 1.0, 0.3, 2.8]), steps=1)
    assert int(capped.status) == Status.MAX_STEPS and int(capped.reason) == Reason.NONE
    bad = jaxconv.least_squares(lambda p: jnp.log(p), jnp.array([-1.0]))
    assert Status(int(bad.status)).label == "non-finite"


def test_non_finite_start_is_reported():
    sol = jaxconv.least_squares(lambda p: jnp.log(p), jnp.array([-1.0]))
    assert sol.message.startswith("non-finite") and not bool(sol.success)
    np.testing.assert_array_equal(np.asarray(sol.params), [-1.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ftol": -1.0}, r"least_squares: `ftol` must be a number >= 0; got -1.0"),
        ({"damping": "x"}, r"least_squares: `damping` must be a number >= 0"),
        ({"steps": 0}, r"least_squares: `steps` must be a positive int; got 0"),
        ({"jac": "central"}, r"least_squares: `jac` must be 'fwd' or 'rev'; got 'central'"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxconv.least_squares(_residual, jnp.ones(4), **kwargs)


def test_integer_params_are_rejected():
    with pytest.raises(TypeError, match=r"least_squares: `params` must hold float arrays"):
        jaxconv.least_squares(lambda p: p, jnp.array([1, 2]))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_spd_solve_matches_numpy(n):
    # n <= 4: the unrolled Cholesky; larger: eigh. Badly scaled, to exercise the equilibration.
    from jaxconv._fit.lstsq import spd_solve

    rng = np.random.default_rng(n)
    m = rng.standard_normal((n, n))
    scale = np.logspace(-3, 3, n)
    a = scale[:, None] * (m @ m.T + 0.1 * np.eye(n)) * scale[None, :]
    b = rng.standard_normal(n)
    np.testing.assert_allclose(spd_solve(jnp.asarray(a), jnp.asarray(b)), np.linalg.solve(a, b),
                               rtol=1e-9)  # fmt: skip


@pytest.mark.parametrize("n", [3, 20])
def test_normal_equations_match_numpy(n):
    from jaxconv._fit.lstsq import normal_equations

    rng = np.random.default_rng(n)
    jt, r = rng.standard_normal((n, 50)), rng.standard_normal(50)
    jtj, g, rr = normal_equations(jnp.asarray(jt), jnp.asarray(r))
    np.testing.assert_allclose(jtj, jt @ jt.T, rtol=1e-12)
    np.testing.assert_allclose(g, jt @ r, rtol=1e-12)
    np.testing.assert_allclose(rr, r @ r, rtol=1e-12)


def test_max_steps_is_a_deprecated_name_of_steps():
    x0 = jnp.array([1.0, 1.0, 0.3, 2.8])
    with pytest.warns(DeprecationWarning, match=r"least_squares: `max_steps` is deprecated"):
        old = jaxconv.least_squares(_residual, x0, max_steps=2)
    new = jaxconv.least_squares(_residual, x0, steps=2)
    assert int(old.steps) == int(new.steps) == 2
    np.testing.assert_array_equal(old.params, new.params)
