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
               output doing ``taps`` multiply-adds, after materialising the input once. Only for
               kernels of at most ``SHIFT_MAX_TAPS`` taps (compile time grows with the taps).
``separable``  the sum of the costs of its 1-D passes (each by the cheapest 1-D method), times
               the rank.
``fft``        ``FFT * c(L) * batch * L * log2(L) + FFT_FIXED`` with ``L = prod(next_fast_len(n))``:
               the transforms of the input and the inverse (the kernel's transform pads one axis
               at a time and costs less). ``c(L) = max(1, L / FFT_CACHE) ** 0.5`` models the
               slowdown of transforms that no longer fit in cache (XLA:CPU's FFT ran at ~0.7 ns
               per sample·log2 up to ~1M samples, twice that at 4M); 1-D transforms (batches of
               rows) measured ``FFT_1D`` times slower per sample.
``os``         the ``fft`` cost of each band of rows (see :func:`os_block`) plus ``OS_BAND`` per
               band and ``OS_COPY * batch * prod(n)`` to cut the overlapping bands: it wins where
               the full transform would fall out of cache.
``direct``     ``batch * out * (DIRECT_OUT + DIRECT_TAP * taps)``: XLA:CPU's single-channel
               convolution pays ~50 ns per output pixel, so it never wins forward, but it does for
               the kernel gradient of small kernels, whose "kernel" is the whole image and whose
               output is the small kernel.
=============  ===================================================================================

The kernel gradient is a valid correlation too (see :func:`kernel_grad_method`).
"""

import functools
import math
from collections.abc import Sequence

# Fitted by benchmarks/calibrate_methods.py (medians on a 2-core AMD EPYC, jax 0.10.2 XLA:CPU,
# float32; the machine was shared, so each constant is good to maybe +-50%: the choices only need
# the crossovers, which are far from ties except near them).
CPU_NS = {
    "SHIFT_TAP": 0.1,
    "SHIFT_IN": 1.0,
    "SHIFT_MAX_TAPS": 128,
    "FFT": 0.7,
    "FFT_CACHE": 2.0**20,
    "FFT_1D": 2.0,
    "FFT_FIXED": 20e3,
    "OS_COPY": 1.0,
    "OS_BAND": 50e3,
    "DIRECT_OUT": 50.0,
    "DIRECT_TAP": 0.5,
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


def _fft_cost(lengths: Sequence[int], batch: int) -> float:
    """`batch` transforms (forward, product, inverse) of shape `lengths`."""
    length = math.prod(lengths)
    slowdown = max(1.0, length / CPU_NS["FFT_CACHE"]) ** 0.5
    if len(lengths) == 1:
        slowdown *= CPU_NS["FFT_1D"]
    return CPU_NS["FFT"] * slowdown * batch * length * math.log2(max(length, 2))


@functools.lru_cache(maxsize=4096)
def os_block(n: int, m: int, rest: Sequence[int] = (), batch: int = 1) -> int:
    """Rows per band of overlap-save: first axis `n`, kernel `m`, FFT lengths `rest` of the others.

    Picks the fast FFT length ``L >= 2 m`` (and at most ``next_fast_len(n)``) of the bands that
    minimises their modelled cost (see the module docstring), so trading the overlap wasted by
    short bands against the cache misses of long ones.
    """
    out = n - m + 1
    best, best_cost = out, math.inf
    length = next_fast_len(max(2 * m, 16))
    while True:
        b = min(length - m + 1, out)
        bands = -(-out // b)
        cost = _fft_cost([next_fast_len(b + m - 1), *rest], batch * bands)
        cost += bands * CPU_NS["OS_BAND"]
        if cost < best_cost:
            best, best_cost = b, cost
        if b == out:
            return best
        # Every fast length up to 2^14, then steps of ~5% (the cost is smooth there): walking
        # every 7-smooth length up to 10^9 samples took seconds of planning.
        length = next_fast_len(length + 1 if length < 1 << 14 else length * 21 // 20)


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
            rows = batch * math.prod(shape) // shape[i]
            one = auto_method([shape[i]], [k], rows, "cpu")
            total += estimate_cost(one, [shape[i]], [k], rows)
            shape[i] -= k - 1
        return (rank or 1) * total
    if method == "fft":
        return _fft_cost([next_fast_len(nn) for nn in n], batch) + c["FFT_FIXED"]
    if method == "os":
        rest = tuple(next_fast_len(nn) for nn in n[1:])
        out0 = n[0] - m[0] + 1
        if m[0] > out0:  # the kernel is cut into bands (kernel-gradient shapes)
            b = os_block(n[0], out0, rest, batch)
            bands = -(-m[0] // b)
            cost = _fft_cost([next_fast_len(b + out0 - 1), *rest], batch * bands)
            return cost + bands * c["OS_BAND"] + c["OS_COPY"] * batch * size + c["FFT_FIXED"]
        b = os_block(n[0], m[0], rest, batch)
        bands = -(-out0 // b)
        cost = _fft_cost([next_fast_len(b + m[0] - 1), *rest], batch * bands)
        return cost + bands * c["OS_BAND"] + c["OS_COPY"] * batch * size + c["FFT_FIXED"]
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
    candidates = ["fft", "os", "direct"]
    if taps <= CPU_NS["SHIFT_MAX_TAPS"]:
        candidates.append("shift")
    if rank is not None:
        candidates.append("separable")
    return min(candidates, key=lambda meth: estimate_cost(meth, n, m, batch, rank))


def choose_1d(n: int, m: int, batch: int = 1) -> str:
    """Method for a 1-D valid correlation (a pass of a separable filter) on CPU."""
    return auto_method([n], [m], batch, "cpu")


def kernel_grad_method(
    method: str, n: Sequence[int], m: Sequence[int], batch: int, backend: str
) -> str:
    """Method for the kernel gradient ``dw = valid_correlate(x, dy)`` of a `method` forward pass.

    Its "kernel" `dy` has ``n - m + 1`` samples per axis and its output the kernel's `m`:
    ``direct`` and ``fft`` forward passes keep their method (XLA's and cuDNN's convolution
    gradients, FFTs); ``shift`` would need millions of taps, so on CPU ``shift`` and ``os`` use
    the cheaper of ``direct`` and ``fft``, and ``direct`` on accelerators. (``os`` on these
    shapes cuts the cotangent into bands and sums the bands' spectra, but measured no faster
    than one full-size FFT, so it is not a candidate here.)
    """
    if method in ("direct", "fft"):
        return method
    if backend != "cpu":
        return "direct"
    k = [nn - mm + 1 for nn, mm in zip(n, m, strict=True)]
    return min(("direct", "fft"), key=lambda meth: estimate_cost(meth, n, k, batch))
