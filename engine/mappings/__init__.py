"""Mappings: the ways a graph is enacted, each a plugin found through its entry point.

A mapping is registered by its distribution's metadata only (``pyproject.toml``)::

    [project.entry-points."dare.mappings"]
    mine = "my_package.my_module:MyMapping"

and, when it must act as a program starts (the ``mpi`` mapping turns ranks above 0 into
servants), a start-up hook, called by ``dare`` first thing::

    [project.entry-points."dare.startup"]
    mine = "my_package.my_module:start"

See :mod:`engine.mappings.base` for what a mapping implements.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from engine.errors import EngineError, MappingNotFound
from engine.mappings.base import Mapping

__all__ = ["Mapping", "available", "get_mapping", "run_startup_hooks"]

MAPPINGS_GROUP = "dare.mappings"
STARTUP_GROUP = "dare.startup"


def _registry() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=MAPPINGS_GROUP)}


def available() -> dict[str, str]:
    """Return ``{name: description}`` of every installed mapping."""
    return {name: get_mapping(name).description for name in sorted(_registry())}


def get_mapping(name: str) -> Mapping:
    """Instantiate the mapping registered as ``name``.

    Raises
    ------
    MappingNotFound
        Naming the available mappings.
    EngineError
        If no mapping is registered at all (dare is not installed, only on ``sys.path``), or
        the entry point does not name a :class:`Mapping`.
    """
    registry = _registry()
    if not registry:
        raise EngineError(
            f"no mapping is registered (entry points {MAPPINGS_GROUP!r}): install dare "
            "(pip install -e . in a checkout) rather than putting it on PYTHONPATH"
        )
    if name not in registry:
        raise MappingNotFound(name, list(registry))
    cls = registry[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Mapping)):
        raise EngineError(f"entry point {registry[name].value!r} of mapping {name!r} is not "
                          "a subclass of engine.mappings.Mapping")
    return cls()


def run_startup_hooks() -> None:
    """Call every ``dare.startup`` hook (at the start of a program that may run mappings).

    A hook must be cheap when it has nothing to do (``mpi``'s reads the environment); it may
    not return (an MPI servant serves runs until rank 0 ends, then exits).
    """
    for entry in sorted(entry_points(group=STARTUP_GROUP), key=lambda e: e.name):
        entry.load()()
