"""The ``mpi`` mapping under a real ``mpiexec`` (MPICH from PyPI).

Two kinds of tests, both marked ``mpi``:

* launcher tests start ``mpiexec -n 2`` and ``-n 4`` jobs from a normal pytest (they are
  skipped inside an MPI job: no nested launches);
* in-job tests run inside ``mpiexec -n N python -m pytest -m mpi tests/engine``, where
  ``conftest.py`` makes ranks above 0 servants; they are skipped outside a job.

The semantic suite (``test_semantics.py``, ``test_failures.py``, ...) runs on the mapping in
the second way, through the ``mapping`` fixture.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from polling import wait_until

from engine import EngineError, IterativePE, WorkflowGraph
from engine.mappings.mpi import SIZE_VARIABLES, MpiMapping, mpi_world_size
from engine.testing import Collect, ListSource

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).with_name("mpi_cases.py")
UNDER_MPI = mpi_world_size() > 1
TIMEOUT = 60

launcher = pytest.mark.skipif(
    UNDER_MPI, reason="starts mpiexec jobs: run from a normal pytest, not inside a job"
)
in_job = pytest.mark.skipif(
    not UNDER_MPI, reason="runs inside an MPI job: mpiexec -n N python -m pytest -m mpi"
)


def mpiexec() -> str:
    """The ``mpiexec`` beside this Python (the ``mpich`` wheel's), else the one on PATH."""
    found = shutil.which("mpiexec", path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        pytest.fail("mpiexec is not installed: pip install mpi4py mpich")
    return found


def job(
    ranks: int | None, *args: str, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``mpiexec -n ranks python args`` (or plain python if ``ranks`` is None).

    A job still running after ``timeout`` seconds is killed with every rank, and the test
    fails: a hang is an error, never a blocked CI.
    """
    command = [sys.executable, *args]
    if ranks is not None:
        command = [mpiexec(), "-n", str(ranks), *command]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{' '.join(command)} hung for {timeout} s\nstdout: {out}\nstderr: {err}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def dare(ranks: int | None, *args: str) -> subprocess.CompletedProcess[str]:
    """``[mpiexec -n ranks] dare -q args`` (ranks above 0 serve, from the ``dare`` callback)."""
    return job(ranks, "-m", "dare_cli", "-q", *args)


@functools.cache
def simple_output(example: str) -> list[str]:
    result = dare(None, "run", example, "-i", "3")
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.splitlines())


# -- without MPI ------------------------------------------------------------------------------
def test_world_size_comes_from_the_launcher_environment(monkeypatch):
    for name in SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert mpi_world_size() == 1
    for name, size in [("SLURM_STEP_NUM_TASKS", 8), ("OMPI_COMM_WORLD_SIZE", 3),
                       ("PMI_SIZE", 4)]:
        monkeypatch.setenv(name, str(size))
        assert mpi_world_size() == size  # the MPI launchers' own variables come first
    monkeypatch.setenv("PMI_SIZE", "not a number")
    assert mpi_world_size() == 3
    monkeypatch.setenv("DARE_MPI_RANK_PID", str(os.getpid() + 1))
    assert mpi_world_size() == 1  # started by a rank, but no rank itself


def test_without_a_launcher_mpi4py_is_not_imported():
    env = {k: v for k, v in os.environ.items() if k not in SIZE_VARIABLES}
    code = ("import sys; from engine.mappings import mpi; mpi.start_servants_if_needed(); "
            "import engine.mappings; engine.mappings.available(); "
            "print('mpi4py' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=TIMEOUT)
    assert (result.returncode, result.stdout.strip()) == (0, "False"), result.stderr


# -- launching mpiexec ------------------------------------------------------------------------
@pytest.mark.mpi
@launcher
@pytest.mark.parametrize(("example", "ranks"), [
    ("engine/examples/wordcount.py", 2),  # a dispel4py module loaded from its file; group-by
    ("engine/examples/wordcount.py", 4),
    ("engine.examples.parallel_sum", 4),  # a dispel4py module imported by name; global
    ("engine/examples/function_chain.py", 2),  # function PEs in a composite
])
def test_dare_run_on_mpi_prints_what_simple_prints(example, ranks):
    result = dare(ranks, "run", example, "--mapping", "mpi", "-i", "3")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == simple_output(example)
    expected = {"wordcount": "  ('it', 24)", "parallel_sum": "  29700",
                "function_chain": "  361"}
    assert any(key in example and line in result.stdout.splitlines()
               for key, line in expected.items())


@pytest.mark.mpi
@launcher
@pytest.mark.parametrize("ranks", [2, 4])
def test_every_graph_shape_gives_the_outputs_of_simple(ranks):
    result = job(ranks, str(CASES), "shapes")
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert outputs["mpi"] == outputs["simple"]
    mpi = {port: [eval(text) for text in values] for port, values in outputs["mpi"].items()}
    counts = mpi["CountPerKey.output"]
    assert sorted(key for key, _, _ in counts) == list(range(7))  # each key on one instance
    assert sum(count for _, count, _ in counts) == 300
    assert mpi["Sum.output"] == [(sum(range(300)), 300, 0)]
    assert mpi["Everyone.output"] == [(0, 300), (1, 300)]
    assert sorted(value for _, value in mpi["Collect.output"]) == list(range(300))


@pytest.mark.mpi
@launcher
@pytest.mark.parametrize("ranks", [2, 4])
def test_an_exception_on_another_rank_fails_the_job_naming_pe_and_unit(ranks):
    started = time.monotonic()
    result = dare(ranks, "run", f"{CASES}:failing", "--mapping", "mpi")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: PE 'fragile' instance 0 failed while processing unit ListSource[0]#18 "
        "(data: 17): ZeroDivisionError: division by zero"
    )
    assert time.monotonic() - started < 30


@pytest.mark.mpi
@launcher
@pytest.mark.parametrize("case", ["slow", "hung"])
def test_ctrl_c_stops_every_rank_at_once(case, tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) stops a job whose ranks are busy.

    The servants' PEs are inside a unit (half a second each, or hung for days): they stop
    there, not after their batch or after the drain timeout (measured: 0.4-0.7 s).
    """
    started = tmp_path / "started"
    command = [mpiexec(), "-n", "3", sys.executable, "-m", "dare_cli", "run",
               f"{CASES}:{case}", "--mapping", "mpi"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "DARE_TEST_STARTED": str(started)})
    try:
        wait_until(lambda: len(list(tmp_path.glob("started.*"))) >= 2, TIMEOUT,
                   "both servants to be inside a unit")
        interrupted = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
        pytest.fail(f"the job did not stop on Ctrl-C\nstderr: {err}")
    stopped = time.monotonic() - interrupted
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted"
    assert "aborting the job" not in err  # no rank needed the drain timeout
    assert stopped < 20, stopped  # 50 s of work (or days) left: it stopped where it was


@pytest.mark.mpi
@launcher
@pytest.mark.parametrize("ranks", [2, 4])
def test_a_rank_that_dies_ends_the_job_with_a_failure(ranks):
    result = dare(ranks, "run", f"{CASES}:dying", "--mapping", "mpi")
    assert result.returncode != 0
    assert "DieOn" not in result.stdout  # no output: the run did not finish


@pytest.mark.mpi
@launcher
def test_several_runs_in_one_program_with_other_mappings_between():
    result = job(2, str(CASES), "sequence")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sizes = [2_000 * (k + 1) for k in range(4)]
    assert report["runs"] == [[name, n * (n - 1)] for name, n in
                              zip(["mpi", "simple", "multi", "mpi"], sizes, strict=True)]
    assert report["after shutdown"] == "the MPI servants have been shut down: no more mpi runs"


@pytest.mark.mpi
@pytest.mark.slow
@launcher
def test_the_benchmark_runs_and_checks_its_sums():
    result = job(None, str(ROOT / "benchmarks" / "mpi_bench.py"), "--items", "3000",
                 "--repeat", "1", "--ranks", "2", "--no-dispel4py", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["rows"][0]
    assert all(row[case]["ok"] for case in ("dare", "raw", "raw_calls")), row
    assert row["dare"]["total"] == 3000 * 2999


# -- inside the job ---------------------------------------------------------------------------
class EmitLambda(IterativePE):
    def apply(self, data: Any) -> Any:
        return lambda: data  # fine in one process, cannot be pickled


def pipeline(*pes: Any) -> WorkflowGraph:
    graph = WorkflowGraph()
    for upstream, downstream in itertools.pairwise(pes):
        graph.connect(upstream, "output", downstream, "input")
    return graph


@pytest.mark.mpi
@in_job
def test_the_number_of_workers_is_the_number_of_ranks():
    size = mpi_world_size()
    with pytest.raises(EngineError, match=f"this job has {size} rank"):
        MpiMapping().run(pipeline(ListSource([1]), Collect()), workers=size + 1)
    result = MpiMapping().run(pipeline(ListSource([1, 2]), Collect()), workers=size)
    assert sorted(result.output("Collect")) == [1, 2]
    assert result.summary.workers == size


@pytest.mark.mpi
@in_job
def test_unpicklable_units_are_named_when_they_cross_ranks():
    graph = pipeline(ListSource([1, 2]), EmitLambda(id="maker", instances=1),
                     Collect(instances=1))
    with pytest.raises(EngineError) as caught:
        MpiMapping().run(graph)
    assert "units sent by maker[0] to Collect[0] cannot cross processes" in str(caught.value)
    assert "pickle" in str(caught.value)


class Locked(IterativePE):
    """A PE that holds a lock: fine in one process, cannot be sent to another rank."""

    def __init__(self) -> None:
        super().__init__(id="locked")
        self.lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> Locked:
        return self

    def apply(self, data: Any) -> Any:
        return data


@pytest.mark.mpi
@in_job
def test_a_pe_that_cannot_be_sent_is_named_and_the_next_run_works():
    with pytest.raises(EngineError, match="the graph cannot be sent to the other MPI ranks: "
                                          "PE 'locked' cannot be pickled"):
        MpiMapping().run(pipeline(ListSource([1]), Locked()))
    assert MpiMapping().run(pipeline(ListSource([3]), Collect())).output("Collect") == [3]
