"""Test configuration: float64 on, warnings are errors (see pyproject), bounded hypothesis."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax
from hypothesis import settings

jax.config.update("jax_enable_x64", True)

settings.register_profile("jaxconv", deadline=None, max_examples=25, derandomize=True)
settings.load_profile("jaxconv")
