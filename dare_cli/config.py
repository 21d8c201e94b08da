"""The ``dare.toml`` configuration file: defaults for commands, layered under their flags.

Precedence is: command-line flag, then the file given with ``--config``, then built-in
defaults. Every key is checked when the file is read; an unknown key or a value of the wrong
type is a usage error naming the key and the file. Example::

    [run]
    mapping = "multi"
    workers = 4
    iterations = 10

    [run.options]        # passed to the mapping, like --option KEY=VALUE
    batch_size = 64
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dare_cli.errors import DareUsageError
from dare_cli.tomlfile import read_toml

__all__ = ["Config", "ConfigError", "RunDefaults", "load_config", "parse_config"]


class ConfigError(DareUsageError):
    """The configuration file cannot be read or holds an unknown or invalid key."""


_TOML_TYPES = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
               list: "an array", dict: "a table"}


def _type_name(kind: type) -> str:
    return _TOML_TYPES.get(kind, kind.__name__)


@dataclass(frozen=True)
class RunDefaults:
    """Defaults of ``dare run`` (the ``[run]`` table).

    Attributes
    ----------
    mapping
        Mapping name (``--mapping``).
    workers
        Number of worker processes, at least 1 (``--workers``).
    iterations
        Iterations of every source, at least 0 (``--iterations``).
    options
        Mapping options (``--option KEY=VALUE``); flags override keys given here.
    """

    mapping: str | None = None
    workers: int | None = None
    iterations: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("mapping", "workers", "iterations", "options")

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str) -> RunDefaults:
        """Check the ``[run]`` table of the file ``source`` and build the defaults.

        Raises
        ------
        ConfigError
            Naming the first unknown or invalid key and the file.
        """
        for key in table:
            if key not in cls.KEYS:
                raise ConfigError(
                    f"unknown key 'run.{key}' in config file '{source}' "
                    f"(known keys of [run]: {', '.join(sorted(cls.KEYS))})"
                )

        def check(key: str, expected: type, minimum: int | None = None) -> Any:
            value = table.get(key)
            if value is None:
                return None
            if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
                raise ConfigError(
                    f"key 'run.{key}' in config file '{source}' must be "
                    f"{_type_name(expected)}, not {_type_name(type(value))}"
                )
            if minimum is not None and isinstance(value, int) and value < minimum:
                raise ConfigError(
                    f"key 'run.{key}' in config file '{source}' must be >= {minimum}, not {value}"
                )
            return value

        return cls(
            mapping=check("mapping", str),
            workers=check("workers", int, minimum=1),
            iterations=check("iterations", int, minimum=0),
            options=dict(check("options", dict) or {}),
        )


@dataclass(frozen=True)
class Config:
    """Everything read from a configuration file (empty defaults without one)."""

    run: RunDefaults = field(default_factory=RunDefaults)
    path: Path | None = None

    SECTIONS = ("run",)


def parse_config(data: Mapping[str, Any], source: str, path: Path | None = None) -> Config:
    """Validate the parsed TOML ``data`` of the file ``source``.

    Raises
    ------
    ConfigError
        On an unknown section or key, or a value of the wrong type.
    """
    for key, value in data.items():
        if key not in Config.SECTIONS:
            raise ConfigError(
                f"unknown key '{key}' in config file '{source}' "
                f"(known sections: {', '.join(Config.SECTIONS)})"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"key '{key}' in config file '{source}' must be a table [{key}]")
    return Config(run=RunDefaults.from_table(data.get("run", {}), source), path=path)


def load_config(path: Path | None) -> Config:
    """Read and validate a TOML configuration file (``None``: the built-in defaults).

    Raises
    ------
    ConfigError
        When the file cannot be read, is not TOML, or holds an unknown or invalid key.
    """
    if path is None:
        return Config()
    data = read_toml(path, ConfigError)
    return parse_config(data, str(path), path)
