"""Experiment 7: "changing filters" — a small CNN built on jaxconv.convolve, trained with optax.

The seed ends on the remark that a network's filters are trained parameters, and that looking at
them shows what the network has learnt. This trains a two-layer CNN on scikit-learn's bundled 8×8
handwritten digits (``sklearn.datasets.load_digits``: 1797 images, shipped inside the package, no
download) and shows its first-layer filters before and after training.

A convolution layer is a sum over input channels of 2-D convolutions. With jaxconv's batch axes
(the non-convolved axes), one call does all of them: ``convolve(xb, w[None], mode="same",
axes=(-2, -1)).sum(2)``, with ``xb`` the images ``x: (B, C_in, H, W)`` broadcast to
``(B, C_out, C_in, H, W)``, and ``w: (C_out, C_in, k, k)``, gives ``(B, C_out, H, W)``. (In
``"same"`` mode the output has `in1`'s shape, as in scipy, so the images carry the full batch
shape.) The layer is checked against a loop of ``scipy.signal.convolve2d``.

Run: ``python experiments/e7_changing_filters.py [--out DIR] [--seed S] [--quick]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from _common import Run, parse_args
from scipy.signal import convolve2d
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

import jaxconv
import jaxconv.plot as jplot

NAME = "e7_changing_filters"
DTYPE = jnp.float32  # a CNN needs no float64


def conv_layer(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    """``(B, C_in, H, W) ⊛ (C_out, C_in, k, k) -> (B, C_out, H, W)``: a sum over input channels."""
    xb = jnp.broadcast_to(x[:, None], (x.shape[0], w.shape[0], *x.shape[1:]))
    y = jaxconv.convolve(xb, w[None], mode="same", axes=(-2, -1))
    return y.sum(axis=2) + b[:, None, None]


def _pool(x: jax.Array) -> jax.Array:
    """2×2 average pooling of ``(..., H, W)`` with even H and W."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def init_params(rng: np.random.Generator, c1: int, c2: int, k: int) -> dict[str, jax.Array]:
    """He-normal weights, zero biases (drawn with numpy: nothing to compile)."""

    def he(shape, fan_in):
        return jnp.asarray(rng.standard_normal(shape) * np.sqrt(2.0 / fan_in), DTYPE)

    return {
        "w1": he((c1, 1, k, k), k * k),
        "b1": jnp.zeros(c1, DTYPE),
        "w2": he((c2, c1, k, k), c1 * k * k),
        "b2": jnp.zeros(c2, DTYPE),
        "w3": he((c2 * 4, 10), c2 * 4),
        "b3": jnp.zeros(10, DTYPE),
    }


def forward(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """Logits for images ``x: (B, 8, 8)``."""
    h = _pool(jax.nn.relu(conv_layer(x[:, None], params["w1"], params["b1"])))  # (B, c1, 4, 4)
    h = _pool(jax.nn.relu(conv_layer(h, params["w2"], params["b2"])))  # (B, c2, 2, 2)
    return h.reshape(h.shape[0], -1) @ params["w3"] + params["b3"]


def _loss(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(forward(params, x), y).mean()


@jax.jit
def _predict(params, x):
    return jnp.argmax(forward(params, x), axis=-1)


def _accuracy(params, x, y) -> float:
    return float(jnp.mean(_predict(params, x) == y))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the experiment; returns the results written to ``results.json``."""
    args = parse_args(NAME, __doc__, argv)
    c1, c2, ksize = 8, 16, 3
    epochs = 6 if args.quick else 40
    batch, lr = 32, 3e-3
    config = {
        "dataset": "sklearn.datasets.load_digits (8x8, 10 classes)",
        "architecture": f"conv{ksize}x{ksize}({c1}) relu pool2 conv{ksize}x{ksize}({c2}) "
        "relu pool2 dense(10)",
        "epochs": epochs,
        "batch_size": batch,
        "optimizer": f"optax.adam({lr})",
        "test_fraction": 0.25,
        "dtype": "float32",
    }
    run = Run(NAME, args, config)

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target
    )
    x_tr, x_te, y_tr, y_te = map(jnp.asarray, (x_tr, x_te, y_tr, y_te))

    rng = np.random.default_rng(args.seed)
    params = init_params(rng, c1, c2, ksize)
    w1_before = np.asarray(params["w1"][:, 0])

    # The layer is what scipy computes: Σ_cin convolve2d(x[cin], w[cout, cin], "same") + b.
    xs, w2 = np.asarray(x_tr[:2]), np.asarray(params["w2"])
    h = np.asarray(conv_layer(jnp.asarray(xs[:, None]).repeat(c1, 1), params["w2"], params["b2"]))
    ref = np.array(
        [[sum(convolve2d(xs[b], w2[o, i], "same") for i in range(c1)) for o in range(c2)]
         for b in range(2)]
    )  # fmt: skip
    run.metrics["conv_layer_max_abs_diff_vs_scipy"] = float(np.max(np.abs(h - ref)))

    optimizer = optax.adam(lr)
    opt_state = optimizer.init(params)
    n_batches = x_tr.shape[0] // batch

    @jax.jit
    def epoch(params, opt_state, idx):

        def step(carry, ib):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(_loss)(params, x_tr[ib], y_tr[ib])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), idx)
        return params, opt_state, losses.mean()

    run.metrics["test_accuracy_before"] = _accuracy(params, x_te, y_te)
    history: dict[str, list[float]] = {"train_loss": [], "test_accuracy": []}
    with run.timer("training"):
        for _ in tqdm(range(epochs), desc="training CNN", unit="epoch", leave=False):
            idx = rng.permutation(x_tr.shape[0])[: n_batches * batch].reshape(n_batches, batch)
            params, opt_state, loss = epoch(params, opt_state, jnp.asarray(idx))
            history["train_loss"].append(float(loss))
            history["test_accuracy"].append(_accuracy(params, x_te, y_te))
    w1_after = np.asarray(params["w1"][:, 0])

    run.metrics.update(
        n_train=int(x_tr.shape[0]),
        n_test=int(x_te.shape[0]),
        train_accuracy=_accuracy(params, x_tr, y_tr),
        test_accuracy=_accuracy(params, x_te, y_te),
        final_train_loss=history["train_loss"][-1],
        first_layer_relative_change=float(
            np.linalg.norm(w1_after - w1_before) / np.linalg.norm(w1_before)
        ),
        history=history,
    )

    kernels = [*w1_before, *w1_after]
    titles = [f"before {i}" for i in range(c1)] + [f"after {i}" for i in range(c1)]
    fig = jplot.filter_grid(kernels, titles=titles, ncols=c1)
    for ax in fig.axes:
        ax.set(xlabel="", ylabel="", xticks=[], yticks=[])
    fig.suptitle("first-layer 3×3 filters, before (top) and after (bottom) training", y=1.02)
    run.savefig(fig, "filters_before_after.png")

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.5))
    jplot.loss_curve(history["train_loss"], ax=ax0)
    ax0.set_xlabel("epoch")
    ax0.set_title("training loss (cross-entropy)")
    ax1.plot(history["test_accuracy"])
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("test accuracy")
    ax1.set_ylim(0, 1)
    fig.tight_layout()
    run.savefig(fig, "training.png")

    sample = x_te[:1]
    maps = np.asarray(jax.nn.relu(conv_layer(sample[:, None], params["w1"], params["b1"]))[0])
    fig = jplot.images([np.asarray(sample[0]), *maps], ncols=c1 + 1, cmap="gray",
                       titles=["input", *[f"filter {i}" for i in range(c1)]])  # fmt: skip
    run.savefig(fig, "feature_maps.png")
    return run.finish()


if __name__ == "__main__":
    main()
