"""MPI benchmark: producer -> doubler -> sum on the ``mpi`` mapping, raw mpi4py and dispel4py.

For each rank count (``--ranks``, default 2 and 4; more ranks than cores is fine) it launches,
each in its own ``mpiexec -n N`` job:

* ``dare mpi``: the workload of ``benchmarks/workloads.py`` (``--items`` trivial items, default
  100,000) run with :class:`engine.mappings.mpi.MpiMapping` (after a small warm-up run);
* ``raw mpi4py``: the same computation written directly with mpi4py's pickled ``isend``/
  ``recv`` of batches of ``--batch`` items, with the same layout as the mapping's plan (with
  2 ranks: rank 0 produces and sums, rank 1 doubles; with N > 2: rank 0 produces, ranks 1 to
  N-2 double, rank N-1 sums), batches built, doubled and summed by list operations (C
  speed);
* ``raw mpi4py calls``: the same, each item going through one Python call at each step (a
  ``write`` per item, a function call to double, a method call to add), as the PEs' code
  written by hand around mpi4py would;
* ``dispel4py mpi``: ``dispel4py mpi benchmarks/d4py_graphs.py -i 1 -n N`` (producer writing
  every item in one call, N-2 doublers), timed by its own ``ELAPSED TIME``.

Times are medians of ``--repeat`` runs inside one job (without interpreter start-up); every
sum is checked. Printed: µs per item and the ratios the issue sets targets for (dare at least
10x dispel4py's throughput, and at least half the raw mpi4py rate). Nothing here is a test.

Usage::

    python benchmarks/mpi_bench.py                 # table on stdout
    python benchmarks/mpi_bench.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from dispel4py_baseline import CLI, GRAPH_FILE, dispel4py_available  # noqa: E402
from run import median_time  # noqa: E402
from workloads import make_graph, plain_loop  # noqa: E402

MARK = "MPI_BENCH "


# -- inside the MPI job ---------------------------------------------------------------------
def dare_job(items: int, repeat: int, batch: int) -> None:
    """Every rank: the mpi mapping; rank 0 prints the median time."""
    from engine.mappings.mpi import MpiMapping, start_servants_if_needed

    start_servants_if_needed()
    mapping = MpiMapping()
    mapping.run(make_graph(1000), batch_size=batch)  # warm-up: imports, first connections

    def once() -> int:
        result = mapping.run(make_graph(items), batch_size=batch)
        return result.output("Summer")[0]  # type: ignore[no-any-return]

    seconds, total = median_time(once, repeat)
    print(MARK + json.dumps({"seconds": seconds, "total": total}), flush=True)


def raw_job(items: int, repeat: int, batch: int, calls: bool) -> None:
    """Every rank: the workload in plain mpi4py; rank 0 prints the median time.

    With ``calls``, each item goes through a Python call at every step (the producer writes
    items one by one, the doubler calls a function, the summer a method), as the same code
    written by hand around mpi4py would; without, whole batches are built, doubled and summed
    by list operations (C speed: a lower bound for any per-item Python code).
    """
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if size == 2:
        doublers, summer = [1], 0
    else:
        doublers, summer = list(range(1, size - 1)), size - 1

    def double(x: int) -> int:
        return 2 * x

    class Total:
        def __init__(self) -> None:
            self.total = 0

        def add(self, x: int) -> None:
            self.total += x

    def produce(requests: list[Any]) -> None:
        turn = [0]

        def send(chunk: list[int]) -> None:
            requests.append(comm.isend(chunk, dest=doublers[turn[0]]))
            turn[0] = (turn[0] + 1) % len(doublers)

        if calls:
            chunk: list[int] = []

            def write(item: int) -> None:
                nonlocal chunk
                chunk.append(item)
                if len(chunk) >= batch:
                    send(chunk)
                    chunk = []

            for i in range(items):
                write(i)
            if chunk:
                send(chunk)
        else:
            for start in range(0, items, batch):
                send(list(range(start, min(start + batch, items))))
        for dest in doublers:
            requests.append(comm.isend(None, dest=dest))

    def once() -> int:
        comm.Barrier()
        requests: list[Any] = []
        if rank == 0:
            produce(requests)
            if summer != 0:
                MPI.Request.waitall(requests)
                return int(comm.recv(source=summer))
        if rank in doublers:
            while True:
                chunk = comm.recv(source=0)
                if chunk is None:
                    comm.send(None, dest=summer)
                    break
                if calls:
                    doubled = []
                    append = doubled.append
                    for x in chunk:
                        append(double(x))
                else:
                    doubled = [2 * x for x in chunk]
                comm.send(doubled, dest=summer)
        if rank != summer:
            return 0
        total, ended = Total(), 0
        while ended < len(doublers):
            chunk = comm.recv(source=MPI.ANY_SOURCE)
            if chunk is None:
                ended += 1
            elif calls:
                add = total.add
                for x in chunk:
                    add(x)
            else:
                total.total += sum(chunk)
        if rank != 0:
            comm.send(total.total, dest=0)
        MPI.Request.waitall(requests)
        return total.total

    if rank == 0:
        seconds, result = median_time(once, repeat)
        print(MARK + json.dumps({"seconds": seconds, "total": result}), flush=True)
    else:
        for _ in range(repeat):
            once()


# -- the driver -----------------------------------------------------------------------------
def launch(command: list[str], timeout: float, env: dict[str, str] | None = None,
           ) -> tuple[int | None, str, str]:
    """Run ``command`` in its own process group; ``None`` as return code on timeout."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=str(HERE.parent), env=env,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return None, out, err
    return process.returncode, out, err


#: The launcher of the MPI that mpi4py here was built with: the mpich wheel's, beside this
#: Python (a system's Open MPI mpiexec, first on PATH on many machines, would not do).
MPIEXEC = (shutil.which("mpiexec", path=str(Path(sys.executable).parent))
           or shutil.which("mpiexec") or "mpiexec")


def ours(case: str, ranks: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [MPIEXEC, "-n", str(ranks), sys.executable, str(Path(__file__).resolve()),
               "--job", case, "--items", str(args.items), "--repeat", str(args.repeat),
               "--batch", str(args.batch)]
    code, out, err = launch(command, args.timeout)
    found = [line for line in out.splitlines() if line.startswith(MARK)]
    if code != 0 or not found:
        state = "timed out" if code is None else f"exit {code}"
        return {"ok": False, "error": f"{state}: {err.strip()[-300:]}"}
    figures: dict[str, Any] = json.loads(found[-1][len(MARK):])
    figures["ok"] = figures["total"] == args.items * (args.items - 1)
    figures["us_per_item"] = figures["seconds"] / args.items * 1e6
    return figures


def dispel4py_mpi(ranks: int, args: argparse.Namespace) -> dict[str, Any]:
    """Median of ``--repeat`` runs of dispel4py's mpi mapping (its own ELAPSED TIME)."""
    env = dict(os.environ, D4PY_BENCH_MODE="batch", D4PY_BENCH_ITEMS=str(args.items),
               D4PY_BENCH_WORK="0", D4PY_BENCH_DOUBLERS=str(max(1, ranks - 2)),
               PYTHONHASHSEED="0")
    command = [MPIEXEC, "-n", str(ranks), sys.executable, "-c", CLI, "mpi", str(GRAPH_FILE),
               "-i", "1", "-n", str(ranks)]
    times = []
    for _ in range(args.repeat):
        code, out, err = launch(command, args.d4py_timeout, env)
        result = re.search(r"D4PY_BENCH_RESULT count=(\d+) sum=(-?\d+)", out)
        elapsed = [float(x) for x in re.findall(r"^ELAPSED TIME: ([0-9.eE+-]+)", out, re.M)]
        if code is None:
            return {"ok": False, "error": f"hung: no result within {args.d4py_timeout:.0f} s"}
        if code != 0 or not result or int(result.group(2)) != args.items * (args.items - 1):
            return {"ok": False, "error": f"exit {code}: {(out + err).strip()[-200:]}"}
        times.append(max(elapsed))
    seconds = sorted(times)[len(times) // 2]
    return {"ok": True, "seconds": seconds, "us_per_item": seconds / args.items * 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--ranks", default="2,4", help="rank counts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1024, help="units per batch")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per job")
    parser.add_argument("--d4py-timeout", type=float, default=120.0,
                        help="seconds per dispel4py run (its partitioned mode can hang)")
    parser.add_argument("--no-dispel4py", action="store_true", help="skip the dispel4py runs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--job", choices=["dare", "raw", "raw-calls"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job == "dare":
        dare_job(args.items, args.repeat, args.batch)
        return 0
    if args.job in ("raw", "raw-calls"):
        raw_job(args.items, args.repeat, args.batch, calls=args.job == "raw-calls")
        return 0

    plain, _ = median_time(lambda: plain_loop(args.items), args.repeat)
    with_d4py = not args.no_dispel4py and dispel4py_available()[0]
    rows = []
    for ranks in [int(n) for n in args.ranks.split(",")]:
        row: dict[str, Any] = {"ranks": ranks, "dare": ours("dare", ranks, args),
                               "raw": ours("raw", ranks, args),
                               "raw_calls": ours("raw-calls", ranks, args)}
        if with_d4py:
            row["dispel4py"] = dispel4py_mpi(ranks, args)
        rows.append(row)
    # dispel4py's mpi mapping only works when every PE instance has its own rank; the best
    # figure it reached is the reference for rank counts where it fails.
    d4py_ok = [row["dispel4py"]["us_per_item"] for row in rows
               if row.get("dispel4py", {}).get("ok")]
    best_d4py = min(d4py_ok) if d4py_ok else None
    for row in rows:
        dare = row["dare"]
        for name in ("raw", "raw_calls"):
            if dare.get("ok") and row[name].get("ok"):
                row[f"dare_rate_over_{name}"] = row[name]["us_per_item"] / dare["us_per_item"]
        d4py = row.get("dispel4py", {})
        reference = d4py["us_per_item"] if d4py.get("ok") else best_d4py
        if dare.get("ok") and reference:
            row["dare_throughput_over_dispel4py"] = reference / dare["us_per_item"]
            row["dispel4py_reference"] = "same ranks" if d4py.get("ok") else "its best run"
    report = {"cpus": os.cpu_count(), "items": args.items, "batch": args.batch,
              "plain_python_us_per_item": plain / args.items * 1e6, "rows": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"producer -> doubler -> sum, {args.items} trivial items, batches of {args.batch}, "
          f"{os.cpu_count()} CPUs (plain Python loop: {report['plain_python_us_per_item']:.3f}"
          " us/item)")
    print(f"{'ranks':>5} {'case':16} {'us/item':>9}")

    def show(ranks: int, name: str, figures: dict[str, Any]) -> None:
        value = f"{figures['us_per_item']:9.3f}" if figures.get("ok") else figures["error"]
        print(f"{ranks:5} {name:16} {value}")

    for row in rows:
        show(row["ranks"], "dare mpi", row["dare"])
        show(row["ranks"], "raw mpi4py", row["raw"])
        show(row["ranks"], "raw mpi4py calls", row["raw_calls"])
        if "dispel4py" in row:
            show(row["ranks"], "dispel4py mpi", row["dispel4py"])
    print("\nratios (targets: dare/raw rate >= 0.5, dare/dispel4py throughput >= 10)")

    def ratio(value: float | None, text: str) -> str:
        return text.format(value) if value else "n/a"

    for row in rows:
        print(f"{row['ranks']:5} ranks: dare/raw rate "
              + ratio(row.get("dare_rate_over_raw"), "{:.2f}")
              + " (per-item calls: " + ratio(row.get("dare_rate_over_raw_calls"), "{:.2f}")
              + "), dare/dispel4py throughput "
              + ratio(row.get("dare_throughput_over_dispel4py"), "{:.1f}x")
              + (f" ({row['dispel4py_reference']})" if "dispel4py_reference" in row else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
