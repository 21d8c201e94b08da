"""From command-line text to what the engine runs: the graph, its inputs, mapping options.

Pure functions without console output, so that they can be tested without the CLI. Every
problem with what the user gave (a module that cannot be imported, a graph that is not there,
malformed JSON, an unknown PE id) is a :class:`~dare_cli.errors.DareUsageError` with a
one-line message. Anything that goes wrong before the run starts, including an exception
raised by the user's module while it is imported, is such an error; failures during the run
are the engine's errors.

Inputs follow dispel4py's ``-i``/``-d``/``-f`` options:

* ``-i N``: N iterations of every source;
* ``-d JSON`` or ``-f FILE``: a JSON object keyed by PE id. An integer is an iteration count
  (sources); a list gives the items (a source's iterations, or the units fed to the PE's
  unconnected input port). A list of objects whose keys are all input ports of that PE, as in
  dispel4py's ``{"PE": [{"input": 1}, {"input": 2}]}``, feeds each value to its port.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from dare_cli.errors import DareUsageError
from engine.errors import EngineError, GraphError
from engine.graph import Graph, Node, WorkflowGraph
from engine.loading import load_file, user_code
from engine.optimise import Optimisation
from engine.partition import InputSpec, normalise_inputs

__all__ = [
    "Target",
    "build_inputs",
    "find_graph",
    "import_user_module",
    "inputs_from_json",
    "inputs_from_options",
    "load_graph",
    "merged_options",
    "parse_json",
    "parse_options",
    "read_json_file",
]

logger = logging.getLogger(__name__)

GRAPH_TYPES = (WorkflowGraph, Graph)


# -- targets and modules ---------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """``MODULE_OR_FILE[:GRAPH]`` split into its parts.

    Attributes
    ----------
    module
        Dotted module name, or path of a ``.py`` file.
    attribute
        Name of the graph in the module, or ``None`` to look for it.
    """

    module: str
    attribute: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Target:
        r"""Split ``spec`` at its last ``:`` when what follows is a Python name.

        A drive letter (``C:\flows\wc.py``) is therefore not taken for a graph name.

        >>> Target.parse("pkg.flows:wordcount")
        Target(module='pkg.flows', attribute='wordcount')
        >>> Target.parse("flows/wc.py")
        Target(module='flows/wc.py', attribute=None)
        """
        module, sep, attribute = spec.rpartition(":")
        if sep and module and attribute.isidentifier():
            return cls(module, attribute)
        if not spec:
            raise DareUsageError("no module given: expected MODULE_OR_FILE[:GRAPH]")
        return cls(spec, None)

    @property
    def is_file(self) -> bool:
        """Whether ``module`` is a file path rather than a dotted module name."""
        return self.module.endswith(".py") or "/" in self.module or os.sep in self.module

    def __str__(self) -> str:
        return self.module if self.attribute is None else f"{self.module}:{self.attribute}"


def _module_name_for(path: Path) -> str:
    """A ``sys.modules`` name for a file: its stem unless that names another module."""
    stem = path.stem
    if stem.isidentifier():
        existing = sys.modules.get(stem)
        if existing is not None:
            if getattr(existing, "__file__", None) == str(path):
                return stem
        else:
            try:
                spec = importlib.util.find_spec(stem)
            except (ImportError, ValueError):
                spec = None
            if spec is None or spec.origin == str(path):
                return stem
    safe = "".join(c if c.isalnum() else "_" for c in stem)
    return f"_dare_user_{safe}"


@contextlib.contextmanager
def _importing(ref: str) -> Iterator[None]:
    """Turn any exception raised while importing ``ref`` into a usage error."""
    try:
        yield
    except DareUsageError:
        raise
    except ImportError as exc:  # includes ModuleNotFoundError: "No module named 'x'"
        raise DareUsageError(f"cannot import {ref!r}: {exc}") from exc
    except (Exception, SystemExit) as exc:
        text = str(exc)
        what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        raise DareUsageError(f"cannot import {ref!r}: {what}") from exc


def import_user_module(ref: str, *, is_file: bool | None = None) -> ModuleType:
    """Import a workflow module by dotted name or from a ``.py`` file.

    Like ``python -m``, the current directory is importable; like ``python file.py``, the
    file's directory is importable too (for sibling modules). dispel4py imports in the module
    resolve to the engine's compatibility layer when it is installed.

    Parameters
    ----------
    ref
        ``"package.module"`` or ``"path/to/flow.py"``.
    is_file
        Force the interpretation of ``ref`` (default: a path if it ends with ``.py`` or has a
        path separator).

    Raises
    ------
    DareUsageError
        ``cannot import 'ref': <reason>``, chained from the original exception.
    """
    if is_file is None:
        is_file = Target(ref).is_file
    if not is_file:
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
        with _importing(ref), user_code():
            return importlib.import_module(ref)
    path = Path(ref).expanduser().resolve()
    if not path.is_file():
        raise DareUsageError(f"cannot import {ref!r}: no such file")
    with _importing(ref):
        return load_file(_module_name_for(path), path)


def _graphs_in(module: ModuleType) -> dict[str, WorkflowGraph | Graph]:
    """Public module attributes that are graphs, one name per graph object."""
    found: dict[str, WorkflowGraph | Graph] = {}
    for name, value in vars(module).items():
        public = isinstance(value, GRAPH_TYPES) and not name.startswith("_")
        if public and not any(value is seen for seen in found.values()):
            found[name] = value
    return found


def find_graph(
    module: ModuleType, attribute: str | None = None, *, ref: str | None = None
) -> WorkflowGraph | Graph:
    """Return the graph named ``attribute``, else ``graph``, else the module's only graph.

    ``ref`` names the module in messages (default: its ``__name__``).

    Raises
    ------
    DareUsageError
        If the named attribute is missing or not a graph, or if without a name the module has
        no graph or several (the message lists the candidates).
    """
    ref = ref or module.__name__
    graphs = _graphs_in(module)
    candidates = ", ".join(graphs) or "none"
    if attribute is not None:
        if not hasattr(module, attribute):
            raise DareUsageError(
                f"graph {attribute!r} not found in {ref!r}; graphs in it: {candidates}"
            )
        value = getattr(module, attribute)
        if not isinstance(value, GRAPH_TYPES):
            raise DareUsageError(
                f"{ref}:{attribute} is {type(value).__name__!r}, not a WorkflowGraph; "
                f"graphs in {ref!r}: {candidates}"
            )
        return value
    default = getattr(module, "graph", None)
    if isinstance(default, GRAPH_TYPES):
        return default
    if len(graphs) == 1:
        return next(iter(graphs.values()))
    if not graphs:
        raise DareUsageError(
            f"no workflow graph in {ref!r}: define a WorkflowGraph named 'graph' "
            f"or name one as {ref}:GRAPH"
        )
    raise DareUsageError(
        f"several workflow graphs in {ref!r}: {candidates}; choose one as {ref}:GRAPH"
    )


def load_graph(spec: str) -> Graph:
    """Import the module of ``MODULE_OR_FILE[:GRAPH]`` and return its built graph.

    Raises
    ------
    DareUsageError
        If the module cannot be imported, the graph is not found, or it is invalid.
    """
    target = Target.parse(spec)
    module = import_user_module(target.module, is_file=target.is_file)
    graph = find_graph(module, target.attribute, ref=target.module)
    if isinstance(graph, Graph):
        return graph
    try:
        return graph.build()
    except GraphError as exc:
        raise DareUsageError(f"invalid graph in {str(target)!r}: {exc}") from exc


# -- inputs --------------------------------------------------------------------------------
def parse_json(text: str, what: str = "-d") -> Any:
    """Parse JSON given on the command line (``what`` names the option in messages)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DareUsageError(f"{what} is not valid JSON: {exc}") from exc


def read_json_file(path: Path | str) -> Any:
    """Read the JSON of ``-f FILE``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DareUsageError(f"cannot read -f '{path}': {reason}") from exc
    return parse_json(text, f"-f '{path}'")


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _port_items(node: Node, items: list[Any]) -> bool:
    """Whether ``items`` is dispel4py's ``[{"port": value}, ...]`` for the inputs of ``node``."""
    ports = {port.name for port in node.inputs}
    return bool(ports) and bool(items) and all(
        isinstance(item, dict) and item and set(item) <= ports for item in items
    )


def _check_feedable(graph: Graph, node: Node, value: int | list[Any], what: str) -> None:
    """Explain in CLI terms why a non-source PE cannot take ``value``."""
    if isinstance(value, int):
        raise DareUsageError(
            f"{what}: PE {node.id!r} is not a source, so it takes a list of items, "
            "not an iteration count"
        )
    if _port_items(node, value):
        return
    open_ports = [port for pe, port in graph.unconnected_inputs() if pe == node.id]
    if not open_ports:
        raise DareUsageError(
            f"{what}: PE {node.id!r} has no unconnected input port: other PEs feed it"
        )
    if len(open_ports) > 1:
        raise DareUsageError(
            f"{what}: PE {node.id!r} has {len(open_ports)} unconnected input ports "
            f"({', '.join(open_ports)}): give its items as "
            f'[{{"{open_ports[0]}": item}}, ...]'
        )


def inputs_from_json(graph: Graph, data: Any, what: str = "-d") -> dict[Any, Any]:
    """Translate the ``-d``/``-f`` JSON object into the engine's inputs.

    Parameters
    ----------
    graph
        The built graph (PE ids and ports are checked against it).
    data
        The parsed JSON: ``{"PE id": count | [items]}``.
    what
        The option, for messages (``"-d"`` or ``"-f 'file'"``).

    Returns
    -------
    dict
        ``{pe_id: count | items, (pe_id, port): items}`` for :func:`engine.run`.

    Examples
    --------
    A list of objects keyed by input ports feeds those ports (dispel4py's form)::

        {"Join": [{"left": 1}, {"right": 2}]}  ->  {("Join", "left"): [1], ("Join", "right"): [2]}
    """
    if not isinstance(data, dict):
        raise DareUsageError(
            f'{what} must be a JSON object {{"PE id": count or list}}, not {_json_type(data)}'
        )
    inputs: dict[Any, Any] = {}
    for pe_id, value in data.items():
        node = graph.nodes.get(pe_id)
        if node is None or pe_id.startswith("_"):
            raise DareUsageError(f"unknown PE {pe_id!r} in {what}; PEs: {', '.join(graph.nodes)}")
        if isinstance(value, bool) or not isinstance(value, (int, list)):
            raise DareUsageError(
                f"{what}: input of PE {pe_id!r} must be an iteration count or a list, "
                f"not {_json_type(value)}"
            )
        if isinstance(value, int) and value < 0:
            raise DareUsageError(f"{what}: iteration count of PE {pe_id!r} must be >= 0")
        if not node.is_source:
            _check_feedable(graph, node, value, what)
        if isinstance(value, list) and not node.is_source and _port_items(node, value):
            for item in value:
                for port, unit in item.items():
                    inputs.setdefault((pe_id, port), []).append(unit)
        else:
            inputs[pe_id] = value
    return inputs


def build_inputs(
    graph: Graph, iterations: int | None = None, data: Any = None, what: str = "-d"
) -> InputSpec:
    """Combine ``-i`` and ``-d``/``-f`` into the engine's inputs, checked against ``graph``.

    With both, ``-i`` gives the iterations of the sources that the JSON does not mention.

    Raises
    ------
    DareUsageError
        If the JSON names an unknown PE or port, or gives a value the PE cannot take.
    """
    if data is None:
        return iterations
    inputs = inputs_from_json(graph, data, what)
    if iterations is not None:
        for node in graph.sources():
            inputs.setdefault(node.id, iterations)
    try:
        normalise_inputs(graph, inputs)
    except GraphError as exc:
        raise DareUsageError(f"{what}: {exc}") from exc
    return inputs


def inputs_from_options(
    graph: Graph, iterations: int | None, data: str | None, file: Path | str | None
) -> InputSpec:
    """The engine's inputs from ``-i N`` and ``-d JSON`` or ``-f FILE`` (not both).

    Raises
    ------
    DareUsageError
        On both ``-d`` and ``-f``, unreadable or malformed JSON, or inputs ``graph`` cannot take.
    """
    if data is not None and file is not None:
        raise DareUsageError("give the inputs with -d or with -f, not both")
    if file is not None:
        return build_inputs(graph, iterations, read_json_file(file), f"-f '{file}'")
    if data is not None:
        return build_inputs(graph, iterations, parse_json(data, "-d"), "-d")
    return iterations


# -- mapping options -----------------------------------------------------------------------
def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``--option KEY=VALUE`` pairs; a value is JSON if it parses, else a string.

    >>> parse_options(["batch_size=64", "start_method=spawn", "timing=true"])
    {'batch_size': 64, 'start_method': 'spawn', 'timing': True}
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise DareUsageError(f"--option expects KEY=VALUE with KEY a name, not {pair!r}")
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


def merged_options(defaults: Mapping[str, Any], pairs: Iterable[str]) -> dict[str, Any]:
    """Options from the configuration file, overridden by ``--option`` pairs."""
    return {**defaults, **parse_options(pairs)}


def load_optimisation(strategy: str, record: Path | None, graph: Graph) -> Optimisation:
    """Build the placement optimisation of ``--optimise``/``--record`` for ``graph``.

    Raises
    ------
    DareUsageError
        Unknown strategy, missing or unreadable record, or a record of another graph.
    """
    try:
        optimisation = Optimisation.load(strategy, str(record) if record else None)
        if optimisation.record is not None:
            optimisation.record.check_graph(graph)
    except EngineError as exc:
        raise DareUsageError(str(exc)) from exc
    return optimisation
