"""The cost model behind ``method="auto"``: estimated run times of each method, per backend.

On CPU every method's time is modelled from the work it does, with constants (nanoseconds) fitted
to timings of the methods themselves (``benchmarks/calibrate_methods.py``) on a 2-core x86-64
CPU under XLA:CPU; on GPU and TPU a simpler rule holds (their convolution units beat everything but
very large kernels). Shapes are those of the *valid* correlation that every method computes: `n`
is the extended input's spatial shape, `m` the kernel's, ``out = prod(n - m + 1)`` and `batch` the
number of independent (image, kernel) pairs.

=============  ===================================================================================
method         CPU cost model (ns)
=============  ===================================================================================
``shift``      ``batch * (SHIFT_TAP * out * taps + SHIFT_IN * prod(n))``: one fused pass over the
               output doing ``taps`` multiply-adds, after materialising the input once.
``separable``  the sum of the ``shift`` (or ``fft``) costs of its 1-D passes, times the rank.
``fft``        ``batch * FFT * L * log2(L)`` with ``L = prod(next_fast_len(n))``: the transforms of
               the input and the inverse (the kernel's transform pads one axis at a time and
               costs less); ``+ FFT_FIXED``.
``oa``         ``batch * (OA * bands * (Lb log2(Lb) + OA_BAND / FFT) + OA_COPY * prod(n))``: FFTs
               over bands of rows of ``Lb`` samples each (see :func:`oa_block`), a fixed cost per
               band, and one copy of the input to cut the overlapping bands.
``direct``     ``batch * out * (DIRECT_OUT + DIRECT_TAP * taps)``: XLA:CPU's convolution pays a
               large cost per output pixel, so it only wins for the kernel gradient, whose
               "kernel" is the whole image and whose output is the small kernel.
=============  ===================================================================================
"""

import functools
import math
from collections.abc import Sequence

# Fitted by benchmarks/calibrate_methods.py (medians, 2-core AMD EPYC, jax 0.10.2 XLA:CPU).
CPU_NS = {
    "SHIFT_TAP": 0.05,
    "SHIFT_IN": 0.6,
    "SHIFT_MAX_TAPS": 128,  # compile time grows with the taps; beyond this never pick shift
    "FFT": 0.65,
    "FFT_FIXED": 20e3,
    "OA": 0.65,
    "OA_COPY": 1.5,
    "OA_BAND": 5e3,
    "DIRECT_OUT": 50.0,
    "DIRECT_TAP": 0.3,
}


@functools.lru_cache(maxsize=4096)
def next_fast_len(n: int) -> int:
    """Smallest 7-smooth integer ``>= n``: fast for pocketfft/DUCC (CPU) and cuFFT (GPU)."""
    if n <= 6:
        return max(n, 1)
    best = 2 ** math.ceil(math.log2(n))
    p7 = 1
    while p7 < best:
        p5 = p7
        while p5 < best:
            p3 = p5
            while p3 < best:
                p2 = p3
                while p2 < n:
                    p2 *= 2
                best = min(best, p2)
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return best


@functools.lru_cache(maxsize=4096)
def oa_block(n: int, m: int, rest: int = 1) -> int:
    """Rows per band of overlap-save (first axis `n`, kernel `m`, `rest` samples per row).

    Picks the fast FFT length ``L >= 2 m`` (at most ``next_fast_len(n)``) minimising the modelled
    work ``bands * (L * rest * log2(L * rest) + OA_BAND / FFT)`` with ``bands = ceil((n - m + 1) /
    (L - m + 1))``: longer bands waste less on the overlap and cost less per band, shorter ones
    stay in cache (that part is in the measured constants, not here).
    """
    out = n - m + 1
    best, best_cost = out, math.inf
    length = next_fast_len(max(2 * m, 16))
    while True:
        b = min(length - m + 1, out)
        size = next_fast_len(b + m - 1) * rest
        cost = -(-out // b) * (size * math.log2(max(size, 2)) + CPU_NS["OA_BAND"] / CPU_NS["FFT"])
        if cost < best_cost:
            best, best_cost = b, cost
        if b == out:
            return best
        length = next_fast_len(length + 1)


def estimate_cost(
    method: str, n: Sequence[int], m: Sequence[int], batch: int, rank: int | None = None
) -> float:
    """Estimated CPU time (ns) of a valid correlation of an `n`-shaped input by an `m` kernel."""
    c = CPU_NS
    out = math.prod(nn - k + 1 for nn, k in zip(n, m, strict=True))
    taps = math.prod(m)
    size = math.prod(n)
    if method == "shift":
        return batch * (c["SHIFT_TAP"] * out * taps + c["SHIFT_IN"] * size)
    if method == "direct":
        return batch * out * (c["DIRECT_OUT"] + c["DIRECT_TAP"] * taps)
    if method == "separable":
        total, shape = 0.0, list(n)
        for i, k in enumerate(m):
            sub_n, sub_m = shape[i], k
            one = choose_1d(sub_n, sub_m)
            rows = math.prod(shape) // shape[i]
            total += estimate_cost(one, [sub_n], [sub_m], batch * rows)
            shape[i] = sub_n - sub_m + 1
        return (rank or 1) * total
    if method == "fft":
        length = math.prod(next_fast_len(nn) for nn in n)
        return batch * c["FFT"] * length * math.log2(max(length, 2)) + c["FFT_FIXED"]
    if method == "oa":
        rest = math.prod(next_fast_len(nn) for nn in n[1:])
        b = oa_block(n[0], m[0], rest)
        bands = -(-(n[0] - m[0] + 1) // b)
        length = next_fast_len(b + m[0] - 1) * rest
        work = bands * (length * math.log2(max(length, 2)) + c["OA_BAND"] / c["FFT"])
        return batch * (c["OA"] * work + c["OA_COPY"] * size) + c["FFT_FIXED"]
    raise AssertionError(method)


def auto_method(
    n: Sequence[int], m: Sequence[int], batch: int, backend: str, rank: int | None = None
) -> str:
    """The cheapest method for a valid correlation on `backend` ("cpu", "gpu" or "tpu")."""
    taps = math.prod(m)
    if backend != "cpu":
        # cuDNN / MXU direct convolution wins until kernels are large.
        limit = 1024 if backend == "gpu" else 4096
        return "direct" if taps <= limit else "fft"
    candidates = ["fft", "oa", "direct"]
    if taps <= CPU_NS["SHIFT_MAX_TAPS"]:
        candidates.append("shift")
    if rank is not None:
        candidates.append("separable")
    return min(candidates, key=lambda meth: estimate_cost(meth, n, m, batch, rank))


def choose_1d(n: int, m: int) -> str:
    """Method for a 1-D valid correlation inside the separable path."""
    return auto_method([n], [m], 1, "cpu")


def kernel_grad_method(
    method: str, n: Sequence[int], m: Sequence[int], batch: int, backend: str
) -> str:
    """Method for the kernel gradient ``dw = valid_correlate(x, dy)`` of a `method` forward pass.

    Its "kernel" `dy` has ``n - m + 1`` samples per axis and its output the kernel's `m`:
    ``direct`` and ``fft`` forward passes keep their method (XLA's and cuDNN's convolution
    gradients, FFTs); ``shift`` and ``oa`` would be slow on such a kernel, so they use the
    cheaper of ``direct`` and ``fft`` on CPU and ``direct`` on accelerators.
    """
    if method in ("direct", "fft"):
        return method
    if backend != "cpu":
        return "direct"
    k = [nn - mm + 1 for nn, mm in zip(n, m, strict=True)]
    return min(("direct", "fft"), key=lambda meth: estimate_cost(meth, n, k, batch))
