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
    "BOUNDARY_ALIASES": "_conv.boundary",
    "choose_method": "_conv.convolve",
    "convolve": "_conv.convolve",
    "convolve2d": "_conv.convolve",
    "convolve_separable": "_conv.convolve",
    "correlate": "_conv.convolve",
    "correlate2d": "_conv.convolve",
    "correlate_padded": "_conv.convolve",
    "OutOfMemoryError": "_conv.memory",
    # data and I/O
    "default_image": "io",
    "enable_compilation_cache": "_compile_cache",
    "load_image": "io",
    "save_json_atomic": "io",
    "save_npz_atomic": "io",
    # kernels: Gaussians from a covariance, derivatives of Gaussians, classic edge kernels
    "box_kernel": "_filters.edges",
    "laplace_kernel": "_filters.edges",
    "prewitt_kernel": "_filters.edges",
    "scharr_kernel": "_filters.edges",
    "sobel_kernel": "_filters.edges",
    "gaussian_kernel": "_kernels.gaussian",
    "gaussian_truncation": "_kernels.gaussian",
    "multivariate_normal_pdf": "_kernels.gaussian",
    "normal_pdf": "_kernels.gaussian",
    "uniform_pdf": "_kernels.gaussian",
    "difference_of_gaussians_kernel": "_kernels.derivatives",
    "gaussian_derivative_kernel": "_kernels.derivatives",
    "gaussian_laplace_kernel": "_kernels.derivatives",
    "oriented_derivative_kernel": "_kernels.derivatives",
    "Gaussian": "_kernels.gaussian",
    # filters with scipy.ndimage's semantics
    "edge_magnitude": "_filters.edges",
    "prewitt": "_filters.edges",
    "scharr": "_filters.edges",
    "sobel": "_filters.edges",
    "laplace": "_filters.ndimage",
    "ndimage_convolve": "_filters.ndimage",
    "ndimage_correlate": "_filters.ndimage",
    "uniform_filter": "_filters.ndimage",
    "gaussian_filter": "_filters.gaussian",
    "gaussian_filter1d": "_filters.gaussian",
    "gaussian_gradient_magnitude": "_filters.gaussian",
    "gaussian_laplace": "_filters.gaussian",
    # fitting: the optax loop, models, least squares, uncertainty, Gaussian blur estimation
    "FitOptions": "_fit.options",
    "FitResult": "_fit.api",
    "fit": "_fit.api",
    "fit_batch": "_fit.api",
    "GaussianFitResult": "_fit.gaussian",
    "fit_gaussian": "_fit.gaussian",
    "fit_gaussian_tiles": "_fit.gaussian",
    "LeastSquaresResult": "_fit.lstsq",
    "least_squares": "_fit.lstsq",
    "FreeKernel": "_fit.models",
    "GaussianBlur": "_fit.models",
    "GaussianBlurParams": "_fit.models",
    "GaussianEdge": "_fit.models",
    "GaussianEdgeParams": "_fit.models",
    "KernelModel": "_fit.models",
    "Model": "_fit.models",
    "PredictionModel": "_fit.models",
    "spectral_covariance": "_fit.spectral",
    "Uncertainty": "_fit.uncertainty",
    "cramer_rao_bound": "_fit.uncertainty",
    "standard_errors": "_fit.uncertainty",
}
_SUBMODULES = ("io", "plot", "sharded")

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
