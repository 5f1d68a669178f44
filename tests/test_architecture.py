"""The package's layering, checked from its source: imports run one way, and no cycles.

``ARCHITECTURE.md`` describes the layers. Every ``import`` of a jaxconv module (at the top of a
module or inside a function) is read with :mod:`ast`; a module may import from a lower layer or
from its own subpackage, never from a higher layer, and the module graph has no cycles. (That no
module patches another at run time is checked in ``test_api.py``.)
"""

import ast
import pathlib

import pytest

import jaxconv

PACKAGE = pathlib.Path(jaxconv.__file__).parent

# Layer of each top-level module or subpackage; lower numbers never import higher ones.
LAYERS = {
    "_util": 0,
    "_linalg": 0,
    "_compile_cache": 0,
    "io": 0,
    "_conv": 1,
    "_kernels": 2,
    "_filters": 3,
    "_fit": 4,
    "_parallel": 4,
    "plot": 5,
    "sharded": 5,
    "_cli": 6,
    "__main__": 7,
}


def _modules() -> dict[str, pathlib.Path]:
    """``{"jaxconv._fit.loop": path, ...}`` for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(("jaxconv", *parts))] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The jaxconv module `name` refers to (a module, or a name inside one), if any."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, tree: ast.AST) -> set[str]:
    found = set()
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name) if name.startswith("jaxconv") else None
            if target and target != module and target != "jaxconv":
                found.add(target)
    return found


GRAPH = {m: _imports(m, ast.parse(p.read_text())) for m, p in MODULES.items()}


def _layer(module: str) -> tuple[str, int]:
    top = module.split(".")[1] if "." in module else module
    return top, LAYERS[top]


def test_every_module_has_a_layer():
    unknown = sorted({m.split(".")[1] for m in MODULES if "." in m} - set(LAYERS))
    assert not unknown, f"modules without a layer in LAYERS: {unknown}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "jaxconv"))
def test_imports_run_downwards(module):
    top, layer = _layer(module)
    for target in GRAPH[module]:
        other, other_layer = _layer(target)
        assert other == top or other_layer < layer, (
            f"{module} (layer {layer}) imports {target} (layer {other_layer})"
        )


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
