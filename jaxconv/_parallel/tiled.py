"""Larger than memory: a memory-mapped ``.npy`` image filtered tile by tile (overlap-save).

Each output tile is computed from an input *window*: the tile plus the filter's reach on each side
(its halo), read from the memory-mapped input, filtered by the ordinary single-device function, and
cropped — the overlap-save scheme, so every output sample is computed exactly once from exactly the
inputs the in-memory call would use, and the result equals it to round-off for every boundary mode:

* along a non-periodic axis, a window that would cross the image's edge is shifted inwards to end
  at it, so the function applies its own boundary rule there (at every pass of a multi-pass
  filter, as in memory); what it invents at a window's inner edge never reaches the cropped tile;
* along a ``wrap`` axis, the window is read with indices modulo the axis length.

All windows have one shape (the last tile of an axis overlaps the previous one), so the tile
function is compiled once. The reach of a jaxconv function is found from its plan (``fn.plan``,
see ``_plan``); any other shape-preserving function of local support needs ``halo=``.

Memory: tiles are sized so that ``workset(T) × window samples × itemsize <= memory_limit`` for a
plan of ``T`` terms, where ``workset(T) = 10 + 6 T`` (see :func:`workset`) bounds the live copies of
a window during a tile: the copy read from the file, its device buffer, the padded input and
output of each pass, the terms awaiting their sum or norm, and the output tile. Input and output
are mapped one tile at a time and unmapped after it, so their pages do not accumulate in the
process's resident set either. The result is written to a temporary file next to `dst` (see
:func:`jaxconv.io.atomic_path`) whose disk space is reserved before the first tile, so a full
disk is an ``OSError`` naming the size up front rather than a SIGBUS in the memory map, and
moved into place with ``os.replace`` once complete, so `dst` is never seen half-written.
"""

import contextlib
import io
import itertools
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm.auto as tqdm
from jax import lax

from jaxconv._conv import plan as _plan
from jaxconv.io import atomic_path, preallocate


def workset(terms: int) -> int:
    """Window-sized buffers a tile may hold at once, for a plan of `terms` terms.

    Measured as ``tests/test_tiled.py`` does (peak resident set, with glibc's mmap threshold fixed
    so that freed buffers leave it): 9-11 windows for one-term filters and convolutions (direct,
    shift and FFT methods), 16 for the two-term gradient magnitude; this allows ~40% more.
    """
    return 10 + 6 * terms


def _reach(plan: _plan.Plan, ndim: int) -> tuple[list, set]:
    """Per-axis (before, after) reach of a plan, and the axes it extends periodically."""
    reach = [(0, 0)] * ndim
    modes: dict[int, set] = {a: set() for a in range(ndim)}
    for term in plan.terms:
        lo, hi = [0] * ndim, [0] * ndim
        for op in term:
            for a, (b, c), mode in zip(op.axes, op.pads, op.boundaries, strict=True):
                lo[a] += b
                hi[a] += c
                modes[a].add(mode)
        reach = [(max(r[0], lo[a]), max(r[1], hi[a])) for a, r in enumerate(reach)]
    wrap = {a for a, m in modes.items() if m == {"wrap"}}
    mixed = {a for a, m in modes.items() if "wrap" in m and len(m) > 1}
    return [(-1, -1) if a in mixed else r for a, r in enumerate(reach)], wrap


def _halo_arg(fn_name: str, halo: Any, ndim: int) -> list[tuple[int, int]]:
    items = [halo] * ndim if isinstance(halo, (int, np.integer)) else list(halo)
    out = []
    for h in items:
        pair = (h, h) if isinstance(h, (int, np.integer)) else tuple(h)
        if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in pair):
            raise ValueError(
                f"{fn_name}: `halo` must be an int >= 0, or one int or (before, after) pair per "
                f"axis; got {halo!r}."
            )
        out.append((int(pair[0]), int(pair[1])))
    if len(out) != ndim:
        raise ValueError(
            f"{fn_name}: `halo` must have one entry per axis of the image ({ndim}); got {halo!r}."
        )
    return out


def tile_shape(
    shape: Sequence[int],
    reach: Sequence[tuple[int, int]],
    wrap: set,
    itemsize: int,
    limit: int,
    buffers: int,
) -> tuple[int, ...]:
    """The largest tiles (halving the longest) whose windows, times `buffers`, fit `limit` bytes.

    An axis with reach ``(-1, -1)`` (periodic in one pass, not in another) is never cut.
    """
    tiles = list(shape)

    def window(a: int, t: int) -> int:
        lo, hi = reach[a]
        if lo < 0 or t == shape[a]:
            return shape[a]
        return min(shape[a], t + lo + hi)

    def cost(ts: list[int]) -> int:
        return buffers * itemsize * math.prod(window(a, t) for a, t in enumerate(ts))

    while cost(tiles) > limit:
        cuttable = [
            a
            for a in range(len(shape))
            if tiles[a] > 1
            and reach[a][0] >= 0
            and window(a, (tiles[a] + 1) // 2) < window(a, tiles[a])
        ]
        if not cuttable:
            uncut = [a for a in range(len(shape)) if reach[a][0] < 0]
            why = (
                f"; axes {uncut} cannot be cut (periodic in one pass of the filter and not in "
                "another)"
                if uncut
                else ""
            )
            raise ValueError(
                f"apply_tiled: `memory_limit` ({limit} bytes) is too small for this filter's "
                f"reach {tuple(reach)}: the smallest tiles need {cost(tiles)} bytes{why}."
            )
        a = max(cuttable, key=lambda i: (window(i, tiles[i]), -i))
        tiles[a] = (tiles[a] + 1) // 2
    for a in range(len(shape)):  # a periodic window must not wrap onto itself
        if a in wrap and window(a, tiles[a]) == shape[a]:
            tiles[a] = shape[a]
    return tuple(tiles)


def _windows(shape, tiles, reach, wrap):
    """For every tile: (output slices, per-axis window reader, crop starts)."""
    starts = [
        [min(i * t, n - t) for i in range(-(-n // t))] for n, t in zip(shape, tiles, strict=True)
    ]
    for corner in itertools.product(*starts):
        out_slices, read, crop = [], [], []
        for a, (s, n, t) in enumerate(zip(corner, shape, tiles, strict=True)):
            lo, hi = reach[a]
            out_slices.append(slice(s, s + t))
            if t == n:
                read.append(slice(0, n))
                crop.append(0)
            elif a in wrap:
                read.append((s - lo + np.arange(t + lo + hi)) % n)
                crop.append(lo)
            else:
                w = min(n, t + lo + hi)
                ws = min(max(s - lo, 0), n - w)
                read.append(slice(ws, ws + w))
                crop.append(s - ws)
        yield tuple(out_slices), read, tuple(crop)


def _runs(r: slice | np.ndarray) -> list[tuple[slice, slice]]:
    """(source, destination) slices of the contiguous runs of a slice or a modular index array."""
    if isinstance(r, slice):
        return [(r, slice(0, r.stop - r.start))]
    cuts = np.flatnonzero(np.diff(r) != 1) + 1
    bounds = [0, *cuts.tolist(), len(r)]
    return [
        (slice(int(r[i]), int(r[j - 1]) + 1), slice(i, j)) for i, j in itertools.pairwise(bounds)
    ]


def _read(src: Path, meta: tuple, read: list) -> np.ndarray:
    """The window `read` of the memory-mapped `src`, copied run by run (only its pages are read)."""
    shape, dtype, offset, order = meta
    runs = [_runs(r) for r in read]
    block = np.empty([sum(d.stop - d.start for _, d in rs) for rs in runs], dtype)
    mm = np.memmap(src, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
    try:
        for pieces in itertools.product(*runs):
            block[tuple(d for _, d in pieces)] = mm[tuple(s for s, _ in pieces)]
    finally:
        del mm  # unmapped: the pages read do not stay in the resident set
    return block


def apply_tiled(
    fn: Callable,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *args: Any,
    memory_limit: int = 1 << 30,
    halo: int | Sequence[Any] | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> Path:
    """Writes ``fn(np.load(src), *args, **kwargs)`` to `dst`, reading and filtering in tiles.

    For images larger than memory: `src` is a ``.npy`` file, memory-mapped and read one window
    at a time; each window (a tile plus `fn`'s reach on each side) goes through `fn` on the default
    device and the cropped tile is written to a memory-mapped ``.npy`` at `dst` (overlap-save).
    The result equals the in-memory call to round-off for every boundary mode (see the module).

    Memory bound: the memory this call adds to the process (its peak resident set above what it
    was before, JAX's compiled code aside) stays below `memory_limit`. Tiles are chosen so that
    ``(10 + 6 T) * window_size * itemsize <= memory_limit``, for `fn` of ``T`` terms (1 for a
    convolution or a Gaussian filter, one per axis for gradient magnitudes and Laplacians; 1 for
    an unknown `fn`) and the itemsize of the wider of the input and output dtypes; measured peaks
    are 45-80% of that.

    Args:
      fn: a shape-preserving jaxconv function whose first argument is the image, e.g.
        :func:`jaxconv.gaussian_filter`, :func:`jaxconv.sobel`, or :func:`jaxconv.convolve2d`
        with ``mode="same"``. Any other local, shape-preserving function works with `halo`.
      src: path of the input ``.npy`` (any numeric dtype; C or Fortran order).
      dst: path of the output ``.npy``, replaced atomically when complete.
      *args, **kwargs: further arguments of `fn`.
      memory_limit: bytes the tiles may use (see above); default 1 GiB.
      halo: samples of context each window needs beyond its tile: an int, or one int or
        ``(before, after)`` pair per axis. Default: `fn`'s reach, from its plan.
      progress: show a tqdm progress bar over the tiles.

    Returns:
      The path of the output.

    Raises:
      ValueError: on a missing or non-``.npy`` input, a `fn` that changes the shape, a bad
        `halo`, or a `memory_limit` too small for one window of the halo.

    Examples:
      >>> import numpy as np, os, tempfile, jaxconv, jaxconv.sharded
      >>> d = tempfile.mkdtemp()
      >>> x = np.random.default_rng(0).random((64, 64))
      >>> np.save(os.path.join(d, "x.npy"), x)
      >>> out = jaxconv.sharded.apply_tiled(jaxconv.gaussian_filter, os.path.join(d, "x.npy"),
      ...     os.path.join(d, "y.npy"), 2.0, memory_limit=200_000, progress=False)
      >>> bool(np.allclose(np.load(out), jaxconv.gaussian_filter(x, 2.0)))
      True
    """
    name = "apply_tiled"
    if not callable(fn):
        raise TypeError(f"{name}: `fn` must be callable; got {type(fn).__name__}.")
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, (int, np.integer)):
        raise TypeError(f"{name}: `memory_limit` must be an int (bytes); got {memory_limit!r}.")
    src, dst = Path(src), Path(dst)
    try:
        mm = np.load(src, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{name}: `src` must be a readable .npy file; got {str(src)!r}.") from err
    order = "F" if mm.flags.f_contiguous and not mm.flags.c_contiguous else "C"
    meta = (mm.shape, mm.dtype, mm.offset, order)
    del mm
    shape, dtype = meta[0], meta[1]
    if len(shape) == 0 or math.prod(shape) == 0:
        raise ValueError(f"{name}: `src` must hold a non-empty array; got shape {shape}.")

    proxy = np.zeros(tuple(min(n, 4) for n in shape), dtype)
    out_aval = jax.eval_shape(lambda v: fn(v, *args, **kwargs), proxy)
    if out_aval.shape != proxy.shape:
        raise ValueError(
            f"{name}: `fn` must return an array of its input's shape (use mode='same'); got "
            f"{out_aval.shape} for an input of shape {proxy.shape}."
        )
    plan = fn.plan(proxy, *args, **kwargs) if hasattr(fn, "plan") else None
    if not isinstance(plan, _plan.Plan) or plan.x.shape != proxy.shape:
        plan = None  # correlate2d's "valid" swap: never shape-preserving anyway
    else:
        plan = _plan.resolved(plan)  # Built kernels cropped: the true reach
    if halo is not None:
        reach, wrap = _halo_arg(name, halo, len(shape)), set()
    elif plan is not None:
        reach, wrap = _reach(plan, len(shape))
    else:
        raise ValueError(
            f"{name}: cannot find the reach of `fn` (not one of jaxconv's convolutions or "
            "filters); pass `halo=`."
        )
    buffers = workset(1 if plan is None else len(plan.terms))
    itemsize = max(np.dtype(dtype).itemsize, np.dtype(out_aval.dtype).itemsize)
    tiles = tile_shape(shape, reach, wrap, itemsize, memory_limit, buffers)
    count = math.prod(-(-n // t) for n, t in zip(shape, tiles, strict=True))

    @jax.jit
    def tile(window: jax.Array, crop: jax.Array) -> jax.Array:
        return lax.dynamic_slice(fn(window, *args, **kwargs), tuple(crop), tiles)

    with atomic_path(dst, fn=name, arg="dst") as tmp:
        # The blocks are reserved before anything is written: a memory map into a sparse file
        # dies with SIGBUS when the disk fills, a reservation fails with an OSError.
        header = io.BytesIO()
        descr = np.lib.format.dtype_to_descr(np.dtype(out_aval.dtype))
        np.lib.format.write_array_header_1_0(
            header, {"descr": descr, "fortran_order": False, "shape": shape}
        )
        out_offset = header.tell()
        nbytes = math.prod(shape) * np.dtype(out_aval.dtype).itemsize
        preallocate(tmp, out_offset + nbytes, fn=name, arg="dst")
        with open(tmp, "rb+") as f:
            f.write(header.getvalue())
        bar = tqdm.tqdm(total=count, desc=name, unit="tile", disable=None if progress else True)
        with contextlib.closing(bar):
            for out_slices, read, crop in _windows(shape, tiles, reach, wrap):
                block = _read(src, meta, read)
                result = np.asarray(tile(jnp.asarray(block), np.asarray(crop)))
                del block
                mo = np.memmap(tmp, out_aval.dtype, "r+", out_offset, shape)
                mo[out_slices] = result
                del mo, result
                bar.update()
    return dst
