"""Graphs and drivers that ``test_mpi.py`` runs under a real ``mpiexec``.

Loaded by file by ``dare run tests/engine/mpi_cases.py:GRAPH`` (so its PEs reach the other ranks
by reference to a module loaded from a file), or run as a program,
``mpiexec -n N python tests/engine/mpi_cases.py CASE`` (its PEs then live in ``__main__`` and
reach the other ranks by value). The cases print one JSON line that the tests check.

Graphs (for ``dare run``): with 2 or 4 ranks the PE that fails or dies sits on rank 1.

* ``failing``: ``ListSource(range(50)) -> FailOn(17) 'fragile' -> Collect``;
* ``dying``: ``ListSource(range(10_000)) -> DieOn(5_000) -> Collect`` (``os._exit(3)``).

Cases (as a program):

* ``shapes``: fan-out of one source to a group-by (3 instances), an all-to-one, a one-to-all
  (2 instances) and a chain with 2 instances each, PEs emitting when they flush; run on ``mpi``
  and on ``simple``; prints both results' outputs (sorted);
* ``sequence``: ``mpi``, ``simple``, ``multi``, ``mpi`` runs of :func:`doubled_sum` one after
  the other in one program (the servants wait between the ``mpi`` runs), then ``shutdown()``
  and one more ``mpi`` run; prints the sums and that run's error.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from engine import (
    AllToOne,
    GroupBy,
    IterativePE,
    OneToAll,
    ProcessingElement,
    WorkflowGraph,
)
from engine.testing import Collect, FailOn, ListSource

#: Keys of the ``shapes`` case: item k has key k % KEYS and value k.
KEYS = 7
ITEMS = 300


class DieOn(IterativePE):
    """End the process abruptly (``os._exit(3)``) on unit ``bad``."""

    def __init__(self, bad: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bad = bad

    def apply(self, data: Any) -> Any:
        if data == self.bad:
            os._exit(3)
        return data


class CountPerKey(ProcessingElement):
    """Count units per key (``data[0]``); emit ``(key, count, instance)`` when flushed."""

    OUTPUTS = ("output",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_input("input", grouping=GroupBy(0))

    def setup(self) -> None:
        self.counts: Counter[Any] = Counter()

    def process(self, port: str | None, data: Any) -> None:
        self.counts[data[0]] += 1

    def flush(self) -> None:
        for key, count in sorted(self.counts.items()):
            self.write("output", (key, count, self.instance))


class Sum(ProcessingElement):
    """Sum the values (``data[1]``) of everything; emit ``(total, count, instance)`` at flush."""

    OUTPUTS = ("output",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_input("input", grouping=AllToOne())

    def setup(self) -> None:
        self.total = self.count = 0

    def process(self, port: str | None, data: Any) -> None:
        self.total += data[1]
        self.count += 1

    def flush(self) -> dict[str, Any]:
        return {"output": (self.total, self.count, self.instance)}


class Everyone(ProcessingElement):
    """Receives every unit on every instance; emits ``(instance, count)`` at flush."""

    OUTPUTS = ("output",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_input("input", grouping=OneToAll())

    def setup(self) -> None:
        self.count = 0

    def process(self, port: str | None, data: Any) -> None:
        self.count += 1

    def flush(self) -> dict[str, Any]:
        return {"output": (self.instance, self.count)}


class Double(IterativePE):
    def apply(self, data: int) -> int:
        return 2 * data


class Total(ProcessingElement):
    """Sum everything (one instance); emit the total at flush."""

    OUTPUTS = ("output",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_input("input", grouping=AllToOne())

    def setup(self) -> None:
        self.total = 0

    def process(self, port: str | None, data: int) -> None:
        self.total += data

    def flush(self) -> dict[str, Any]:
        return {"output": self.total}


class Tag(IterativePE):
    """``(label, value)`` for each unit."""

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label

    def apply(self, data: Any) -> Any:
        return (self.label, data[1])


def chain(*pes: Any) -> WorkflowGraph:
    graph = WorkflowGraph()
    for upstream, downstream in itertools.pairwise(pes):
        graph.connect(upstream, "output", downstream, "input")
    return graph


def shapes() -> WorkflowGraph:
    """One source fanned out to every grouping, several instances, emissions at flush."""
    graph = WorkflowGraph()
    source = ListSource([(k % KEYS, k) for k in range(ITEMS)])
    tag = Tag("t", instances=2)
    for consumer in (CountPerKey(instances=3), Sum(), Everyone(instances=2), tag):
        graph.connect(source, "output", consumer, "input")
    graph.connect(tag, "output", Collect(instances=2), "input")
    return graph


def doubled_sum(items: int) -> WorkflowGraph:
    """``ListSource(range(items)) -> Double -> Total``: ``items * (items - 1)``."""
    return chain(ListSource(range(items)), Double(), Total())


failing = chain(ListSource(range(50)), FailOn(17, id="fragile", instances=1), Collect())


class Sleepy(IterativePE):
    """Sleep ``seconds`` per unit (1e6: hang); touch ``$DARE_TEST_STARTED.<pid>`` first."""

    def __init__(self, seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds

    def apply(self, data: Any) -> Any:
        marker = os.environ.get("DARE_TEST_STARTED")
        if marker:
            Path(f"{marker}.{os.getpid()}").touch()  # one per instance
        time.sleep(self.seconds)
        return data


#: 200 units of half a second on 2 instances (on ranks above 0 under -n 3): 50 s of work.
slow = chain(ListSource(range(200)), Sleepy(0.5, instances=2), Collect())
#: Every unit hangs.
hung = chain(ListSource(range(10)), Sleepy(1e6, instances=2), Collect())
dying = chain(ListSource(range(10_000)), DieOn(5_000, instances=1), Collect())


def _sorted_outputs(result: Any) -> dict[str, list[str]]:
    return {f"{pe}.{port}": sorted(map(repr, values))
            for pe, ports in result.outputs.items() for port, values in ports.items()}


def main(case: str) -> int:
    from engine.mappings.mpi import start_servants_if_needed

    start_servants_if_needed()  # ranks > 0 serve from here on and never come back

    import engine

    if case == "shapes":
        report = {name: _sorted_outputs(engine.run(shapes(), mapping=name))
                  for name in ("mpi", "simple")}
    elif case == "sequence":
        from engine.mappings.mpi import shutdown

        report: dict[str, Any] = {"runs": [
            [name, engine.run(doubled_sum(2_000 * (k + 1)), mapping=name,
                              workers=3 if name == "multi" else None).output("Total")[0]]
            for k, name in enumerate(("mpi", "simple", "multi", "mpi"))
        ]}
        shutdown()  # the servants exit now; so does a later mpi run, with an error
        try:
            engine.run(doubled_sum(10), mapping="mpi")
        except engine.EngineError as error:
            report["after shutdown"] = str(error)
    else:
        raise SystemExit(f"unknown case {case!r}")
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
