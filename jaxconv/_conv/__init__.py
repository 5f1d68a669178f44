"""The convolution engine: boundaries, the correlate primitive, methods and their cost model."""
