"""Conventions of the public API (in the spirit of dm-pix's api_test)."""

import inspect

import jaxconv

SUBMODULES = {"io", "plot", "sharded"}
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


def _module_attribute_assignments(source: str, modules: set[str]) -> list[str]:
    """``<module>.<attr> = ...`` (or ``+=``, or a ``setattr``) where `<module>` is imported from
    the jaxconv package in `source`."""
    import ast

    tree = ast.parse(source)
    local = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "jaxconv":
            local |= {a.asname or a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.Import):
            # `import jaxconv.x` binds `jaxconv`; `import jaxconv.x as y` binds `y`
            local |= {
                a.asname or a.name.split(".")[0]
                for a in node.names
                if a.name.split(".")[0] == "jaxconv"
            }
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and node.args
        ):
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        for t in targets:
            for sub in t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]:
                base = sub
                while isinstance(base, ast.Attribute):
                    base = base.value
                if sub is not base and isinstance(base, ast.Name) and base.id in local:
                    found.append(f"line {node.lineno}: {ast.unparse(sub)}")
    return found


def test_no_module_reassigns_another_modules_attributes():
    # Plans are explicit (issue 18): no jaxconv module swaps another's functions at run time.
    from pathlib import Path

    root = Path(jaxconv.__file__).parent
    modules = {p.stem for p in root.glob("*.py")} | {p.name for p in root.iterdir() if p.is_dir()}
    offenders = {
        path.name: found
        for path in sorted(root.rglob("*.py"))
        if (found := _module_attribute_assignments(path.read_text(), modules))
    }
    assert not offenders, offenders


def test_the_module_assignment_check_sees_a_patch():
    source = "from jaxconv import _convolve, _filters\n_convolve._correlate = None\n"
    assert _module_attribute_assignments(source, {"_convolve", "_filters"}) == [
        "line 2: _convolve._correlate"
    ]
    source = (
        "import jaxconv._filters.ndimage\nsetattr(jaxconv._filters.ndimage, '_run', 1)\nx.y = 1\n"
    )
    assert len(_module_attribute_assignments(source, {"_filters"})) == 1


def test_planned_functions_expose_their_plan_builder():
    import numpy as np

    from jaxconv._conv.plan import Plan

    plan = jaxconv.gaussian_filter.plan(np.ones((8, 8)), 1.0)
    assert isinstance(plan, Plan) and plan.program and len(plan.terms[0]) == 2
    assert inspect.signature(jaxconv.gaussian_filter.plan) == inspect.signature(
        jaxconv.gaussian_filter
    )
    plan = jaxconv.correlate2d.plan(np.ones((2, 2)), np.ones((3, 4)), "valid")
    assert plan.flip == (-2, -1) and not plan.program
    assert not hasattr(jaxconv.convolve_separable, "plan")  # two engine calls: not one plan
