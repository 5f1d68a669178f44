r"""``fit``: learn a filter so that filtering `image` reproduces `target`, with any optax optimizer.

``fit(model, image, target)`` minimises a loss between ``model``'s prediction and `target` on the
pixels away from the border (by default as wide as the kernel's reach, where the data's own
boundary handling is unknown). The step is pure and jitted (see ``_fit/step.py``) and runs many
steps per dispatch; between dispatches the host shows a progress bar (tqdm, on fits longer than a
second), calls ``callback(step, params, loss)`` and writes checkpoints. The optimizer is any optax
``GradientTransformation`` (Adam with a warmup-cosine schedule by default; ``optax.lbfgs``
works too) or ``"lm"``, the Levenberg–Marquardt solver of :func:`jaxconv.least_squares` with exact
JAX Jacobians — for least-squares problems with few parameters, the fast and precise choice.
Every option of the loop is a field of :class:`jaxconv.FitOptions`, passed as ``options=`` or as
keywords.

Compiled once, fitted many times: the programs are keyed on what shapes them (the data's shape
and dtype, the model's static part, the optimizer, loss, border, chunk), never on `steps`, `tol`,
the start or a Gaussian's kernel radius, which are arguments. A second fit of new data of the
same shape compiles nothing; with :func:`jaxconv.enable_compilation_cache`, neither does a new
process.
"""

from typing import Any

import jax

from jaxconv._fit.loop import FitResult, run
from jaxconv._fit.models import Model
from jaxconv._fit.options import FitOptions, merge


# --- public entry points -------------------------------------------------------------------------
def fit(
    model: Model,
    image: jax.typing.ArrayLike,
    target: jax.typing.ArrayLike,
    *,
    params: Any = None,
    options: FitOptions | None = None,
    **kwargs: Any,
) -> FitResult:
    r"""Fits `model` so that filtering `image` reproduces `target`; returns a :class:`FitResult`.

    Minimises ``loss(prediction, target)`` over the interior (all pixels but `border` per edge),
    where ``prediction = convolve(image, model.kernel(params), mode="same", boundary=boundary)``
    (or ``model.predict(params, image)``). A model whose kernel size depends on its parameters
    (a :class:`GaussianBlur` whose radius the fit chose) grows when the fitted parameters
    outgrow it, and the fit continues from them (at most ``max_rounds`` fits in all).

    Args:
      model: a :class:`GaussianBlur`, :class:`FreeKernel`, :class:`GaussianEdge`, a
        :class:`KernelModel` / :class:`PredictionModel` of your functions, or your own
        :class:`Model` subclass.
      image: the input, shape ``(H, W)`` (any N-D shape the model's kernel matches).
      target: what filtering `image` should give, same shape.
      params: starting parameters (a pytree like ``model.init``'s); default the model's start.
      options: a :class:`FitOptions` (optimizer, steps, tol, loss, boundary, border, method,
        learning_rate, key, callback, progress, checkpoint, checkpoint_every, chunk,
        max_rounds); default ``FitOptions()``, whose `optimizer` None means ``"adam"`` here.
      **kwargs: any of those fields by name; a keyword wins over the same field of `options`.

    Returns:
      A :class:`FitResult`.

    Raises:
      ValueError: on mismatched or non-finite `image`/`target`, a kernel larger than `image`, a
        model returning the wrong shape, a bad option, or a corrupt or mismatched `checkpoint`.
      TypeError: on a `model`, `options` or option of the wrong type, or an unknown keyword.
      NotImplementedError: ``optimizer="lm"`` with a loss other than ``"mse"``.

    Examples:
      >>> import numpy as np, jaxconv
      >>> x = np.random.default_rng(0).random((48, 48))
      >>> y = jaxconv.sobel(x)
      >>> res = jaxconv.fit(jaxconv.FreeKernel((3, 3)), x, y, optimizer="lm", progress=False)
      >>> (res.params.round(4) + 0.0).tolist()[0]
      [1.0, 0.0, -1.0]
    """
    return run("fit", model, image, target, False, params, merge("fit", options, kwargs), "adam")


def fit_batch(
    model: Model,
    images: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    params: Any = None,
    options: FitOptions | None = None,
    **kwargs: Any,
) -> FitResult:
    """Fits `model` independently to many (image, target) pairs in one vectorised call.

    ``images[b]`` and ``targets[b]`` form pair b; the loop is :func:`fit`'s, ``jax.vmap``-ed,
    and each pair stops on its own tolerance. On a single CPU device the pairs run in vmapped
    groups of about 256 KiB of images, one group after another, which keeps each group's
    temporaries in cache (2.4× faster per step on 256 pairs of 64²); accelerators and batches
    sharded over several devices run as one vmap. The model's choices (a Gaussian's kernel
    radius) are shared: the one covering every pair. Arguments are those of :func:`fit`.

    Returns:
      A :class:`FitResult` whose arrays have a leading batch axis: ``params`` leaves
      ``(B, ...)``, ``loss``/``steps``/``status`` ``(B,)``, ``history`` ``(B, T)`` (NaN after a
      pair stopped).

    Examples:
      >>> import numpy as np, jaxconv
      >>> x = np.random.default_rng(0).random((4, 32, 32))
      >>> y = np.stack([np.asarray(jaxconv.sobel(v)) for v in x])
      >>> res = jaxconv.fit_batch(jaxconv.FreeKernel((3, 3)), x, y, optimizer="lm",
      ...                         progress=False)
      >>> res.params.shape
      (4, 3, 3)
    """
    options = merge("fit_batch", options, kwargs)
    return run("fit_batch", model, images, targets, True, params, options, "adam")
