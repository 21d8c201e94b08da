"""Processing elements (PEs): the units of work of a workflow.

A PE has named input and output ports. A mapping creates one or more *instances* of each PE
(copies of the object given to the graph) and drives each instance through the same lifecycle:

1. :meth:`ProcessingElement.setup` once;
2. :meth:`ProcessingElement.process` once per data unit, with the input port it came on;
3. :meth:`ProcessingElement.flush` once, after every upstream instance has finished; a flush
   may still emit.

A PE emits with :meth:`ProcessingElement.write` (any port, any number of times) or by
returning a mapping ``{port: value}`` from ``process``/``flush``. The common shapes
(:class:`IterativePE`, :class:`ProducerPE`, :class:`ConsumerPE`, :class:`FunctionPE` and
:func:`chain`) spare the boilerplate. Nothing here depends on a mapping.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import GeneratorType
from typing import Any, ClassVar

from engine.errors import EngineError
from engine.routing import Grouping

__all__ = [
    "ChainPE",
    "ConsumerPE",
    "FunctionPE",
    "IterativePE",
    "Port",
    "ProcessingElement",
    "ProducerPE",
    "chain",
    "function_pe",
]


@dataclass(frozen=True)
class Port:
    """A named port; inputs may carry a grouping (outputs never do)."""

    name: str
    grouping: Grouping | None = None


PortSpec = str | Port


def _as_port(spec: PortSpec) -> Port:
    return spec if isinstance(spec, Port) else Port(spec)


class ProcessingElement:
    """Base class of every PE: any number of input and output ports.

    Subclasses declare ports in the class attributes ``INPUTS``/``OUTPUTS`` (names or
    :class:`Port` objects), or per object with :meth:`add_input`/:meth:`add_output`, and
    override :meth:`process` (and optionally :meth:`setup` and :meth:`flush`).

    Parameters
    ----------
    id
        Id of the PE in the graph; by default the class name, made unique when added.
    instances
        How many instances the PE asks for (mappings may honour it); by default the class
        attribute ``INSTANCES`` or ``None`` (the mapping decides).

    Attributes
    ----------
    instance : int
        Index of this instance, set by the mapping before :meth:`setup`.
    n_instances : int
        Number of instances of this PE in the run.
    """

    INPUTS: ClassVar[tuple[PortSpec, ...]] = ()
    OUTPUTS: ClassVar[tuple[PortSpec, ...]] = ()
    INSTANCES: ClassVar[int | None] = None
    #: A stateful PE keeps per-instance state between units; autoscaling mappings never
    #: replicate it on demand.
    STATEFUL: ClassVar[bool] = False
    #: Longest time, in seconds, one unit (or source iteration) may take before the run fails
    #: naming the PE, the instance and the unit (``None``: the run's ``unit_timeout``
    #: option, if any). Set on the class or on one PE object.
    unit_timeout: float | None = None

    def __init__(self, *, id: str | None = None, instances: int | None = None) -> None:
        self.id: str | None = id
        self.instances: int | None = instances if instances is not None else self.INSTANCES
        self.input_ports: dict[str, Port] = {}
        self.output_ports: dict[str, Port] = {}
        for spec in self.INPUTS:
            self.add_input(spec)
        for spec in self.OUTPUTS:
            self.add_output(spec)
        self.instance = 0
        self.n_instances = 1

    # -- declaration -------------------------------------------------------------------
    def add_input(self, name: PortSpec, grouping: Grouping | None = None) -> None:
        """Declare an input port, optionally with its grouping."""
        port = _as_port(name)
        if grouping is not None:
            port = Port(port.name, grouping)
        self.input_ports[port.name] = port

    def add_output(self, name: PortSpec) -> None:
        """Declare an output port."""
        port = _as_port(name)
        self.output_ports[port.name] = port

    @property
    def is_source(self) -> bool:
        """Whether the PE has no input ports (the mapping drives it by iterations)."""
        return not self.input_ports

    def _default_id(self) -> str:
        """Base of the id a graph gives this PE when none was set (the class name)."""
        return type(self).__name__

    @property
    def _display_id(self) -> str:
        """The PE's id, or its class name before it is added to a graph."""
        return self.id or type(self).__name__

    # -- lifecycle (override) ----------------------------------------------------------
    def setup(self) -> None:
        """Prepare the instance (open files, load models); called once before any unit."""

    def teardown(self) -> None:
        """Release what :meth:`setup` acquired; called once, last, if ``setup`` succeeded.

        It runs after :meth:`flush` when the run succeeds, and also when the run fails (or is
        interrupted) in the process where the failure happened, so it must not rely on the
        flush having run. Worker processes that the run then stops (SIGTERM), or that are
        killed, end without it.
        """

    def process(self, port: str | None, data: Any) -> Mapping[str, Any] | None:
        """Process one data unit arriving on ``port``; return ``{port: value}`` to emit.

        A source PE (no inputs) is called with ``port=None`` and ``data`` set to the
        iteration number or to the item given as input for that iteration.
        """
        raise NotImplementedError(f"{type(self).__name__}.process is not implemented")

    def flush(self) -> Mapping[str, Any] | None:
        """Finish after every upstream instance has finished; may emit like ``process``."""
        return None

    def write(self, port: str, data: Any) -> None:
        """Emit ``data`` on output ``port`` (only during a run; mappings rebind it)."""
        raise EngineError(f"PE {self._display_id!r} wrote to {port!r} outside a run")

    @property
    def log(self) -> Callable[..., None]:
        """Log an info message under this PE's logger (``engine.pe.<id>``)."""
        return logging.getLogger(f"engine.pe.{self._display_id}").info

    # -- called by mappings (one place, so that every mapping behaves the same) --------
    def _handle(self, port: str | None, data: Any) -> None:
        result = self.process(port, data)
        if result:
            write = self.write
            for name, value in result.items():
                write(name, value)

    def _flush(self) -> None:
        result = self.flush()
        if result:
            write = self.write
            for name, value in result.items():
                write(name, value)


def _emit_all(write: Callable[[str, Any], None], port: str, result: Any) -> None:
    """Emit a return value: nothing for ``None``, every item of a generator, else the value."""
    if result is None:
        return
    if inspect.isgenerator(result):
        for item in result:
            write(port, item)
    else:
        write(port, result)


class IterativePE(ProcessingElement):
    """One input ``input``, one output ``output``: :meth:`apply`'s return value is emitted.

    Returning ``None`` emits nothing; a generator emits each item it yields.
    """

    INPUTS = ("input",)
    OUTPUTS = ("output",)

    def apply(self, data: Any) -> Any:
        """Transform one data unit."""
        raise NotImplementedError(f"{type(self).__name__}.apply is not implemented")

    def process(self, port: str | None, data: Any) -> Mapping[str, Any] | None:
        """Apply :meth:`apply` and emit its result on ``output``."""
        _emit_all(self.write, "output", self.apply(data))
        return None

    def _handle(self, port: str | None, data: Any) -> None:
        result = self.apply(data)
        if result is not None:
            if result.__class__ is GeneratorType:
                _emit_all(self.write, "output", result)
            else:
                self.write("output", result)


class ProducerPE(ProcessingElement):
    """A source: no inputs, one output ``output``.

    The mapping calls :meth:`produce` once per iteration; its return value is emitted (a
    generator emits every item; ``write`` may be used as well).
    """

    OUTPUTS = ("output",)

    def produce(self, iteration: Any) -> Any:
        """Produce the data of one iteration (``iteration`` is its number or input item)."""
        raise NotImplementedError(f"{type(self).__name__}.produce is not implemented")

    def process(self, port: str | None, data: Any) -> Mapping[str, Any] | None:
        """Call :meth:`produce` and emit its result."""
        _emit_all(self.write, "output", self.produce(data))
        return None

    _handle = ProcessingElement._handle


class ConsumerPE(ProcessingElement):
    """A sink: one input ``input``, no outputs; :meth:`consume` gets every unit."""

    INPUTS = ("input",)

    def consume(self, data: Any) -> None:
        """Consume one data unit."""
        raise NotImplementedError(f"{type(self).__name__}.consume is not implemented")

    def process(self, port: str | None, data: Any) -> Mapping[str, Any] | None:
        """Call :meth:`consume`."""
        self.consume(data)
        return None

    def _handle(self, port: str | None, data: Any) -> None:
        self.consume(data)


class FunctionPE(IterativePE):
    """An iterative PE made from a plain function ``func(data, **params) -> value``.

    Parameters
    ----------
    func
        The function; may be omitted in subclasses that set the ``func`` class attribute
        (see :func:`function_pe`).
    params
        Keyword arguments bound to every call.
    """

    func: Callable[..., Any]

    def __init__(
        self,
        func: Callable[..., Any] | None = None,
        *,
        id: str | None = None,
        instances: int | None = None,
        **params: Any,
    ) -> None:
        if func is not None:
            self.func = func
        if not callable(getattr(self, "func", None)):
            raise TypeError("FunctionPE needs a function")
        super().__init__(id=id or getattr(self.func, "__name__", None), instances=instances)
        self.params = params

    def apply(self, data: Any) -> Any:
        """Call the function on one data unit."""
        return self.func(data, **self.params)


def function_pe(
    func: Callable[..., Any] | None = None, *, instances: int | None = None
) -> Any:
    """Turn a function into a PE class (usable as ``@function_pe`` or ``@function_pe(...)``).

    Calling the class makes a PE; its ``func`` attribute is the original function::

        @function_pe
        def double(x):
            return 2 * x

        graph.connect(source, "output", double(), "input")
    """

    def decorate(f: Callable[..., Any]) -> type[FunctionPE]:
        namespace = {
            "func": staticmethod(f),
            "__doc__": f.__doc__,
            "__module__": f.__module__,
            "__qualname__": f.__qualname__,
            "INSTANCES": instances,
        }
        return type(f.__name__, (FunctionPE,), namespace)

    return decorate(func) if func is not None else decorate


class ChainPE(IterativePE):
    """Apply several functions in sequence inside one PE; ``None`` stops the chain."""

    def __init__(
        self,
        functions: Iterable[Callable[[Any], Any]],
        *,
        id: str | None = None,
        instances: int | None = None,
    ) -> None:
        self.functions = tuple(functions)
        if not self.functions:
            raise ValueError("a chain needs at least one function")
        default_id = "_".join(getattr(f, "__name__", "f") for f in self.functions)
        super().__init__(id=id or default_id, instances=instances)

    def apply(self, data: Any) -> Any:
        """Run the functions in order."""
        for function in self.functions:
            data = function(data)
            if data is None:
                return None
        return data


def chain(*functions: Callable[[Any], Any], id: str | None = None) -> ChainPE:
    """Make one PE that applies ``functions`` in order (dispel4py's iterative chain)."""
    return ChainPE(functions, id=id)
