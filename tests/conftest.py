"""Shared fixtures: the ``mapping`` fixture runs a test under every installed mapping."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import engine
from engine.mappings import available
from engine.monitor import FORMAT, monitoring_record, parse_record
from engine.observe import RunResult
from engine.optimise import Optimisation

# helper modules whose asserts show pytest's diffs, as test modules' do
pytest.register_assert_rewrite("climate_helpers", "docker_engine")

#: Worker counts tried for every parallel mapping: 1 and 2 force partitions, 5 replicates.
PARALLEL_WORKERS = (1, 2, 5)
#: Mappings that need an outside launcher (mpi: see the block below) or a service (a real
#: server, or dask's LocalCluster, started once per session by a fixture); their cases carry
#: the marker of that name.
SERVICES = {"mpi", "redis", "kafka", "dask"}


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
            quiet = {k: v for k, v in options.items() if k != "observers"}
            try:
                first = engine.run(graph, inputs, mapping=self.name, workers=self.workers,
                                   **quiet)
                data = monitoring_record(first)
            except engine.EngineError:  # a failing graph: an empty record (nothing fused)
                data = {"format": FORMAT, "pes": {}, "connections": []}
            record = parse_record(data)
        return Optimisation(self.optimise or "", record)

    def __str__(self) -> str:
        name = self.name if self.workers is None else f"{self.name}-{self.workers}"
        return name if self.optimise is None else f"{name}-{self.optimise}"


def _cases() -> list[MappingCase]:
    cases = []
    for name in available():
        if name == "mpi":
            continue
        if name in SERVICES:
            case = MappingCase(name, 2)
            cases.append(pytest.param(case, marks=getattr(pytest.mark, name), id=str(case)))
        elif name == "simple":
            cases.append(MappingCase(name, None))
        else:
            cases.extend(MappingCase(name, n) for n in PARALLEL_WORKERS)
    # The static optimisations only move PE instances: every semantic test must still hold.
    cases += [MappingCase("multi", 3, "staging"), MappingCase("multi", 4, "naive")]
    # --- mpi (owned by the mpi mapping) ---
    # Under mpiexec (mpiexec -n N python -m pytest -m mpi tests/engine) the semantic tests
    # also run on the mpi mapping, one worker per rank; the marker selects them.
    from engine.mappings.mpi import mpi_world_size  # reads the environment, no mpi4py

    if mpi_world_size() > 1:
        mpi = MappingCase("mpi", None)
        cases.append(pytest.param(mpi, marks=pytest.mark.mpi, id=str(mpi)))
    # --- end mpi ---
    return cases


def pytest_configure(config: pytest.Config) -> None:
    """The mappings' start-up hooks, as ``dare`` runs them first thing.

    Under mpiexec, ranks above 0 become the mpi mapping's servants; rank 0 runs pytest.
    """
    from engine.mappings import run_startup_hooks

    run_startup_hooks()


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set an environment variable (a mapping's default service address) for a while."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 for the session; the redis mapping's default URL."""
    from redis_server import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as server, \
            _environment("DARE_REDIS_URL", server.url):
        yield server.url


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-protocol broker (Tansu) on 127.0.0.1; the kafka mapping's default."""
    from kafka_broker import kafka_broker

    with kafka_broker(tmp_path_factory.mktemp("kafka")) as broker, \
            _environment("DARE_KAFKA_BOOTSTRAP", broker.bootstrap):
        yield broker.bootstrap


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """A real dask.distributed LocalCluster (2 worker processes); the dask mapping's default."""
    import logging

    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            _environment("DARE_DASK_SCHEDULER", cluster.scheduler_address):
        yield cluster.scheduler_address


@pytest.fixture(params=_cases(), ids=str)
def mapping(request: pytest.FixtureRequest) -> MappingCase:
    """Every mapping (and worker count) the semantic tests must pass on."""
    case: MappingCase = request.param
    if case.name == "redis":
        request.getfixturevalue("redis_url")
    elif case.name == "kafka":
        request.getfixturevalue("kafka_bootstrap")
    elif case.name == "dask":
        request.getfixturevalue("dask_scheduler")
    return case


@pytest.fixture
def same(mapping: MappingCase) -> Callable[[list[Any], list[Any]], bool]:
    """Compare outputs: exactly for ordered mappings, as sorted lists otherwise."""

    def compare(actual: list[Any], expected: list[Any]) -> bool:
        """Assert here (pytest shows the diff of the two lists), and return True."""
        if mapping.ordered:
            assert actual == expected, f"outputs differ on {mapping} (in order)"
        else:
            assert sorted(actual, key=repr) == sorted(expected, key=repr), \
                f"outputs differ on {mapping} (compared sorted)"
        return True

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
