"""A source that never ends by itself; writes $DARE_TEST_MARKER once it runs (SIGINT test)."""

import os
import time
from pathlib import Path

from engine import ProducerPE, WorkflowGraph
from engine.testing import Collect


class Forever(ProducerPE):
    def produce(self, iteration):
        Path(os.environ["DARE_TEST_MARKER"]).write_text("started")
        while True:
            time.sleep(0.05)
            yield iteration


graph = WorkflowGraph("slow")
graph.connect(Forever(), "output", Collect(), "input")
