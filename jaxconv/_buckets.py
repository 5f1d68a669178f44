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
