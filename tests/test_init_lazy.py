"""``import jaxconv`` is lazy (PEP 562): no JAX until a public name is used; every name resolves."""

import importlib
import subprocess
import sys

import pytest

import jaxconv


def _python(code):
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_import_jaxconv_does_not_import_jax():
    code = (
        "import sys, jaxconv; print('jax' in sys.modules, jaxconv.__version__); "
        "from jaxconv import convolve; print('jax' in sys.modules, convolve.__module__)"
    )
    assert _python(code) == ["False", jaxconv.__version__, "True", "jaxconv._conv.convolve"]


def test_every_public_name_resolves():
    assert jaxconv.__all__ == sorted(jaxconv._EXPORTS)  # one table, sorted
    for name in jaxconv.__all__:
        value = getattr(jaxconv, name)
        module = sys.modules[f"jaxconv.{jaxconv._EXPORTS[name]}"]
        assert value is getattr(module, name), name
        assert name in vars(jaxconv)  # cached: later look-ups skip __getattr__
    assert set(jaxconv.__all__) <= set(dir(jaxconv))


def test_star_import_and_submodules():
    names = {}
    exec("from jaxconv import *", names)
    assert set(jaxconv.__all__) <= set(names)
    for name in jaxconv._SUBMODULES:
        assert importlib.import_module(f"jaxconv.{name}") is getattr(jaxconv, name)
    assert jaxconv.plot.__name__ == "jaxconv.plot"
    assert jaxconv.sharded.__name__ == "jaxconv.sharded"
    # Attribute access imports a submodule too, in a fresh interpreter.
    assert _python("import jaxconv; print(jaxconv.plot.__name__)") == ["jaxconv.plot"]


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'jaxconv' has no attribute 'convolve3d'"):
        jaxconv.convolve3d  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'convolve3d'"):
        exec("from jaxconv import convolve3d", {})
    assert not hasattr(jaxconv, "_convolve3d")
