"""dare's container images: build contexts assembled from the installed package, and builds.

The images live in ``containers/`` (one folder per image, with its ``Dockerfile``), which is
installed with the package as ``dare_cli/containers`` (a link to it in a source checkout,
package data in a wheel). A build never sends a project folder as it is: :func:`assemble_context`
copies into a temporary folder only what the Dockerfile uses, so the context is the same small
one whether dare runs from a checkout (with its ``.venv``, run folders and caches beside) or
from a non-editable install::

    containers/<image>/   the image's folder (Dockerfile, scripts, configuration)
    dare/                 dare itself: its source tree (checkout) or a wheel made from the
                          installed files (non-editable install), and requirements.txt
    specfem/vendor/       SPECFEM3D's source archive (``specfem`` image, when available)

:func:`build` sends it to the Docker engine with docker-py (the legacy builder, which reads
no ``Dockerfile.dockerignore``), passes the build arguments and the base image, removes the
intermediate containers even when a step fails (``forcerm``) and, on failure, raises
:class:`ImageBuildError` naming the failing step with the last lines of its output.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import tomllib
import zipfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dare_cli import __version__

__all__ = [
    "BASE_IMAGE",
    "IMAGES",
    "ImageBuildError",
    "ImageSpec",
    "assemble_context",
    "build",
    "containers_dir",
    "context_size",
    "dare_wheel",
    "ensure_base_image",
    "requirements",
    "source_tree",
    "specfem_archives",
]

#: The ``FROM`` of every image (build argument ``BASE_IMAGE``); without Docker Hub,
#: ``containers/base-image.sh`` makes it with debootstrap.
BASE_IMAGE = "debian:bookworm-slim"
#: Lines of build output kept for the message of a failed build.
TAIL_LINES = 30

Log = Callable[[str], None]


def _quiet(line: str) -> None:
    """Default log callback: drop the line."""


@dataclass(frozen=True)
class ImageSpec:
    """One image of ``containers/``.

    Attributes
    ----------
    name
        Its folder in ``containers/`` (holding its ``Dockerfile``).
    tag
        Default tag.
    extras
        dare's extras installed in it (their dependencies go into ``requirements.txt``).
    specfem
        Its build compiles SPECFEM3D (the context carries ``specfem/vendor/``).
    """

    name: str
    tag: str
    extras: tuple[str, ...] = ()
    specfem: bool = False

    @property
    def dockerfile(self) -> str:
        """The Dockerfile's path inside the context."""
        return f"containers/{self.name}/Dockerfile"


#: The images dare builds.
IMAGES = {
    "dare": ImageSpec("dare", f"dare:{__version__}", extras=("mpi", "kafka")),
    "specfem": ImageSpec("specfem", "dare-specfem:v4.1.0", specfem=True),
}


class ImageBuildError(Exception):
    """An image build failed: which image, which step, why, and the end of its output.

    Parameters
    ----------
    image
        The tag being built.
    reason
        What the engine said (e.g. ``The command ... returned a non-zero code: 1``).
    step
        The Dockerfile step that failed (``Step 5/17 : RUN ...``), if known.
    tail
        The last lines of the build's output.
    """

    def __init__(self, image: str, reason: str, step: str | None = None,
                 tail: Sequence[str] = ()) -> None:
        text = f"building {image} failed"
        if step:
            text += f" at {step}"
        text += f": {reason}"
        if tail:
            text += "\nlast lines of the build:\n  " + "\n  ".join(tail)
        super().__init__(text)
        self.image = image
        self.reason = reason
        self.step = step
        self.tail = list(tail)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ImageBuildError, (self.image, self.reason, self.step, self.tail))


# -- where the files are -----------------------------------------------------------------------
def containers_dir() -> Path:
    """``containers/`` as installed with the package (``dare_cli/containers``)."""
    return (Path(__file__).resolve().parent / "containers").resolve()


def source_tree() -> Path | None:
    """The project's root when dare runs from a source checkout (editable or not), else None."""
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and (root / "engine").is_dir()):
        return None
    try:
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
    except (tomllib.TOMLDecodeError, KeyError):
        return None
    return root if name == "dare" else None


def specfem_archives() -> list[Path]:
    """SPECFEM3D source archives for the ``specfem`` image's offline build.

    ``$DARE_SPECFEM_VENDOR`` (a folder) if set, else ``specfem/vendor/`` of a source checkout;
    a non-editable install ships none (its build clones upstream, ``SPECFEM_SOURCE=git``).
    """
    folder: Path | None = None
    if os.environ.get("DARE_SPECFEM_VENDOR"):
        folder = Path(os.environ["DARE_SPECFEM_VENDOR"])
    elif (tree := source_tree()) is not None:
        folder = tree / "specfem" / "vendor"
    if folder is None or not folder.is_dir():
        return []
    return sorted(folder.glob("specfem3d-*-src.tar.*"))


# -- dare itself -------------------------------------------------------------------------------
def requirements(extras: Sequence[str] = ()) -> list[str]:
    """The dependencies of dare with ``extras``, as ``requirements.txt`` lines.

    From ``pyproject.toml`` in a source checkout (current even if the installed metadata is
    older), from the installed distribution's metadata otherwise.
    """
    tree = source_tree()
    if tree is not None:
        project = tomllib.loads((tree / "pyproject.toml").read_text())["project"]
        optional = project.get("optional-dependencies", {})
        unknown = sorted(set(extras) - set(optional))
        if unknown:
            raise ValueError(f"dare has no extra {', '.join(unknown)}")
        lines = list(project.get("dependencies", []))
        for extra in extras:
            lines += [line for line in optional[extra] if line not in lines]
        return lines
    from packaging.requirements import Requirement

    lines = []
    for text in importlib.metadata.distribution("dare").requires or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is not None and "extra" in str(marker):
            if not any(marker.evaluate({"extra": extra}) for extra in extras):
                continue
            requirement.marker = None
        if str(requirement) not in lines:
            lines.append(str(requirement))
    return lines


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def dare_wheel(destination: str | os.PathLike[str]) -> Path:
    """A wheel of the installed (non-editable) dare, made from its installed files.

    The files listed in the distribution's ``RECORD`` under ``site-packages`` (packages, package
    data, ``*.dist-info`` with its ``METADATA``, ``WHEEL`` and entry points), without compiled
    caches and install-time records; a new ``RECORD`` lists them with their hashes. Returns
    the wheel's path in ``destination``.
    """
    dist = importlib.metadata.distribution("dare")
    files = dist.files or []
    info_dirs = {f.parts[0] for f in files if f.parts and f.parts[0].endswith(".dist-info")}
    if len(info_dirs) != 1:
        raise ImageBuildError("dare", "cannot find the installed dare's .dist-info")
    info = info_dirs.pop()
    skip = {f"{info}/{name}" for name in ("RECORD", "INSTALLER", "REQUESTED",
                                          "direct_url.json")}
    name = dist.metadata["Name"].replace("-", "_")
    wheel = Path(destination) / f"{name}-{dist.version}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in sorted(files, key=str):
            path = str(entry)
            if (".." in entry.parts or "__pycache__" in entry.parts or path.endswith(".pyc")
                    or path in skip or path.startswith("__editable__")):
                continue
            data = Path(str(entry.locate())).read_bytes()
            archive.writestr(path, data)
            records.append(f"{path},{_record_hash(data)},{len(data)}")
        records.append(f"{info}/RECORD,,")
        archive.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return wheel


def _ignore_caches(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".egg-info"))}


def _copy_dare(destination: Path, extras: Sequence[str]) -> None:
    destination.mkdir(parents=True)
    tree = source_tree()
    if tree is not None:
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(tree / name, destination / name)
        for package in ("engine", "dare_cli"):
            # symlinks=False: dare_cli/containers (a link to containers/) is copied as files
            shutil.copytree(tree / package, destination / package, ignore=_ignore_caches)
    else:
        dare_wheel(destination)
    (destination / "requirements.txt").write_text("\n".join(requirements(extras)) + "\n")


# -- contexts ----------------------------------------------------------------------------------
def assemble_context(image: str, destination: str | os.PathLike[str], *,
                     archives: Sequence[Path] | None = None) -> Path:
    """Write the build context of ``image`` (a key of :data:`IMAGES`) into ``destination``.

    ``archives``: SPECFEM3D source archives to put into ``specfem/vendor/`` (``specfem``
    image; default :func:`specfem_archives`). Returns ``destination``.
    """
    spec = _spec(image)
    context = Path(destination)
    context.mkdir(parents=True, exist_ok=True)
    source = containers_dir() / spec.name
    if not (source / "Dockerfile").is_file():
        raise ImageBuildError(spec.tag, f"no Dockerfile in {source}")
    shutil.copytree(source, context / "containers" / spec.name, ignore=_ignore_caches)
    _copy_dare(context / "dare", spec.extras)
    if spec.specfem:
        vendor = context / "specfem" / "vendor"
        vendor.mkdir(parents=True)
        for archive in specfem_archives() if archives is None else archives:
            shutil.copy2(archive, vendor / archive.name)
    return context


def context_size(context: str | os.PathLike[str]) -> tuple[int, int]:
    """Files and bytes under ``context`` (what a build sends to the engine)."""
    files = size = 0
    for folder, _, names in os.walk(context):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(folder, name)).st_size
    return files, size


def _spec(image: str) -> ImageSpec:
    if image not in IMAGES:
        raise ValueError(f"unknown image {image!r}; images: {', '.join(IMAGES)}")
    return IMAGES[image]


# -- builds ------------------------------------------------------------------------------------
def ensure_base_image(client: Any, base: str, log: Log = _quiet) -> None:
    """Make sure the base image is there: present, or pulled; else say how to make it."""
    import docker

    try:
        client.images.get(base)
        return
    except docker.errors.ImageNotFound:
        pass
    log(f"base image {base}: pulling")
    try:
        client.images.pull(base)
    except docker.errors.APIError as error:
        script = containers_dir() / "base-image.sh"
        raise ImageBuildError(base, f"the base image {base} is missing and cannot be pulled "
                              f"({error.explanation or error}); without Docker Hub make it "
                              f"with debootstrap: sudo bash {script} {base}") from None


def build(client: Any, image: str, *, tag: str | None = None,
          build_args: Mapping[str, str] | None = None, log: Log = _quiet,
          nocache: bool = False) -> str:
    """Build ``image`` (a key of :data:`IMAGES`) from an assembled context; return its tag.

    Parameters
    ----------
    client
        A ``docker.DockerClient``.
    image
        ``"dare"`` or ``"specfem"``.
    tag
        Default: the image's (:data:`IMAGES`).
    build_args
        The Dockerfile's ``ARG`` values; ``BASE_IMAGE`` defaults to :data:`BASE_IMAGE`. For
        ``specfem`` without a source archive, ``SPECFEM_SOURCE`` defaults to ``git``.
    log
        Receives each line of the build's output.

    Raises
    ------
    ImageBuildError
        The base image is missing, or a step failed (the message names the step and ends
        with the last lines of the build's output). No container of the build is left.
    """
    spec = _spec(image)
    tag = tag or spec.tag
    args = {"BASE_IMAGE": BASE_IMAGE, **{k: str(v) for k, v in (build_args or {}).items()}}
    ensure_base_image(client, args["BASE_IMAGE"], log)
    with tempfile.TemporaryDirectory(prefix=f"dare-{spec.name}-context-") as tmp:
        context = assemble_context(image, tmp)
        if (spec.specfem and not any((context / "specfem" / "vendor").iterdir())
                and args.setdefault("SPECFEM_SOURCE", "git") == "git"):
            log("no SPECFEM3D source archive here: the build clones it (SPECFEM_SOURCE=git)")
        files, size = context_size(context)
        shown = " ".join(f"{k}={v}" for k, v in sorted(args.items()))
        log(f"building {tag} from {spec.dockerfile} (context: {files} files, "
            f"{size / 1e6:.1f} MB; {shown})")
        stream = client.api.build(path=str(context), dockerfile=spec.dockerfile, tag=tag,
                                  buildargs=args, rm=True, forcerm=True, pull=False,
                                  nocache=nocache, decode=True)
        _follow(stream, tag, log)
    return tag


def _follow(stream: Any, tag: str, log: Log) -> None:
    """Pass the build's output to ``log``; raise :class:`ImageBuildError` on an error."""
    recent: deque[str] = deque(maxlen=TAIL_LINES)
    step: str | None = None
    pending = ""
    for chunk in stream:
        if "error" in chunk or "errorDetail" in chunk:
            if pending.strip():
                recent.append(pending.rstrip())
            detail = chunk.get("errorDetail") or {}
            reason = str(chunk.get("error") or detail.get("message") or "unknown error")
            raise ImageBuildError(tag, reason.strip(), step, list(recent))
        pending += str(chunk.get("stream", ""))
        *lines, pending = pending.split("\n")
        for line in (line.rstrip("\r") for line in lines):
            if not line.strip():
                continue
            if line.startswith("Step "):
                step = line
            recent.append(line)
            log(line)
    if pending.strip():
        log(pending.rstrip())

