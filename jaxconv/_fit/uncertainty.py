r"""How well a fit pins its parameters down: Fisher information, standard errors, Cramér–Rao.

For ``target = μ(θ) + n`` with ``μ`` the model's prediction and n white Gaussian noise of standard
deviation s, the Fisher information is :math:`I = s^{-2} J^T J` with :math:`J = ∂μ/∂θ` over the
pixels the loss sees (``jax.jacfwd`` of the forward model: exact, no finite differences). Any
unbiased estimator has ``Cov(θ̂) ⪰ I⁻¹`` (the Cramér–Rao bound), and least squares attains it
asymptotically. :func:`standard_errors` evaluates ``s² (JᵀJ)⁻¹`` at a fitted θ̂ with s² estimated
from the residuals (``‖r‖² / (m - n)``); :func:`cramer_rao_bound` uses a noise level you give at
the parameters you give (the truth, in a simulation). Errors of derived quantities (σ₁, σ₂, θ,
the covariance entries) follow by the delta method, ``J_g Cov J_gᵀ``.
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxconv._fit.forward import check_data, check_model, crop, forward_and_jacobian, resolve_border
from jaxconv._fit.lstsq import gram, spd_inverse
from jaxconv._fit.models import Model


class Uncertainty(NamedTuple):
    """Standard deviations of fitted parameters (or their Cramér–Rao bounds).

    Attributes:
      stderr: a pytree like the parameters: the standard deviation of each entry.
      covariance: ``(n, n)`` covariance of the flattened parameters
        (``jax.flatten_util.ravel_pytree`` order).
      derived: standard deviations of the model's named quantities (``model.derived``), e.g.
        ``{"covariance": (2, 2), "sigmas": (2,), "angle": ()}`` for a Gaussian blur.
      noise_std: the noise level s used (estimated from the residuals, or given).
      dof: degrees of freedom, pixels minus parameters.
    """

    stderr: Any
    covariance: jax.Array
    derived: dict
    noise_std: jax.Array
    dof: int


def propagate(model: Model, params: Any, cov: jax.Array, noise_std: Any, dof: int) -> Uncertainty:
    """Standard deviations of the parameters and of ``model.derived`` from ``Cov(θ)``."""
    x, unravel = ravel_pytree(params)
    std = jnp.sqrt(jnp.abs(jnp.diagonal(cov)))
    values, unravel_d = ravel_pytree(model.derived(params))

    def quantities(x):
        return ravel_pytree(model.derived(unravel(x)))[0]

    jd = jax.jacfwd(quantities)(x).reshape(values.shape[0], x.shape[0])
    var = jnp.sum(jd[:, :, None] * cov[None] * jd[:, None, :], axis=(1, 2))  # diag(J C Jᵀ)
    derived = unravel_d(jnp.sqrt(jnp.abs(var)))
    return Uncertainty(unravel(std), cov, derived, jnp.asarray(noise_std), dof)


def from_information(
    model: Model,
    params: Any,
    information: jax.Array,
    residual: jax.Array,
    noise_std: Any = 0.0,
    count: Any = None,
) -> Uncertainty:
    """Standard errors from ``JᵀJ`` and the residual at hand (an LM solver carries both).

    The noise level is `noise_std` where it is > 0, else estimated from the residual.
    ``(JᵀJ)⁻¹`` is taken equilibrated by its diagonal (parameters of very different scales).
    `count` is the number of pixels the loss sees (default: the residual's length; fewer where
    a traced border zeroes part of it, see :func:`jaxconv._fit.forward.crop`).
    """
    n, m = information.shape[0], residual.shape[0] if count is None else count
    dof = jnp.maximum(m - n, 1) if isinstance(m, jax.Array) else max(m - n, 1)
    s = jnp.where(noise_std > 0, noise_std, jnp.sqrt(jnp.sum(residual * residual) / dof))
    return propagate(model, params, s**2 * spd_inverse(information), s, dof)


def _prepare(fn, model, params, image, target, border):
    model = check_model(fn, model)
    image, target = check_data(fn, image, target)
    model = model.resolve(params)
    border = resolve_border(fn, model, params, image.shape, border)
    return model, image, target, border


def standard_errors(
    model: Model,
    params: Any,
    image: jax.typing.ArrayLike,
    target: jax.typing.ArrayLike,
    *,
    border: int | tuple | None = None,
    boundary: str = "symm",
    method: str = "auto",
) -> Uncertainty:
    r"""Standard errors of fitted parameters from the Fisher information at the optimum.

    ``Cov(θ̂) ≈ ŝ² (JᵀJ)⁻¹`` with ``ŝ² = ‖target - μ(θ̂)‖² / (m - n)`` over the m pixels the loss
    sees (n parameters), as ``scipy.optimize.curve_fit`` reports (``absolute_sigma=False``).

    Args:
      model: the fitted model; params: its fitted parameters.
      image, target: the data it was fitted to.
      border, boundary, method: as given to :func:`jaxconv.fit`.

    Returns:
      An :class:`Uncertainty`.

    Examples:
      >>> import numpy as np, jaxconv
      >>> x = np.random.default_rng(0).random((32, 32))
      >>> model = jaxconv.FreeKernel((3, 3))
      >>> y = np.asarray(jaxconv.convolve(x, np.ones((3, 3)) / 9, mode="same"))
      >>> y = y + 0.01 * np.random.default_rng(1).standard_normal(y.shape)
      >>> fit = jaxconv.fit(model, x, y, optimizer="lm", progress=False)
      >>> u = jaxconv.standard_errors(model, fit.params, x, y)
      >>> u.stderr.shape
      (3, 3)
    """
    model, image, target, border = _prepare("standard_errors", model, params, image, target, border)
    return _jitted(model, border, boundary, method, params, image, target, jnp.asarray(0.0))


def cramer_rao_bound(
    model: Model,
    params: Any,
    image: jax.typing.ArrayLike,
    noise_std: float,
    *,
    border: int | tuple | None = None,
    boundary: str = "symm",
    method: str = "auto",
) -> Uncertainty:
    r"""The Cramér–Rao bound: the smallest standard deviations any unbiased fit can reach.

    For ``target = μ(θ) + n``, ``n ~ N(0, noise_std²)`` i.i.d. on the pixels the loss sees,
    ``Cov(θ̂) ⪰ noise_std² (JᵀJ)⁻¹`` with ``J = ∂μ/∂θ`` at the true `params`.

    Args:
      model: the model; params: the true parameters.
      image: the sharp image.
      noise_std: standard deviation of the additive noise (> 0).
      border, boundary, method: as for :func:`jaxconv.fit`.

    Returns:
      An :class:`Uncertainty` whose ``stderr``/``derived`` hold the bounds.

    Raises:
      ValueError: if `noise_std` is not a positive finite number, or on bad inputs.

    Examples:
      >>> import numpy as np, jaxconv
      >>> x = np.random.default_rng(0).random((32, 32))
      >>> model = jaxconv.GaussianBlur(radius=4)
      >>> p = model.params_from(np.eye(2))
      >>> crb = jaxconv.cramer_rao_bound(model, p, x, noise_std=0.01)
      >>> crb.derived["sigmas"].shape
      (2,)
    """
    fn = "cramer_rao_bound"
    try:
        s = float(noise_std)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{fn}: `noise_std` must be a number > 0; got {noise_std!r}.") from err
    if not (s > 0 and s < float("inf")):
        raise ValueError(f"{fn}: `noise_std` must be a finite number > 0; got {noise_std!r}.")
    model, image, _, border = _prepare(fn, model, params, image, None, border)
    return _jitted(model, border, boundary, method, params, image, image, jnp.asarray(s))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _jitted(model, border, boundary, method, params, image, target, noise_std):
    """Both public functions in one compiled program: ``noise_std <= 0`` means "estimate it"."""
    pred, jacobian_t = forward_and_jacobian(model, params, image, border, boundary, method)
    resid = pred - jnp.ravel(crop(target, border))
    return from_information(model, params, gram(jacobian_t), resid, noise_std)
