"""The layout rules of the code, checked by reading its syntax trees (nothing is imported).

* No module imports a private name (``_x``) from another package: ``dare_cli.ra``,
  ``dare_cli.climate``, ``dare_cli.commands``, the top-level ``dare_cli`` modules and ``engine``
  each keep their helpers to themselves; what two packages share lives in a public module.
* No production module imports :mod:`engine.testing` (list sources and sinks are for tests).
* Every function of ``dare_cli/`` and ``engine/`` is shorter than :data:`MAX_LINES` lines,
  from its ``def`` to its last line, docstring included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dare_cli", "engine")
MAX_LINES = 80

#: Functions over the limit while their owners split them, with their length: an entry may
#: only shrink, then leave; a new long function, or one growing, fails. Empty: none is.
TOO_LONG_TODAY: dict[str, int] = {}


def production_modules() -> list[Path]:
    """Every Python file of the packages."""
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def module_name(path: Path, root: Path = ROOT) -> str:
    """``dare_cli/ra/plots.py`` -> ``dare_cli.ra.plots``; an ``__init__`` is its package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """The package a module belongs to for these rules.

    >>> package_of("dare_cli.ra.simulate.specfem.mesh"), package_of("dare_cli.render")
    ('dare_cli.ra', 'dare_cli')
    >>> package_of("engine.mappings.multi")
    'engine'
    """
    parts = module.split(".")
    if parts[0] == "dare_cli" and len(parts) > 2:
        return ".".join(parts[:2])
    if parts[0] == "dare_cli" and len(parts) == 2 and (ROOT / "dare_cli" / parts[1]).is_dir():
        return module
    return parts[0]


def is_module(name: str) -> bool:
    """Whether the dotted ``name`` is a module or package of this project."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def absolute(node: ast.ImportFrom, module: str, path: Path) -> str:
    """The module an ``from ... import`` reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base.pop()
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def private_imports(path: Path, root: Path = ROOT) -> Iterator[str]:
    """``line: what`` for every private name this module takes from another package."""
    module = module_name(path, root)
    home = package_of(module)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}  # local name -> a module of another package
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = absolute(node, module, path)
            if not source.startswith(PACKAGES) or package_of(source) == home:
                continue
            for name in node.names:
                if name.name.startswith("_") and not name.name.startswith("__"):
                    yield f"{node.lineno}: from {source} import {name.name}"
                elif is_module(f"{source}.{name.name}"):
                    aliases[name.asname or name.name] = f"{source}.{name.name}"
        elif isinstance(node, ast.Import):
            for name in node.names:
                if name.name.startswith(PACKAGES) and package_of(name.name) != home:
                    if name.asname:
                        aliases[name.asname] = name.name
                    for part in name.name.split(".")[1:]:
                        if part.startswith("_") and not part.startswith("__"):
                            yield f"{node.lineno}: import {name.name}"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            yield f"{node.lineno}: {aliases[node.value.id]}.{node.attr}"


def engine_testing_imports(path: Path, root: Path = ROOT) -> Iterator[str]:
    """``line: what`` for every import of :mod:`engine.testing` in this module."""
    module = module_name(path, root)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            source = absolute(node, module, path)
            names = [source] + [f"{source}.{n.name}" for n in node.names]
        elif isinstance(node, ast.Import):
            names = [n.name for n in node.names]
        else:
            continue
        if "engine.testing" in names:
            yield f"{node.lineno}: imports engine.testing"


def function_lengths(path: Path, root: Path = ROOT) -> Iterator[tuple[str, int]]:
    """``(file::qualified name, lines)`` of every function of a module, nested ones too."""
    relative = path.relative_to(root).as_posix()

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield f"{relative}::{name}", (child.end_lineno or child.lineno) - child.lineno + 1
                yield from visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}{child.name}.")
            else:
                yield from visit(child, prefix)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")), "")


def test_the_checks_see_what_they_look_for(tmp_path):
    """The readers find a private import, a testing import and a function's length."""
    sample = tmp_path / "dare_cli" / "climate" / "sample.py"
    sample.parent.mkdir(parents=True)
    text = ("from dare_cli.ra.config import _suggest\nfrom dare_cli.climate import _own\n"
            "from dare_cli.ra import plots\nfrom engine.testing import ListSource\n"
            "def f():\n    return plots._save\n")
    sample.write_text(text, encoding="utf-8")
    assert list(private_imports(sample, tmp_path)) == [
        "1: from dare_cli.ra.config import _suggest", "6: dare_cli.ra.plots._save"]
    assert list(engine_testing_imports(sample, tmp_path)) == ["4: imports engine.testing"]
    assert list(function_lengths(sample, tmp_path)) == [("dare_cli/climate/sample.py::f", 2)]


def test_no_module_imports_another_packages_private_names():
    found = [f"{path.relative_to(ROOT)}:{where}" for path in production_modules()
             for where in private_imports(path)]
    assert not found, "private names taken from another package:\n" + "\n".join(found)


def test_no_production_module_imports_engine_testing():
    found = [f"{path.relative_to(ROOT)}:{where}" for path in production_modules()
             if path.name != "testing.py" or path.parent.name != "engine"
             for where in engine_testing_imports(path)]
    assert not found, "engine.testing is for tests:\n" + "\n".join(found)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_function_is_shorter_than_the_limit(package):
    lengths = dict(length for path in production_modules()
                   if path.relative_to(ROOT).parts[0] == package
                   for length in function_lengths(path))
    too_long = {name: lines for name, lines in lengths.items() if lines >= MAX_LINES}
    grown = [f"{name}: {lines} lines (allowed while it is split: {TOO_LONG_TODAY[name]})"
             for name, lines in too_long.items()
             if name in TOO_LONG_TODAY and lines > TOO_LONG_TODAY[name]]
    new = [f"{name}: {lines} lines" for name, lines in too_long.items()
           if name not in TOO_LONG_TODAY]
    assert not grown + new, (f"functions of {MAX_LINES} lines or more:\n"
                             + "\n".join(grown + new))


def test_the_allow_list_only_names_long_functions():
    """An entry whose function was split (or renamed) leaves the list."""
    lengths = dict(length for path in production_modules() for length in function_lengths(path))
    stale = [name for name in TOO_LONG_TODAY if lengths.get(name, 0) < MAX_LINES]
    assert not stale, "split or gone, remove from TOO_LONG_TODAY: " + ", ".join(stale)
