"""Mappings: the ways a graph is enacted. Each is a plugin under the ``dare.mappings`` group."""

from __future__ import annotations

from importlib.metadata import entry_points

from engine.errors import MappingNotFound
from engine.mappings.base import Mapping

__all__ = ["Mapping", "available", "get_mapping"]

_BUILTIN = {
    "simple": "engine.mappings.simple:SimpleMapping",
    "multi": "engine.mappings.multi:MultiMapping",
    "mpi": "engine.mappings.mpi:MpiMapping",
    "dynamic": "engine.mappings.dynamic:DynamicMapping",
    "redis": "engine.mappings.redis_queue:RedisMapping",
    "kafka": "engine.mappings.kafka_queue:KafkaMapping",
}


def _registry() -> dict[str, str]:
    found = dict(_BUILTIN)
    for entry in entry_points(group="dare.mappings"):
        found[entry.name] = entry.value
    return found


def available() -> dict[str, str]:
    """Return ``{name: description}`` of every installed mapping."""
    return {name: get_mapping(name).description for name in sorted(_registry())}


def get_mapping(name: str) -> Mapping:
    """Instantiate the mapping registered as ``name``.

    Raises
    ------
    MappingNotFound
        Naming the available mappings.
    """
    registry = _registry()
    if name not in registry:
        raise MappingNotFound(name, list(registry))
    module_name, _, attribute = registry[name].partition(":")
    module = __import__(module_name, fromlist=[attribute])
    cls = getattr(module, attribute)
    return cls()
