"""Conventions of the public API (in the spirit of dm-pix's api_test)."""

import inspect

import jaxconv

SUBMODULES = {"plot", "sharded"}
# Options that never change what is computed on which data, only how: always keyword-only.
KEYWORD_ONLY = {
    "axes", "border", "callback", "checkpoint", "discretization", "dtype", "grid", "key", "loss",
    "mesh", "method", "normalize", "optimizer", "precision", "progress", "shape", "spacing",
    "spec", "steps", "tol", "truncate",
}  # fmt: skip


def _public():
    return [getattr(jaxconv, name) for name in jaxconv.__all__]


def test_all_is_sorted_and_lists_every_public_name():
    assert list(jaxconv.__all__) == sorted(jaxconv.__all__)
    _public()  # the package imports lazily: resolve every name first, then look at what it holds
    public = {n for n in vars(jaxconv) if not n.startswith("_")} - SUBMODULES
    assert set(jaxconv.__all__) == public


def test_every_public_name_is_documented():
    for obj in _public():
        if callable(obj):
            assert (obj.__doc__ or "").strip(), obj


def test_options_are_keyword_only():
    for obj in _public():
        if not inspect.isfunction(obj):
            continue
        for p in inspect.signature(obj).parameters.values():
            if p.name in KEYWORD_ONLY:
                assert p.kind is p.KEYWORD_ONLY, f"{obj.__name__}: `{p.name}` must be keyword-only"


def test_scipy_twins_say_which_call_they_reproduce():
    twins = {
        "convolve": "scipy.signal.convolve",
        "correlate": "scipy.signal.correlate",
        "convolve2d": "scipy.signal.convolve2d",
        "correlate2d": "scipy.signal.correlate2d",
        "gaussian_filter": "scipy.ndimage.gaussian_filter",
        "sobel": "scipy.ndimage.sobel",
        "prewitt": "scipy.ndimage.prewitt",
        "uniform_filter": "scipy.ndimage.uniform_filter",
        "laplace": "scipy.ndimage.laplace",
    }
    for name, reference in twins.items():
        assert reference in getattr(jaxconv, name).__doc__, name
