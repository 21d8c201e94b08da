"""The modules of dare_cli.ra.simulate.specfem: each imports alone, and they form no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dare_cli.ra.simulate.specfem as specfem

PACKAGE = "dare_cli.ra.simulate.specfem"
FOLDER = Path(specfem.__file__).parent
MODULES = sorted(p.stem for p in FOLDER.glob("*.py") if p.stem != "__init__")


def package_imports(path: Path) -> set[str]:
    """Modules of the package that a module imports (also under TYPE_CHECKING or in functions)."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y / from . import x
                names = ([node.module] if node.module
                         else [alias.name for alias in node.names])
                imported.update(name.split(".")[0] for name in names)
            elif node.module and node.module.startswith(PACKAGE + "."):
                imported.add(node.module[len(PACKAGE) + 1:].split(".")[0])
            elif node.module == PACKAGE:
                imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    imported.add(alias.name[len(PACKAGE) + 1:].split(".")[0])
    return imported & set(MODULES)


def test_the_split_modules_exist():
    for name in ("errors", "utm", "parfile", "mesh", "resolution", "checks", "velocity_model",
                 "sizing", "estimate"):
        assert name in MODULES


def test_no_import_cycle():
    graph = {name: package_imports(FOLDER / f"{name}.py") for name in MODULES}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycle = [*path[path.index(other):], other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, [*path, other])
        state[name] = 2

    for name in MODULES:
        if name not in state:
            visit(name, [name])
    # the base modules import nothing of the package
    assert graph["errors"] == set()
    assert graph["utm"] == set()
    assert graph["parfile"] == {"errors"}


#: Imports one module of the package in a fresh interpreter without running the package's
#: ``__init__`` (which imports every module and so would hide a module that works only after
#: another has been imported), then lists the package's modules that got imported.
ISOLATED = """
import importlib, importlib.util, sys, types
package = types.ModuleType({package!r})
package.__path__ = [{folder!r}]
sys.modules[{package!r}] = package
importlib.import_module({package!r} + "." + {name!r})
print(sorted(m for m in sys.modules if m.startswith({package!r} + ".")))
"""


@pytest.mark.parametrize("name", MODULES)
def test_each_module_imports_alone(name):
    code = ISOLATED.format(package=PACKAGE, folder=str(FOLDER), name=name)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    loaded = {m.rsplit(".", 1)[1] for m in ast.literal_eval(result.stdout.strip())}
    assert name in loaded


def test_public_names_still_come_from_the_package():
    for name in specfem.__all__:
        assert hasattr(specfem, name), name
