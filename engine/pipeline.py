"""Pipelines: stages run in order, each a graph on its own mapping, handing files on.

A :class:`Stage` builds its graph from a :class:`StageContext` (where its inputs are, where to
write); :class:`Pipeline` runs the stages in order, each on the mapping chosen for it, and
records a :class:`StageReport` per stage. A stage writes into a temporary folder that is renamed
to ``<run_dir>/<stage>`` only when it succeeds, so a failed stage leaves no partial output.

Re-running skips a stage whose fingerprint did not change: the digest of its parameters, of the
files it declares as inputs, and of the outputs of the stages it depends on. ``force`` redoes
stages (all, or the ones named).

A pipeline replaces only what it made: a stage folder is a real folder holding the marker
``.stage.json`` (the temporary ``.<stage>.partial`` folder gets one as soon as it is made). A
folder of that name without the marker, a symbolic link or a file is never removed: the stage
fails and says so (with ``force`` too). Folders are removed without following the symbolic
links inside them.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.graph import WorkflowGraph
from engine.mappings import get_mapping
from engine.observe import Observer, RunResult
from engine.partition import InputSpec

__all__ = [
    "MappingSpecError",
    "Pipeline",
    "PipelineReport",
    "Stage",
    "StageContext",
    "StageMappings",
    "StageObserver",
    "StageReport",
    "StageWork",
    "digest_paths",
    "parse_mapping",
    "parse_stage_mappings",
    "resolve_stage_mappings",
    "with_workers",
]

MARKER = ".stage.json"

#: ``(mapping name, workers)``; ``None`` workers: the mapping's default.
MappingChoice = tuple[str, int | None]


class MappingSpecError(ValueError):
    """A ``NAME[:N]`` or ``STAGE=NAME[:N]`` text that does not follow the grammar.

    The caller turns it into its own usage or configuration error (the message names ``where``
    the text came from: a flag or a configuration key).
    """


def parse_mapping(text: str, where: str = "--mapping") -> MappingChoice:
    """Parse ``NAME[:N]`` (a mapping and, optionally, its number of workers).

    The grammar of every ``--mapping`` flag and configuration key. The name is not checked
    against the installed mappings (:func:`engine.mappings.get_mapping` does that).

    Raises
    ------
    MappingSpecError
        An empty name, or ``N`` that is not an integer >= 1.

    Examples
    --------
    >>> parse_mapping("multi:4")
    ('multi', 4)
    >>> parse_mapping("simple")
    ('simple', None)
    """
    name, sep, count = text.strip().partition(":")
    name = name.strip()
    if not name or "=" in name:
        raise MappingSpecError(f"{where}: expected NAME[:N], not {text!r}")
    if not sep:
        return name, None
    try:
        workers = int(count)
    except ValueError:
        raise MappingSpecError(f"{where}: the worker count of {text!r} must be an integer, "
                               f"not {count!r}") from None
    if workers < 1:
        raise MappingSpecError(f"{where}: the worker count of {text!r} must be >= 1")
    return name, workers


def with_workers(choice: MappingChoice, workers: int | None, where: str = "--mapping"
                 ) -> MappingChoice:
    """``choice`` with the worker count ``workers`` (``-n``) given beside it.

    Raises
    ------
    MappingSpecError
        ``NAME:N`` and ``workers`` give different counts.
    """
    name, count = choice
    if workers is None:
        return choice
    if count is not None and count != workers:
        raise MappingSpecError(f"{where} {name}:{count} and --workers {workers} disagree: "
                               "give the number of workers once")
    return name, workers


@dataclass(frozen=True)
class StageMappings:
    """``--mapping`` values of a pipeline: one for every stage, and per-stage overrides.

    Attributes
    ----------
    every
        ``NAME[:N]`` given for every stage (``None``: not given).
    workers
        ``-n/--workers``: the worker count of every stage without its own override.
    stages
        ``{stage: (mapping, workers)}`` of the ``STAGE=NAME[:N]`` values.
    """

    every: MappingChoice | None = None
    workers: int | None = None
    stages: Mapping[str, MappingChoice] = field(default_factory=dict)

    def apply(self, base: Mapping[str, MappingChoice], names: Sequence[str]
              ) -> dict[str, MappingChoice]:
        """Layer these choices over ``base`` (the configuration's) for the stages ``names``.

        Per-stage values win over the value for every stage, which wins over ``base``.
        """
        resolved = dict(base)
        for stage in names:
            if self.every is not None:
                resolved[stage] = self.every
            elif self.workers is not None:
                resolved[stage] = (resolved.get(stage, ("simple", None))[0], self.workers)
        resolved.update(self.stages)
        return resolved


def parse_stage_mappings(values: Iterable[str], stages: Sequence[str], *,
                         workers: int | None = None, where: str = "--mapping"
                         ) -> StageMappings:
    """Parse repeated ``NAME[:N]`` (every stage) and ``STAGE=NAME[:N]`` (one stage) values.

    ``workers`` is ``-n/--workers``, a synonym of the ``:N`` of the value for every stage.

    Raises
    ------
    MappingSpecError
        A value off the grammar, an unknown stage (listing the stages), two values for every
        stage or for the same stage, or ``:N`` disagreeing with ``workers``.

    Examples
    --------
    >>> spec = parse_stage_mappings(["pgm=simple", "multi:2"], ["download", "pgm"])
    >>> spec.apply({}, ["download", "pgm"])
    {'download': ('multi', 2), 'pgm': ('simple', None)}
    """
    every: MappingChoice | None = None
    chosen: dict[str, MappingChoice] = {}
    for text in values:
        stage, sep, value = text.partition("=")
        if not sep:
            if every is not None:
                raise MappingSpecError(f"{where}: {text!r} and {every[0]}"
                                       f"{'' if every[1] is None else f':{every[1]}'} both set "
                                       "every stage; give STAGE=NAME[:N] for one stage")
            every = parse_mapping(text, where)
            continue
        stage = stage.strip()
        if stage not in stages:
            close = difflib.get_close_matches(stage, list(stages), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise MappingSpecError(f"{where}: unknown stage {stage!r}{hint}; stages: "
                                   f"{', '.join(stages)}")
        if stage in chosen:
            raise MappingSpecError(f"{where}: stage {stage!r} is given twice")
        chosen[stage] = parse_mapping(value, f"{where} {stage}=")
    if every is not None:
        every = with_workers(every, workers, where)
    return StageMappings(every, workers, chosen)


def resolve_stage_mappings(values: Iterable[str], stages: Sequence[str],
                           base: Mapping[str, MappingChoice] | None = None, *,
                           workers: int | None = None, where: str = "--mapping"
                           ) -> dict[str, MappingChoice]:
    """:func:`parse_stage_mappings` applied over ``base``: ``{stage: (mapping, workers)}``."""
    spec = parse_stage_mappings(values, stages, workers=workers, where=where)
    return spec.apply(base or {}, stages)


@dataclass(frozen=True)
class StageContext:
    """What a stage sees: its folder (being written), and the folders of earlier stages."""

    name: str
    run_dir: Path
    out_dir: Path
    params: Mapping[str, Any]

    def stage_dir(self, name: str) -> Path:
        """Folder of an earlier stage's output."""
        return self.run_dir / name


@dataclass
class StageWork:
    """The work of one stage run: a graph with its inputs, and what to do with its result.

    ``graph`` may be ``None`` for a stage that only runs ``finish`` (in the calling process).
    ``finish(result)`` runs in the calling process after the graph and returns the stage's
    summary (JSON-serialisable) for the report; it may raise to fail the stage.
    """

    graph: WorkflowGraph | None
    inputs: InputSpec = None
    finish: Callable[[RunResult | None], dict[str, Any]] | None = None


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline.

    Parameters
    ----------
    name
        Folder name and the name used on the command line.
    build
        ``build(context) -> StageWork``.
    params
        Parameters that change the stage's output (fingerprinted).
    depends
        Earlier stages whose outputs this stage reads.
    inputs
        Files or folders outside the run directory that the stage reads (fingerprinted).
    """

    name: str
    build: Callable[[StageContext], StageWork]
    params: Mapping[str, Any] = field(default_factory=dict)
    depends: tuple[str, ...] = ()
    inputs: tuple[Path, ...] = ()


@dataclass
class StageReport:
    """What happened to one stage."""

    name: str
    status: str  # "ran", "skipped" or "failed"
    mapping: str | None = None
    workers: int | None = None
    seconds: float = 0.0
    fingerprint: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    #: Why the stage was skipped or run (:data:`UP_TO_DATE`, :data:`FORCED`, ...).
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "name": self.name, "status": self.status, "reason": self.reason,
            "mapping": self.mapping, "workers": self.workers,
            "seconds": round(self.seconds, 3), "fingerprint": self.fingerprint,
            "summary": self.summary, "error": self.error,
        }

    def describe(self) -> str:
        """One line: ``stage NAME: STATUS ...`` with the reason and the wall time."""
        if self.status == "skipped":
            return f"stage {self.name}: skipped ({self.reason})"
        where = ""
        if self.mapping is not None:
            count = "" if self.workers is None else (
                f", {self.workers} worker{'s' if self.workers != 1 else ''}")
            where = f" on {self.mapping}{count}"
        if self.status == "failed":
            return f"stage {self.name}: failed after {self.seconds:.2f} s{where}: {self.error}"
        return f"stage {self.name}: ran in {self.seconds:.2f} s{where} ({self.reason})"


#: Reasons of :attr:`StageReport.reason`.
UP_TO_DATE = "up to date: same inputs and configuration"
FORCED = "forced"
NOT_RUN_BEFORE = "no earlier output"
UPSTREAM_RAN = "out of date: stage(s) {} ran again"
CHANGED = "out of date: configuration or input files changed"
MISSING_INPUTS = "needs the output of stage(s) {}"


class StageObserver:
    """What a :class:`Pipeline` tells about its stages, beside each stage's engine observers.

    Pass an instance as ``observers`` of :meth:`Pipeline.run`: calling it gives the
    observers of a stage's graph run (progress bars); the hooks announce each stage.
    """

    def __call__(self, stage: Stage) -> Iterable[Observer]:
        """Observers of the run of ``stage``'s graph (none by default)."""
        return ()

    def stage_started(self, stage: Stage, mapping: str, workers: int | None,
                      reason: str) -> None:
        """``stage`` is about to run on ``mapping`` (not called for skipped stages)."""

    def stage_finished(self, report: StageReport) -> None:
        """``stage`` ran, failed or was skipped: ``report`` says which, why, how long."""


@dataclass
class PipelineReport:
    """Reports of the stages, in order."""

    stages: list[StageReport]

    @property
    def ok(self) -> bool:
        """Whether no stage failed."""
        return all(stage.status != "failed" for stage in self.stages)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"ok": self.ok, "stages": [stage.as_dict() for stage in self.stages]}


def digest_paths(paths: Iterable[Path], *, exclude: Sequence[str] = (MARKER,)) -> str:
    """SHA-256 over the relative names and contents of files (folders walked, sorted)."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.name not in exclude)
            base = root
        elif root.exists():
            files, base = [root], root.parent
        else:
            digest.update(f"missing:{root}".encode())
            continue
        for path in files:
            digest.update(str(path.relative_to(base)).encode())
            digest.update(b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _is_own_folder(path: Path) -> bool:
    """Whether ``path`` is a stage folder a pipeline made: a real folder with the marker."""
    marker = path / MARKER
    return (path.is_dir() and not path.is_symlink() and marker.is_file()
            and not marker.is_symlink())


def _remove_own_folder(path: Path, what: str, *, empty_too: bool = False) -> None:
    """Remove a folder the pipeline made; refuse anything else.

    ``empty_too`` also removes an empty folder without the marker (a temporary folder whose
    run died before writing its marker).

    Raises
    ------
    EngineError
        ``path`` exists and is a file, a symbolic link, or a folder without the marker.
    """
    if not path.exists() and not path.is_symlink():
        return
    if _is_own_folder(path):
        shutil.rmtree(path)  # does not follow the symbolic links inside
        return
    if empty_too and path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        path.rmdir()
        return
    kind = ("a symbolic link" if path.is_symlink() else
            "a folder without " + MARKER if path.is_dir() else "a file")
    raise EngineError(f"refusing to replace {path}: {kind}, not {what} made by dare; move it "
                      "away")


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))


class Pipeline:
    """Stages run in order, each on its own mapping."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        names = [stage.name for stage in stages]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise EngineError(f"duplicate stage name(s): {', '.join(sorted(duplicates))}")
        for index, stage in enumerate(stages):
            for dependency in stage.depends:
                if dependency not in names[:index]:
                    raise EngineError(
                        f"stage {stage.name!r} depends on {dependency!r}, which is not an "
                        "earlier stage"
                    )
        self.stages = list(stages)

    @property
    def names(self) -> list[str]:
        """Stage names in order."""
        return [stage.name for stage in self.stages]

    def fingerprint(self, stage: Stage, run_dir: Path) -> str:
        """Digest of the stage's parameters, external inputs and upstream outputs."""
        digest = hashlib.sha256(stage.name.encode())
        digest.update(_canonical(dict(stage.params)).encode())
        digest.update(digest_paths(stage.inputs).encode())
        for dependency in stage.depends:
            digest.update(digest_paths([run_dir / dependency]).encode())
        return digest.hexdigest()

    def is_current(self, stage: Stage, run_dir: Path) -> bool:
        """Whether the stage's output exists and was made from the same fingerprint."""
        recorded = _read_marker(run_dir / stage.name)
        return bool(recorded) and recorded.get("fingerprint") == self.fingerprint(stage, run_dir)

    def run(
        self,
        run_dir: Path,
        *,
        mappings: Mapping[str, tuple[str, int | None]] | None = None,
        only: Sequence[str] | None = None,
        force: bool | Sequence[str] = False,
        observers: Callable[[Stage], Iterable[Observer]] | StageObserver | None = None,
        stop_on_failure: bool = True,
    ) -> PipelineReport:
        """Run the stages (``only`` some of them) under ``run_dir``.

        Parameters
        ----------
        mappings
            ``{stage: (mapping, workers)}``; stages not named run on ``simple``.
        only
            Names of the stages to run (others are neither run nor checked).
        force
            ``True`` to redo every stage, or the names of stages to redo.
        observers
            ``observers(stage)`` gives the observers of that stage's run (progress bars); a
            :class:`StageObserver` is also told when each stage starts and ends (skipped too).
        """
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        mappings = dict(mappings or {})
        unknown = set(mappings) | set(only or ()) | (
            set(force) if not isinstance(force, bool) else set()
        )
        unknown -= set(self.names)
        if unknown:
            raise EngineError(
                f"unknown stage(s) {', '.join(sorted(unknown))}; stages: {', '.join(self.names)}"
            )
        hooks = observers if isinstance(observers, StageObserver) else StageObserver()
        reports: list[StageReport] = []
        ran: list[str] = []
        for stage in self.stages:
            if only is not None and stage.name not in only:
                continue
            started = time.perf_counter()
            forced = force is True or (not isinstance(force, bool) and stage.name in force)
            missing = [d for d in stage.depends if not (run_dir / d / MARKER).exists()]
            if missing:
                report = StageReport(
                    stage.name, "failed",
                    error=f"needs the output of stage(s) {', '.join(missing)}: run them first",
                    reason=MISSING_INPUTS.format(", ".join(missing)),
                )
                reports.append(report)
                hooks.stage_finished(report)
                if stop_on_failure:
                    break
                continue
            fingerprint = self.fingerprint(stage, run_dir)
            previous = _read_marker(run_dir / stage.name)
            if not forced and previous.get("fingerprint") == fingerprint:
                report = StageReport(stage.name, "skipped", fingerprint=fingerprint,
                                     summary=previous.get("summary", {}), reason=UP_TO_DATE,
                                     seconds=time.perf_counter() - started)
                reports.append(report)
                hooks.stage_finished(report)
                continue
            upstream = [d for d in stage.depends if d in ran]
            reason = (FORCED if forced else NOT_RUN_BEFORE if not previous
                      else UPSTREAM_RAN.format(", ".join(upstream)) if upstream else CHANGED)
            mapping, workers = mappings.get(stage.name, ("simple", None))
            hooks.stage_started(stage, mapping, workers, reason)
            report = self._run_stage(stage, run_dir, mapping, workers, fingerprint,
                                     list(observers(stage)) if observers else [])
            report.reason = reason
            reports.append(report)
            hooks.stage_finished(report)
            if report.status == "ran":
                ran.append(stage.name)
            if report.status == "failed" and stop_on_failure:
                break
        return PipelineReport(reports)

    def _run_stage(
        self,
        stage: Stage,
        run_dir: Path,
        mapping: str,
        workers: int | None,
        fingerprint: str,
        observers: list[Observer],
    ) -> StageReport:
        final = run_dir / stage.name
        partial = run_dir / f".{stage.name}.partial"
        started = time.perf_counter()
        report = StageReport(stage.name, "ran", mapping, workers, fingerprint=fingerprint)
        try:
            if (final.exists() or final.is_symlink()) and not _is_own_folder(final):
                _remove_own_folder(final, "a stage folder")  # raises: not ours
            _remove_own_folder(partial, "a temporary stage folder", empty_too=True)
            partial.mkdir(parents=True)
            (partial / MARKER).write_text(json.dumps({"status": "partial"}))
        except (EngineError, OSError) as error:
            report.status, report.error, report.exception = "failed", str(error), error
            return report
        context = StageContext(stage.name, run_dir, partial, dict(stage.params))
        try:
            work = stage.build(context)
            result = None
            if work.graph is not None:
                result = get_mapping(mapping).run(work.graph, work.inputs, workers=workers,
                                                  observers=observers)
                report.workers = result.summary.workers
            report.summary = work.finish(result) if work.finish else {}
            marker = {"fingerprint": fingerprint, "summary": report.summary,
                      "mapping": mapping, "workers": report.workers}
            (partial / MARKER).write_text(json.dumps(marker, indent=2, default=str))
            _remove_own_folder(final, "a stage folder")
            os.replace(partial, final)
        except KeyboardInterrupt:
            _discard(partial)
            raise
        except Exception as error:
            _discard(partial)
            report.status = "failed"
            report.error = str(error) or type(error).__name__
            report.exception = error
        report.seconds = time.perf_counter() - started
        return report


def _read_marker(folder: Path) -> dict[str, Any]:
    """The marker of a finished stage folder (``{}``: none, unreadable or not finished)."""
    try:
        recorded = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) and "fingerprint" in recorded else {}


def _discard(partial: Path) -> None:
    """Remove the temporary folder of a failed stage, if it is still the pipeline's."""
    if _is_own_folder(partial):
        shutil.rmtree(partial, ignore_errors=True)
