"""The ``simple`` mapping: every PE instance in this process, depth-first, deterministic.

Each emitted unit is processed by its consumers at once (depth-first), so memory stays bounded
by the graph's depth rather than by the number of units in flight, and the order of outputs is
deterministic. Flushes run in topological order, so a PE flushes after all its upstream
instances have. PEs asking for several instances get them (routed by their groupings exactly
as in parallel mappings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.errors import PEError
from engine.graph import Graph, WorkflowGraph
from engine.mappings.base import Enactment, Mapping, Prepared, collect_outputs
from engine.observe import Observer
from engine.partition import InputSpec, build_plan
from engine.routing import make_router
from engine.runtime import (
    Deliver,
    InstanceRunner,
    clock,
    fan_out,
    tearing_down,
)

__all__ = ["SimpleMapping"]


class SimpleMapping(Mapping):
    """Sequential enactment in the calling process, in a deterministic order."""

    name = "simple"
    options = ("timing",)
    description = "one process, depth-first, deterministic order (debugging, small runs)"

    def prepare(
        self,
        graph: Graph | WorkflowGraph,
        inputs: InputSpec,
        workers: int | None,
        options: dict[str, Any],
    ) -> Prepared:
        """Plan one instance per PE (more where a PE asks); ``workers`` is ignored."""
        return Prepared(build_plan(graph, inputs, workers=None))

    def enact(
        self, prepared: Prepared, observers: Sequence[Observer], options: dict[str, Any]
    ) -> Enactment:
        """Run every instance here, depth-first.

        With ``timing=True`` each call's exclusive time is measured (about 0.3 µs a unit);
        without it, per-PE times cover setup, source iterations and flush only.
        """
        plan = prepared.plan
        exec_graph = plan.graph
        runners = {
            (node.id, i): InstanceRunner(node, i, plan.instances[node.id])
            for node in exec_graph
            for i in range(plan.instances[node.id])
        }
        outputs, collectors = collect_outputs(exec_graph)
        timing = bool(options.get("timing", False))
        counters: list[tuple[InstanceRunner, Any]] = []
        nested = [0.0]
        if timing:
            for runner in runners.values():
                runner.nested = nested

        def deliver_to(runner: InstanceRunner, port: str, sender: str) -> Deliver:
            if timing:
                deliver, count = _timed_deliver(runner, port, sender, nested)
            else:
                deliver, count = _deliver(runner, port, sender)
            counters.append((runner, count))
            return deliver

        with tearing_down(runners.values()):
            for runner in runners.values():
                runner.setup()
            # Wired after setup: the kernels bind the methods a setup may have replaced.
            for (node_id, instance), runner in runners.items():
                for edge in exec_graph.outgoing(node_id):
                    count = plan.instances[edge.dst]
                    targets = [
                        deliver_to(runners[(edge.dst, j)], edge.dst_port, runner.label)
                        for j in range(count)
                    ]
                    router = make_router(edge.grouping, count, start=instance)
                    runner.routes[edge.src_port].append(fan_out(router, targets))
                for port, collect in collectors.get(node_id, {}).items():
                    runner.routes[port].append(collect)
            for runner in runners.values():
                runner.wire()
            for (node_id, _), runner in runners.items():
                if node_id in plan.iterations:
                    runner.run_iterations(plan.iterations[node_id], _nothing)
            for runner in runners.values():
                runner.flush()
                runner.teardown()
                if runner.node.id not in plan.iterations:
                    runner.stats.units_in = sum(
                        count() for target, count in counters if target is runner
                    )
                for observer in observers:
                    observer.instance_finished(runner.finish_stats())
        return Enactment(outputs, [runner.finish_stats() for runner in runners.values()],
                         timed=timing)


def _nothing() -> None:
    return None


def _deliver(runner: InstanceRunner, port: str, sender: str) -> tuple[Deliver, Any]:
    """Deliver units straight into ``runner`` (depth-first), counting them."""
    handle = runner.kernel()
    count = 0

    def deliver(seq: int, data: Any) -> None:
        nonlocal count
        count += 1
        try:
            handle(port, data)
        except PEError:
            raise
        except Exception as exc:
            raise runner.error(f"{sender}#{seq}", data, exc) from exc

    def counted() -> int:
        return count

    return deliver, counted


def _timed_deliver(
    runner: InstanceRunner, port: str, sender: str, nested: list[float]
) -> tuple[Deliver, Any]:
    """Like :func:`_deliver`, also adding each call's exclusive time to the instance.

    A consumer runs inside its producer's call, so each timed call subtracts the time spent
    in the calls it made (accumulated in ``nested[0]``).
    """
    handle = runner.kernel()
    stats = runner.stats
    count = 0

    def deliver(seq: int, data: Any) -> None:
        nonlocal count
        count += 1
        outer = nested[0]
        nested[0] = 0.0
        start = clock()
        try:
            handle(port, data)
        except PEError:
            raise
        except Exception as exc:
            raise runner.error(f"{sender}#{seq}", data, exc) from exc
        elapsed = clock() - start
        stats.process_seconds += elapsed - nested[0]
        nested[0] = outer + elapsed

    def counted() -> int:
        return count

    return deliver, counted
