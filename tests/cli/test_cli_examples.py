"""The bundled dispel4py-style example modules, run unchanged through ``dare run``."""

from __future__ import annotations

import pytest

WORDCOUNT_I2 = {
    "age": 4, "belief": 2, "best": 2, "darkness": 2, "epoch": 4, "foolishness": 2,
    "incredulity": 2, "it": 16, "light": 2, "of": 16, "season": 4, "the": 16, "times": 4,
    "was": 16, "wisdom": 2, "worst": 2,
}  # what dispel4py's own simple mapping prints for -i 2 (docs/dispel4py-api.md)


@pytest.mark.parametrize("args", [["--mapping", "simple"], ["--mapping", "multi", "-n", "2"],
                                  ["--mapping", "multi", "-n", "5"]])
def test_wordcount(run_json, args):
    out = run_json("engine.examples.wordcount", "-i", "2", *args)
    rows = out["outputs"]["CountWords"]["output"]
    assert {word: count for word, count in rows} == WORDCOUNT_I2
    assert len(rows) == len(WORDCOUNT_I2)


@pytest.mark.parametrize("args", [["--mapping", "simple"], ["--mapping", "multi", "-n", "2"],
                                  ["--mapping", "multi", "-n", "6"]])
def test_parallel_sum(run_json, args):
    out = run_json("engine.examples.parallel_sum", "-i", "3", *args)
    assert out["outputs"]["Total"]["output"] == [29700]
    assert out["summary"]["pes"]["Doubler"]["instances"] == 2


def test_parallel_sum_with_dispel4py_data_by_pe_name(run_json):
    out = run_json("engine.examples.parallel_sum", "-d", '{"NumberProducer": [{}, {}]}',
                   "--mapping", "multi", "-n", "3")
    assert out["outputs"]["Total"]["output"] == [2 * 9900]


def test_function_chain(run_json):
    out = run_json("engine.examples.function_chain", "-i", "3", "--mapping", "multi")
    assert sorted(out["outputs"]["PE_square"]["output"]) == [121, 225, 361]
