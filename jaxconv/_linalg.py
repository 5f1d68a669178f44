"""Small dense linear algebra, unrolled: Cholesky factors and triangular solves for N <= 4.

Kernels live in N <= 3 dimensions and least-squares fits have a handful of parameters, where
unrolled formulas beat LAPACK calls: they compile and differentiate (to any order) far faster, and
agree to round-off. Larger matrices fall back to ``jnp.linalg``/``jax.scipy.linalg``.
"""

import functools
import operator

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

UNROLL = 4


def cholesky(a: jax.Array) -> jax.Array:
    """Lower Cholesky factor of a symmetric matrix (symmetrised first, like jnp.linalg.cholesky)."""
    n = a.shape[-1]
    a = 0.5 * (a + a.T)
    if n > UNROLL:
        return jnp.linalg.cholesky(a)
    rows = [[jnp.zeros((), a.dtype)] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = a[i, j]
            for k in range(j):
                s = s - rows[i][k] * rows[j][k]
            rows[i][j] = jnp.sqrt(s) if i == j else s / rows[j][j]
    return jnp.stack([jnp.stack(r) for r in rows])


def sum_last(a: jax.Array) -> jax.Array:
    """Sum over a short last axis (N <= 4) as unrolled adds.

    An elementwise fusion: XLA:CPU compiles a reduction over 2 or 3 entries into a reduce loop
    per element, which made the kernel's tangents a quarter of an LM fit's evaluation.
    """
    n = a.shape[-1]
    if n > UNROLL:
        return jnp.sum(a, axis=-1)
    return functools.reduce(operator.add, [a[..., i] for i in range(n)])


def solve_lower(chol: jax.Array, d: jax.Array) -> jax.Array:
    """``z = L⁻¹ d`` for each point ``d[..., :]`` (forward substitution)."""
    n = chol.shape[-1]
    if n > UNROLL:
        z = solve_triangular(chol, d.reshape(-1, n).T, lower=True)
        return z.T.reshape(d.shape)
    z = []
    for i in range(n):
        s = d[..., i]
        for k in range(i):
            s = s - chol[i, k] * z[k]
        z.append(s / chol[i, i])
    return jnp.stack(z, axis=-1)


def solve_upper(upper: jax.Array, d: jax.Array) -> jax.Array:
    """``z = U⁻¹ d`` for each point ``d[..., :]`` (back substitution), N <= 4."""
    n = upper.shape[-1]
    z = [None] * n
    for i in reversed(range(n)):
        s = d[..., i]
        for k in range(i + 1, n):
            s = s - upper[i, k] * z[k]
        z[i] = s / upper[i, i]
    return jnp.stack(z, axis=-1)
