"""jaxconv: differentiable, jit-compiled convolution and filter fitting in JAX."""

__version__ = "0.1.0"

# Public re-exports, one block per private module. `__all__` is kept sorted at the end.
# convolution engine
from jaxconv._boundary import BOUNDARY_ALIASES
from jaxconv._convolve import (
    choose_method,
    convolve,
    convolve2d,
    convolve_separable,
    correlate,
    correlate2d,
    correlate_padded,
)

# data and I/O (plotting is the public submodule `jaxconv.plot`, imported on demand)
from jaxconv._io import default_image, load_image, save_json_atomic, save_npz_atomic

# isort: split
# kernels: Gaussians from a covariance, derivatives of Gaussians, classic edge kernels
from jaxconv._edges import box_kernel, laplace_kernel, prewitt_kernel, scharr_kernel, sobel_kernel
from jaxconv._gaussian import (
    gaussian_kernel,
    gaussian_truncation,
    multivariate_normal_pdf,
    normal_pdf,
    uniform_pdf,
)
from jaxconv._gaussian_derivatives import (
    difference_of_gaussians_kernel,
    gaussian_derivative_kernel,
    gaussian_laplace_kernel,
    oriented_derivative_kernel,
)
from jaxconv._gaussian_param import Gaussian

# isort: split
# filters with scipy.ndimage's semantics
from jaxconv._edges import edge_magnitude, prewitt, scharr, sobel
from jaxconv._filters import laplace, ndimage_convolve, ndimage_correlate, uniform_filter
from jaxconv._gaussian_filters import (
    gaussian_filter,
    gaussian_filter1d,
    gaussian_gradient_magnitude,
    gaussian_laplace,
)

# isort: split
# fitting: the optax loop, models, least squares, uncertainty, Gaussian blur estimation
from jaxconv._fit import FitResult, fit, fit_batch
from jaxconv._fit_gaussian import GaussianFitResult, fit_gaussian, fit_gaussian_tiles
from jaxconv._lstsq import LeastSquaresResult, least_squares
from jaxconv._models import (
    FreeKernel,
    GaussianBlur,
    GaussianBlurParams,
    GaussianEdge,
    GaussianEdgeParams,
    KernelModel,
    Model,
    PredictionModel,
)
from jaxconv._spectral import spectral_covariance
from jaxconv._uncertainty import Uncertainty, cramer_rao_bound, standard_errors

__all__ = [
    "BOUNDARY_ALIASES",
    "FitResult",
    "FreeKernel",
    "Gaussian",
    "GaussianBlur",
    "GaussianBlurParams",
    "GaussianEdge",
    "GaussianEdgeParams",
    "GaussianFitResult",
    "KernelModel",
    "LeastSquaresResult",
    "Model",
    "PredictionModel",
    "Uncertainty",
    "box_kernel",
    "choose_method",
    "convolve",
    "convolve2d",
    "convolve_separable",
    "correlate",
    "correlate2d",
    "correlate_padded",
    "cramer_rao_bound",
    "default_image",
    "difference_of_gaussians_kernel",
    "edge_magnitude",
    "fit",
    "fit_batch",
    "fit_gaussian",
    "fit_gaussian_tiles",
    "gaussian_derivative_kernel",
    "gaussian_filter",
    "gaussian_filter1d",
    "gaussian_gradient_magnitude",
    "gaussian_kernel",
    "gaussian_laplace",
    "gaussian_laplace_kernel",
    "gaussian_truncation",
    "laplace",
    "laplace_kernel",
    "least_squares",
    "load_image",
    "multivariate_normal_pdf",
    "ndimage_convolve",
    "ndimage_correlate",
    "normal_pdf",
    "oriented_derivative_kernel",
    "prewitt",
    "prewitt_kernel",
    "save_json_atomic",
    "save_npz_atomic",
    "scharr",
    "scharr_kernel",
    "sobel",
    "sobel_kernel",
    "spectral_covariance",
    "standard_errors",
    "uniform_filter",
    "uniform_pdf",
]
