r"""``fit``: learn a filter so that filtering `image` reproduces `target`, with any optax optimizer.

``fit(model, image, target)`` minimises a loss between ``model``'s prediction and `target` on the
pixels away from the border (by default as wide as the kernel's reach, where the data's own
boundary handling is unknown). The step is pure and jitted (see ``_fit_step.py``) and runs many
steps per dispatch; between dispatches the host shows a progress bar (tqdm, on fits longer than a
second), calls ``callback(step, params, loss)`` and writes checkpoints. ``optimizer`` is any optax
``GradientTransformation`` (Adam with a warmup-cosine schedule by default; ``optax.lbfgs``
works too) or ``"lm"``, the Levenberg–Marquardt solver of :func:`jaxconv.least_squares` with exact
JAX Jacobians — for least-squares problems with few parameters, the fast and precise choice.

Compiled once, fitted many times: the programs are keyed on what shapes them (the data's shape
and dtype, the model's static part, the optimizer, loss, border, chunk), never on `steps`, `tol`
or a Gaussian's kernel radius, which are arguments. A second fit of new data of the same shape
compiles nothing; with :func:`jaxconv.enable_compilation_cache`, neither does a new process.
"""

from collections.abc import Callable
from typing import Any

import jax

from jaxconv._fit_loop import FitResult, run
from jaxconv._models import Model


# --- public entry points -------------------------------------------------------------------------
def fit(
    model: Model,
    image: jax.typing.ArrayLike,
    target: jax.typing.ArrayLike,
    *,
    params: Any = None,
    optimizer: Any = None,
    steps: int | None = None,
    tol: float = 1e-10,
    loss: str | Callable = "mse",
    boundary: str = "symm",
    border: int | tuple | None = None,
    method: str = "auto",
    learning_rate: float | None = None,
    key: jax.Array | None = None,
    callback: Callable | None = None,
    progress: bool = True,
    checkpoint: str | None = None,
    checkpoint_every: int = 100,
    chunk: int = 50,
) -> FitResult:
    r"""Fits `model` so that filtering `image` reproduces `target`; returns a :class:`FitResult`.

    Minimises ``loss(prediction, target)`` over the interior (all pixels but `border` per edge),
    where ``prediction = convolve(image, model.kernel(params), mode="same", boundary=boundary)``
    (or ``model.predict(params, image)``).

    Args:
      model: a :class:`GaussianBlur`, :class:`FreeKernel`, :class:`GaussianEdge`, or your own
        :class:`KernelModel` / :class:`PredictionModel`.
      image: the input, shape ``(H, W)`` (any N-D shape the model's kernel matches).
      target: what filtering `image` should give, same shape.
      params: starting parameters (a pytree like ``model.init``'s); default ``model.init``.
      optimizer: an optax ``GradientTransformation`` (e.g. ``optax.adam(1e-2)``,
        ``optax.lbfgs()``), ``"adam"`` (the default: Adam, `learning_rate` peak, 5% warmup,
        cosine decay), ``"lbfgs"``, or ``"lm"`` (Levenberg–Marquardt; ``loss="mse"`` only).
      steps: step cap; default 300 (gradient optimizers) or 100 (``"lm"``).
      tol: stop when the loss changed by at most ``tol · loss`` for 10 steps in a row; for
        ``"lm"``, when the relative step is below `tol` (``xtol``; also ``gtol = tol``,
        ``ftol = tol²``, see :func:`jaxconv.least_squares`).
      loss: ``"mse"`` (mean squared error), ``"mae"``, or ``loss(prediction, target) -> scalar``.
      boundary: how `image` is extended where the kernel reaches beyond it (only matters if
        `border` is narrower than the kernel's reach); any name :func:`jaxconv.convolve` accepts.
      border: pixels per edge that the loss ignores: an int or one per axis; default the
        model's ``border`` (a :class:`GaussianBlur`'s radius; a prediction model's own), else
        the kernel's reach (``m // 2``). A Gaussian blur's default border is a mask on the loss
        (one compiled fit for every radius), its prediction a circular FFT convolution at the
        image's size, exact on the pixels the loss keeps.
      method: convolution method (see :func:`jaxconv.convolve`; not used where the border is
        such a mask).
      learning_rate: peak learning rate of the default Adam; default ``model.learning_rate``.
      key: ``jax.random`` key for the model's initialisation (e.g. ``FreeKernel(init_kernel=
        "random")``); the fit is deterministic given it. Default ``PRNGKey(0)``.
      callback: ``callback(step, params, loss)``, called for every step (after each chunk of
        steps has run); return True to stop the fit (status ``"callback"``).
      progress: show a tqdm progress bar (with the loss) when the fit takes over a second.
      checkpoint: path of a checkpoint file. If it exists, the fit resumes from it (and must
        have been written by a fit with the same arguments); the state is written there every
        `checkpoint_every` steps and at the end.
      checkpoint_every: steps between checkpoints.
      chunk: steps per dispatch (a jitted ``lax.while_loop``).

    Returns:
      A :class:`FitResult`.

    Raises:
      ValueError: on mismatched or non-finite `image`/`target`, a kernel larger than `image`, a
        model returning the wrong shape, a bad option, or a corrupt or mismatched `checkpoint`.
      TypeError: on a `model` or `optimizer` of the wrong type.
      NotImplementedError: ``optimizer="lm"`` with a loss other than ``"mse"``.

    Examples:
      >>> import numpy as np, jaxconv
      >>> x = np.random.default_rng(0).random((48, 48))
      >>> y = jaxconv.sobel(x)
      >>> res = jaxconv.fit(jaxconv.FreeKernel((3, 3)), x, y, optimizer="lm", progress=False)
      >>> (res.params.round(4) + 0.0).tolist()[0]
      [1.0, 0.0, -1.0]
    """
    return run(
        "fit", model, image, target, False, params, optimizer, steps, tol, loss, boundary, border,
        method, learning_rate, key, callback, progress, checkpoint, checkpoint_every, chunk,
    )  # fmt: skip


def fit_batch(
    model: Model,
    images: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    params: Any = None,
    optimizer: Any = None,
    steps: int | None = None,
    tol: float = 1e-10,
    loss: str | Callable = "mse",
    boundary: str = "symm",
    border: int | tuple | None = None,
    method: str = "auto",
    learning_rate: float | None = None,
    key: jax.Array | None = None,
    callback: Callable | None = None,
    progress: bool = True,
    checkpoint: str | None = None,
    checkpoint_every: int = 100,
    chunk: int = 50,
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
    return run(
        "fit_batch", model, images, targets, True, params, optimizer, steps, tol, loss, boundary,
        border, method, learning_rate, key, callback, progress, checkpoint, checkpoint_every,
        chunk,
    )  # fmt: skip
