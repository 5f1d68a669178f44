"""jaxconv: differentiable, jit-compiled convolution and filter fitting in JAX."""

__version__ = "0.1.0"

# Public re-exports, one block per private module. `__all__` is kept sorted at the end.
# convolution engine
from jaxconv._boundary import BOUNDARY_ALIASES
from jaxconv._convolve import (
    choose_method,
    convolve,
    convolve2d,
    correlate,
    correlate2d,
    correlate_padded,
)

# data and I/O (plotting is the public submodule `jaxconv.plot`, imported on demand)
from jaxconv._io import default_image, load_image, save_json_atomic, save_npz_atomic
