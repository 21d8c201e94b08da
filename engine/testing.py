"""Sources and sinks for tests and examples: run a graph on a list, collect into a list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.pe import IterativePE, ProducerPE

__all__ = ["Collect", "ListSource"]


class ListSource(ProducerPE):
    """Emit every item of a list, all in one iteration (by default), on ``output``.

    Parameters
    ----------
    items
        The items to emit.
    """

    def __init__(self, items: Iterable[Any], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items = list(items)

    def produce(self, iteration: Any) -> None:
        """Emit all items."""
        write = self.write
        for item in self.items:
            write("output", item)


class Collect(IterativePE):
    """Pass every unit through to ``output``; left unconnected, the run returns them."""

    def apply(self, data: Any) -> Any:
        """Return the unit unchanged."""
        return data
