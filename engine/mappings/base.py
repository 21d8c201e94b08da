"""The contract of a mapping, and what every mapping shares.

A mapping is a class registered as a ``dare.mappings`` entry point (pyproject.toml); nothing
else names it. Every mapping is called the same way, ``run(graph, inputs, workers=N,
observers=[...], **options)``, and :meth:`Mapping.run` is a template that owns what all of
them must do alike:

1. reject options the mapping does not declare, and values no mapping accepts
   (``batch_size`` < 1), before anything starts;
2. plan the run (:meth:`Mapping.prepare`: by default :func:`~engine.partition.build_plan` for
   ``workers`` processes, the number of CPUs when ``None``);
3. tell the observers ``run_started``; enact (:meth:`Mapping.enact`); then ``run_finished``
   with the outputs and the :class:`~engine.observe.RunSummary` it builds from the
   :class:`Enactment`, or ``run_failed`` with the exception (Ctrl-C included), which goes on.

A mapping implements only :meth:`~Mapping.enact` (where instances are placed, how units
travel, how failures and Ctrl-C stop its processes) and, when its planning differs,
:meth:`~Mapping.prepare`. Each PE instance's ``setup``/``teardown`` is the business of the
process that hosts it (:class:`engine.runtime.InstanceRunner`): ``teardown`` runs after the
instance's flush, and on failure for every instance that was set up.

A mapping that must act when a program starts (``mpi``: ranks above 0 become servants before
the program runs) registers a ``dare.startup`` entry point, which ``dare`` calls first thing
(:func:`engine.mappings.run_startup_hooks`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.errors import EngineError
from engine.graph import Graph, WorkflowGraph, check_unit_timeout
from engine.observe import InstanceStats, LinkStats, Observer, RunResult, RunSummary
from engine.partition import InputSpec, Plan, build_plan
from engine.runtime import Deliver

__all__ = [
    "COMMON_OPTIONS",
    "DEFAULT_BATCH_SIZE",
    "Enactment",
    "Mapping",
    "Prepared",
    "collect_outputs",
    "observed_run",
]

#: Units per batch on a link between processes (``multi``, ``mpi``).
DEFAULT_BATCH_SIZE = 1024
#: Options every mapping accepts: ``unit_timeout`` (seconds) is the longest one unit (or
#: source iteration) of a PE that sets no ``unit_timeout`` of its own may take.
COMMON_OPTIONS = ("unit_timeout",)


@dataclass
class Prepared:
    """A planned run, before it starts."""

    plan: Plan
    #: Instances per PE as the observers are told (default: the plan's; a pooled PE may
    #: show its pool's largest size).
    instances: dict[str, int] | None = None
    #: Anything the mapping's :meth:`Mapping.enact` needs from its :meth:`Mapping.prepare`.
    state: Any = None


@dataclass
class Enactment:
    """What an enactment returns to :meth:`Mapping.run`, which makes the summary of it."""

    outputs: dict[str, dict[str, list[Any]]]
    instances: Sequence[InstanceStats]
    #: Processes (or ranks) the run used.
    processes: int = 1
    links: Sequence[LinkStats] = ()
    #: Instance labels per process (default: the plan's partitions).
    partitions: Sequence[Sequence[str]] | None = None
    #: Whether ``process_seconds`` were measured per unit.
    timed: bool = True
    #: What an elastic mapping did with its pool (:attr:`RunSummary.scaling`).
    scaling: dict[str, Any] = field(default_factory=dict)


class Mapping:
    """A way of enacting a graph; subclasses are registered as ``dare.mappings`` entry points.

    Subclasses set :attr:`name`, :attr:`description` and :attr:`options`, and implement
    :meth:`enact` (and :meth:`prepare` when they plan otherwise); see the module's notes.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Options accepted by ``run`` besides the common ones.
    options: ClassVar[tuple[str, ...]] = ()

    def run(
        self,
        graph: Graph | WorkflowGraph,
        inputs: InputSpec = None,
        *,
        workers: int | None = None,
        observers: Iterable[Observer] = (),
        **options: Any,
    ) -> RunResult:
        """Run ``graph`` to completion and return its outputs and summary.

        Raises
        ------
        EngineError
            An option the mapping does not accept, or a value out of range; whatever the
            enactment raises (:class:`~engine.errors.PEError`, :class:`~engine.errors.WorkerDied`,
            ``KeyboardInterrupt``), after the observers were told.
        """
        self.check_options(options)
        options = dict(options)
        unit_timeout = options.pop("unit_timeout", None)
        if unit_timeout is not None:
            built = graph.build() if isinstance(graph, WorkflowGraph) else graph
            graph = built.with_unit_timeout(unit_timeout)
        observers = list(observers)
        prepared = self.prepare(graph, inputs, workers, options)
        return observed_run(
            self.name, prepared.plan, observers,
            lambda: self.enact(prepared, observers, options),
            instances=prepared.instances,
        )

    def prepare(
        self,
        graph: Graph | WorkflowGraph,
        inputs: InputSpec,
        workers: int | None,
        options: dict[str, Any],
    ) -> Prepared:
        """Plan the run for ``workers`` processes (default: the number of CPUs)."""
        plan = build_plan(graph, inputs, workers=workers or os.cpu_count() or 1,
                          optimisation=options.get("optimisation"))
        return Prepared(plan)

    def enact(
        self, prepared: Prepared, observers: Sequence[Observer], options: dict[str, Any]
    ) -> Enactment:
        """Run the planned graph to completion; report progress to ``observers``."""
        raise NotImplementedError(f"mapping {self.name!r} does not implement enact()")

    def check_options(self, options: dict[str, Any]) -> None:
        """Reject unknown options (naming those accepted) and values no mapping accepts."""
        accepted = (*self.options, *COMMON_OPTIONS)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            known = ", ".join(accepted)
            raise EngineError(
                f"mapping {self.name!r} does not accept option(s) {', '.join(unknown)} "
                f"(accepted: {known})"
            )
        check_option_values(options)


def check_option_values(options: dict[str, Any]) -> None:
    """Reject values of the common options that no mapping accepts."""
    for name in ("batch_size", "queue_depth"):
        value = options.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise EngineError(f"{name} must be an integer >= 1, not {value!r}")
    if options.get("unit_timeout") is not None:
        check_unit_timeout(options["unit_timeout"])


def observed_run(
    mapping: str,
    plan: Plan,
    observers: Sequence[Observer],
    enact: Callable[[], Enactment],
    *,
    instances: dict[str, int] | None = None,
) -> RunResult:
    """Call ``enact`` between ``run_started`` and ``run_finished``/``run_failed``.

    The summary's wall time covers ``enact`` only (not the planning).
    """
    for observer in observers:
        observer.run_started(mapping, plan.graph, dict(plan.instances if instances is None
                                                       else instances))
    started = time.perf_counter()
    try:
        done = enact()
    except BaseException as error:
        for observer in observers:
            observer.run_failed(error)
        raise
    summary = RunSummary.from_instances(
        mapping, done.processes, time.perf_counter() - started, list(plan.graph.nodes),
        list(done.instances), list(done.links),
        plan.partitions() if done.partitions is None else done.partitions,
        timed=done.timed,
    )
    summary.scaling = dict(done.scaling)
    result = RunResult(done.outputs, summary)
    for observer in observers:
        observer.run_finished(result)
    return result


def collect_outputs(
    graph: Graph,
) -> tuple[dict[str, dict[str, list[Any]]], dict[str, dict[str, Deliver]]]:
    """Make the result lists of every unconnected output, and a deliver function for each."""
    outputs: dict[str, dict[str, list[Any]]] = {}
    collectors: dict[str, dict[str, Deliver]] = {}
    for pe_id, port in graph.unconnected_outputs():
        values: list[Any] = []
        outputs.setdefault(pe_id, {})[port] = values
        collectors.setdefault(pe_id, {})[port] = _appender(values)
    return outputs, collectors


def _appender(values: list[Any]) -> Deliver:
    append = values.append

    def collect(seq: int, data: Any) -> None:
        append(data)

    return collect
