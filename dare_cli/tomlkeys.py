"""Messages for the keys of TOML configuration files, worded the same by every loader.

>>> unknown_key("job.toml [run]", "worker", ("inputs", "mapping", "workers"))
"job.toml [run]: unknown key 'worker' (did you mean 'workers'?); known keys: inputs, mapping, \
workers"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["suggestion", "unknown_key", "unknown_table"]


def suggestion(key: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the known name closest to ``key``, or ``""``."""
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(where: str, key: str, known: Iterable[str]) -> str:
    """``<where>: unknown key 'k' (did you mean ...?); known keys: a, b``."""
    names = list(known)
    return f"{where}: unknown key {key!r}{suggestion(key, names)}; known keys: {', '.join(names)}"


def unknown_table(where: str, key: str, tables: Iterable[str]) -> str:
    """``<where>: unknown table [k] (did you mean ...?); tables: [a], [b]``."""
    names = list(tables)
    listed = ", ".join(f"[{name}]" for name in names)
    return f"{where}: unknown table [{key}]{suggestion(key, names)}; tables: {listed}"
