"""PEs for tests and examples: list source, collector, a PE failing on cue, a lifecycle probe."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.pe import IterativePE, ProcessingElement, ProducerPE

__all__ = ["Collect", "FailOn", "Lifecycle", "ListSource"]


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


class FailOn(IterativePE):
    """Pass units through, but raise ZeroDivisionError on the unit equal to ``bad``."""

    def __init__(self, bad: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bad = bad

    def apply(self, data: Any) -> Any:
        """Return the unit, or fail on ``bad``."""
        if data == self.bad:
            return 1 / 0
        return data


class Lifecycle(ProcessingElement):
    """Count setup, process and flush calls per instance; report them when flushed.

    Emits ``(instance, n_instances, setups, flushes, units)`` once per instance.
    """

    INPUTS = ("input",)
    OUTPUTS = ("output",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setups = self.flushes = self.units = 0

    def setup(self) -> None:
        """Count the call."""
        self.setups += 1

    def process(self, port: str | None, data: Any) -> None:
        """Count the unit (setup must have run once, flush not yet)."""
        assert self.setups == 1 and self.flushes == 0
        self.units += 1

    def flush(self) -> dict[str, Any]:
        """Report the counts."""
        self.flushes += 1
        return {"output": (self.instance, self.n_instances, self.setups, self.flushes,
                           self.units)}
