"""Files appear whole or not at all (the engine's :mod:`engine.files`, re-exported)."""

from __future__ import annotations

from engine.files import atomic_path, write_atomic

__all__ = ["atomic_path", "write_atomic"]
