"""Peak-memory estimates of a convolution plan, and the check that refuses plans that cannot fit.

Every convolution and filter ends in one valid correlation (see ``jaxconv._conv.methods``),
planned in Python from static shapes. Before it is traced, its peak memory is estimated and
compared with what the device can give; a plan that cannot fit raises :class:`OutOfMemoryError`
*at the call* (also under ``jit``, at trace time), instead of ``RESOURCE_EXHAUSTED`` at the first
use of the result (JAX dispatches asynchronously) or an abort inside the FFT library
(``std::bad_alloc``).

The estimate counts the buffers each method holds at once, in the compute dtype (``B`` bytes per
element; ``C = 2 B`` for complex spectra; ``n``: extended input, ``out``: output, ``L``: the FFT
lengths, ``Lc`` with the last axis halved by the real FFT):

=============  ================================================================================
method         peak bytes, on top of the inputs, the kernel and the output
=============  ================================================================================
``direct``     the extended input and one more output (the result's change of layout)
``shift``      the extended input and one more output (the tree of sums)
``separable``  the extended input and two intermediate passes, each at most its size
``fft``        the extended input, both operands zero-padded to ``L`` and four spectra of
               ``Lc`` (input, kernel, product, inverse)
``os``         the extended input, the bands (``count * (b + m - 1)`` rows) and four spectra of
               the bands
=============  ================================================================================

It errs on the large side (XLA frees and reuses buffers): against the peak resident memory measured
on XLA:CPU it was 1.0-1.3x for ``direct``/``shift`` and 1.2-2x for the FFT methods.
The memory the process can use is, on CPU, the smallest of the available physical memory
(``MemAvailable``, which counts reclaimable page cache, else ``sysconf``'s free pages), the
headroom under ``RLIMIT_AS``/``RLIMIT_DATA`` and under a cgroup's ``memory.max``; on GPU/TPU,
``device.memory_stats()["bytes_limit"]``. Plans under 64 MiB are never checked, so ordinary calls
read nothing. Set ``JAXCONV_MEMORY_CHECK=0`` to switch the check off.
"""

import math
import os
from collections.abc import Sequence

import jax
import numpy as np

from jaxconv._conv.cost import next_fast_len, os_block

ENV = "JAXCONV_MEMORY_CHECK"
_UNCHECKED = 64 << 20  # smaller plans are not checked: no system call on ordinary calls
_TILED = (
    "Process it in tiles with jaxconv.sharded.apply_tiled (a .npy file in, one out), use a "
    f"smaller input, or set {ENV}=0 to try anyway."
)


class OutOfMemoryError(MemoryError):
    """A convolution plan needs more memory than the device can give (raised before running)."""


def plan_bytes(
    method: str,
    *,
    x_size: int,
    k_size: int,
    batch_x: int,
    batch_k: int,
    out_shape: Sequence[int],
    n: Sequence[int],
    m: Sequence[int],
    itemsize: int,
) -> tuple[int, str]:
    """Estimated peak bytes of a valid correlation, and what dominates them (for the message).

    `x_size` and `k_size` are the element counts of the input (before extension) and the kernel,
    `batch_x` and `batch_k` their batch sizes, `out_shape` the output's shape, `n` and `m` the
    extended input's and the kernel's convolved extents.
    """
    size = math.prod(out_shape)
    batch = size // max(1, math.prod(nn - mm + 1 for nn, mm in zip(n, m, strict=True)))
    extended = batch_x * math.prod(n)
    fixed = x_size + k_size + size + extended
    if method in ("direct", "shift"):
        return itemsize * (fixed + size), "the extended input"
    if method == "separable":
        return itemsize * (fixed + 2 * extended), "intermediate passes"
    lengths, kernel_bands = [next_fast_len(k) for k in n], 1
    if method == "os":  # bands of rows along the first axis (of the kernel if it is the longer)
        out0 = n[0] - m[0] + 1
        short, long = min(m[0], out0), max(m[0], out0)
        b = os_block(n[0], short, tuple(lengths[1:]), batch)
        count = -(-long // b)
        fixed += batch_x * count * (b + short - 1) * math.prod(n[1:])
        lengths[0] = next_fast_len(b + short - 1)
        kernel_bands = count if m[0] > out0 else 1
        batch_x, batch = batch_x * count, batch * count
    padded = math.prod(lengths)  # of one transform; a spectrum keeps half the last axis
    spectrum = padded // lengths[-1] * (lengths[-1] // 2 + 1)
    batch_k *= kernel_bands
    buffers = (batch_x + batch_k) * padded + 2 * (batch_x + batch_k + 2 * batch) * spectrum
    return itemsize * (fixed + buffers), "FFT buffers"


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _proc_kib(path: str, key: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cpu_available() -> int | None:
    """Bytes this process can still allocate on the host (see the module docstring)."""
    limits = []
    avail = _proc_kib("/proc/meminfo", "MemAvailable")
    if avail is None and hasattr(os, "sysconf"):
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            avail = None
    limits.append(avail)
    try:
        import resource
    except ImportError:  # Windows
        resource = None
    if resource is not None:
        for res, key in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
            soft = resource.getrlimit(res)[0]
            if soft != resource.RLIM_INFINITY:
                used = _proc_kib("/proc/self/status", key) or 0
                limits.append(max(0, soft - used))
    for limit, usage in (
        ("memory.max", "memory.current"),  # cgroup v2, then v1
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        cap, usage = _read_int(f"/sys/fs/cgroup/{limit}"), f"/sys/fs/cgroup/{usage}"
        if cap is not None and cap < 1 << 60:
            limits.append(max(0, cap - (_read_int(usage) or 0)))
    known = [v for v in limits if v is not None]
    return min(known) if known else None


def available_bytes() -> int | None:
    """Bytes the default device can give a new computation, or None where it cannot be known."""
    if jax.default_backend() == "cpu":
        return _cpu_available()
    try:
        stats = jax.local_devices()[0].memory_stats()
    except Exception:  # some backends do not implement memory_stats
        return None
    return stats.get("bytes_limit") if stats else None


def _gib(b: int) -> str:
    return f"~{b / 2**30:.1f} GiB" if b >= 2**30 else f"~{b / 2**20:.0f} MiB"


def check(fn: str, method: str, dtype, **shapes) -> None:
    """Raises :class:`OutOfMemoryError` if the plan's estimated peak exceeds what is available.

    `shapes` are the keyword arguments of :func:`plan_bytes` but `itemsize` (from `dtype`).
    """
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "off", "no"):
        return
    need, what = plan_bytes(method, itemsize=np.dtype(dtype).itemsize, **shapes)
    if need < _UNCHECKED:
        return
    avail = available_bytes()
    if avail is None or need <= avail:
        return
    out = f"{tuple(shapes['out_shape'])} {np.dtype(dtype).name}"
    raise OutOfMemoryError(
        f"{fn}: the result needs {_gib(need)} (output {out} "
        f"+ {what}, method {method!r}); this process can use {_gib(avail)}. {_TILED}"
    )
