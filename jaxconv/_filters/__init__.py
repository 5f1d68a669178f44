"""Filters with scipy.ndimage's semantics, Gaussian filters and edge filters."""
