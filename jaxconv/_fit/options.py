"""``FitOptions``: every option of a fit's loop, declared, documented and checked in one place.

:func:`jaxconv.fit`, :func:`jaxconv.fit_batch`, :func:`jaxconv.fit_gaussian` and
:func:`jaxconv.fit_gaussian_tiles` take ``options=FitOptions(...)`` and any of its fields as
keywords; a keyword overrides the object's field (``fit(model, x, y, options=base, steps=50)``
runs `base` with 50 steps). The loop (``_fit/loop.py``) receives the merged object.
"""

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax

from jaxconv._conv.boundary import BOUNDARY_ALIASES
from jaxconv._conv.methods import check_method

LOSSES = ("mse", "mae")
OPTIMIZERS = ("adam", "lbfgs", "lm")


@dataclasses.dataclass(frozen=True, eq=False)
class FitOptions:
    """How a fit runs: optimizer, stopping rules, loss, border, progress, checkpoints.

    Every field has its default here; the fit functions take the object as ``options=`` and
    each field as a keyword (the keyword wins over the object's value). Values are checked when
    the object is made (errors name ``FitOptions``) and when a fit merges its keywords (errors
    name the fit); `border` is checked against the image's shape by the fit.

    Attributes:
      optimizer: an optax ``GradientTransformation`` (e.g. ``optax.adam(1e-2)``,
        ``optax.lbfgs()``), ``"adam"`` (Adam, peak `learning_rate`, 5% warmup, cosine decay),
        ``"lbfgs"``, or ``"lm"`` (Levenberg–Marquardt with exact Jacobians; ``loss="mse"``
        only); None: the fit's default (``"adam"`` for :func:`jaxconv.fit` and
        :func:`jaxconv.fit_batch`, ``"lm"`` for :func:`jaxconv.fit_gaussian` and
        :func:`jaxconv.fit_gaussian_tiles`).
      steps: step cap per round; None: 300 (gradient optimizers) or 100 (``"lm"``).
      tol: stop when the loss changed by at most ``tol · loss`` for 10 steps in a row; for
        ``"lm"``, when the relative step is below `tol` (``xtol``; also ``gtol = tol``,
        ``ftol = tol²``, see :func:`jaxconv.least_squares`).
      loss: ``"mse"`` (mean squared error), ``"mae"``, or ``loss(prediction, target) -> scalar``.
      boundary: how the image is extended where the kernel reaches beyond it (only matters if
        `border` is narrower than the kernel's reach); any name :func:`jaxconv.convolve`
        accepts, or one per axis.
      border: pixels per edge that the loss ignores: an int or one per axis; None: the model's
        ``border`` (a :class:`GaussianBlur`'s radius), else the kernel's reach (``m // 2``). A
        Gaussian blur's default border is a mask on the loss (one compiled fit for every
        radius), its prediction a circular FFT convolution at the image's size, exact on the
        pixels the loss keeps.
      method: convolution method (see :func:`jaxconv.convolve`; not used where the border is
        such a mask).
      learning_rate: peak learning rate of the default Adam; None: ``model.learning_rate``.
      key: ``jax.random`` key for the model's initialisation (e.g. ``FreeKernel(init_kernel=
        "random")``); the fit is deterministic given it. None: ``PRNGKey(0)``.
      callback: ``callback(step, params, loss)``, called for every step (after each chunk of
        steps has run); return True to stop the fit (status ``"callback"``).
      progress: show a tqdm progress bar (with the loss) when a fit takes over a second.
      checkpoint: path of a checkpoint file. If it exists, the fit resumes from it (it must
        have been written by a fit with the same arguments); the state is written there every
        `checkpoint_every` steps and at the end (round k > 0 of a growing model: to
        ``<checkpoint>.round<k>``).
      checkpoint_every: steps between checkpoints.
      chunk: steps per dispatch (a jitted ``lax.while_loop``).
      max_rounds: at most this many fits in a row, the model growing between them where the
        fitted parameters outgrow its static size (:meth:`jaxconv.Model.grow`; a Gaussian
        blur's radius).

    Examples:
      >>> import jaxconv
      >>> quick = jaxconv.FitOptions(optimizer="lm", steps=20, progress=False)
      >>> quick.steps, quick.tol
      (20, 1e-10)
    """

    optimizer: Any = None
    steps: int | None = None
    tol: float = 1e-10
    loss: str | Callable = "mse"
    boundary: str | tuple = "symm"
    border: int | tuple | None = None
    method: str = "auto"
    learning_rate: float | None = None
    key: jax.Array | None = None
    callback: Callable | None = None
    progress: bool = True
    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int = 100
    chunk: int = 50
    max_rounds: int = 4

    def __post_init__(self):
        values = _normalized(vars(self))
        _check("FitOptions", values)
        for name, value in values.items():
            object.__setattr__(self, name, value)


FIELDS = tuple(f.name for f in dataclasses.fields(FitOptions))


def merge(fn: str, options: Any, kwargs: Mapping[str, Any]) -> FitOptions:
    """`options` (or the defaults) with the keywords `kwargs` put in; errors name `fn`.

    Raises:
      TypeError: `options` is not a FitOptions, or a keyword is not one of its fields.
      ValueError, TypeError: a bad value (see :class:`FitOptions`).
    """
    if options is None:
        options = FitOptions()
    elif not isinstance(options, FitOptions):
        raise TypeError(
            f"{fn}: `options` must be a jaxconv.FitOptions or None; got {type(options).__name__}."
        )
    unknown = [k for k in kwargs if k not in FIELDS]
    if unknown:
        raise TypeError(
            f"{fn}: `{unknown[0]}` must be a fit option (a field of jaxconv.FitOptions: "
            f"{', '.join(FIELDS)}); got {unknown[0]}={kwargs[unknown[0]]!r}."
        )
    if not kwargs:
        return options
    values = _normalized({**{k: getattr(options, k) for k in FIELDS}, **kwargs})
    _check(fn, values)
    return FitOptions(**values)


def _normalized(values: dict) -> dict:
    out = dict(values)
    if isinstance(out["optimizer"], str):
        out["optimizer"] = out["optimizer"].lower()
    for name in ("boundary", "border"):
        if isinstance(out[name], list):
            out[name] = tuple(out[name])
    return out


def _positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check(fn: str, v: dict) -> None:
    """Raises, naming `fn`, on the first bad value in `v` (FitOptions' fields).

    A renamed `method` is replaced in `v` by its current name (with a DeprecationWarning).
    """
    opt = v["optimizer"]
    if (isinstance(opt, str) and opt not in OPTIMIZERS) or not (
        opt is None or isinstance(opt, (str, optax.GradientTransformation))
    ):
        error = ValueError if isinstance(opt, str) else TypeError
        shown = repr(opt) if isinstance(opt, str) else type(opt).__name__
        raise error(
            f"{fn}: `optimizer` must be an optax GradientTransformation, 'adam', 'lbfgs' or "
            f"'lm'; got {shown}."
        )
    for name in ("steps", "checkpoint_every", "chunk", "max_rounds"):
        if not (_positive_int(v[name]) or (name == "steps" and v[name] is None)):
            raise ValueError(f"{fn}: `{name}` must be a positive int; got {v[name]!r}.")
    if not (_number(v["tol"]) and v["tol"] >= 0):
        raise ValueError(f"{fn}: `tol` must be a number >= 0; got {v['tol']!r}.")
    if not (v["loss"] in LOSSES or callable(v["loss"])):
        raise ValueError(f"{fn}: `loss` must be one of {LOSSES} or a callable; got {v['loss']!r}.")
    b = v["boundary"]
    names = (b,) if isinstance(b, str) else b if isinstance(b, tuple) else (None,)
    if not names or not all(isinstance(n, str) and n in BOUNDARY_ALIASES for n in names):
        raise ValueError(
            f"{fn}: `boundary` must be one of {sorted(BOUNDARY_ALIASES)} or one per axis; "
            f"got {b!r}."
        )
    v["method"] = check_method(fn, v["method"])  # a renamed method warns, and is replaced
    lr = v["learning_rate"]
    if lr is not None and not (_number(lr) and lr > 0):
        raise ValueError(f"{fn}: `learning_rate` must be a number > 0; got {lr!r}.")
    if v["key"] is not None and not isinstance(v["key"], (jax.Array, np.ndarray)):
        raise TypeError(
            f"{fn}: `key` must be a jax.random key or None; got {type(v['key']).__name__}."
        )
    if v["callback"] is not None and not callable(v["callback"]):
        raise TypeError(f"{fn}: `callback` must be callable or None; got {type(v['callback'])}.")
    if not isinstance(v["progress"], (bool, np.bool_)):
        raise TypeError(f"{fn}: `progress` must be True or False; got {v['progress']!r}.")
    if v["checkpoint"] is not None and not isinstance(v["checkpoint"], (str, os.PathLike)):
        raise TypeError(
            f"{fn}: `checkpoint` must be a path or None; got {type(v['checkpoint']).__name__}."
        )
