"""Run folders dare can tell from the user's: a marker file, and checks before anything is written.

Every run folder dare creates has a marker at its top, ``.dare-run.json``::

    {
      "format": "dare-run/1",
      "kind": "ra",
      "dare": "0.4.0",
      "created": "2025-01-31T10:00:00.000000Z",
      "updated": "2025-01-31T10:05:00.000000Z",
      "files": ["pgm.csv", "report.json", "stationlist.json"]
    }

``files`` lists the top-level files dare wrote there (its stage folders carry their own marker,
``.stage.json``, written by :mod:`engine.pipeline`). The rules, checked by
:func:`check_run_folder` before anything runs:

* a folder that does not exist, or is empty, is used (and marked);
* a folder with the marker is dare's and is used;
* a folder without the marker whose entries are all dare's (stage folders with
  ``.stage.json``, dare's top-level files and folders: a run of a dare version before the
  marker) is adopted;
* any other non-empty folder is refused (:class:`~dare_cli.ra.errors.ConfigError`, exit 2)
  unless ``force``;
* even with ``force``, a folder named like a stage without ``.stage.json``, a symbolic link
  named like a stage, or a file named like one of dare's top-level files that dare did not
  write, is refused: dare never replaces or deletes what it did not make.

Top-level copies of the stages' deliverables (``pgm.csv``, ``stationlist.json``, the maps) are
made by :func:`publish_outputs` after each run, by one rule: a copy is at the top of the run
folder exactly when its stage's output is current, i.e. the stage ran in this run, or was
skipped as current, or (not asked for, ``dare ra download`` alone) its fingerprint still
matches its inputs and every stage it depends on is current too. When the stage failed, did
not run after an earlier failure, or is out of date, dare removes its earlier copy (never a
file it did not write), so an old ``pgm.csv`` never passes for a new one; the stage's own
folder stays as it was (the next run redoes it).
``report.json``'s ``outputs`` says, for each of these files, which stage made it, whether this
run made it (``this_run``), or why it was removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obspy import UTCDateTime

from dare_cli.ra.errors import ConfigError
from dare_cli.ra.names import contained_path
from engine.files import write_atomic

if TYPE_CHECKING:
    from engine.pipeline import Pipeline, PipelineReport

__all__ = [
    "RA_DELIVERABLES",
    "RA_FILES",
    "RA_FOLDERS",
    "RUN_FORMAT",
    "RUN_MARKER",
    "STAGE_MARKER",
    "check_run_folder",
    "is_dare_run",
    "prepare_run_folder",
    "publish_outputs",
    "read_run_marker",
    "record_files",
    "remove_own_file",
]

#: Files of the Rapid Assessment's stages copied to the top of its run folder while current
#: (:func:`publish_outputs`): ``{stage: (file, ...)}``.
RA_DELIVERABLES: dict[str, tuple[str, ...]] = {
    "pgm": ("pgm.csv",), "geojson": ("stationlist.json",),
    "plot": ("pga_map.png", "misfit_map.png", "residuals.png", "report.html"),
}
#: What the Rapid Assessment writes at the top of a run folder besides its stage folders.
RA_FILES = ("report.json", *(name for names in RA_DELIVERABLES.values() for name in names))
RA_FOLDERS = ("specfem-batch",)

RUN_MARKER = ".dare-run.json"
RUN_FORMAT = "dare-run/1"
#: The marker of a finished stage folder (``engine.pipeline.MARKER``).
STAGE_MARKER = ".stage.json"


def read_run_marker(run_dir: Path) -> dict[str, Any] | None:
    """The marker of a run folder, or ``None`` when there is no valid one."""
    marker = Path(run_dir) / RUN_MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        return None
    return data


def _is_stage_folder(path: Path) -> bool:
    return (path.is_dir() and not path.is_symlink() and (path / STAGE_MARKER).is_file()
            and not (path / STAGE_MARKER).is_symlink())


def is_dare_run(run_dir: Path, *, stages: Sequence[str], files: Sequence[str],
                folders: Sequence[str] = ()) -> bool:
    """Whether ``run_dir`` is a run folder of dare: it has the marker, or holds only dare's own.

    Parameters
    ----------
    run_dir
        The folder.
    stages
        Stage names (folders with ``.stage.json``; ``.<stage>.partial`` folders too).
    files, folders
        Top-level files and folders dare writes besides the stages (``report.json``,
        ``pgm.csv``..., ``specfem-batch``).
    """
    run_dir = Path(run_dir)
    if read_run_marker(run_dir) is not None:
        return True
    if not run_dir.is_dir():
        return False
    entries = list(run_dir.iterdir())
    if not entries:
        return False
    for entry in entries:
        name = entry.name
        if name in stages and _is_stage_folder(entry):
            continue
        if name.startswith(".") and name.endswith(".partial") and name[1:-8] in stages \
                and entry.is_dir() and not entry.is_symlink():
            continue
        if name in files and entry.is_file() and not entry.is_symlink():
            continue
        if name in folders and entry.is_dir() and not entry.is_symlink():
            continue
        return False
    return True


def check_run_folder(run_dir: Path, *, stages: Sequence[str], files: Sequence[str],
                     folders: Sequence[str] = (), force: bool = False) -> None:
    """Refuse a run folder dare must not write into; write nothing.

    Parameters
    ----------
    run_dir
        The ``--out`` folder.
    stages, files, folders
        What dare writes there (see :func:`is_dare_run`).
    force
        Use a non-empty folder that is not dare's (``--force``); dare's names in it must
        still be free (see the module docstring).

    Raises
    ------
    ConfigError
        The rules of the module docstring; the message names the folder and the way out.
    """
    run_dir = Path(run_dir)
    if run_dir.is_symlink() and not run_dir.exists():
        raise ConfigError(f"--out {run_dir} is a broken symbolic link")
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} exists and is not a folder")
    marker = read_run_marker(run_dir)
    ours = marker is not None or is_dare_run(run_dir, stages=stages, files=files,
                                             folders=folders)
    empty = not any(run_dir.iterdir())
    if not ours and not empty and not force:
        raise ConfigError(
            f"--out {run_dir} is not empty and is not a dare run folder (no {RUN_MARKER}): "
            "choose a new or empty folder, or add --force to run in it (dare then writes only "
            "its own files and never replaces yours)")
    recorded = set(marker.get("files", [])) if marker is not None else (
        set(files) if ours else set())
    clashes = []
    for name in stages:
        entry = run_dir / name
        if (entry.exists() or entry.is_symlink()) and not _is_stage_folder(entry):
            clashes.append(f"{name}/ (not a stage folder dare made: no {STAGE_MARKER})"
                           if entry.is_dir() and not entry.is_symlink() else
                           f"{name} (a {'symbolic link' if entry.is_symlink() else 'file'})")
        partial = run_dir / f".{name}.partial"
        if partial.is_symlink() or (partial.exists() and not partial.is_dir()):
            clashes.append(f".{name}.partial (not a folder dare made)")
    for name in files:
        entry = run_dir / name
        if (entry.exists() or entry.is_symlink()) and (
            name not in recorded or entry.is_symlink() or not entry.is_file()
        ):
            clashes.append(f"{name} (not written by dare)")
    if clashes:
        raise ConfigError(
            f"--out {run_dir}: dare would replace what it did not make: {'; '.join(clashes)}; "
            "move them away or choose another --out (--force never replaces them)")


def prepare_run_folder(run_dir: Path, *, stages: Sequence[str], files: Sequence[str],
                       folders: Sequence[str] = (), force: bool = False, kind: str = "ra",
                       version: str | None = None) -> dict[str, Any]:
    """Check the run folder (:func:`check_run_folder`), create it, and write or refresh its marker.

    Returns
    -------
    dict
        The marker written.
    """
    run_dir = Path(run_dir)
    check_run_folder(run_dir, stages=stages, files=files, folders=folders, force=force)
    existing = read_run_marker(run_dir)
    if existing is None and is_dare_run(run_dir, stages=stages, files=files,
                                        folders=folders):
        # a run of a dare before the marker: its top-level files are dare's
        existing = {"files": sorted(n for n in files if (run_dir / n).is_file())}
    run_dir.mkdir(parents=True, exist_ok=True)
    now = str(UTCDateTime())
    marker = {
        "format": RUN_FORMAT,
        "kind": kind,
        "dare": version if version is not None else _dare_version(),
        "created": (existing or {}).get("created", now),
        "updated": now,
        "files": sorted((existing or {}).get("files", [])),
    }
    _write_marker(run_dir, marker)
    return marker


def record_files(run_dir: Path, written: Iterable[str], removed: Iterable[str] = ()) -> None:
    """Add top-level files dare wrote to the marker's ``files`` (and drop removed ones)."""
    run_dir = Path(run_dir)
    marker = read_run_marker(run_dir)
    if marker is None:
        return
    names = (set(marker.get("files", [])) | set(written)) - set(removed)
    marker["files"] = sorted(names)
    marker["updated"] = str(UTCDateTime())
    _write_marker(run_dir, marker)


def remove_own_file(run_dir: Path, name: str) -> bool:
    """Remove the top-level file ``name`` if dare wrote it (in the marker); symlinks stay.

    Returns
    -------
    bool
        Whether a file was removed.
    """
    run_dir = Path(run_dir)
    marker = read_run_marker(run_dir)
    path = run_dir / name
    if marker is None or name not in marker.get("files", []) or "/" in name:
        return False
    if path.is_symlink() or not path.is_file():
        return False
    contained_path(path, run_dir)
    path.unlink()
    return True


def publish_outputs(pipeline: Pipeline, report: PipelineReport, run_dir: Path,
                    deliverables: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Any]]:
    """Copy the current deliverables of the stages to the top of the run folder; remove stale ones.

    Parameters
    ----------
    pipeline
        The pipeline that ran.
    report
        Its report of this run.
    run_dir
        The run folder.
    deliverables
        ``{stage: (file, ...)}``: files of a stage's folder copied to the top.

    Returns
    -------
    dict
        Per file: ``stage``, ``status`` (``"current"``, ``"removed"`` or ``"absent"``),
        ``this_run`` (whether this run's stage made it), ``stage_status`` (``"ran"``,
        ``"skipped"``, ``"failed"`` or ``"not run"``) and ``note`` (why).
    """
    run_dir = Path(run_dir)
    statuses = {stage.name: stage.status for stage in report.stages}
    order = [stage.name for stage in pipeline.stages]
    stages = {stage.name: stage for stage in pipeline.stages}
    failed = next((stage.name for stage in report.stages if stage.status == "failed"), None)
    known: dict[str, bool] = {}

    def is_current(name: str) -> bool:
        """Ran or skipped now, or (not asked for) current, and so is everything before it."""
        if name not in known:
            status = statuses.get(name, "not run")
            if status in ("ran", "skipped"):
                known[name] = True
            elif status == "failed" or name not in stages or (
                    failed is not None and order.index(name) > order.index(failed)):
                known[name] = False
            else:
                stage = stages[name]
                known[name] = ((run_dir / name).is_dir() and pipeline.is_current(stage, run_dir)
                               and all(is_current(d) for d in stage.depends))
        return known[name]

    outputs: dict[str, dict[str, Any]] = {}
    for stage_name, names in deliverables.items():
        status = statuses.get(stage_name, "not run")
        current = is_current(stage_name)
        if status == "ran":
            note = "made by this run"
        elif status == "skipped":
            note = "made by an earlier run; its inputs and parameters are unchanged"
        elif status == "failed":
            note = f"stage {stage_name} failed in this run"
        elif current:
            note = "made by an earlier run; not run now, its inputs and parameters are unchanged"
        elif failed is not None and stage_name in stages and \
                order.index(stage_name) > order.index(failed):
            note = f"stage {stage_name} did not run: stage {failed} failed"
        else:
            note = (f"stage {stage_name} did not run, and its earlier output (or one it "
                    "depends on) is out of date or missing")
        for name in names:
            source, target = run_dir / stage_name / name, run_dir / name
            entry: dict[str, Any] = {"stage": stage_name, "stage_status": status,
                                     "this_run": current and status == "ran"}
            if current and source.is_file() and not source.is_symlink():
                contained_path(target, run_dir)
                data = source.read_bytes()
                if target.is_symlink() or not target.is_file() or target.read_bytes() != data:
                    write_atomic(target, data)
                entry.update(status="current", note=note)
            else:
                removed = remove_own_file(run_dir, name)
                entry.update(status="removed" if removed else "absent",
                             note=note if not current else f"stage {stage_name} wrote no {name}")
            outputs[name] = entry
    return outputs


def _write_marker(run_dir: Path, marker: dict[str, Any]) -> None:
    path = run_dir / RUN_MARKER
    if path.is_symlink():
        raise ConfigError(f"{path} is a symbolic link: not dare's marker")
    write_atomic(path, json.dumps(marker, indent=2, sort_keys=True) + "\n")


def _dare_version() -> str:
    from dare_cli import __version__

    return str(__version__)
