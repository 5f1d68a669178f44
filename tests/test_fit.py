"""jaxconv.fit and friends: recovering known filters from targets made by scipy."""

import dataclasses
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.ndimage as ndi
import scipy.signal
import scipy.stats
from jax.test_util import check_grads

import jaxconv
from jaxconv._fit import solvers as _solvers
from jaxconv._fit import step as _fit_step
from jaxconv._fit.forward import convolve_circular
from jaxconv._fit.spectral import _median

X = np.asarray(jaxconv.default_image())[:64, :64]
SEED_COV = np.array([[1.0, 0.5], [0.5, 1.0]])


def sampled_kernel(cov, radius, mean=(0.0, 0.0)):
    """A multivariate normal sampled at the offsets within `radius` (one per axis), normalised."""
    ry, rx = (radius, radius) if np.ndim(radius) == 0 else radius
    grid = np.stack(np.mgrid[-ry : ry + 1, -rx : rx + 1], -1)
    k = scipy.stats.multivariate_normal(mean, cov).pdf(grid)
    return k / k.sum()


def scipy_blur(x, cov, radius, mean=(0.0, 0.0), gain=1.0):
    """The seed's recipe: a sampled multivariate normal, normalised, scipy.signal.convolve2d."""
    k = sampled_kernel(cov, radius, mean)
    return gain * scipy.signal.convolve2d(x, k, mode="same", boundary="symm")


def rel_err(a, b):
    return np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)


# --- Gaussian blur -------------------------------------------------------------------------------
def test_fit_gaussian_recovers_the_seed_covariance_with_lm():
    res = jaxconv.fit_gaussian(X, scipy_blur(X, SEED_COV, 8), progress=False)
    assert res.status == "converged" and res.success
    assert rel_err(res.covariance, SEED_COV) <= 1e-6
    # Known read-outs of [[1, .5], [.5, 1]]: σ² = 1.5 and 0.5 along the diagonals, θ = 45°.
    np.testing.assert_allclose(res.sigmas, np.sqrt([1.5, 0.5]), rtol=1e-6)
    np.testing.assert_allclose(res.angle, np.pi / 4, rtol=1e-6)
    assert res.discretization == "sample" and res.truncation <= 1e-8
    assert res.border == res.radius
    assert res.history.shape == (res.steps + 1,) and res.history[-1] == pytest.approx(res.loss)
    assert res.history[-1] < 1e-20 < res.history[0]
    assert set(res.stderr) == {"covariance", "sigmas", "angle"}
    assert res.steps < 20 and res.compile_time <= res.wall_time
    assert "covariance" in repr(res)


def test_fit_gaussian_with_adam_reaches_1e4_in_300_steps():
    res = jaxconv.fit_gaussian(X, scipy_blur(X, SEED_COV, 8), optimizer="adam", progress=False)
    assert res.steps <= 300 and res.optimizer.startswith("adam")
    assert rel_err(res.covariance, SEED_COV) <= 1e-4


@pytest.mark.slow
def test_fit_gaussian_grows_the_radius_when_the_blur_outgrows_it():
    cov = np.array([[6.0, -1.5], [-1.5, 3.0]])
    res = jaxconv.fit_gaussian(X, scipy_blur(X, cov, 18), init=0.3 * np.eye(2), progress=False)
    assert res.rounds >= 2 and res.truncation <= 1e-8
    assert rel_err(res.covariance, cov) <= 1e-6
    assert res.history.shape == (res.steps + 1,)


@pytest.mark.slow
def test_fit_gaussian_with_gain_and_sub_pixel_shift():
    y = scipy_blur(X, SEED_COV, 8, mean=(0.3, -0.2), gain=0.8)
    res = jaxconv.fit_gaussian(X, y, shift=True, gain=True, progress=False)
    assert rel_err(res.covariance, SEED_COV) <= 1e-6
    np.testing.assert_allclose(res.derived["mean"], [0.3, -0.2], rtol=1e-6)
    np.testing.assert_allclose(res.derived["gain"], 0.8, rtol=1e-6)
    assert {"mean", "gain"} <= set(res.stderr)


@pytest.mark.slow
def test_fit_gaussian_matches_scipy_ndimage_with_its_discretization():
    y = ndi.gaussian_filter(X, (1.2, 0.9), truncate=8.0)
    res = jaxconv.fit_gaussian(X, y, discretization="scipy", progress=False)
    np.testing.assert_allclose(res.covariance, np.diag([1.44, 0.81]), rtol=1e-6, atol=1e-9)
    assert res.discretization == "scipy"


def test_fit_gaussian_tiles_maps_a_spatially_varying_blur():
    x = np.asarray(jaxconv.default_image())[:128, :128]
    cov_a, cov_b = SEED_COV, np.array([[2.0, -0.6], [-0.6, 1.2]])
    y = np.concatenate([scipy_blur(x[:, :64], cov_a, 12), scipy_blur(x[:, 64:], cov_b, 12)], 1)
    res = jaxconv.fit_gaussian_tiles(x, y, tile=64, progress=False)
    assert res.covariance.shape == (2, 2, 2, 2) and res.sigmas.shape == (2, 2, 2)
    assert res.stderr["sigmas"].shape == (2, 2, 2) and np.shape(res.loss) == (2, 2)
    assert (res.status == "converged").all()
    for i in range(2):
        assert rel_err(res.covariance[i, 0], cov_a) <= 1e-6
        assert rel_err(res.covariance[i, 1], cov_b) <= 1e-6
    np.testing.assert_array_equal(res.centers[1, 0], [95.5, 31.5])


def test_fit_gaussian_takes_the_loss_chunk_and_key_of_every_fit():
    # fit_gaussian shares fit's options: loss="mae" is the loss it minimises (its value checked
    # against numpy at the final covariance), and `chunk` sets when the callback can stop it.
    y = scipy_blur(X, SEED_COV, 8)
    res = jaxconv.fit_gaussian(X, y, optimizer="adam", loss="mae", steps=40,
                               key=jax.random.PRNGKey(1), progress=False)  # fmt: skip
    (ry, rx), inner = res.radius, (slice(res.radius[0], -res.radius[0]),
                                   slice(res.radius[1], -res.radius[1]))  # fmt: skip
    pred = scipy_blur(X, res.covariance, (ry, rx))[inner]
    assert res.border == res.radius
    assert res.loss == pytest.approx(np.mean(np.abs(pred - y[inner])), rel=1e-9)
    assert rel_err(res.covariance, SEED_COV) <= 0.05
    seen = []

    def stop(step, params, loss):
        seen.append(step)
        return True

    stopped = jaxconv.fit_gaussian(X, y, optimizer="adam", chunk=3, callback=stop, progress=False)
    assert stopped.status == "callback" and stopped.steps == 3 and seen == [0]
    with pytest.raises(NotImplementedError, match=r"fit_gaussian: optimizer='lm' minimises a "
                       r"sum of squares, so it needs loss='mse'; got loss='mae'"):  # fmt: skip
        jaxconv.fit_gaussian(X, y, loss="mae")


def test_fit_gaussian_tiles_calls_back_with_every_tile():
    x = np.asarray(jaxconv.default_image())[:128, :128]
    y = scipy_blur(x, SEED_COV, 12)
    seen = []
    res = jaxconv.fit_gaussian_tiles(
        x, y, tile=64, progress=False,
        callback=lambda step, p, loss: seen.append((step, p.log_diag.shape, np.asarray(loss))),
    )  # fmt: skip
    assert [s[0] for s in seen] == list(range(len(seen))) and len(seen) >= 3
    assert {s[1] for s in seen} == {(4, 2)}
    history = res.history.reshape(4, -1)  # tiles in row-major order, NaN once a tile stopped
    np.testing.assert_array_equal(np.stack([s[2] for s in seen], 1), history[:, : len(seen)])
    assert (res.status == "converged").all()
    stopped = jaxconv.fit_gaussian_tiles(x, y, tile=64, chunk=1, progress=False,
                                         callback=lambda step, p, loss: step == 1)  # fmt: skip
    assert (stopped.status == "callback").all() and (stopped.steps == 2).all()


def test_loss_gradient_of_a_gaussian_blur_matches_finite_differences():
    # The gradient Adam follows, through the kernel and the convolution, against numerical
    # differences (jax.test_util.check_grads), in float64.
    x, y = X[:24, :24], scipy_blur(X[:24, :24], SEED_COV, 4)
    model = jaxconv.GaussianBlur(radius=4, shift=True, gain=True)
    problem = _fit_step.Problem(model, (4, 4), "symm", "auto", "mse", x, y)
    p = model.params_from(np.array([[1.2, 0.3], [0.3, 0.8]]), gain=0.9, mean=[0.1, -0.2])
    loss = jax.jit(problem.loss)
    check_grads(loss, (p,), order=1, modes=("rev",))


@pytest.mark.parametrize("discretization", ["sample", "scipy"])
def test_a_gaussian_kernel_larger_than_its_radius_is_the_kernel_of_that_radius(discretization):
    # A fit's kernel has a static size per image shape; taps beyond the (traced) radius are zero
    # and the rest renormalised: the kernel of that radius, as scipy builds it.
    cov = np.array([[1.1, 0.3], [0.3, 0.7]]) if discretization == "sample" else np.diag([1.1, 0.7])
    model = jaxconv.GaussianBlur(discretization=discretization, radius=(3, 2), size=(9, 7))
    k = jax.jit(lambda r, p: model.bind(r).kernel(p))(np.array([3, 2]), model.params_from(cov))
    assert k.shape == (19, 15)
    if discretization == "sample":
        grid = np.stack(np.mgrid[-3:4, -2:3], -1)
        ref = scipy.stats.multivariate_normal([0.0, 0.0], cov).pdf(grid)
    else:  # scipy.ndimage's taps: the impulse response of gaussian_filter1d, per axis
        taps = [ndi.gaussian_filter1d(np.eye(1, 2 * r + 1, r)[0], np.sqrt(v), radius=r)
                for r, v in ((3, 1.1), (2, 0.7))]  # fmt: skip
        ref = np.outer(*taps)
    np.testing.assert_allclose(k[6:13, 5:10], ref / ref.sum(), rtol=1e-12, atol=1e-15)
    outside = np.asarray(k).copy()
    outside[6:13, 5:10] = 0.0
    assert not outside.any()


def test_convolve_circular_matches_scipy_wrap():
    x = X[:20, :17]
    k = np.random.default_rng(0).random((2, 7, 9))
    out = convolve_circular(x, k)
    for i in range(2):
        np.testing.assert_allclose(out[i], ndi.convolve(x, k[i], mode="wrap"), rtol=1e-12)


# --- free-form kernels and edge filters ---------------------------------------------------------
def test_free_3x3_recovers_sobel_and_prewitt_from_scipy_edge_maps():
    targets = [ndi.sobel(X, 0), ndi.sobel(X, 1), ndi.prewitt(X, 0), ndi.prewitt(X, 1)]
    deriv = np.array([1.0, 0.0, -1.0])  # ndimage correlates with [-1, 0, 1]: flipped to convolve
    expected = [
        np.outer(deriv, [1, 2, 1]),
        np.outer([1, 2, 1], deriv),
        np.outer(deriv, [1, 1, 1]),
        np.outer([1, 1, 1], deriv),
    ]
    res = jaxconv.fit_batch(
        jaxconv.FreeKernel((3, 3)), np.stack([X] * 4), np.stack(targets), optimizer="lm",
        progress=False,
    )  # fmt: skip
    assert res.params.shape == (4, 3, 3) and res.status.tolist() == ["converged"] * 4
    np.testing.assert_allclose(res.params, expected, atol=1e-8)
    assert res.history.shape[0] == 4 and res.stderr["kernel"].shape == (4, 3, 3)


def test_fit_batch_in_groups_equals_one_vmap(monkeypatch):
    # 11 pairs of 32² float64 in groups of 4 (8 KiB each, 32 KiB per group): 4 + 4 + 3 pairs.
    from jaxconv._fit import step as _fit_step

    rng = np.random.default_rng(3)
    covs = [np.diag(rng.uniform(0.7, 1.6, 2) ** 2) for _ in range(11)]
    xs = np.stack([X[i : i + 32, 2 * i : 2 * i + 32] for i in range(11)])
    clean = np.stack([scipy_blur(x, c, 5) for x, c in zip(xs, covs, strict=True)])
    noisy = clean + 1e-3 * rng.standard_normal(clean.shape)  # standard errors above round-off
    model = jaxconv.GaussianBlur(radius=5)
    runs = {}
    for group_bytes, group in ((32 * 1024, 4), (1 << 40, 0)):
        monkeypatch.setattr(_fit_step, "_GROUP_BYTES", group_bytes)
        assert _fit_step.pair_group(jnp.asarray(xs)) == group
        for name, ys in (("clean", clean), ("noisy", noisy)):
            runs[name, group] = jaxconv.fit_batch(model, xs, ys, optimizer="lm", progress=False)
    grouped, whole = runs["clean", 4], runs["clean", 0]
    np.testing.assert_array_equal(grouped.steps, whole.steps)
    # Equal to round-off (the off-diagonal entries are ~1e-14 around a true 0).
    np.testing.assert_allclose(grouped.derived["covariance"], whole.derived["covariance"],
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(grouped.history, whole.history, rtol=1e-8, atol=1e-20)
    errors = [rel_err(c, t) for c, t in zip(grouped.derived["covariance"], covs, strict=True)]
    assert max(errors) <= 1e-8
    # With noise, round-off can move a stop by one step; the answers agree far below the noise.
    grouped, whole = runs["noisy", 4], runs["noisy", 0]
    assert np.max(np.abs(grouped.steps - whole.steps)) <= 1
    np.testing.assert_allclose(grouped.derived["covariance"], whole.derived["covariance"],
                               rtol=1e-6, atol=1e-7)  # fmt: skip
    assert np.max(np.abs(grouped.derived["covariance"] - whole.derived["covariance"])) <= (
        1e-3 * np.min(grouped.stderr["covariance"])
    )
    np.testing.assert_allclose(grouped.stderr["covariance"], whole.stderr["covariance"],
                               rtol=1e-6)  # fmt: skip
    assert grouped.status.tolist() == ["converged"] * 11


def test_gaussian_edge_recovers_scale_and_orientation():
    sigma, theta = 1.3, 0.6
    y = np.cos(theta) * ndi.gaussian_filter(X, sigma, order=(0, 1)) + np.sin(
        theta
    ) * ndi.gaussian_filter(X, sigma, order=(1, 0))
    model = jaxconv.GaussianEdge(sigma=1.0, radius=int(4 * sigma + 0.5))
    res = jaxconv.fit(model, X, y, optimizer="lm", progress=False)
    np.testing.assert_allclose(res.derived["sigma"], sigma, rtol=1e-8)
    np.testing.assert_allclose(res.derived["theta"], theta, rtol=1e-8)
    np.testing.assert_allclose(res.derived["gain"], 1.0, rtol=1e-8)


def test_user_kernel_and_prediction_models():
    r = 6
    ii, jj = np.mgrid[-r : r + 1, -r : r + 1]

    def kernel_fn(p):
        k = jnp.exp(-(ii**2 + jj**2) / (2.0 * p["sigma"] ** 2))
        return k / k.sum()

    k_true = np.exp(-(ii**2 + jj**2) / (2.0 * 1.7**2))
    y = scipy.signal.convolve2d(X, k_true / k_true.sum(), mode="same", boundary="symm")
    model = jaxconv.KernelModel(kernel_fn, {"sigma": jnp.asarray(1.0)})
    res = jaxconv.fit(model, X, y, optimizer="lm", progress=False)
    np.testing.assert_allclose(res.params["sigma"], 1.7, rtol=1e-8)
    assert res.border == (r, r)

    pred = jaxconv.PredictionModel(lambda p, x: p[0] * x**2 + p[1], jnp.array([1.0, 0.0]))
    res = jaxconv.fit(pred, X, 0.7 * X**2 - 0.2, optimizer="lm", progress=False)
    np.testing.assert_allclose(res.params, [0.7, -0.2], rtol=1e-10)
    assert res.border == (0, 0)


@dataclasses.dataclass(frozen=True)
class Biweight(jaxconv.Model):
    """A new kernel family, written here as a user would: (1 - r²/w²)₊², normalised.

    Isotropic, of width w (its support: the kernel is exact at any radius >= w). The radius is
    chosen from the start (1.25 w) and grows, at most doubling, while the fitted w exceeds it.
    """

    width: float = 1.0  # the start
    radius: int | None = None

    def start(self, dtype):
        return np.asarray(math.log(self.width), dtype)

    def resolve(self, params, shape=None):
        if self.radius is not None:
            return self
        return dataclasses.replace(self, radius=math.ceil(1.25 * math.exp(float(params))))

    def grow(self, params, shape):
        w = math.exp(float(params))
        if math.ceil(w) <= self.radius:
            return None
        return dataclasses.replace(self, radius=min(math.ceil(1.25 * w), 2 * self.radius))

    def kernel(self, log_width):
        i = np.arange(-self.radius, self.radius + 1) ** 2
        k = jnp.maximum(0.0, 1.0 - np.add.outer(i, i) / jnp.exp(2.0 * log_width)) ** 2
        return k / jnp.sum(k)

    def derived(self, log_width):
        return {"width": jnp.exp(log_width)}


def test_a_kernel_family_defined_outside_jaxconv_grows_its_radius_through_fit():
    width = 5.3
    i = np.arange(-8, 9) ** 2
    k = np.maximum(0.0, 1.0 - np.add.outer(i, i) / width**2) ** 2
    y = scipy.signal.convolve2d(X, k / k.sum(), mode="same", boundary="symm")
    res = jaxconv.fit(Biweight(width=1.5), X, y, optimizer="lm", progress=False)
    # Radius 2 (from the start), then larger until it holds w: there the fit is exact.
    r = res.model.radius
    assert res.rounds >= 2 and math.ceil(width) <= r <= 8 and res.border == (r, r)
    assert res.status == "converged" and res.message.startswith("converged")
    np.testing.assert_allclose(res.derived["width"], width, rtol=1e-9)
    assert res.history.shape == (res.steps + 1,) and res.history[-1] < 1e-25
    assert set(res.stderr) == {"width"}
    one = jaxconv.fit(Biweight(width=1.5), X, y, optimizer="lm", max_rounds=1, progress=False)
    assert one.rounds == 1 and one.model.radius == 2 and one.derived["width"] > 2.0


def test_lbfgs_from_optax_fits_a_linear_model():
    y = ndi.uniform_filter(X, 3)
    res = jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, y, optimizer=optax.lbfgs(), steps=100,
                      progress=False)  # fmt: skip
    np.testing.assert_allclose(res.params, np.full((3, 3), 1 / 9), atol=1e-6)


# --- the loop: caps, callbacks, progress, determinism, failures ----------------------------------
ADAM_OPTIONS = dict(optimizer=optax.adam(0.05), steps=7, chunk=2)


def test_step_cap_history_and_callback_on_every_step():
    calls = []
    res = jaxconv.fit(
        jaxconv.FreeKernel((3, 3)), X, ndi.sobel(X), progress=False,
        callback=lambda step, params, loss: calls.append((step, params.shape, loss)),
        **ADAM_OPTIONS,
    )  # fmt: skip
    assert res.status == "max_steps" and res.steps == 7 and "steps=7" in res.message
    assert [c[0] for c in calls] == list(range(7)) and calls[0][1] == (3, 3)
    np.testing.assert_allclose([c[2] for c in calls], res.history[:7])
    assert res.history.shape == (8,) and res.params_history.shape == (8, 3, 3)
    np.testing.assert_array_equal(res.params_history[0], np.zeros((3, 3)))
    np.testing.assert_array_equal(res.params_history[-1], res.params)
    assert res.history[-1] < res.history[0]


def test_callback_can_stop_the_fit_at_the_end_of_its_chunk():
    res = jaxconv.fit(
        jaxconv.FreeKernel((3, 3)), X, ndi.sobel(X), progress=False,
        callback=lambda step, params, loss: step == 2, **ADAM_OPTIONS,
    )  # fmt: skip
    assert res.status == "callback" and res.steps == 4 and res.message == "stopped by the callback."


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_shows_loss_on_fits_longer_than_a_second(capsys, monkeypatch, terminal):
    def slow(step, params, loss):
        if step == 0:
            time.sleep(1.1)  # tqdm shows its bar once a fit has run for a second

    # A bar on a terminal; none (no escape codes) when stderr is a file or a pipe.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, ndi.sobel(X), callback=slow, **ADAM_OPTIONS)
    err = capsys.readouterr().err
    assert ("fit" in err and "loss=" in err and "step" in err) == terminal


@pytest.mark.parametrize("steps", [7, 40, 300])
def test_default_adam_schedule_equals_optax_warmup_cosine(steps):
    # The default Adam's schedule takes the step cap traced (a new `steps` compiles nothing);
    # it must be optax's warmup_cosine_decay_schedule, whose lengths are Python ints.
    ref = optax.warmup_cosine_decay_schedule(0.0, 0.05, steps // 20, steps, end_value=0.05 * 1e-3)
    counts = np.arange(steps + 5, dtype=np.int32)
    ours = _solvers.WarmupCosineAdam(0.05).schedule(counts, jnp.int32(steps))
    # optax evaluates parts of it in float32 (int32 counts over int lengths); ours in float64.
    np.testing.assert_allclose(ours, [ref(c) for c in counts], rtol=5e-7, atol=0)


def test_deterministic_given_the_key():
    model = jaxconv.FreeKernel((3, 3), init_kernel="random")

    def run(seed):
        key = jax.random.PRNGKey(seed)
        return jaxconv.fit(model, X, ndi.sobel(X), key=key, progress=False, **ADAM_OPTIONS)

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.history, b.history)
    assert not np.allclose(a.params_history[0], c.params_history[0])


def test_early_stopping_on_tol():
    # With noise the loss levels off at the noise floor, so its relative change falls below tol.
    y = ndi.uniform_filter(X, 3) + 0.01 * np.random.default_rng(0).standard_normal(X.shape)
    res = jaxconv.fit(jaxconv.FreeKernel((3, 3)), X, y, optimizer=optax.adam(0.01), steps=2000,
                      tol=1e-3, progress=False)  # fmt: skip
    assert res.status == "converged" and res.steps < 2000 and res.success


def test_non_finite_loss_stops_and_returns_the_best_params():
    # sqrt(p - 0.5) is NaN below 0.5; plain gradient descent on a zero target walks into it.
    model = jaxconv.KernelModel(lambda p: jnp.sqrt(p - 0.5).reshape(1, 1), jnp.asarray(1.0))
    lr = 0.15 / np.mean(X**2)  # steps of 0.15 in p: 1, 0.85, 0.7, 0.55, then NaN at 0.4
    res = jaxconv.fit(model, X, np.zeros_like(X), optimizer=optax.sgd(lr), steps=50,
                      progress=False)  # fmt: skip
    assert res.status == "non-finite" and "best params" in res.message
    np.testing.assert_allclose(res.params, 0.55, rtol=1e-9)
    assert res.steps == 4 and np.isfinite(res.loss)  # four updates, NaN at the fifth point
    assert res.loss == pytest.approx(res.best_loss)


def test_options_object_and_keywords_are_one_set_of_options():
    model, y = jaxconv.FreeKernel((3, 3)), ndi.sobel(X)
    base = jaxconv.FitOptions(**ADAM_OPTIONS, progress=False)
    a = jaxconv.fit(model, X, y, options=base)
    b = jaxconv.fit(model, X, y, progress=False, **ADAM_OPTIONS)
    np.testing.assert_array_equal(a.history, b.history)
    c = jaxconv.fit(model, X, y, options=base, steps=3)  # the keyword wins over `options`
    assert a.steps == 7 and c.steps == 3 and base.steps == 7
    np.testing.assert_array_equal(c.history[:3], a.history[:3])
    assert jaxconv.FitOptions(optimizer="LM", boundary=["symm", "wrap"]).optimizer == "lm"


# --- errors --------------------------------------------------------------------------------------
FK = jaxconv.FreeKernel((3, 3))
S = np.ones((16, 16))


class _NoKernel(jaxconv.Model):
    def start(self, dtype):
        return np.ones((), dtype)


class _NoPredict(_NoKernel):
    is_kernel = False


class _NoStart(jaxconv.Model):
    def kernel(self, params):
        return params


def _bad_prediction():
    return jaxconv.PredictionModel(lambda p, x: p * x[1:], jnp.asarray(1.0))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: jaxconv.fit(FK, S, S[1:]), ValueError,
         r"fit: `image` and `target` must have the same shape; got \(16, 16\) and \(15, 16\)"),
        (lambda: jaxconv.fit(FK, S, np.where(S > 0, np.nan, 0)), ValueError,
         r"fit: `target` must be finite; got 256 non-finite values"),
        (lambda: jaxconv.fit(FK, np.inf * S, S), ValueError, r"fit: `image` must be finite"),
        (lambda: jaxconv.fit(FK, 1.0, 1.0), ValueError,
         r"fit: `image` must be a non-empty array; got shape \(\)"),
        (lambda: jaxconv.fit(FK, S.astype(str), S), TypeError,
         r"fit: `image` must have a numeric dtype"),
        (lambda: jaxconv.fit(FK, S + 1j, S), TypeError, r"fit: `image` must be real"),
        (lambda: jaxconv.fit(jaxconv.FreeKernel((9, 9)), S[:5, :5], S[:5, :5]), ValueError,
         r"fit: the kernel of `model` \(shape \(9, 9\)\) must not be larger than `image` "
         r"\(shape \(5, 5\)\)"),
        (lambda: jaxconv.fit(jaxconv.KernelModel(lambda p: p * jnp.ones(3), 1.0), S, S),
         ValueError, r"fit: `model` must return a kernel with 2 axes like `image`; got shape"),
        (lambda: jaxconv.fit(_bad_prediction(), S, S), ValueError,
         r"fit: `model` must return a prediction of shape \(16, 16\) like `image`; "
         r"got \(15, 16\)"),
        (lambda: jaxconv.fit("gaussian", S, S), TypeError, r"fit: `model` must be a jaxconv"),
        (lambda: jaxconv.fit(FK, S, S, optimizer="sgd"), ValueError,
         r"fit: `optimizer` must be an optax GradientTransformation, 'adam', 'lbfgs' or 'lm'; "
         r"got 'sgd'"),
        (lambda: jaxconv.fit(FK, S, S, optimizer=3), TypeError, r"fit: `optimizer` must be"),
        (lambda: jaxconv.fit(FK, S, S, loss="huber"), ValueError,
         r"fit: `loss` must be one of \('mse', 'mae'\) or a callable; got 'huber'"),
        (lambda: jaxconv.fit(FK, S, S, optimizer="lm", loss="mae"), NotImplementedError,
         r"fit: optimizer='lm' minimises a sum of squares, so it needs loss='mse'"),
        (lambda: jaxconv.fit(FK, S, S, stpes=3), TypeError,
         r"fit: `stpes` must be a fit option \(a field of jaxconv.FitOptions: optimizer, steps, "
         r"tol, .*, max_rounds\); got stpes=3"),
        (lambda: jaxconv.fit(FK, S, S, options={"steps": 3}), TypeError,
         r"fit: `options` must be a jaxconv.FitOptions or None; got dict"),
        (lambda: jaxconv.FitOptions(steps=0), ValueError,
         r"FitOptions: `steps` must be a positive int; got 0"),
        (lambda: jaxconv.fit_gaussian_tiles(S, S, tile=8, max_rounds=0), ValueError,
         r"fit_gaussian_tiles: `max_rounds` must be a positive int; got 0"),
        (lambda: jaxconv.fit(FK, S, S, method="magic"), ValueError,
         r"fit: `method` must be one of \('auto', 'direct', 'shift', 'separable', 'fft', 'os'\); "
         r"got 'magic'"),
        (lambda: jaxconv.fit(FK, S, S, boundary="nope"), ValueError,
         r"fit: `boundary` must be one of \[.*\] or one per axis; got 'nope'"),
        (lambda: jaxconv.fit(FK, S, S, boundary=("symm",) * 3), ValueError,
         r"fit: `boundary` must be one name or one per convolved axis \(2\)"),
        (lambda: jaxconv.fit(FK, S, S, key=3), TypeError,
         r"fit: `key` must be a jax.random key or None; got int"),
        (lambda: jaxconv.fit(FK, S, S, progress="yes"), TypeError,
         r"fit: `progress` must be True or False; got 'yes'"),
        (lambda: jaxconv.fit(FK, S, S, checkpoint=3), TypeError,
         r"fit: `checkpoint` must be a path or None; got int"),
        (lambda: jaxconv.fit_gaussian(S, S, key="k"), TypeError,
         r"fit_gaussian: `key` must be a jax.random key or None; got str"),
        (lambda: jaxconv.fit(jaxconv.KernelModel(lambda p: p * jnp.ones((3, 3)), jnp.asarray(1.0),
                                                 learning_rate=-1.0), S, S), ValueError,
         r"fit: `learning_rate` must be a number > 0; got -1.0"),
        (lambda: jaxconv.fit(_NoKernel(), S, S), NotImplementedError,
         r"_NoKernel: a model with is_kernel=True must define `kernel\(params\)`"),
        (lambda: jaxconv.fit(_NoPredict(), S, S), NotImplementedError,
         r"_NoPredict: a model with is_kernel=False must define `predict\(params, image\)`"),
        (lambda: jaxconv.fit(_NoStart(), S, S), NotImplementedError,
         r"_NoStart: a model must define `start\(dtype\)` or `init\(image, target, key\)`; "
         r"got neither"),
        (lambda: jaxconv.fit(FK, S, S, steps=0), ValueError,
         r"fit: `steps` must be a positive int; got 0"),
        (lambda: jaxconv.fit(FK, S, S, chunk=1.5), ValueError, r"fit: `chunk` must be"),
        (lambda: jaxconv.fit(FK, S, S, checkpoint_every=0), ValueError,
         r"fit: `checkpoint_every` must be a positive int"),
        (lambda: jaxconv.fit(FK, S, S, tol=-1.0), ValueError,
         r"fit: `tol` must be a number >= 0; got -1.0"),
        (lambda: jaxconv.fit(FK, S, S, learning_rate=0), ValueError,
         r"fit: `learning_rate` must be a number > 0; got 0"),
        (lambda: jaxconv.fit(FK, S, S, callback=3), TypeError,
         r"fit: `callback` must be callable or None"),
        (lambda: jaxconv.fit(FK, S, S, border=8), ValueError,
         r"fit: `border` \(8, 8\) leaves no pixels of `image` \(shape \(16, 16\)\)"),
        (lambda: jaxconv.fit(FK, S, S, border=(1, -1)), ValueError,
         r"fit: `border` must be a non-negative int or one per axis \(2\); got \(1, -1\)"),
        (lambda: jaxconv.fit(FK, S, S, params=jnp.zeros((3, 3), int)), TypeError,
         r"fit: `params` must be a non-empty pytree of float arrays"),
        (lambda: jaxconv.fit_batch(FK, S[None], S[None], params=jnp.zeros((3, 3, 3))),
         ValueError, r"fit_batch: every leaf of `params` must have the batch size 1"),
        (lambda: jaxconv.fit_batch(FK, S[None], S[None, 1:]), ValueError,
         r"fit_batch: `image` and `target` must have the same shape"),
        (lambda: jaxconv.fit_batch(FK, S[0], S[0]), ValueError,
         r"fit_batch: `image` must be a non-empty batch \(B, ...\); got shape \(16,\)"),
        (lambda: jaxconv.fit_gaussian(S, S, init=100 * np.eye(2)), ValueError,
         r"fit_gaussian: the blur needs a kernel of radius \(\d+, \d+\) .* does not fit in "
         r"`image` of shape \(16, 16\)"),
        (lambda: jaxconv.fit_gaussian_tiles(S, S, tile=32), ValueError,
         r"fit_gaussian_tiles: `tile` \(32, 32\) must fit in `image` of shape \(16, 16\)"),
        (lambda: jaxconv.fit_gaussian_tiles(S, S, tile=0), ValueError,
         r"fit_gaussian_tiles: `tile` must be a positive int or one per axis; got 0"),
        (lambda: jaxconv.GaussianBlur(discretization="box"), ValueError,
         r"GaussianBlur: `discretization` must be one of \('sample', 'integrate', 'discrete', "
         r"'scipy'\); got 'box'"),
        (lambda: jaxconv.GaussianBlur(shift=True, discretization="scipy"), NotImplementedError,
         r"GaussianBlur: discretization='scipy' has no shift"),
        (lambda: jaxconv.GaussianBlur(radius=(1, 2, 3)), ValueError,
         r"GaussianBlur: `radius` must be a non-negative int or one per axis; got \(1, 2, 3\)"),
        (lambda: jaxconv.GaussianBlur(radius=3, size=-1), ValueError,
         r"GaussianBlur: `size` must be a non-negative int or one per axis; got -1"),
        (lambda: jaxconv.GaussianBlur(radius=(3, 5), size=4), ValueError,
         r"GaussianBlur: `size` must be at least `radius` \(3, 5\); got \(4, 4\)"),
        (lambda: jaxconv.GaussianBlur([[1.0, 2.0], [2.0, 1.0]]), ValueError,
         r"Gaussian.from_covariance: `cov` must be positive definite"),
        (lambda: jaxconv.FreeKernel((3, 0)), ValueError,
         r"FreeKernel: `shape` must hold positive ints; got \(3, 0\)"),
        (lambda: jaxconv.FreeKernel((3, 3), init_kernel=np.ones(3)), ValueError,
         r"FreeKernel: `init_kernel` must have shape \(3, 3\); got \(3,\)"),
        (lambda: jaxconv.FreeKernel((3, 3), init_kernel="ones"), ValueError,
         r"FreeKernel: `init_kernel` must be an array, 'random' or None; got 'ones'"),
        (lambda: jaxconv.GaussianEdge(sigma=0.0), ValueError,
         r"GaussianEdge: `sigma` must be > 0; got 0.0"),
        (lambda: jaxconv.GaussianEdge(discretization="x"), ValueError,
         r"GaussianEdge: `discretization` must be one of"),
        (lambda: jaxconv.spectral_covariance(S, S[1:]), ValueError,
         r"spectral_covariance: `image` and `target` must have the same shape"),
    ],
)  # fmt: skip
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- the spectral start --------------------------------------------------------------------------
def test_spectral_covariance_is_close_on_periodic_data():
    x = np.random.default_rng(0).random((64, 64))
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    r = 10
    grid = np.stack(np.mgrid[-r : r + 1, -r : r + 1], -1)
    k = scipy.stats.multivariate_normal([0, 0], cov).pdf(grid)
    y = ndi.convolve(x, k / k.sum(), mode="wrap")
    np.testing.assert_allclose(jaxconv.spectral_covariance(x, y), cov, atol=0.1)
    est, gain = jaxconv.spectral_covariance(x, 0.5 * y, gain=True)
    np.testing.assert_allclose(est, cov, atol=0.1)
    assert abs(float(gain) - 0.5) < 0.05


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 1000, 1001])
def test_spectral_median_matches_numpy(n, dtype):
    # The noise floor's median sorts the floats' bits as integers: same values as numpy's,
    # with negative values, signed zeros, ties and an infinity (not in the middle) among them.
    rng = np.random.default_rng(n)
    v = (rng.random(n) ** 8 - 0.3) * (rng.random(n) > 0.3)
    v[: n // 4] = -0.0
    if n > 2:
        v[-1] = np.inf
    v = v.astype(dtype)
    got = jax.jit(_median)(jnp.asarray(v))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, np.median(v), rtol=np.finfo(dtype).eps)
    v[n // 2] = np.nan
    assert np.isnan(_median(jnp.asarray(v)))


def test_gaussian_blur_full_is_a_deprecated_name_of_full_covariance():
    assert jaxconv.GaussianBlur().full_covariance
    assert not jaxconv.GaussianBlur(discretization="integrate").full_covariance
    with pytest.warns(DeprecationWarning, match="GaussianBlur.full is deprecated.*full_covariance"):
        assert jaxconv.GaussianBlur().full
