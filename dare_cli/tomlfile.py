"""Reading TOML configuration files with one clear error for every way it can fail."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

__all__ = ["read_toml"]


def read_toml(path: Path, error: type[Exception]) -> dict[str, Any]:
    """Parse the TOML file ``path``; an unreadable or invalid file raises ``error``.

    The message names the file: ``cannot read config file '<path>': <reason>`` or
    ``config file '<path>' is not valid TOML: <reason>``.
    """
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read config file '{path}': {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"config file '{path}' is not valid TOML: {exc}") from exc
