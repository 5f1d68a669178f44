"""Kernels: Gaussians from a covariance, their discretisations and derivatives."""
