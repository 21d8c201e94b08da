"""dispel4py's API, mapped onto the engine, so that dispel4py workflow modules run unchanged.

A module written for dispel4py imports ``dispel4py.core``, ``dispel4py.base`` and
``dispel4py.workflow_graph``. Inside :func:`aliases` those imports resolve to the classes here,
which are engine PEs and graphs underneath, so ``dare run module.py`` enacts them on any
mapping. What is mapped (see ``docs/dispel4py-api.md`` for dispel4py's own semantics):

==============================================  ==============================================
dispel4py                                       engine
==============================================  ==============================================
``inputconnections``/``outputconnections``,     input/output ports (read when the graph is
``_add_input(name, grouping)``, ``_add_output``  built, so dicts written directly work too)
grouping ``[i, j]`` / ``'global'`` / ``'all'``  ``GroupBy(i, j)`` / ``AllToOne`` / ``OneToAll``
``preprocess`` / ``process(inputs)`` /          ``setup`` / one call per unit with
``postprocess``                                 ``{port: data}`` / ``flush``
``numprocesses`` (> 1), ``single = True``       requested instances (1 means "let the mapping
                                                decide", as in dispel4py's multi mapping)
``-i N`` on a root PE                           ``process({})`` N times
``WorkflowGraph`` with ``inputmappings``/       :class:`engine.graph.Composite`, flattened
``outputmappings`` (``CompositePE``, chains)
==============================================  ==============================================

Differences on purpose: group-by uses the engine's stable hash (dispel4py's ``hash()`` splits
string keys differently in each process), unconnected outputs are returned by every mapping
(dispel4py's multi mapping drops them), ``rank`` is the instance index of the PE, and
``log`` goes to the ``dispel4py.<id>`` logger (stderr) instead of stdout.
"""

from __future__ import annotations

import functools
import logging
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from engine.errors import EngineError, GraphError
from engine.graph import Composite
from engine.graph import WorkflowGraph as _EngineGraph
from engine.pe import Port, ProcessingElement
from engine.routing import AllToOne, GroupBy, Grouping, OneToAll, Shuffle

__all__ = [
    "GROUPING",
    "NAME",
    "TYPE",
    "WRITER",
    "BasePE",
    "CompositePE",
    "ConsumerPE",
    "GenericPE",
    "IterativePE",
    "ProducerPE",
    "SimpleFunctionPE",
    "WorkflowGraph",
    "aliases",
    "create_iterative_chain",
]

NAME = "name"
TYPE = "type"
GROUPING = "grouping"
WRITER = "writer"

#: A per-unit handler, ``handle(port, data)`` (``port`` is ``None`` for a source iteration).
Kernel = Callable[[str | None, Any], None]


def translate_grouping(value: Any, pe: str, port: str) -> Grouping | None:
    """Translate a dispel4py grouping into the engine's (``None`` if there is none)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, (list, tuple)):
        if all(isinstance(key, (int, str)) and not isinstance(key, bool) for key in value):
            return GroupBy(*value)
    elif value == "global":
        return AllToOne()
    elif value == "all":
        return OneToAll()
    elif value in ("shuffle", "round_robin"):
        return Shuffle()
    raise GraphError(
        f"PE {pe!r} port {port!r}: unknown dispel4py grouping {value!r} "
        "(expected a list of indices, 'global' or 'all')"
    )


class GenericPE(ProcessingElement):
    """dispel4py's ``GenericPE``: override ``process(inputs)`` (and pre/postprocess)."""

    def __init__(self, numprocesses: int = 1) -> None:
        self.inputconnections: dict[str, dict[str, Any]] = {}
        self.outputconnections: dict[str, dict[str, Any]] = {}
        self.numprocesses = numprocesses
        ProcessingElement.__init__(self)
        self.wrapper = "simple"
        self.pickleIgnore: list[str] = list(vars(self))
        self.name = type(self).__name__

    # -- ports, read from dispel4py's connection dictionaries ------------------------------
    @property
    def input_ports(self) -> dict[str, Port]:
        """Input ports, from ``inputconnections``."""
        return {
            name: Port(name, translate_grouping(spec.get(GROUPING), self._display_id, name))
            for name, spec in self.inputconnections.items()
        }

    @input_ports.setter
    def input_ports(self, value: dict[str, Port]) -> None:
        for name, port in value.items():
            self.inputconnections[name] = {NAME: name}
            if port.grouping is not None:
                self.inputconnections[name][GROUPING] = port.grouping

    @property
    def output_ports(self) -> dict[str, Port]:
        """Output ports, from ``outputconnections`` (a grouping there is a graph error)."""
        ports = {}
        for name, spec in self.outputconnections.items():
            grouping = translate_grouping(spec.get(GROUPING), self._display_id, name)
            ports[name] = Port(name, grouping)
        return ports

    @output_ports.setter
    def output_ports(self, value: dict[str, Port]) -> None:
        for name in value:
            self.outputconnections[name] = {NAME: name}

    @property
    def instances(self) -> int | None:
        """Instances asked for: ``numprocesses`` when above 1, one if ``single``."""
        if getattr(self, "single", False):
            return 1
        return self.numprocesses if self.numprocesses > 1 else None

    @instances.setter
    def instances(self, value: int | None) -> None:
        if value is not None:
            self.numprocesses = value

    def _default_id(self) -> str:
        return str(getattr(self, "name", type(self).__name__))

    @property
    def rank(self) -> int:
        """Index of this instance (dispel4py: the process rank)."""
        return self.instance

    # -- dispel4py's API ---------------------------------------------------------------------
    def _add_input(
        self, name: str, grouping: Any = None, tuple_type: Sequence[str] | None = None
    ) -> None:
        self.inputconnections[name] = {NAME: name}
        if grouping:
            self.inputconnections[name][GROUPING] = grouping
        if tuple_type:
            self.inputconnections[name][TYPE] = tuple_type

    def _add_output(self, name: str, tuple_type: Sequence[str] | None = None) -> None:
        self.outputconnections[name] = {NAME: name}
        if tuple_type:
            self.outputconnections[name][TYPE] = tuple_type

    def set_input_types(self, types: dict[str, Any]) -> None:
        """Kept for API compatibility; types are not used."""

    def get_output_types(self) -> dict[str, Any]:
        """Types declared on the outputs."""
        return {name: spec.get(TYPE) for name, spec in self.outputconnections.items()}

    setInputTypes = set_input_types
    getOutputTypes = get_output_types

    def _preprocess(self) -> None:
        """Override for set-up."""

    def preprocess(self) -> None:
        """Called once per instance before any data."""
        self._preprocess()

    def _process(self, data: Any) -> Any:
        """Override in subclasses of the base patterns."""

    def process(self, inputs: dict[str, Any]) -> Any:  # type: ignore[override]
        """Process ``{input_name: data}``; return ``{output_name: data}`` or ``None``."""
        return self._process(inputs)

    def _postprocess(self) -> None:
        """Override for tear-down."""

    def postprocess(self) -> None:
        """Called once per instance after all data (may write)."""
        self._postprocess()

    def write(self, name: str, data: Any) -> None:
        """Write ``data`` to output ``name``, through ``_write`` as dispel4py does.

        During a run the mapping's emitter is bound on the instance (as ``write`` and
        ``_write``), so this method runs only in a PE that overrides ``write`` and calls it.
        """
        self._write(name, data)

    def _write(self, name: str, data: Any) -> None:
        """Emit ``data`` on output ``name`` (only during a run; the mapping binds it)."""
        raise EngineError(f"PE {self._display_id!r} wrote to {name!r} outside a run")

    def log(self, message: Any) -> None:
        """Log ``message`` as dispel4py PEs do (to the ``dispel4py.<id>`` logger)."""
        logging.getLogger(f"dispel4py.{self._display_id}").info("%s", message)

    # -- the engine's lifecycle, in dispel4py's terms ----------------------------------------
    def setup(self) -> None:
        """Bind ``_write`` to the mapping's emitter, then run ``preprocess``.

        A PE whose class overrides ``write`` gets it back (the mapping bound its emitter over
        it), so that, as in dispel4py, every unit it writes or returns goes through it.
        """
        emit = vars(self).get("write")
        if emit is not None:
            self._write = emit  # type: ignore[method-assign]
            if type(self).write is not GenericPE.write:
                del self.write
        self.preprocess()

    @property
    def _handle(self) -> Kernel:
        """The per-unit handler ``handle(port, data)``, made afresh for this instance.

        Mappings read it once, after ``preprocess``, when they wire the instance (and
        ``run_iterations`` once per source), so the methods it calls are bound then. The
        shapes (:class:`IterativePE`, :class:`ConsumerPE`, :class:`ProducerPE`) give a
        shorter handler when their ``process`` is dispel4py's own (see :meth:`_kernel`).
        """
        return self._kernel()

    def _kernel(self) -> Kernel:
        """Return ``handle(port, data)``: ``process({port: data})``, then write the result.

        A root PE (``port is None``) gets ``{}`` for ``-i N``, or the dict given with ``-d``.
        """
        process = self.process
        write = self.write

        def handle(port: str | None, data: Any) -> None:
            if port is None:
                result = process(data if isinstance(data, dict) else {})
            else:
                result = process({port: data})
            if result:
                for name, value in result.items():
                    write(name, value)

        return handle

    def _direct(self, shape: type[GenericPE]) -> bool:
        """Whether ``shape.process`` runs unchanged and ``input`` is the only input."""
        return (
            type(self).process is shape.process
            and "process" not in vars(self)
            and list(self.inputconnections) == ["input"]
        )

    def _flush(self) -> None:
        self.postprocess()


class BasePE(GenericPE):
    """dispel4py's ``BasePE``: named inputs/outputs, or ``input0..``/``output0..``."""

    INPUT_NAME = "input"
    OUTPUT_NAME = "output"

    def __init__(
        self,
        inputs: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
        num_inputs: int = 0,
        num_outputs: int = 0,
    ) -> None:
        GenericPE.__init__(self)
        for i in range(num_inputs):
            self._add_input(f"{BasePE.INPUT_NAME}{i}")
        for i in range(num_outputs):
            self._add_output(f"{BasePE.OUTPUT_NAME}{i}")
        for name in inputs or ():
            self._add_input(name)
        for name in outputs or ():
            self._add_output(name)


class IterativePE(GenericPE):
    """One input ``input``, one output ``output``; override ``_process(data)``."""

    INPUT_NAME = "input"
    OUTPUT_NAME = "output"

    def __init__(self) -> None:
        GenericPE.__init__(self)
        self._add_input(IterativePE.INPUT_NAME)
        self._add_output(IterativePE.OUTPUT_NAME)

    def process(self, inputs: dict[str, Any]) -> Any:  # type: ignore[override]
        """Call ``_process`` on the input's data; emit its result unless ``None``."""
        result = self._process(inputs[IterativePE.INPUT_NAME])
        if result is not None:
            return {self.OUTPUT_NAME: result}
        return None

    def _kernel(self) -> Kernel:
        """Call ``_process(data)`` and write its result, without the ``inputs`` dicts.

        Only when ``process`` is this one and ``input`` is the only input; the result is
        written as ``process`` would have returned it (``None`` writes nothing).
        """
        if not self._direct(IterativePE):
            return GenericPE._kernel(self)
        apply = self._apply()
        write = self.write
        output = self.OUTPUT_NAME

        def handle(port: str | None, data: Any) -> None:
            result = apply(data)
            if result is not None:
                write(output, result)

        return handle

    def _apply(self) -> Callable[[Any], Any]:
        """The function the short handler calls per unit: ``_process``."""
        return self._process


class ProducerPE(GenericPE):
    """A root PE with output ``output``; ``_process(inputs)`` per iteration."""

    OUTPUT_NAME = "output"

    def __init__(self) -> None:
        GenericPE.__init__(self)
        self._add_output(ProducerPE.OUTPUT_NAME)

    def process(self, inputs: dict[str, Any]) -> Any:  # type: ignore[override]
        """Call ``_process`` with the iteration's inputs; emit its result unless ``None``."""
        result = self._process(inputs)
        if result is not None:
            return {self.OUTPUT_NAME: result}
        return None

    def _kernel(self) -> Kernel:
        """Call ``_process(inputs)`` and write its result (if ``process`` is this one)."""
        if type(self).process is not ProducerPE.process or "process" in vars(self):
            return GenericPE._kernel(self)
        produce = self._process
        write = self.write
        output = self.OUTPUT_NAME

        def handle(port: str | None, data: Any) -> None:
            if port is None:
                result = produce(data if isinstance(data, dict) else {})
            else:
                result = produce({port: data})
            if result is not None:
                write(output, result)

        return handle


class ConsumerPE(GenericPE):
    """One input ``input``, no outputs; override ``_process(data)``."""

    INPUT_NAME = "input"

    def __init__(self) -> None:
        GenericPE.__init__(self)
        self._add_input(ConsumerPE.INPUT_NAME)

    def process(self, inputs: dict[str, Any]) -> None:  # type: ignore[override]
        """Call ``_process`` on the input's data."""
        self._process(inputs[ConsumerPE.INPUT_NAME])

    def _kernel(self) -> Kernel:
        """Call ``_process(data)`` directly (if ``process`` is this one, one input ``input``)."""
        if not self._direct(ConsumerPE):
            return GenericPE._kernel(self)
        consume = self._process

        def handle(port: str | None, data: Any) -> None:
            consume(data)

        return handle


class SimpleFunctionPE(IterativePE):
    """An iterative PE calling ``compute_fn(data, **params)``."""

    INPUT_NAME = IterativePE.INPUT_NAME
    OUTPUT_NAME = IterativePE.OUTPUT_NAME

    def __init__(
        self,
        compute_fn: Callable[..., Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        IterativePE.__init__(self)
        if compute_fn:
            self.name = f"PE_{compute_fn.__name__}"
        self.compute_fn = compute_fn
        self.params = params or {}

    def _process(self, data: Any) -> Any:
        if self.compute_fn:
            return self.compute_fn(data, **self.params)
        return None

    def _apply(self) -> Callable[[Any], Any]:
        """``compute_fn`` itself (with ``params`` bound) when ``_process`` is this one."""
        fn = self.compute_fn
        if type(self)._process is not SimpleFunctionPE._process or "_process" in vars(self):
            return self._process
        if not fn:
            return _nothing
        return functools.partial(fn, **self.params) if self.params else fn


def _nothing(data: Any) -> None:
    return None


class WorkflowGraph(_EngineGraph):
    """dispel4py's ``WorkflowGraph``; a graph with ``inputmappings`` is a composite PE."""

    def __init__(self) -> None:
        _EngineGraph.__init__(self, name="workflow")
        self._composites: dict[int, Composite] = {}

    def _as_vertex(self, node: Any) -> Any:
        if isinstance(node, _EngineGraph):
            if not (hasattr(node, "inputmappings") or hasattr(node, "outputmappings")):
                raise GraphError("a WorkflowGraph used as a PE needs inputmappings/outputmappings")
            wrapper = self._composites.get(id(node))
            if wrapper is None:
                name = getattr(node, "name", "workflow")
                wrapper = Composite(
                    node,
                    inputs=self._inner(node, getattr(node, "inputmappings", {})),
                    outputs=self._inner(node, getattr(node, "outputmappings", {})),
                    id=name if name != "workflow" else type(node).__name__,
                )
                self._composites[id(node)] = wrapper
            return wrapper
        return node

    @staticmethod
    def _inner(graph: Any, mappings: dict[str, tuple[Any, str]]) -> dict[str, tuple[Any, str]]:
        """Exposed ports of a composite, with nested graphs replaced by their wrappers."""
        convert = graph._as_vertex if isinstance(graph, WorkflowGraph) else (lambda n: n)
        return {name: (convert(inner), port) for name, (inner, port) in mappings.items()}

    def add(self, n: Any) -> Any:
        """Add a PE or a composite graph."""
        return _EngineGraph.add(self, self._as_vertex(n))

    def connect(
        self, from_node: Any, from_connection: str, to_node: Any, to_connection: str,
        grouping: Grouping | None = None,
    ) -> None:
        """Connect ``from_node.from_connection`` to ``to_node.to_connection``."""
        _EngineGraph.connect(self, self._as_vertex(from_node), from_connection,
                             self._as_vertex(to_node), to_connection, grouping)

    def build(self) -> Any:
        """Build afresh: dispel4py modules may change ``numprocesses`` after connecting."""
        self._built = None
        return _EngineGraph.build(self)

    def get_contained_objects(self) -> list[Any]:
        """The PEs of the flattened graph, in topological order."""
        return [node.pe for node in self.build()]

    getContainedObjects = get_contained_objects

    def flatten(self) -> WorkflowGraph:
        """Composites are flattened when the graph is built; kept for API compatibility."""
        return self


class CompositePE(WorkflowGraph):
    """A graph used as a PE, populated by ``create_graph(self, **params)``."""

    def __init__(
        self, create_graph: Callable[..., None] | None = None, params: dict[str, Any] | None = None
    ) -> None:
        WorkflowGraph.__init__(self)
        self.inputmappings: dict[str, tuple[Any, str]] = {}
        self.outputmappings: dict[str, tuple[Any, str]] = {}
        if create_graph:
            create_graph(self, **(params or {}))

    def _map_input(self, input_name: str, internal_pe: Any, internal_input: str) -> None:
        self.inputmappings[input_name] = (internal_pe, internal_input)

    def _map_output(self, output_name: str, internal_pe: Any, internal_output: str) -> None:
        self.outputmappings[output_name] = (internal_pe, internal_output)


def create_iterative_chain(
    functions: Sequence[Any],
    function_pe_class: type[IterativePE] = SimpleFunctionPE,
    name_prefix: str = "PE_",
    name_suffix: str = "",
    FunctionPE_class: type[IterativePE] | None = None,
) -> WorkflowGraph:
    """Chain functions (``fn`` or ``(fn, params)``) into a composite of function PEs."""
    cls = FunctionPE_class or function_pe_class
    graph = WorkflowGraph()
    graph.name = "chain"
    first = previous = None
    for description in functions:
        if isinstance(description, (tuple, list)):
            function, params = description[0], description[1]
        else:
            function, params = description, {}
        pe = cls()
        pe.compute_fn = function  # type: ignore[attr-defined]
        pe.params = params  # type: ignore[attr-defined]
        pe.name = name_prefix + function.__name__ + name_suffix
        if previous is None:
            first = pe
            graph.add(pe)
        else:
            graph.connect(previous, IterativePE.OUTPUT_NAME, pe, IterativePE.INPUT_NAME)
        previous = pe
    if first is None:
        raise GraphError("create_iterative_chain needs at least one function")
    graph.inputmappings = {"input": (first, IterativePE.INPUT_NAME)}  # type: ignore[attr-defined]
    graph.outputmappings = {"output": (previous, IterativePE.OUTPUT_NAME)}  # type: ignore[attr-defined]
    return graph


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name, f"dare's dispel4py compatibility layer ({__name__})")
    module.__dict__.update(attributes)
    return module


def _alias_modules() -> dict[str, types.ModuleType]:
    core = _module("dispel4py.core", GenericPE=GenericPE, NAME=NAME, TYPE=TYPE,
                   GROUPING=GROUPING, WRITER=WRITER)
    base = _module("dispel4py.base", GenericPE=GenericPE, BasePE=BasePE, IterativePE=IterativePE,
                   ProducerPE=ProducerPE, ConsumerPE=ConsumerPE,
                   SimpleFunctionPE=SimpleFunctionPE, CompositePE=CompositePE,
                   create_iterative_chain=create_iterative_chain, WorkflowGraph=WorkflowGraph,
                   NAME=NAME)
    workflow_graph = _module("dispel4py.workflow_graph", WorkflowGraph=WorkflowGraph)
    package = _module("dispel4py", core=core, base=base, workflow_graph=workflow_graph)
    package.__path__ = []  # a package, so that submodule imports resolve through sys.modules
    return {"dispel4py": package, "dispel4py.core": core, "dispel4py.base": base,
            "dispel4py.workflow_graph": workflow_graph}


@contextmanager
def aliases() -> Iterator[None]:
    """Make ``import dispel4py...`` resolve to this layer while the block runs.

    Whatever was in ``sys.modules`` under those names (the real dispel4py, say) is put back
    afterwards; classes imported inside the block keep pointing here.
    """
    replacement = _alias_modules()
    saved = {name: sys.modules.get(name) for name in replacement}
    sys.modules.update(replacement)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
