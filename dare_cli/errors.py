"""The error the CLI reports as a usage error (exit code 2)."""

from __future__ import annotations

__all__ = ["DareUsageError"]


class DareUsageError(Exception):
    """What the user gave cannot be used: a bad module path, malformed JSON, an unknown PE id.

    The message is one line, shown as ``error: <message>``; the command exits with code 2.
    """

    exit_code = 2
