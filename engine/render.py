"""Renderings of graphs, plans and run results: pure functions returning text.

Nothing here prints or runs anything; callers (``dare graph show``, ``dare run``) decide where
the text goes. A graph is shown as text, as Mermaid or as JSON without running it; a
:class:`~engine.partition.Plan` adds where each PE instance runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from engine.graph import Graph, Node
from engine.observe import RunResult
from engine.partition import Plan

__all__ = [
    "RENDERERS",
    "graph_to_dict",
    "outputs_to_text",
    "render_json",
    "render_mermaid",
    "render_text",
    "result_to_json",
]


# -- graphs ------------------------------------------------------------------------------------
def _class_path(node: Node) -> str:
    cls = type(node.pe)
    return f"{cls.__module__}.{cls.__qualname__}"


def _input_label(node: Node, index: int) -> str:
    port = node.inputs[index]
    return port.name if port.grouping is None else f"{port.name} ({port.grouping.describe()})"


def graph_to_dict(graph: Graph, plan: Plan | None = None) -> dict[str, Any]:
    """Describe ``graph`` (and the placement of ``plan``) as JSON-serialisable data.

    Returns
    -------
    dict
        ``{"name", "nodes": [{"id", "class", "inputs", "outputs", "instances"}],
        "edges": [{"src", "src_port", "dst", "dst_port", "grouping"}], "inputs", "outputs"}``
        where ``inputs``/``outputs`` list the unconnected ports as ``"PE.port"``, plus
        ``"plan": {"workers", "partitioned", "instances", "placement"}`` with a plan.
    """
    data: dict[str, Any] = {
        "name": graph.name,
        "nodes": [
            {
                "id": node.id,
                "class": _class_path(node),
                "inputs": [
                    {
                        "name": port.name,
                        "grouping": port.grouping.describe() if port.grouping else None,
                    }
                    for port in node.inputs
                ],
                "outputs": [port.name for port in node.outputs],
                "instances": node.instances,
            }
            for node in graph
        ],
        "edges": [
            {
                "src": edge.src,
                "src_port": edge.src_port,
                "dst": edge.dst,
                "dst_port": edge.dst_port,
                "grouping": edge.grouping.describe(),
            }
            for edge in graph.edges
        ],
        "inputs": [f"{pe}.{port}" for pe, port in graph.unconnected_inputs()],
        "outputs": [f"{pe}.{port}" for pe, port in graph.unconnected_outputs()],
    }
    if plan is not None:
        data["plan"] = {
            "workers": len(plan.workers),
            "partitioned": plan.partitioned,
            "instances": dict(plan.instances),
            "placement": plan.partitions(),
            "strategy": plan.strategy,
            "pinned": sorted(f"{src}.{sp} -> {dst}.{dp}" for src, sp, dst, dp in plan.pinned),
        }
    return data


def render_json(graph: Graph, plan: Plan | None = None) -> str:
    """Render :func:`graph_to_dict` as indented JSON."""
    return json.dumps(graph_to_dict(graph, plan), indent=2)


def _plan_lines(plan: Plan) -> list[str]:
    how = "partitioned: several instances per process" if plan.partitioned else (
        "one process per instance"
    )
    if plan.strategy != "default":
        how = f"optimised: {plan.strategy}"
    lines = [f"placement on {_count(len(plan.workers), 'worker')} ({how}):"]
    lines += [f"  worker {index}: {', '.join(labels)}"
              for index, labels in enumerate(plan.partitions())]
    if plan.pinned:
        lines.append("pinned (instance i sends to instance i, in its process):")
        lines += [f"  {src}.{sp} -> {dst}.{dp}" for src, sp, dst, dp in sorted(plan.pinned)]
    return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def render_text(graph: Graph, plan: Plan | None = None) -> str:
    """Render ``graph`` for reading: PEs with ports and instances, connections, placement.

    Examples
    --------
    ::

        graph 'workflow': 3 PEs, 2 connections
        PEs:
          Words (WordSource)       in: -                 out: output   instances: auto
          ...
        connections:
          Words.output -> Count.input (group-by 0)
    """
    nodes = list(graph)
    lines = [f"graph {graph.name!r}: {_count(len(nodes), 'PE')}, "
             f"{_count(len(graph.edges), 'connection')}", "PEs:"]
    names = [node.id if type(node.pe).__name__ == node.id
             else f"{node.id} ({type(node.pe).__name__})" for node in nodes]
    width = max((len(name) for name in names), default=0)
    ins = [", ".join(_input_label(node, i) for i in range(len(node.inputs))) or "-"
           for node in nodes]
    in_width = max((len(text) for text in ins), default=0)
    for node, name, inputs in zip(nodes, names, ins, strict=True):
        outputs = ", ".join(port.name for port in node.outputs) or "-"
        if plan is not None and node.id in plan.instances:
            instances = str(plan.instances[node.id])
        else:
            instances = "auto" if node.instances is None else str(node.instances)
        lines.append(f"  {name:<{width}}  in: {inputs:<{in_width}}  out: {outputs}  "
                     f"instances: {instances}")
    lines.append("connections:" if graph.edges else "connections: none")
    lines += [f"  {edge.describe()}" for edge in graph.edges]
    unconnected_in = graph.unconnected_inputs()
    if unconnected_in:
        lines.append("inputs: " + ", ".join(f"{pe}.{port}" for pe, port in unconnected_in))
    lines.append("outputs: " + (", ".join(f"{pe}.{port}" for pe, port in
                                          graph.unconnected_outputs()) or "none"))
    if plan is not None:
        lines += _plan_lines(plan)
    return "\n".join(lines)


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def render_mermaid(graph: Graph, plan: Plan | None = None) -> str:
    """Render ``graph`` as a Mermaid ``flowchart LR``.

    One node per PE (labelled with its id, and its instances when fixed), one edge per
    connection labelled ``port→port (grouping)``; a plan's placement is added as comments.
    """
    ids = {node.id: f"n{index}" for index, node in enumerate(graph)}
    lines = ["flowchart LR"]
    for node in graph:
        count = plan.instances.get(node.id) if plan is not None else node.instances
        label = node.id if count is None else f"{node.id} \u00d7{count}"
        lines.append(f'    {ids[node.id]}["{_mermaid_label(label)}"]')
    for edge in graph.edges:
        label = f"{edge.src_port}→{edge.dst_port} ({edge.grouping.describe()})"
        lines.append(f'    {ids[edge.src]} -->|"{_mermaid_label(label)}"| {ids[edge.dst]}')
    if plan is not None:
        lines += [f"    %% {line.strip()}" for line in _plan_lines(plan)]
    return "\n".join(lines)


#: ``--format`` name -> renderer.
RENDERERS: dict[str, Callable[[Graph, Plan | None], str]] = {
    "text": render_text,
    "mermaid": render_mermaid,
    "json": render_json,
}


# -- runs ------------------------------------------------------------------------------------
def outputs_to_text(outputs: Mapping[str, Mapping[str, list[Any]]]) -> str:
    """One ``PE.port:`` header per unconnected output, then one indented ``repr`` per value."""
    lines: list[str] = []
    for pe_id, ports in outputs.items():
        for port, values in ports.items():
            lines.append(f"{pe_id}.{port}:")
            lines += [f"  {value!r}" for value in values]
    return "\n".join(lines)


def result_to_json(result: RunResult) -> str:
    """``{"outputs": {pe: {port: [...]}}, "summary": {...}}``; other values as their ``repr``."""
    return json.dumps(
        {"outputs": result.outputs, "summary": result.summary.as_dict()}, indent=2, default=repr
    )
