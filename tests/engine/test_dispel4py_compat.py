"""dispel4py workflow modules run unchanged on every mapping, through the compatibility layer."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from engine import AllToOne, GraphError, GroupBy, OneToAll
from engine.compat.dispel4py import aliases, translate_grouping

ROOT = Path(__file__).resolve().parents[2]


def load(name: str):
    with aliases():
        sys.modules.pop(name, None)
        return importlib.import_module(name)


def expected_word_counts(iterations: int) -> dict[str, int]:
    text = load("engine.examples.wordcount").TEXT
    words = re.findall(r"[a-z]+", text.lower())
    return {word: count * iterations for word, count in Counter(words).items()}


def test_wordcount_with_group_by(mapping):
    module = load("engine.examples.wordcount")
    rows = mapping.run(module.graph, 2).output("CountWords")
    assert dict(rows) == expected_word_counts(2)
    assert len(rows) == 16, "a word was counted by two instances"
    assert dict(rows)["it"] == 16


def test_parallel_sum_with_global_grouping(mapping):
    module = load("engine.examples.parallel_sum")
    result = mapping.run(module.graph, 3)
    assert result.output("Total") == [3 * 9900]
    assert result.summary.pes["Doubler"].instances == 2  # numprocesses = 2 is honoured


def test_function_chain_and_simple_function_pe(mapping, same):
    module = load("engine.examples.function_chain")
    assert same(mapping.run(module.graph, 3).output("PE_square"), [121, 225, 361])


def test_results_match_the_real_dispel4py():
    """The same module under dispel4py's own simple mapping gives the same counts."""
    pytest.importorskip("dispel4py.new.processor", reason="stream-d4py is in the dev extra")
    script = "import sys; from dispel4py.new.processor import main; sys.argv[0]='dispel4py'; main()"
    out = subprocess.run(
        [sys.executable, "-c", script, "simple", str(ROOT / "engine/examples/wordcount.py"),
         "-i", "2"],
        capture_output=True, text=True, check=True, timeout=120, cwd=ROOT,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("Outputs: "))
    theirs = eval(line.removeprefix("Outputs: "))  # a dict repr printed by dispel4py
    (their_rows,) = (ports["output"] for ports in theirs.values())
    assert dict(their_rows) == expected_word_counts(2)


def test_groupings_are_translated():
    assert translate_grouping([0], "pe", "input") == GroupBy(0)
    assert translate_grouping([0, 2], "pe", "input") == GroupBy(0, 2)
    assert translate_grouping("global", "pe", "input") == AllToOne()
    assert translate_grouping("all", "pe", "input") == OneToAll()
    assert translate_grouping(None, "pe", "input") is None
    with pytest.raises(GraphError, match="PE 'pe' port 'input': unknown dispel4py grouping 'glob'"):
        translate_grouping("glob", "pe", "input")


MODULE = textwrap.dedent(
    """
    from dispel4py.core import GenericPE, NAME, GROUPING
    from dispel4py.base import ProducerPE, ConsumerPE, CompositePE, create_iterative_chain
    from dispel4py.workflow_graph import WorkflowGraph

    class Words(ProducerPE):
        def _process(self, inputs):
            for word in inputs.get("words", "a b a c b a").split():
                self.write("output", (word, 1))

    class Count(GenericPE):
        def __init__(self):
            GenericPE.__init__(self)
            # connection dictionaries written directly, as older modules do
            self.inputconnections["input"] = {NAME: "input", GROUPING: [0]}
            self.outputconnections["output"] = {NAME: "output"}
            self.numprocesses = 2
            self.counts = {}

        def preprocess(self):
            self.log("starting")

        def process(self, inputs):
            word, n = inputs["input"]
            self.counts[word] = self.counts.get(word, 0) + n

        def postprocess(self):
            for word, n in self.counts.items():
                self.write("output", (word, n, self.rank))

    def upper(data):
        return (data[0].upper(), data[1])

    def build(graph, suffix):
        chain = create_iterative_chain([upper], FunctionPE_class=None)
        count = Count()
        graph.connect(chain, "output", count, "input")
        graph._map_input("input", chain, "input")
        graph._map_output("output", count, "output")

    class UpperCount(CompositePE):
        def __init__(self):
            CompositePE.__init__(self, build, {"suffix": "!"})

    words = Words()
    block = UpperCount()
    graph = WorkflowGraph()
    graph.connect(words, "output", block, "input")
    """
)


def test_hand_written_connections_composites_and_legacy_names(tmp_path, mapping):
    path = tmp_path / "d4py_module.py"
    path.write_text(MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        module = load("d4py_module")
    finally:
        sys.path.remove(str(tmp_path))
    ids = [node.id for node in module.graph.build()]
    assert ids == ["Words", "UpperCount/chain/PE_upper", "UpperCount/Count"]
    result = mapping.run(module.graph, {"Words": [{"words": "x y x"}, {}]})
    rows = result.output("UpperCount/Count")
    assert sorted((word, n) for word, n, _ in rows) == [("A", 3), ("B", 2), ("C", 1),
                                                         ("X", 2), ("Y", 1)]
    assert all(rank in (0, 1) for _, _, rank in rows)


def test_aliases_restore_what_was_there():
    before = sys.modules.get("dispel4py")
    with aliases():
        import dispel4py.core as core

        assert "compatibility" in (core.__doc__ or "")
    assert sys.modules.get("dispel4py") is before
