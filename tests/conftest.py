"""Shared fixtures: the ``mapping`` fixture runs a test under every installed mapping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import engine
from engine.mappings import available
from engine.monitor import monitoring_record, parse_record
from engine.observe import RunResult
from engine.optimise import Optimisation

#: Worker counts tried for every parallel mapping: 1 and 2 force partitions, 5 replicates.
PARALLEL_WORKERS = (1, 2, 5)
#: Mappings that need an outside launcher or service run in their own marked suites.
SEPARATE = {"mpi": "mpi", "redis": "redis"}


@dataclass(frozen=True)
class MappingCase:
    """One mapping with one worker count (and, for ``multi``, an optional optimisation)."""

    name: str
    workers: int | None
    optimise: str | None = None

    @property
    def ordered(self) -> bool:
        """Whether outputs come in a deterministic order (only ``simple``)."""
        return self.name == "simple"

    def run(self, graph: Any, inputs: Any = None, **options: Any) -> RunResult:
        if self.optimise is not None:
            options["optimisation"] = self._optimisation(graph, inputs, options)
        return engine.run(graph, inputs, mapping=self.name, workers=self.workers, **options)

    def _optimisation(self, graph: Any, inputs: Any, options: dict[str, Any]) -> Any:
        """The optimisation, from the record of a first, default run (``naive`` needs one)."""
        record = None
        if self.optimise == "naive":
            first = engine.run(graph, inputs, mapping=self.name, workers=self.workers, **options)
            record = parse_record(monitoring_record(first))
        return Optimisation(self.optimise or "", record)

    def __str__(self) -> str:
        name = self.name if self.workers is None else f"{self.name}-{self.workers}"
        return name if self.optimise is None else f"{name}-{self.optimise}"


def _cases() -> list[MappingCase]:
    cases = []
    for name in available():
        if name in SEPARATE:
            continue
        if name == "simple":
            cases.append(MappingCase(name, None))
        else:
            cases.extend(MappingCase(name, n) for n in PARALLEL_WORKERS)
    # The static optimisations only move PE instances: every semantic test must still hold.
    cases += [MappingCase("multi", 3, "staging"), MappingCase("multi", 4, "naive")]
    return cases


@pytest.fixture(params=_cases(), ids=str)
def mapping(request: pytest.FixtureRequest) -> MappingCase:
    """Every mapping (and worker count) the semantic tests must pass on."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def same(mapping: MappingCase) -> Callable[[list[Any], list[Any]], bool]:
    """Compare outputs: exactly for ordered mappings, as sorted lists otherwise."""

    def compare(actual: list[Any], expected: list[Any]) -> bool:
        if mapping.ordered:
            return actual == expected
        return sorted(actual, key=repr) == sorted(expected, key=repr)

    return compare


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """No network, and cartopy's data folders empty: any download attempt fails loudly."""
    import socket
    import urllib.request

    import cartopy
    import cartopy.io

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(cartopy.io, "urlopen", refuse)
    for key in ("data_dir", "pre_existing_data_dir", "cache_dir"):
        empty = tmp_path / "cartopy" / key
        empty.mkdir(parents=True)
        monkeypatch.setitem(cartopy.config, key, empty)
    return tmp_path / "cartopy"
