"""Shared fixtures: the ``mapping`` fixture runs a test under every installed mapping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import engine
from engine.mappings import available
from engine.observe import RunResult

#: Worker counts tried for every parallel mapping: 1 and 2 force partitions, 5 replicates.
PARALLEL_WORKERS = (1, 2, 5)
#: Mappings that need an outside launcher or service run in their own marked suites.
SEPARATE = {"mpi": "mpi", "redis": "redis"}


@dataclass(frozen=True)
class MappingCase:
    """One mapping with one worker count."""

    name: str
    workers: int | None

    @property
    def ordered(self) -> bool:
        """Whether outputs come in a deterministic order (only ``simple``)."""
        return self.name == "simple"

    def run(self, graph: Any, inputs: Any = None, **options: Any) -> RunResult:
        return engine.run(graph, inputs, mapping=self.name, workers=self.workers, **options)

    def __str__(self) -> str:
        return self.name if self.workers is None else f"{self.name}-{self.workers}"


def _cases() -> list[MappingCase]:
    cases = []
    for name in available():
        if name in SEPARATE:
            continue
        if name == "simple":
            cases.append(MappingCase(name, None))
        else:
            cases.extend(MappingCase(name, n) for n in PARALLEL_WORKERS)
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
