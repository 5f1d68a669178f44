"""Static sizes from a few buckets, so compiled programs are keyed on a bucket, not a value.

Under ``jit`` a size (a kernel's radius) is static: a program per size. Where the size follows
the data (a blur's σ), rounding it up to one of a few buckets, with the exact extent handled by
zero taps or a mask, lets every value in a bucket share one compiled program.
"""

from collections.abc import Sequence


def bucket(needed: int, limit: int, sizes: Sequence[int]) -> int:
    """The smallest of `sizes` that holds `needed` and is below `limit`; else `limit`.

    `limit` is the largest size possible (a kernel that still fits the image), the last
    bucket: a caller checks that it holds `needed`.

    Examples:
      >>> bucket(6, 127, (32, 64)), bucket(44, 127, (32, 64)), bucket(90, 127, (32, 64))
      (32, 64, 127)
      >>> bucket(6, 31, (32, 64))
      31
    """
    for size in sorted(sizes):
        if needed <= size < limit:
            return int(size)
    return int(limit)


# Kernel half-sizes of the Gaussian filters and kernels: powers of two from 8. Doubling keeps at
# most twice the taps a kernel needs (a direct sum's cost; an FFT's barely changes) and gives one
# program per octave of σ: σ from 0.5 to 16 (radius 2 to 64 at truncate 4) compiles 4. The floor
# merges every σ <= 2 into one program, where 17 taps cost about what 9 do. Powers of two, not a
# per-image rule, so that every image (and the kernel functions, which have none) shares the
# set; a kernel longer than the image is folded exactly by the engine (``fold_plan``).
RADIUS_FLOOR = 8


def radius_bucket(radius: int, floor: int = RADIUS_FLOOR) -> int:
    """The static half-size for a kernel of true half-size `radius`: a power of two >= `floor`.

    Examples:
      >>> [radius_bucket(r) for r in (0, 8, 9, 64, 65)]
      [8, 8, 16, 64, 128]
    """
    return max(int(floor), 1 << max(int(radius) - 1, 0).bit_length())
