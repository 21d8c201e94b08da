"""The dask mapping's own behaviour: how it finds its cluster, and how it fails.

Its semantics (exactness, groupings, lifecycle, errors) are the shared suites' (the ``mapping``
fixture runs them on a session LocalCluster); these tests use real LocalClusters too.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import socket
import time
from collections import Counter
from typing import Any

import pytest

import engine
from engine import EngineError, IterativePE, WorkerDied, WorkflowGraph
from engine.routing import GroupBy
from engine.testing import Collect, ListSource

pytestmark = pytest.mark.dask


class KillParent(IterativePE):
    """Kill the process that started this one (a partition's Dask worker) on unit ``bad``."""

    def __init__(self, bad: int) -> None:
        super().__init__(instances=1)
        self.bad = bad

    def apply(self, data: Any) -> Any:
        if data == self.bad:
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(30)  # the kernel ends this process with its parent
        return data


class KillSelf(IterativePE):
    def apply(self, data: Any) -> Any:
        if data == 500:
            os.kill(os.getpid(), signal.SIGKILL)
        return data


class Key(IterativePE):
    def apply(self, data: int) -> tuple[int, int]:
        return (data % 7, data)


class CountPerKey(IterativePE):
    """Count units per key; emit the counts at flush (one instance must see a whole key)."""

    def setup(self) -> None:
        self.counts: Counter[int] = Counter()

    def apply(self, data: tuple[int, int]) -> None:
        self.counts[data[0]] += 1

    def flush(self) -> None:
        for key, count in self.counts.items():
            self.write("output", (key, count))


def chain(*pes: Any) -> WorkflowGraph:
    graph = WorkflowGraph()
    for upstream, downstream in itertools.pairwise(pes):
        graph.connect(upstream, "output", downstream, "input")
    return graph


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_address_given_as_option_is_used(dask_scheduler, monkeypatch):
    monkeypatch.delenv("DARE_DASK_SCHEDULER")
    graph = chain(ListSource(range(1000)), Collect())
    result = engine.run(graph, mapping="dask", workers=2, scheduler=dask_scheduler)
    assert sorted(result.output("Collect")) == list(range(1000))
    assert result.summary.workers == 2


def test_a_client_passed_in_is_used_and_left_open(dask_scheduler):
    from distributed import Client

    with Client(dask_scheduler) as client:
        result = engine.run(chain(ListSource(range(100)), Collect()), mapping="dask",
                            workers=2, scheduler=client)
        assert sorted(result.output("Collect")) == list(range(100))
        assert client.status == "running"
        assert len(client.scheduler_info()["workers"]) == 2  # the cluster is left as it was


def test_more_partitions_than_dask_workers_keep_group_by_exact(dask_scheduler):
    """Five partitions on two Dask workers: each key counted whole, by one instance."""
    key, count = Key(), CountPerKey(instances=3)
    graph = WorkflowGraph()
    graph.connect(ListSource(range(7000)), "output", key, "input")
    graph.connect(key, "output", count, "input", grouping=GroupBy(0))
    result = engine.run(graph, mapping="dask", workers=5)
    assert sorted(result.output("CountPerKey")) == [(k, 1000) for k in range(7)]
    assert result.summary.workers == 5
    assert len(result.summary.partitions) == 5


def test_an_unreachable_scheduler_fails_at_once_naming_it_and_how_to_set_it(monkeypatch):
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("DARE_DASK_SCHEDULER", address)
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        engine.run(chain(ListSource([1]), Collect()), mapping="dask", workers=2)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert message.startswith(f"cannot reach the Dask scheduler at {address} (")
    assert "--option scheduler=ADDRESS or DARE_DASK_SCHEDULER=ADDRESS" in message


def test_a_scheduler_of_the_wrong_kind_is_refused():
    with pytest.raises(EngineError) as caught:
        engine.run(chain(ListSource([1]), Collect()), mapping="dask", workers=2, scheduler=8786)
    assert str(caught.value) == ("option scheduler must be an address, a distributed.Client or "
                                 "a Dask cluster object, not int")


def test_a_partition_process_killed_is_reported_within_seconds(dask_scheduler):
    graph = chain(ListSource(range(2000)), KillSelf(id="dies", instances=1), Collect())
    started = time.monotonic()
    with pytest.raises(WorkerDied) as caught:
        engine.run(graph, mapping="dask", workers=2, batch_size=16)
    assert time.monotonic() - started < 30  # an error, never a hang (loaded machines)
    assert "dies[0]" in caught.value.hosted
    assert caught.value.exitcode == -signal.SIGKILL
    assert "was killed by signal SIGKILL" in str(caught.value)


@pytest.mark.slow
def test_a_killed_dask_worker_fails_the_run_clearly():
    """A Dask worker killed under a partition (its own cluster: the session's stays whole)."""
    from distributed import LocalCluster

    graph = chain(ListSource(range(2000)), KillParent(700), Collect())
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster:
        started = time.monotonic()
        with pytest.raises(WorkerDied) as caught:
            engine.run(graph, mapping="dask", workers=2, batch_size=16, scheduler=cluster)
        assert time.monotonic() - started < 30
    assert "KillParent[0]" in caught.value.hosted
    message = str(caught.value)
    assert message.startswith(f"worker process {caught.value.worker} ")
    assert "its Dask worker tcp://127.0.0.1:" in message and "left the cluster" in message
