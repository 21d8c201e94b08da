"""PEs for tests and examples: list source, collector, a PE failing on cue, lifecycle probes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from engine.pe import IterativePE, ProcessingElement, ProducerPE
from engine.sinks import Collect  # the production sink, re-exported for tests and examples

__all__ = ["Collect", "FailOn", "HoldsFile", "Lifecycle", "ListSource"]


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


class HoldsFile(ProcessingElement):
    """Hold a file open from setup to teardown: a probe of the PE lifecycle across processes.

    Setup opens ``FOLDER/PE-INSTANCE-PID-RANDOM.open``; teardown closes it and renames it
    ``.closed``, writing how many units the instance processed and whether it had flushed.
    Units pass through to ``output``; the unit equal to ``bad`` raises ``ValueError``.
    """

    INPUTS = ("input",)
    OUTPUTS = ("output",)

    def __init__(self, folder: str | Path, bad: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.folder = str(folder)
        self.bad = bad

    def setup(self) -> None:
        """Open the instance's file."""
        name = f"{self.id}-{self.instance}-{os.getpid()}-{uuid.uuid4().hex[:8]}.open"
        self.path = Path(self.folder) / name
        self.handle: TextIO = self.path.open("w")
        self.units = 0
        self.flushed = False

    def process(self, port: str | None, data: Any) -> dict[str, Any]:
        """Pass the unit on (or fail on ``bad``)."""
        if data == self.bad:
            raise ValueError(f"unit {data!r} refused")
        self.units += 1
        return {"output": data}

    def flush(self) -> None:
        """Note that the flush ran."""
        self.flushed = True

    def teardown(self) -> None:
        """Close the file and rename it ``.closed``."""
        self.handle.write(f"{self.units} {int(self.flushed)}\n")
        self.handle.close()
        self.path.rename(self.path.with_suffix(".closed"))
