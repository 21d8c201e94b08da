"""Groupings, and how they route a data unit to the instances of the receiving PE.

A grouping is declared on an *input* port (or on one connection) and decides which instance(s)
of the receiving PE get each data unit:

========================  ==================================================================
:class:`Shuffle`          round-robin over the instances (the default)
:class:`GroupBy`          all units with the same key go to the same instance, in every
                          process and on every machine (a stable hash of the key's canonical
                          bytes, never Python's salted ``hash()``)
:class:`AllToOne`         every unit goes to instance 0 (dispel4py's ``"global"``)
:class:`OneToAll`         every unit goes to every instance (dispel4py's ``"all"``)
========================  ==================================================================
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BROADCAST",
    "AllToOne",
    "GroupBy",
    "Grouping",
    "OneToAll",
    "Shuffle",
    "canonical_bytes",
    "make_router",
    "stable_hash",
]

#: Returned by a router when a unit goes to every instance.
BROADCAST = -1


@dataclass(frozen=True)
class Shuffle:
    """Round-robin over the receiving instances (each sender keeps its own turn)."""

    def describe(self) -> str:
        """Return a short human-readable name."""
        return "shuffle"


@dataclass(frozen=True)
class GroupBy:
    """Route by key: units whose key is equal reach the same instance.

    Parameters
    ----------
    keys
        Indices (for tuple/list data) or names (for mapping data) whose values form the key.
        One element gives the value itself as key; several give a tuple.
    """

    keys: tuple[int | str, ...]

    def __init__(self, *keys: int | str | Sequence[int | str]) -> None:
        flat: list[int | str] = []
        for key in keys:
            if isinstance(key, (int, str)):
                flat.append(key)
            else:
                flat.extend(key)
        if not flat:
            raise ValueError("GroupBy needs at least one key")
        for key in flat:
            if not isinstance(key, (int, str)) or isinstance(key, bool):
                raise TypeError(f"GroupBy keys are indices or names, not {key!r}")
        object.__setattr__(self, "keys", tuple(flat))

    def describe(self) -> str:
        """Return a short human-readable name."""
        return "group-by " + ",".join(map(str, self.keys))

    def key_of(self, data: Any) -> Hashable:
        """Extract the grouping key of one data unit."""
        if len(self.keys) == 1:
            return data[self.keys[0]]
        return tuple(data[key] for key in self.keys)


@dataclass(frozen=True)
class AllToOne:
    """Every unit goes to instance 0 of the receiving PE ("global")."""

    def describe(self) -> str:
        """Return a short human-readable name."""
        return "all-to-one"


@dataclass(frozen=True)
class OneToAll:
    """Every unit goes to every instance of the receiving PE ("broadcast")."""

    def describe(self) -> str:
        """Return a short human-readable name."""
        return "one-to-all"


Grouping = Shuffle | GroupBy | AllToOne | OneToAll


def canonical_bytes(key: Any) -> bytes:
    """Encode a grouping key as bytes that are the same in every process and on every machine.

    Equal keys give equal bytes also across numeric types (``1``, ``1.0`` and ``True`` are
    equal in Python, so they must reach the same instance). Supported: ``None``, bool, int,
    float, str, bytes, and tuples/lists of these. Other objects are encoded by ``repr``, which
    must then be deterministic (no memory addresses).

    Raises
    ------
    TypeError
        If the key's ``repr`` contains a memory address, so it cannot be stable.
    """
    parts: list[bytes] = []
    _encode(key, parts)
    return b"".join(parts)


def _encode(key: Any, out: list[bytes]) -> None:
    if key is None:
        out.append(b"N")
    elif isinstance(key, (bool, int)):
        out.append(b"i%d;" % int(key))
    elif isinstance(key, float):
        if key.is_integer():
            out.append(b"i%d;" % int(key))
        else:
            out.append(b"f" + struct.pack("<d", key))
    elif isinstance(key, str):
        data = key.encode("utf-8", "surrogatepass")
        out.append(b"s%d:" % len(data))
        out.append(data)
    elif isinstance(key, (bytes, bytearray)):
        out.append(b"b%d:" % len(key))
        out.append(bytes(key))
    elif isinstance(key, (tuple, list)):
        out.append(b"t%d:" % len(key))
        for item in key:
            _encode(item, out)
    else:
        text = repr(key)
        if " at 0x" in text:
            raise TypeError(
                f"cannot group by a {type(key).__name__}: its repr {text!r} is not stable "
                "across processes; use a str, number or tuple as key"
            )
        data = text.encode("utf-8")
        out.append(b"r%d:" % len(data))
        out.append(data)


def stable_hash(key: Any) -> int:
    """Return a 64-bit hash of ``key`` that does not depend on the process or machine."""
    digest = hashlib.blake2b(canonical_bytes(key), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def make_router(grouping: Grouping, n_instances: int, start: int = 0) -> Callable[[Any], int]:
    """Return a function mapping a payload to a destination instance index.

    Parameters
    ----------
    grouping
        The grouping of the connection.
    n_instances
        Number of instances of the receiving PE.
    start
        First instance for round-robin (senders start at different instances so that
        several senders spread their first units).

    Returns
    -------
    callable
        ``route(data) -> index``, or :data:`BROADCAST` for every instance.
    """
    if n_instances < 1:
        raise ValueError("a PE has at least one instance")
    if isinstance(grouping, OneToAll):
        if n_instances == 1:
            return lambda data: 0
        return lambda data: BROADCAST
    if isinstance(grouping, AllToOne) or n_instances == 1:
        return lambda data: 0
    if isinstance(grouping, GroupBy):
        key_of = grouping.key_of
        return lambda data: stable_hash(key_of(data)) % n_instances
    counter = [start % n_instances]

    def round_robin(data: Any) -> int:
        index = counter[0]
        counter[0] = index + 1 if index + 1 < n_instances else 0
        return index

    return round_robin
