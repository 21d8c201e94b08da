"""The files of a download: what an input file holds, and writing outputs whole."""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lxml import etree
from obspy.io.mseed.core import _is_mseed

from dare_cli.ra.names import OutsideRunFolderError, contained_path, is_station_id
from dare_cli.ra.runfolder import RUN_MARKER
from engine.files import atomic_path

__all__ = [
    "MSEED_SUFFIXES",
    "atomic_write",
    "classify_file",
    "first_line",
    "package_version",
    "remove_previous",
    "station_from_name",
    "walk_files",
    "write_manifest_json",
]

#: File name endings of miniSEED: such a file that is not miniSEED is reported, not ignored.
MSEED_SUFFIXES = (".mseed", ".miniseed", ".ms", ".msd")


def station_from_name(name: str) -> str | None:
    """``NET.STA`` from a file named like ``NET.STA.LOC.CHA...`` or ``NET.STA.xml``."""
    parts = name.split(".")
    if len(parts) >= 3 and is_station_id(f"{parts[0]}.{parts[1]}"):
        return f"{parts[0]}.{parts[1]}"
    return None


def walk_files(top: Path, out_dir: Path) -> list[Path]:
    """Files under ``top`` (sorted), not following folder links.

    Hidden entries, dare run folders (``.dare-run.json``) and the output folder are skipped.
    """
    skip = out_dir.resolve()
    found: list[Path] = []
    for folder, subfolders, names in os.walk(top):
        here = Path(folder)
        subfolders[:] = sorted(
            name for name in subfolders
            if not name.startswith(".") and not (here / name / RUN_MARKER).exists()
            and (here / name).resolve() != skip
        )
        found.extend(here / name for name in sorted(names)
                     if not name.startswith(".") and (here / name).is_file())
    return found


def classify_file(path: Path) -> str:
    """What a file holds, by content, not by name.

    One of ``mseed``, ``stationxml``, ``xml`` (another document), ``broken-xml``, ``empty``,
    ``unreadable`` or ``other``.
    """
    try:
        if path.stat().st_size == 0:
            return "empty"
        if _is_mseed(str(path)):
            return "mseed"
        with open(path, "rb") as handle:
            head = handle.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return "unreadable"
    except Exception:  # obspy's sniffing of odd files
        return "other"
    if not head.startswith(b"<"):
        return "other"
    try:
        for _, element in etree.iterparse(str(path), events=("start",)):
            root = etree.QName(element).localname
            return "stationxml" if root == "FDSNStationXML" else "xml"
    except etree.XMLSyntaxError:
        return "broken-xml"
    return "broken-xml"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def package_version(package: str) -> str | None:
    """The installed version of a package, or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write through a temporary file in the same folder, then rename it into place."""
    with atomic_path(path) as temporary:
        write(str(temporary))


def write_manifest_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON (in insertion order) atomically."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    atomic_write(path, lambda p: Path(p).write_text(text))


def remove_previous(out_dir: Path) -> None:
    """Remove the files an earlier download listed in its manifest."""
    manifest = out_dir / "manifest.json"
    try:
        files = json.loads(manifest.read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return
    for name in [*files, "manifest.json"]:
        relative = Path(str(name))
        if relative.is_absolute() or ".." in relative.parts:
            continue
        path = out_dir / relative
        try:
            contained_path(path.parent, out_dir)  # no folder of it leads out of out_dir
        except OutsideRunFolderError:
            continue
        if path.is_file() and not path.is_symlink():  # dare writes files, never links
            path.unlink()
