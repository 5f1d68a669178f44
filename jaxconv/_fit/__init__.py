"""Fitting: models, the solver loop, least squares, uncertainty, Gaussian blur estimation."""
