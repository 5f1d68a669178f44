"""Regenerate ``data/chelsea.txt`` from scikit-image's "chelsea" photograph.

scikit-image is needed only here, not at run time. Run from the repository root::

    python data/make_data.py

The photo (300 x 451 RGB, uint8) is converted to gray with the ITU-R BT.601 luma weights that
``jaxconv.load_image`` also uses, scaled to [0, 1], resized with anti-aliasing to 200 x 300 and
written with six decimals, so that ``np.loadtxt("data/chelsea.txt")`` reads it back as in the seed
notebook.
"""

import argparse
import hashlib
from pathlib import Path

import numpy as np
import skimage
from skimage import data, transform

SHAPE = (200, 300)
LUMA_601 = np.array([0.299, 0.587, 0.114])


def make_chelsea(shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Returns the chelsea photo as float64 gray in [0, 1] with the given shape."""
    rgb = data.chelsea().astype(np.float64) / 255.0
    gray = rgb @ LUMA_601
    small = transform.resize(gray, shape, order=1, anti_aliasing=True, mode="reflect")
    return np.clip(small, 0.0, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent / "chelsea.txt"
    parser.add_argument("--out", type=Path, default=default_out, help="output text file")
    args = parser.parse_args()

    image = make_chelsea()
    np.savetxt(args.out, image, fmt="%.6f")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    loaded = np.loadtxt(args.out)
    print(f"scikit-image {skimage.__version__}, numpy {np.__version__}")
    print(f"wrote {args.out}: shape {loaded.shape}, min {loaded.min():.6f}, max {loaded.max():.6f}")
    print(f"size {args.out.stat().st_size} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
