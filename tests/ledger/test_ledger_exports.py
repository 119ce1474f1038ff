"""Each ledger module's ``__all__`` is exactly its own public top-level names."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest

from deconflict.ledger import canonical, entries, errors, export, keys, rfc9162, sth, verify


def _defined_public_names(module: ModuleType) -> set[str]:
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("module", [rfc9162, canonical, entries, errors, export, keys, sth, verify])
def test_all_lists_exactly_the_public_names(module: ModuleType) -> None:
    assert sorted(module.__all__) == sorted(_defined_public_names(module))
    for name in module.__all__:
        assert hasattr(module, name), name
