"""Configuration of a Rapid Assessment run: a TOML file, checked key by key, layered under flags.

Each table configures one stage and maps onto that stage's frozen dataclass, so the defaults
live next to the code that uses them. An unknown key is an error naming the key, the file and
the closest known key; a value of the wrong type names what was expected. Relative paths are
resolved against the folder of the configuration file. Layout::

    [run]                   # out = "ra-run"; mapping = "multi:2" (every stage);
                            # mappings = {preprocess = "multi:4", ...} (per stage, these win)
    [download]              # dare_cli.ra.download.DownloadConfig
    [source]                # SourceConfig: strike, dip, rake, magnitude (double couple)
    [simulate]              # solver = "embedded" | "specfem"; EmbeddedConfig (duration is shared)
    [simulate.medium]       # vp, vs, rho
    [simulate.specfem]      # dare_cli.ra.simulate.specfem.backends.SpecfemConfig
    [simulate.specfem.kubernetes]  # ...specfem.kubernetes.KubernetesConfig (--emit-manifests)
    [preprocess]            # dare_cli.ra.preprocess.PreprocessConfig
    [pgm]                   # PGMConfig: periods, damping
    [gmpe]                  # dare_cli.ra.gmpe.GMPEConfig: the ground-motion model baseline
    [plot]                  # PlotConfig
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dare_cli.ra.download import DownloadConfig
from dare_cli.ra.errors import ConfigError
from dare_cli.ra.gmpe import GMPEConfig
from dare_cli.ra.preprocess import PreprocessConfig
from dare_cli.ra.simulate.embedded import EmbeddedConfig
from dare_cli.ra.simulate.specfem.backends import SpecfemConfig
from dare_cli.ra.simulate.specfem.kubernetes import KubernetesConfig
from dare_cli.tomlfile import read_toml
from engine.pipeline import MappingSpecError, parse_stage_mappings, resolve_stage_mappings

__all__ = [
    "STAGES",
    "PGMConfig",
    "PlotConfig",
    "RAConfig",
    "SourceConfig",
    "load_config",
    "parse_mapping",
]

#: The stages of a Rapid Assessment, in order.
STAGES = ("download", "simulate", "preprocess", "norm", "match", "pgm", "geojson", "plot")
SOLVERS = ("embedded", "specfem")


@dataclass(frozen=True)
class SourceConfig:
    """The earthquake source for the synthetics when the event has no moment tensor.

    Attributes
    ----------
    strike, dip, rake
        Double couple (degrees, Aki & Richards convention).
    magnitude
        Moment magnitude Mw; ``None`` takes the event's preferred magnitude.
    use_event_tensor
        Use the event's moment tensor (QuakeML focal mechanism) when it has one.
    """

    strike: float | None = None
    dip: float | None = None
    rake: float | None = None
    magnitude: float | None = None
    use_event_tensor: bool = True

    def __post_init__(self) -> None:
        given = [v is not None for v in (self.strike, self.dip, self.rake)]
        if any(given) and not all(given):
            raise ConfigError("[source] needs strike, dip and rake together")
        if self.dip is not None and not 0 <= self.dip <= 90:
            raise ConfigError(f"[source] dip must be within 0..90 degrees, not {self.dip}")


@dataclass(frozen=True)
class PGMConfig:
    """Peak ground motion: oscillator periods (s) and damping (fraction of critical)."""

    periods: tuple[float, ...] = (0.3, 1.0, 3.0)
    damping: float = 0.05

    def __post_init__(self) -> None:
        if not self.periods or any(p <= 0 for p in self.periods):
            raise ConfigError(f"[pgm] periods must be positive seconds, not {self.periods}")
        if not 0 < self.damping < 1:
            raise ConfigError(f"[pgm] damping must be within (0, 1), not {self.damping}")


@dataclass(frozen=True)
class PlotConfig:
    """Which plots to make."""

    maps: bool = True
    waveforms: bool = True
    quantity: str = "VEL"

    def __post_init__(self) -> None:
        if self.quantity not in ("ACC", "VEL", "DISP"):
            raise ConfigError(f"[plot] quantity must be ACC, VEL or DISP, not {self.quantity!r}")


@dataclass(frozen=True)
class RAConfig:
    """A whole Rapid Assessment configuration."""

    source_file: Path | None = None
    out: Path = Path("ra-run")
    mappings: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    solver: str = "embedded"
    simulate: EmbeddedConfig = field(default_factory=EmbeddedConfig)
    specfem: SpecfemConfig = field(default_factory=SpecfemConfig)
    #: ``[simulate.specfem.kubernetes]`` (kept here: the module that renders the manifests
    #: imports the backends, so SpecfemConfig cannot hold it without an import cycle)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    pgm: PGMConfig = field(default_factory=PGMConfig)
    gmpe: GMPEConfig = field(default_factory=GMPEConfig)
    plot: PlotConfig = field(default_factory=PlotConfig)

    def with_overrides(
        self, *, out: Path | None = None, mappings: Mapping[str, tuple[str, int | None]] | None
        = None, solver: str | None = None, specfem: Mapping[str, Any] | None = None,
        kubernetes: Mapping[str, Any] | None = None,
    ) -> RAConfig:
        """Return a copy with command-line flags applied over the file's values.

        ``solver`` replaces ``[simulate] solver``; ``specfem`` holds ``[simulate.specfem]``
        keys to replace (e.g. ``{"backend": "docker"}``), ``kubernetes`` those of
        ``[simulate.specfem.kubernetes]``.
        """
        merged = dict(self.mappings)
        merged.update(mappings or {})
        if solver is not None and solver not in SOLVERS:
            raise ConfigError(f"solver {solver!r} is not known{_suggest(solver, SOLVERS)}; "
                              f"solvers: {', '.join(SOLVERS)}")
        specfem_config = self.specfem
        if specfem:
            try:
                specfem_config = dataclasses.replace(self.specfem, **specfem)
            except ConfigError as error:
                raise ConfigError(f"[simulate.specfem] {error}") from None
        kubernetes_config = (dataclasses.replace(self.kubernetes, **kubernetes) if kubernetes
                             else self.kubernetes)
        return dataclasses.replace(self, out=out or self.out, mappings=merged,
                                   solver=solver or self.solver, specfem=specfem_config,
                                   kubernetes=kubernetes_config)


def parse_mapping(text: str, where: str = "--mapping") -> tuple[str, tuple[str, int | None]]:
    """Parse ``STAGE=MAPPING[:N]`` into ``(stage, (mapping, workers))``.

    The grammar is :func:`engine.pipeline.parse_stage_mappings`'s, shared by every command.
    """
    stage, sep, _ = text.partition("=")
    if not sep or not stage.strip():
        raise ConfigError(f"{where}: expected STAGE=MAPPING[:N], not {text!r}")
    try:
        chosen = parse_stage_mappings([text], STAGES, where=where).stages
    except MappingSpecError as error:
        raise ConfigError(str(error)) from None
    return next(iter(chosen.items()))


def _run_mappings(run: Mapping[str, Any], where: str) -> dict[str, tuple[str, int | None]]:
    """``[run] mapping`` (every stage) and ``[run.mappings]`` (per stage): ``{stage: choice}``."""
    every = run.get("mapping")
    table = run.get("mappings", {})
    if every is not None and not isinstance(every, str):
        raise ConfigError(f"{where} [run]: 'mapping' must be a string NAME[:N], not {every!r}")
    if not isinstance(table, dict):
        raise ConfigError(f"{where} [run]: 'mappings' must be a table ([run.mappings])")
    values = [every] if every is not None else []
    for stage, value in table.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where} [run.mappings]: {stage!r} must be a string "
                              f"NAME[:N], not {value!r}")
        values.append(f"{stage}={value}")
    try:
        return resolve_stage_mappings(values, STAGES, where=f"{where} [run]")
    except MappingSpecError as error:
        raise ConfigError(str(error)) from None


def _suggest(key: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _convert(value: Any, hint: Any, key: str, where: str) -> Any:
    """Check ``value`` against the type ``hint`` of a dataclass field; convert lists."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: bad value for {key!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key!r} must be a table")
        return _build(hint, value, f"{where}.{key}" if not where.endswith("]") else
                      f"{where[:-1]}.{key}]")
    if origin in (Mapping, dict) and not isinstance(value, dict):
        raise ConfigError(f"{where}: {key!r} must be a table, not {value!r}")
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key!r} must be an array, not {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        if args and args[-1] is not Ellipsis and len(args) != len(value):
            raise ConfigError(f"{where}: {key!r} needs {len(args)} values, not {len(value)}")
        items = args if args and args[-1] is not Ellipsis else [item] * len(value)
        return tuple(_convert(v, t, key, where) for v, t in zip(value, items, strict=True))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key!r} must be a number, not {value!r}")
        return float(value)
    if hint in (int, bool, str):
        if type(value) is not hint:
            raise ConfigError(f"{where}: {key!r} must be a{'n' if hint is int else ''} "
                              f"{hint.__name__}, not {value!r}")
        return value
    return value


def _build(cls: Any, table: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    values = {}
    for key, value in table.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}{_suggest(key, names)}; known keys: "
                              f"{', '.join(names)}")
        values[key] = _convert(value, hints[key], key, where)
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in values
               and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(repr(m) for m in missing)} "
                          f"(the table needs {', '.join(names)})")
    try:
        return cls(**values)
    except ConfigError as error:
        message = str(error)
        tag = where[where.find("["):] if "[" in where else ""
        if tag and message.startswith(tag):  # the dataclass names its table too
            message = message[len(tag):].lstrip(": ")
        raise ConfigError(f"{where}: {message}") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {error}") from None


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None or "://" in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def load_config(path: Path | None) -> RAConfig:
    """Read and check a configuration file (``None``: every default).

    Raises
    ------
    ConfigError
        For a missing or unreadable file, invalid TOML, or any unknown or invalid key.
    """
    if path is None:
        return RAConfig()
    path = Path(path)
    return parse_config(read_toml(path, ConfigError), path)


def parse_config(data: Mapping[str, Any], path: Path) -> RAConfig:
    """Build an :class:`RAConfig` from parsed TOML ``data`` read from ``path``."""
    where = str(path)
    tables = ("run", "download", "source", "simulate", "preprocess", "pgm", "gmpe", "plot")
    for key, value in data.items():
        if key not in tables:
            raise ConfigError(f"{where}: unknown table [{key}]{_suggest(key, tables)}; "
                              f"tables: {', '.join(tables)}")
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key!r} must be a table ([{key}])")
    base = path.parent.resolve()
    run = dict(data.get("run", {}))
    out = run.pop("out", None)
    mappings = _run_mappings(run, where)
    run.pop("mapping", None)
    run.pop("mappings", None)
    if run:
        key = next(iter(run))
        raise ConfigError(f"{where} [run]: unknown key {key!r}"
                          f"{_suggest(key, ('out', 'mapping', 'mappings'))}; known keys: out, "
                          "mapping, mappings")
    download_table = dict(data.get("download", {}))
    for key in ("event", "quakeml", "directory", "stationxml"):
        if isinstance(download_table.get(key), str):
            download_table[key] = _resolve(base, download_table[key])
    simulate_table = dict(data.get("simulate", {}))
    solver = simulate_table.pop("solver", "embedded")
    if solver not in SOLVERS:
        raise ConfigError(
            f"{where} [simulate]: solver {solver!r} is not known{_suggest(str(solver), SOLVERS)}"
            f"; solvers: {', '.join(SOLVERS)}"
        )
    specfem_table = simulate_table.pop("specfem", {})
    if not isinstance(specfem_table, dict):
        raise ConfigError(f"{where} [simulate]: 'specfem' must be a table ([simulate.specfem])")
    specfem_table = dict(specfem_table)
    kubernetes_table = specfem_table.pop("kubernetes", {})
    if not isinstance(kubernetes_table, dict):
        raise ConfigError(f"{where} [simulate.specfem]: 'kubernetes' must be a table "
                          "([simulate.specfem.kubernetes])")
    simulate_keys = [f.name for f in dataclasses.fields(EmbeddedConfig)] + ["solver", "specfem"]
    for key in simulate_table:
        if key not in simulate_keys:
            raise ConfigError(f"{where} [simulate]: unknown key {key!r}"
                              f"{_suggest(key, simulate_keys)}; known keys: "
                              f"{', '.join(simulate_keys)}")
    for key in ("bin_dir", "par_template", "mesh_par_template", "compose_file",
                "collect_from", "data_dir", "model_file"):
        if isinstance(specfem_table.get(key), str):
            specfem_table[key] = _resolve(base, specfem_table[key])
    return RAConfig(
        source_file=path,
        out=Path(out) if out else RAConfig.out,
        mappings=mappings,
        download=_build(DownloadConfig, download_table, f"{where} [download]"),
        source=_build(SourceConfig, data.get("source", {}), f"{where} [source]"),
        solver=solver,
        simulate=_build(EmbeddedConfig, simulate_table, f"{where} [simulate]"),
        specfem=_build(SpecfemConfig, specfem_table, f"{where} [simulate.specfem]"),
        kubernetes=_build(KubernetesConfig, kubernetes_table,
                          f"{where} [simulate.specfem.kubernetes]"),
        preprocess=_build(PreprocessConfig, data.get("preprocess", {}), f"{where} [preprocess]"),
        pgm=_build(PGMConfig, data.get("pgm", {}), f"{where} [pgm]"),
        gmpe=_build(GMPEConfig, data.get("gmpe", {}), f"{where} [gmpe]"),
        plot=_build(PlotConfig, data.get("plot", {}), f"{where} [plot]"),
    )
