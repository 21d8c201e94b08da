"""Kubernetes manifests of a SPECFEM3D run: an MPI cluster made on demand, applied with kubectl.

dare reaches no cluster itself. ``dare ra simulate --backend kubernetes --emit-manifests DIR``
prepares the run (:func:`~.backends.prepare_run`) and writes, with :func:`write_manifests`,
the manifests that run it on the user's cluster, in the project's SPECFEM3D image (user
``specfem``, uid 1000; ``sshd`` on port 2222; ``specfem-node``, ``specfem-step`` and
``specfem-hostfile`` on ``PATH``):

``mpijob`` (default)
    A Kubeflow MPI Operator ``MPIJob`` (``kubeflow.org/v2beta1``, OpenMPI): NPROC ranks on
    ``workers`` worker pods of ``slots_per_worker`` slots each, created before the launcher
    (``launcherCreationPolicy: WaitForWorkersReady``; a worker is ready when its sshd
    answers). The operator makes the job's ssh key (mounted at ``/home/specfem/.ssh``), the
    workers' headless Service and the hostfile that ``mpirun`` reads.
``statefulset``
    For clusters without the operator: a headless Service and a StatefulSet of workers and a
    launcher ``Job``, wired as the docker backend's compose cluster is: the launcher makes the
    cluster's ssh key in the shared volume, the workers (``specfem-node worker``) wait for it
    and serve sshd, and ``specfem-hostfile`` lists them once each answers ssh.

Both share a PersistentVolumeClaim (``ReadWriteMany``) mounted at ``/work`` in every pod, the
run's folder as on the other backends, and a ConfigMap with the run's ``DATA/`` that the
launcher's init container copies there. The launcher then runs the three programs from
:func:`~.backends.specfem_steps` (``mpirun -np NPROC``, each wrapped by ``specfem-step`` as in
the docker backend, so that ``kubectl logs`` shows SPECFEM's progress), stops at the first
failure, fails unless the solver ended normally, and drops ``OUTPUT_FILES/DATABASES_MPI``
unless ``keep_databases``. A small pod of ``collect/`` mounts the volume afterwards for
``kubectl cp`` of ``OUTPUT_FILES``, which ``dare ra simulate --collect`` then reads.

Everything here is pure but :func:`write_manifests` and :func:`prepare_emit_folder`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import shlex
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from dare_cli.ra.errors import ConfigError
from dare_cli.ra.simulate.specfem.backends import (
    IMAGE_BIN_DIR,
    IMAGE_WORK_DIR,
    SpecfemConfig,
    SpecfemRun,
    SpecfemStep,
    specfem_steps,
)
from engine.files import write_atomic

__all__ = [
    "FORMS",
    "KubernetesConfig",
    "Manifest",
    "default_name",
    "launcher_script",
    "manifests_yaml",
    "prepare_emit_folder",
    "render_manifests",
    "resource_name",
    "run_steps",
    "stage_inputs_script",
    "write_manifests",
]

#: Forms of the MPI cluster (``[simulate.specfem.kubernetes] form``).
FORMS = ("mpijob", "statefulset")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
MPIJOB_API_VERSION = "kubeflow.org/v2beta1"
#: The image's user (``specfem``), its sshd port and the folder the operator mounts its key in.
USER_ID = 1000
SSH_PORT = 2222
SSH_AUTH_DIR = "/home/specfem/.ssh"
SSHD_CONFIG = "/etc/specfem/sshd_config"
HOST_KEY = "/home/specfem/.sshd/ssh_host_ed25519_key"
#: Where the launcher's init container finds the ConfigMap of ``DATA/``.
INPUTS_MOUNT = "/etc/dare-specfem/DATA"
#: The ssh client settings of the MPIJob's launcher (its ``~/.ssh`` is the operator's key).
SSH_CLIENT_CONF = "/etc/ssh/ssh_config.d/dare-specfem.conf"
HOSTFILE = f"{IMAGE_WORK_DIR}/hostfile"
#: Kubernetes refuses a ConfigMap whose values exceed 1 MiB.
MAX_CONFIGMAP_BYTES = 1024 * 1024
#: Longest run name: ``NAME-worker-N`` and ``NAME-launcher`` stay DNS labels (63).
MAX_NAME = 40
#: The file that marks a folder written by :func:`write_manifests`.
MARKER = ".dare-manifests"
#: Seconds the workers and the launcher wait for each other (image pulls can be slow).
WAIT_SECONDS = 900

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: A Kubernetes resource quantity: a decimal number with a binary or decimal suffix.
_QUANTITY = re.compile(r"^\+?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$")
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
#: Docker's memory sizes (``4g``: binary units) as Kubernetes quantities.
_DOCKER_MEMORY = re.compile(r"^(\d+)([bkmgBKMG]?)$")
_DOCKER_UNITS = {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi"}


def _quantity(key: str, value: str | None) -> None:
    if value is not None and not _QUANTITY.match(value):
        raise ConfigError(f"[simulate.specfem.kubernetes] {key} {value!r} is not a Kubernetes "
                          "quantity (e.g. '2', '500m', '4Gi')")


def _label_key_ok(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.match(name))


@dataclass(frozen=True)
class KubernetesConfig:
    """``[simulate.specfem.kubernetes]``: the cluster side of ``--emit-manifests``.

    The image (``image``), worker count (``workers``), MPI slots per worker
    (``slots_per_worker``; default NPROC spread over the workers) and ``keep_databases`` are
    ``[simulate.specfem]``'s, as for the docker backend.

    Attributes
    ----------
    form
        ``"mpijob"`` (Kubeflow MPI Operator) or ``"statefulset"`` (no operator), :data:`FORMS`.
    name
        Name of the run's resources (a DNS-1035 label of at most 40 characters); ``None``:
        ``specfem-<run folder>-<digest of DATA/>``, so that other inputs make other resources.
    namespace
        Namespace of every resource (it must exist).
    labels
        Further labels of every resource and pod.
    image_pull_policy
        ``IfNotPresent``, ``Always`` or ``Never``.
    storage_class, storage_size
        The shared volume's StorageClass (``None``: the cluster's default; it must offer
        ``ReadWriteMany``) and size.
    cpu, memory
        Requests and limits of each worker (Kubernetes quantities, e.g. ``"4"``, ``"8Gi"``);
        ``None``: ``[simulate.specfem]`` ``cpus``/``memory`` (Docker's ``4g`` read as
        ``4Gi``), else one CPU per slot and no memory limit.
    """

    form: str = "mpijob"
    name: str | None = None
    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=dict)
    image_pull_policy: str = "IfNotPresent"
    storage_class: str | None = None
    storage_size: str = "10Gi"
    cpu: str | None = None
    memory: str | None = None

    def __post_init__(self) -> None:
        where = "[simulate.specfem.kubernetes]"
        if self.form not in FORMS:
            raise ConfigError(f"{where} form {self.form!r} is not known; forms: "
                              f"{', '.join(FORMS)}")
        if self.name is not None and not (len(self.name) <= MAX_NAME
                                          and _DNS_1035.match(self.name)):
            raise ConfigError(f"{where} name {self.name!r} must be at most {MAX_NAME} "
                              "lower-case letters, digits and '-', starting with a letter")
        if not (len(self.namespace) <= 63 and _DNS_LABEL.match(self.namespace)):
            raise ConfigError(f"{where} namespace {self.namespace!r} is not a DNS label "
                              "(lower-case letters, digits and '-')")
        if self.image_pull_policy not in PULL_POLICIES:
            raise ConfigError(f"{where} image_pull_policy {self.image_pull_policy!r} is not "
                              f"one of {', '.join(PULL_POLICIES)}")
        if self.storage_class is not None and not (len(self.storage_class) <= 253
                                                   and _DNS_SUBDOMAIN.match(self.storage_class)):
            raise ConfigError(f"{where} storage_class {self.storage_class!r} is not a "
                              "StorageClass name")
        _quantity("storage_size", self.storage_size)
        _quantity("cpu", self.cpu)
        _quantity("memory", self.memory)
        for key, value in self.labels.items():
            if not isinstance(value, str) or not _label_key_ok(str(key)):
                raise ConfigError(f"{where} labels: {key!r} = {value!r} is not a Kubernetes "
                                  "label (a name such as 'team' or 'example.org/team', and "
                                  "a string value)")
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise ConfigError(f"{where} labels: the value of {key!r}, {value!r}, is not a "
                                  "label value (at most 63 letters, digits, '-', '_', '.')")


#: Labels of a component (``"worker"``...) of the run.
Labels = Callable[[str], dict[str, str]]


@dataclass(frozen=True)
class Manifest:
    """One file of manifests: its path in the output folder and its documents."""

    file: str
    documents: tuple[dict[str, Any], ...]


# -- names, resources, inputs ------------------------------------------------------------------
def data_files(work_dir: str | os.PathLike[str]) -> dict[str, bytes]:
    """The files of a run's ``DATA/`` by POSIX path relative to it, sorted."""
    data = Path(work_dir) / "DATA"
    return {path.relative_to(data).as_posix(): path.read_bytes()
            for path in sorted(data.rglob("*")) if path.is_file()}


def default_name(run_name: str, files: Mapping[str, bytes]) -> str:
    """``specfem-<run folder, as a DNS label>-<6 hex digits of the inputs' SHA-256>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", run_name.lower()).strip("-")[:24].strip("-") or "run"
    digest = hashlib.sha256()
    for path, content in sorted(files.items()):
        digest.update(path.encode() + b"\0" + hashlib.sha256(content).digest())
    return f"specfem-{slug}-{digest.hexdigest()[:6]}"


def resource_name(kube: KubernetesConfig, run_name: str, files: Mapping[str, bytes]) -> str:
    """The name of the run's resources: ``kube.name``, else :func:`default_name`."""
    return kube.name or default_name(run_name, files)


def configmap_key(path: str) -> str:
    """The ConfigMap key of a file of ``DATA/`` (``/`` becomes ``.``)."""
    return path.replace("/", ".")


def _docker_memory(value: str) -> str:
    match = _DOCKER_MEMORY.match(value)
    if not match:
        if _QUANTITY.match(value):
            return value
        raise ConfigError(f"[simulate.specfem] memory {value!r} is neither Docker's size "
                          "(e.g. '4g') nor a Kubernetes quantity (e.g. '4Gi')")
    return match.group(1) + _DOCKER_UNITS[match.group(2).lower()]


def slots_per_worker(specfem: SpecfemConfig, nproc: int) -> int:
    """MPI slots of each worker: the configured ones, else NPROC spread over the workers."""
    if specfem.workers < 1:
        raise ConfigError("[simulate.specfem] workers must be >= 1 on Kubernetes (the ranks "
                          "run on worker pods)")
    slots = specfem.slots_per_worker or math.ceil(nproc / specfem.workers)
    if specfem.workers * slots < nproc:
        raise ConfigError(f"[simulate.specfem] workers x slots_per_worker = {specfem.workers} "
                          f"x {slots} is less than NPROC = {nproc}")
    return slots


def worker_resources(specfem: SpecfemConfig, kube: KubernetesConfig, slots: int
                     ) -> dict[str, dict[str, str]]:
    """Requests and limits (equal) of a worker: cpu, and memory when configured."""
    cpu = kube.cpu or specfem.cpus or str(slots)
    if not _QUANTITY.match(cpu):
        raise ConfigError(f"[simulate.specfem] cpus {cpu!r} is not a number of CPUs")
    values = {"cpu": cpu}
    memory = kube.memory or (_docker_memory(specfem.memory) if specfem.memory else None)
    if memory:
        values["memory"] = memory
    return {"requests": dict(values), "limits": dict(values)}


def _shm_limit(specfem: SpecfemConfig) -> str:
    return _docker_memory(specfem.shm_size) if specfem.shm_size else "1Gi"


# -- the scripts the pods run ------------------------------------------------------------------
def run_steps(nproc: int, form: str) -> list[SpecfemStep]:
    """The launcher's commands: :func:`~.backends.specfem_steps` in the image.

    As the docker backend runs them: ``specfem-step LOG -- mpirun -np NPROC ... PROGRAM``.
    ``statefulset`` passes the hostfile that ``specfem-hostfile`` writes (as docker does);
    ``mpijob`` none: the operator sets Open MPI's default hostfile.
    """
    args = ("--hostfile", HOSTFILE) if form == "statefulset" else ()
    return [SpecfemStep(step.name, ("specfem-step", f"OUTPUT_FILES/{step.log_file}", "--",
                                    *step.argv), step.log_file)
            for step in specfem_steps(IMAGE_BIN_DIR, nproc, launcher="mpirun",
                                      launcher_args=args)]


def stage_inputs_script(paths: Sequence[str], *, inputs: str = INPUTS_MOUNT,
                        work: str = IMAGE_WORK_DIR, cluster_key: bool = False) -> str:
    """Shell script of the launcher's init container: a fresh ``DATA/`` and ``OUTPUT_FILES/``.

    Copies each file of ``DATA/`` from the ConfigMap's mount (``inputs``) into ``work``;
    earlier ``DATA/`` and ``OUTPUT_FILES/`` of the volume are removed first. With
    ``cluster_key``, also makes the cluster's ssh key in ``work/.ssh`` as ``specfem-node
    head`` does (the public key written last: the workers wait for it).
    """
    q = shlex.quote
    lines = ["set -euo pipefail",
             f"rm -rf {q(work + '/DATA')} {q(work + '/OUTPUT_FILES')}",
             f"mkdir -p {q(work + '/OUTPUT_FILES/DATABASES_MPI')}"]
    folders = sorted({str(PurePosixPath(path).parent) for path in paths})
    lines.append("mkdir -p " + " ".join(q(f"{work}/DATA" + ("" if f == "." else f"/{f}"))
                                        for f in folders))
    lines += [f"cp {q(f'{inputs}/{path}')} {q(f'{work}/DATA/{path}')}" for path in paths]
    if cluster_key:
        keys = f"{work}/.ssh"
        lines += [
            f"mkdir -p {q(keys)}", f"chmod 700 {q(keys)}",
            f"if [ ! -f {q(keys + '/id_ed25519.pub')} ]; then",
            f"    rm -f {q(keys + '/id_ed25519')} {q(keys + '/new')} {q(keys + '/new.pub')}",
            f"    ssh-keygen -q -t ed25519 -N '' -C specfem-cluster -f {q(keys + '/new')}",
            f"    mv {q(keys + '/new')} {q(keys + '/id_ed25519')}",
            f"    mv {q(keys + '/new.pub')} {q(keys + '/id_ed25519.pub')}",
            "fi",
        ]
    lines.append(f"echo \"inputs: {len(paths)} files in {work}/DATA\"")
    return "\n".join(lines) + "\n"


def launcher_script(steps: Sequence[SpecfemStep], *, work: str = IMAGE_WORK_DIR,
                    before: Sequence[Sequence[str]] = (), keep_databases: bool = False) -> str:
    """Shell script of the launcher: the programs in order, stopping at the first failure.

    ``before`` runs first (``specfem-hostfile``). The script fails unless the solver's log
    ends the simulation and SPECFEM wrote no ``error_message*.txt`` (its programs can stop
    on an error with exit status 0); it then drops ``OUTPUT_FILES/DATABASES_MPI`` unless
    ``keep_databases``.
    """
    lines = ["set -euo pipefail", f"cd {shlex.quote(work)}"]
    lines += [shlex.join(command) for command in before]
    for step in steps:
        lines += [f'echo "$(date -u +%FT%TZ) {step.name}"', shlex.join(step.argv)]
    lines += [
        "if compgen -G 'OUTPUT_FILES/error_message*.txt' >/dev/null || "
        "! grep -q 'End of the simulation' OUTPUT_FILES/output_solver.txt; then",
        "    echo 'SPECFEM3D did not end normally: see OUTPUT_FILES/output_solver.txt and "
        "error_message*.txt' >&2",
        "    exit 1",
        "fi",
    ]
    if not keep_databases:
        lines.append("rm -rf OUTPUT_FILES/DATABASES_MPI")
    lines.append('echo "$(date -u +%FT%TZ) done"')
    return "\n".join(lines) + "\n"


def mpijob_worker_script() -> str:
    """Shell script of an MPIJob worker: a host key, then sshd taking the operator's key."""
    return "\n".join([
        "set -eu",
        f"mkdir -p {os.path.dirname(HOST_KEY)}",
        f"chmod 700 {os.path.dirname(HOST_KEY)}",
        f"[ -f {HOST_KEY} ] || ssh-keygen -q -t ed25519 -N '' -f {HOST_KEY}",
        f"exec /usr/sbin/sshd -D -e -f {SSHD_CONFIG} "
        f"-o AuthorizedKeysFile={SSH_AUTH_DIR}/authorized_keys",
    ]) + "\n"


#: ssh client settings of the MPIJob's launcher (the image's ``~/.ssh/config`` is hidden by
#: the operator's key): the workers' sshd port, no known-hosts file (the pods are new).
SSH_CLIENT_SETTINGS = f"""\
# written by dare: ssh of Open MPI's launcher to the MPIJob's workers
Host *
    Port {SSH_PORT}
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    BatchMode yes
"""


# -- the manifests -----------------------------------------------------------------------------
def _metadata(name: str, kube: KubernetesConfig, labels: Mapping[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": kube.namespace, "labels": dict(labels)}


def _security() -> dict[str, Any]:
    return {"runAsUser": USER_ID, "runAsGroup": USER_ID, "runAsNonRoot": True,
            "fsGroup": USER_ID, "fsGroupChangePolicy": "OnRootMismatch"}


def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _volumes(name: str, specfem: SpecfemConfig, *, shm: bool = True) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "work", "persistentVolumeClaim": {"claimName": f"{name}-work"}}]
    if shm:
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory",
                                                     "sizeLimit": _shm_limit(specfem)}})
    return volumes


def _mounts(*, shm: bool = True) -> list[dict[str, Any]]:
    mounts = [{"name": "work", "mountPath": IMAGE_WORK_DIR}]
    if shm:
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})
    return mounts


def _container(name: str, specfem: SpecfemConfig, kube: KubernetesConfig, **fields: Any
               ) -> dict[str, Any]:
    return {"name": name, "image": specfem.image, "imagePullPolicy": kube.image_pull_policy,
            **fields, "securityContext": _container_security()}


def _ssh_probe() -> dict[str, Any]:
    return {"tcpSocket": {"port": SSH_PORT}, "initialDelaySeconds": 2, "periodSeconds": 5}


def _stage_inputs(name: str, specfem: SpecfemConfig, kube: KubernetesConfig,
                  paths: Sequence[str], *, cluster_key: bool) -> dict[str, Any]:
    return _container(
        "stage-inputs", specfem, kube,
        command=["bash", "-c", stage_inputs_script(paths, cluster_key=cluster_key)],
        volumeMounts=[*_mounts(shm=False),
                      {"name": "inputs", "mountPath": INPUTS_MOUNT, "readOnly": True}],
        resources={"requests": {"cpu": "100m", "memory": "64Mi"},
                   "limits": {"memory": "256Mi"}})


def _inputs_volume(name: str, paths: Sequence[str]) -> dict[str, Any]:
    return {"name": "inputs", "configMap": {
        "name": f"{name}-inputs",
        "items": [{"key": configmap_key(path), "path": path} for path in paths]}}


def _launcher_resources() -> dict[str, Any]:
    return {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


def inputs_configmap(name: str, kube: KubernetesConfig, labels: Mapping[str, str],
                     files: Mapping[str, bytes]) -> dict[str, Any]:
    """The ConfigMap of ``DATA/``: text files in ``data``, any other in ``binaryData``.

    Raises
    ------
    ConfigError
        The files exceed Kubernetes' 1 MiB, or two paths map to one key.
    """
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    total = 0
    for path, content in files.items():
        key = configmap_key(path)
        if key in data or key in binary or not _CONFIGMAP_KEY.match(key):
            raise ConfigError(f"DATA/{path}: no ConfigMap key of its own ({key!r})")
        total += len(content)
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode("ascii")
    if total > MAX_CONFIGMAP_BYTES:
        raise ConfigError(f"the run's DATA/ holds {total} bytes, more than a ConfigMap's "
                          f"{MAX_CONFIGMAP_BYTES} (1 MiB): copy DATA/ into the volume "
                          "yourself, or use the slurm or docker route")
    manifest: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": _metadata(f"{name}-inputs", kube, labels),
                                "data": data}
    if binary:
        manifest["binaryData"] = binary
    return manifest


def render_manifests(run: SpecfemRun, specfem: SpecfemConfig, kube: KubernetesConfig, *,
                     run_name: str) -> list[Manifest]:
    """The manifests of ``run`` (prepared in its work dir), in the order they are applied.

    Parameters
    ----------
    run
        The prepared run (its ``DATA/`` and NPROC).
    specfem
        ``[simulate.specfem]``: image, workers, slots_per_worker, cpus, memory, shm_size,
        keep_databases.
    kube
        ``[simulate.specfem.kubernetes]``.
    run_name
        Name of the Rapid Assessment's run folder (part of the default resource name).

    Returns
    -------
    list of Manifest
        ``10-storage.yaml`` (PersistentVolumeClaim), ``20-inputs.yaml`` (ConfigMaps),
        ``30-mpijob.yaml`` or ``30-workers.yaml`` and ``40-launcher.yaml``, and
        ``collect/files-pod.yaml`` (applied after the run).

    Raises
    ------
    ConfigError
        Too few slots for NPROC, inputs too large for a ConfigMap, a bad quantity.
    """
    files = data_files(run.work_dir)
    paths = list(files)
    name = resource_name(kube, run_name, files)
    nproc = run.nproc
    slots = slots_per_worker(specfem, nproc)
    base = {"app.kubernetes.io/name": "dare-specfem", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/part-of": "dare", "app.kubernetes.io/managed-by": "dare",
            **kube.labels}

    def labels(component: str) -> dict[str, str]:
        return {**base, "app.kubernetes.io/component": component}

    claim: dict[str, Any] = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": _metadata(f"{name}-work", kube, labels("storage")),
        "spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Filesystem",
                 "resources": {"requests": {"storage": kube.storage_size}}}}
    if kube.storage_class is not None:
        claim["spec"]["storageClassName"] = kube.storage_class
    inputs = [inputs_configmap(name, kube, labels("inputs"), files)]
    worker_resources_ = worker_resources(specfem, kube, slots)
    steps = run_steps(nproc, kube.form)
    manifests = [Manifest("10-storage.yaml", (claim,))]
    if kube.form == "mpijob":
        inputs.append({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": _metadata(f"{name}-ssh", kube, labels("inputs")),
                       "data": {"dare-specfem.conf": SSH_CLIENT_SETTINGS}})
        manifests.append(Manifest("20-inputs.yaml", tuple(inputs)))
        manifests.append(Manifest("30-mpijob.yaml", (
            _mpijob(name, specfem, kube, labels, paths, steps, slots, worker_resources_),)))
    else:
        manifests.append(Manifest("20-inputs.yaml", tuple(inputs)))
        manifests += _statefulset(name, specfem, kube, labels, paths, steps, slots,
                                  worker_resources_)
    manifests.append(Manifest("collect/files-pod.yaml", (_files_pod(name, specfem, kube,
                                                                    labels("files")),)))
    return manifests


def _mpijob(name: str, specfem: SpecfemConfig, kube: KubernetesConfig, labels: Labels,
            paths: Sequence[str], steps: Sequence[SpecfemStep], slots: int,
            resources: dict[str, Any]) -> dict[str, Any]:
    launcher = _container(
        "launcher", specfem, kube,
        args=["bash", "-c", launcher_script(steps, keep_databases=specfem.keep_databases)],
        workingDir=IMAGE_WORK_DIR,
        volumeMounts=[*_mounts(), {"name": "ssh-client", "mountPath": SSH_CLIENT_CONF,
                                   "subPath": "dare-specfem.conf", "readOnly": True}],
        resources=_launcher_resources())
    worker = _container(
        "worker", specfem, kube, args=["bash", "-c", mpijob_worker_script()],
        ports=[{"name": "ssh", "containerPort": SSH_PORT}], readinessProbe=_ssh_probe(),
        volumeMounts=_mounts(), resources=resources)
    launcher_volumes = [*_volumes(name, specfem), _inputs_volume(name, paths),
                        {"name": "ssh-client", "configMap": {"name": f"{name}-ssh"}}]
    return {
        "apiVersion": MPIJOB_API_VERSION, "kind": "MPIJob",
        "metadata": _metadata(name, kube, labels("mpijob")),
        "spec": {
            "slotsPerWorker": slots,
            "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 0},
            "sshAuthMountPath": SSH_AUTH_DIR,
            "mpiImplementation": "OpenMPI",
            "launcherCreationPolicy": "WaitForWorkersReady",
            "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "restartPolicy": "Never", "template": {
                    "metadata": {"labels": labels("launcher")},
                    "spec": {"securityContext": _security(),
                             "initContainers": [_stage_inputs(name, specfem, kube, paths,
                                                              cluster_key=False)],
                             "containers": [launcher], "volumes": launcher_volumes}}},
                "Worker": {"replicas": specfem.workers, "restartPolicy": "OnFailure",
                           "template": {
                               "metadata": {"labels": labels("worker")},
                               "spec": {"securityContext": _security(),
                                        "containers": [worker],
                                        "volumes": _volumes(name, specfem)}}},
            },
        },
    }


def _statefulset(name: str, specfem: SpecfemConfig, kube: KubernetesConfig, labels: Labels,
                 paths: Sequence[str], steps: Sequence[SpecfemStep], slots: int,
                 resources: dict[str, Any]) -> list[Manifest]:
    service = f"{name}-workers"
    selector = {"app.kubernetes.io/instance": name, "app.kubernetes.io/component": "worker"}
    headless = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _metadata(service, kube, labels("worker")),
        "spec": {"clusterIP": "None", "selector": selector,
                 "ports": [{"name": "ssh", "port": SSH_PORT, "targetPort": SSH_PORT}]}}
    wait = {"name": "SPECFEM_KEY_WAIT", "value": str(WAIT_SECONDS)}
    worker = _container(
        "worker", specfem, kube, args=["worker"], env=[wait],
        ports=[{"name": "ssh", "containerPort": SSH_PORT}], readinessProbe=_ssh_probe(),
        volumeMounts=_mounts(), resources=resources)
    workers = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": _metadata(f"{name}-worker", kube, labels("worker")),
        "spec": {"serviceName": service, "replicas": specfem.workers,
                 "podManagementPolicy": "Parallel", "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": labels("worker")},
                              "spec": {"securityContext": _security(),
                                       "containers": [worker],
                                       "volumes": _volumes(name, specfem)}}}}
    hostfile = ["specfem-hostfile", "--expect", str(specfem.workers), "--slots", str(slots),
                "--service", service, HOSTFILE]
    launcher = _container(
        "launcher", specfem, kube,
        args=["bash", "-c", launcher_script(steps, before=[hostfile],
                                            keep_databases=specfem.keep_databases)],
        workingDir=IMAGE_WORK_DIR,
        env=[{"name": "OMPI_MCA_plm_rsh_agent", "value": "ssh"},
             {"name": "SPECFEM_HOSTFILE_WAIT", "value": str(WAIT_SECONDS)}],
        volumeMounts=_mounts(), resources=_launcher_resources())
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": _metadata(f"{name}-launcher", kube, labels("launcher")),
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"labels": labels("launcher")},
            "spec": {"restartPolicy": "Never", "securityContext": _security(),
                     "initContainers": [_stage_inputs(name, specfem, kube, paths,
                                                      cluster_key=True)],
                     "containers": [launcher],
                     "volumes": [*_volumes(name, specfem), _inputs_volume(name, paths)]}}}}
    return [Manifest("30-workers.yaml", (headless, workers)),
            Manifest("40-launcher.yaml", (job,))]


def _files_pod(name: str, specfem: SpecfemConfig, kube: KubernetesConfig,
               labels: Mapping[str, str]) -> dict[str, Any]:
    """A pod that mounts the volume after the run, for ``kubectl cp`` (a day at most)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": _metadata(f"{name}-files", kube, labels),
        "spec": {"restartPolicy": "Never", "activeDeadlineSeconds": 86400,
                 "securityContext": _security(),
                 "containers": [_container(
                     "files", specfem, kube, args=["sleep", "infinity"],
                     workingDir=IMAGE_WORK_DIR, volumeMounts=_mounts(shm=False),
                     resources={"requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"memory": "256Mi"}})],
                 "volumes": _volumes(name, specfem, shm=False)}}


# -- YAML and files ----------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the scripts and DATA files stay readable)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.nodes.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def manifests_yaml(documents: Sequence[Mapping[str, Any]]) -> str:
    """Documents as one YAML stream (``---`` between them), keys in the order given."""
    return yaml.dump_all([dict(d) for d in documents], Dumper=_Dumper, sort_keys=False,
                         explicit_start=True, default_flow_style=False, width=100)


def prepare_emit_folder(folder: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Check the output folder and clear dare's earlier manifests; return the run's work dir.

    The folder must be new, empty, or one this function prepared before (it holds
    :data:`MARKER`). A folder whose ``specfem/OUTPUT_FILES`` holds files (results copied
    back) is kept unless ``force``.

    Raises
    ------
    ConfigError
        The folder holds other files, or results.
    """
    target = Path(folder)
    marker = target / MARKER
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--emit-manifests {target}: not a folder")
    if target.is_dir() and any(target.iterdir()) and not marker.is_file():
        raise ConfigError(f"--emit-manifests {target}: the folder holds files dare did not "
                          "write; give a new or empty folder")
    outputs = target / "specfem" / "OUTPUT_FILES"
    if not force and outputs.is_dir() and any(p.is_file() for p in outputs.rglob("*")):
        raise ConfigError(f"--emit-manifests {target}: {outputs} holds a run's results; "
                          "collect them first, or give --force to replace them")
    if marker.is_file():
        try:
            earlier = json.loads(marker.read_text()).get("files", [])
        except (ValueError, AttributeError):
            earlier = []
        for name in earlier:
            path = target / str(name)
            if path.resolve().is_relative_to(target.resolve()) and path.is_file() \
                    and not path.is_symlink():
                path.unlink()
        shutil.rmtree(target / "collect", ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"written_by": "dare ra simulate --emit-manifests",
                                  "files": []}) + "\n")
    return target / "specfem"


def write_manifests(
    folder: str | os.PathLike[str],
    run: SpecfemRun,
    specfem: SpecfemConfig,
    kube: KubernetesConfig,
    *,
    run_name: str,
    collect: Sequence[str],
) -> list[Path]:
    """Write the manifests of ``run`` and a README into ``folder``; return the files.

    ``run`` was prepared in ``folder/specfem`` (see :func:`prepare_emit_folder`); ``collect``
    is the ``dare`` command that collects the seismograms once ``OUTPUT_FILES`` is copied
    back into ``folder/specfem/OUTPUT_FILES``.
    """
    target = Path(folder)
    manifests = render_manifests(run, specfem, kube, run_name=run_name)
    written = []
    for manifest in manifests:
        path = target / manifest.file
        write_atomic(path, manifests_yaml(manifest.documents))
        written.append(path)
    readme = target / "README.md"
    name = resource_name(kube, run_name, data_files(run.work_dir))
    write_atomic(readme, readme_text(target, name, manifests, run, specfem, kube, collect))
    files = [str(p.relative_to(target)) for p in [*written, readme]]
    write_atomic(target / MARKER, json.dumps({"written_by": "dare ra simulate "
                                              "--emit-manifests", "files": files}) + "\n")
    return written


def readme_text(folder: Path, name: str, manifests: Sequence[Manifest], run: SpecfemRun,
                specfem: SpecfemConfig, kube: KubernetesConfig, collect: Sequence[str]) -> str:
    """The folder's README: what is there and the kubectl commands, with this run's names."""
    ns = kube.namespace
    q = shlex.quote
    where = q(str(folder))
    slots = slots_per_worker(specfem, run.nproc)
    listed = "\n".join(f"| `{m.file}` | " + ", ".join(
        f"{d['kind']} `{d['metadata']['name']}`" for d in m.documents) + " |"
        for m in manifests)
    if kube.form == "mpijob":
        wait = (f"kubectl -n {ns} wait --for=condition=Succeeded mpijob/{name} "
                "--timeout=24h")
        form = ("a Kubeflow MPI Operator `MPIJob` (kubeflow.org/v2beta1; the operator, v0.5.0 "
                "or later for `launcherCreationPolicy`, must be installed)")
        free = ""
    else:
        wait = (f"kubectl -n {ns} wait --for=condition=complete job/{name}-launcher "
                "--timeout=24h")
        form = "a StatefulSet of workers, a headless Service and a launcher Job (no operator)"
        free = (f"\n# the workers wait on; free them once the job is complete:\n"
                f"kubectl -n {ns} scale statefulset/{name}-worker --replicas=0")
    outputs = q(str(folder / "specfem" / "OUTPUT_FILES"))
    create = "" if ns == "default" else f"kubectl create namespace {ns}    # unless it exists\n"
    storage_class = kube.storage_class or "the cluster's default"
    return f"""# SPECFEM3D run `{name}` on Kubernetes

Written by `dare ra simulate --emit-manifests`; dare itself reached no cluster.

- Form: {form}.
- NPROC = {run.nproc} MPI ranks on {specfem.workers} worker pod(s) x {slots} slot(s).
- Image: `{specfem.image}`; namespace: `{ns}`.
- Shared volume: a `ReadWriteMany` PersistentVolumeClaim of {kube.storage_size}, storage class
  {storage_class}, mounted at `/work` in every pod and writable by uid/gid {USER_ID} (the pods
  set `fsGroup: {USER_ID}`; a volume type that ignores fsGroup must be made writable for it).
- Inputs: `specfem/DATA/` here, and in the ConfigMap `{name}-inputs`, which the launcher's
  init container copies to `/work/DATA`.

| file | resources |
| --- | --- |
{listed}

## Run

```bash
{create}kubectl apply -f {where}
kubectl -n {ns} logs -f job/{name}-launcher    # SPECFEM's progress, once the launcher runs
{wait}{free}
```

## Collect the seismograms

```bash
kubectl apply -f {q(str(folder / "collect"))}
kubectl -n {ns} wait --for=condition=Ready pod/{name}-files --timeout=10m
kubectl cp {ns}/{name}-files:/work/OUTPUT_FILES {outputs}
{shlex.join(collect)}
```

## Clean up (this deletes the volume and its outputs)

```bash
kubectl delete -f {q(str(folder / "collect"))} -f {where}
```
"""
