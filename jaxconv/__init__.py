"""jaxconv: differentiable, jit-compiled convolution and filter fitting in JAX.

Public names are imported on first use (PEP 562): ``import jaxconv`` alone does not import JAX,
so the command line can reject a bad flag in milliseconds, before JAX starts. ``jaxconv.convolve``
and ``from jaxconv import convolve`` work as usual; the submodules ``jaxconv.plot`` and
``jaxconv.sharded`` are imported by ``import jaxconv.plot`` or on first attribute access.
"""

import importlib as _importlib

__version__ = "0.1.0"

# Where each public name lives, one block per private module: the single source of `__all__`.
_EXPORTS = {
    # convolution engine
    "BOUNDARY_ALIASES": "_boundary",
    "choose_method": "_convolve",
    "convolve": "_convolve",
    "convolve2d": "_convolve",
    "convolve_separable": "_convolve",
    "correlate": "_convolve",
    "correlate2d": "_convolve",
    "correlate_padded": "_convolve",
    "OutOfMemoryError": "_memory",
    # data and I/O
    "default_image": "_io",
    "enable_compilation_cache": "_compile_cache",
    "load_image": "_io",
    "save_json_atomic": "_io",
    "save_npz_atomic": "_io",
    # kernels: Gaussians from a covariance, derivatives of Gaussians, classic edge kernels
    "box_kernel": "_edges",
    "laplace_kernel": "_edges",
    "prewitt_kernel": "_edges",
    "scharr_kernel": "_edges",
    "sobel_kernel": "_edges",
    "gaussian_kernel": "_gaussian",
    "gaussian_truncation": "_gaussian",
    "multivariate_normal_pdf": "_gaussian",
    "normal_pdf": "_gaussian",
    "uniform_pdf": "_gaussian",
    "difference_of_gaussians_kernel": "_gaussian_derivatives",
    "gaussian_derivative_kernel": "_gaussian_derivatives",
    "gaussian_laplace_kernel": "_gaussian_derivatives",
    "oriented_derivative_kernel": "_gaussian_derivatives",
    "Gaussian": "_gaussian",
    # filters with scipy.ndimage's semantics
    "edge_magnitude": "_edges",
    "prewitt": "_edges",
    "scharr": "_edges",
    "sobel": "_edges",
    "laplace": "_filters",
    "ndimage_convolve": "_filters",
    "ndimage_correlate": "_filters",
    "uniform_filter": "_filters",
    "gaussian_filter": "_gaussian_filters",
    "gaussian_filter1d": "_gaussian_filters",
    "gaussian_gradient_magnitude": "_gaussian_filters",
    "gaussian_laplace": "_gaussian_filters",
    # fitting: the optax loop, models, least squares, uncertainty, Gaussian blur estimation
    "FitOptions": "_fit_options",
    "FitResult": "_fit",
    "fit": "_fit",
    "fit_batch": "_fit",
    "GaussianFitResult": "_fit_gaussian",
    "fit_gaussian": "_fit_gaussian",
    "fit_gaussian_tiles": "_fit_gaussian",
    "LeastSquaresResult": "_lstsq",
    "least_squares": "_lstsq",
    "FreeKernel": "_models",
    "GaussianBlur": "_models",
    "GaussianBlurParams": "_models",
    "GaussianEdge": "_models",
    "GaussianEdgeParams": "_models",
    "KernelModel": "_models",
    "Model": "_models",
    "PredictionModel": "_models",
    "spectral_covariance": "_spectral",
    "Uncertainty": "_uncertainty",
    "cramer_rao_bound": "_uncertainty",
    "standard_errors": "_uncertainty",
}
_SUBMODULES = ("plot", "sharded")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(_importlib.import_module(f"jaxconv.{_EXPORTS[name]}"), name)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f"jaxconv.{name}")
    else:
        raise AttributeError(f"module 'jaxconv' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
