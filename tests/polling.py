"""Waiting in tests: poll a condition against a deadline instead of sleeping a fixed time.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere
(a slow suite); :func:`wait_until` returns as soon as the condition holds and, when it never
does, fails naming what it waited for.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str,
               interval: float = 0.02) -> T:
    """Call ``condition`` until it returns a true value, and return that value.

    Parameters
    ----------
    condition
        Called every ``interval`` seconds; exceptions it raises propagate.
    timeout
        Seconds to wait before failing.
    what
        What is awaited, for the failure message ("the workers to start").

    Raises
    ------
    AssertionError
        ``condition`` still returned a false value after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def poll_until(condition: Callable[[], T], timeout: float, interval: float = 0.02) -> T:
    """Call ``condition`` until it returns a true value or ``timeout`` seconds pass.

    Return its last value (false on a timeout), for callers that cannot fail the test (a
    helper thread) or that act on what is left (kill the survivors, then assert).
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


def group_members(group: int) -> list[int]:
    """Live (not zombie) processes of process group ``group``, from ``/proc`` (Linux)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(command name)"
            if int(fields[2]) == group and fields[0] != "Z":
                alive.append(int(stat.parent.name))
    return alive
