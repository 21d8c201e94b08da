"""Kubernetes manifests of a SPECFEM3D run (``--emit-manifests``); no cluster runs here.

What is checked without a cluster:

* every core resource (PersistentVolumeClaim, ConfigMap, Pod, Service, StatefulSet, Job)
  against the Kubernetes OpenAPI schemas that ``kubernetes-validate`` bundles, in strict mode
  (an unknown field is an error), for the oldest and the newest Kubernetes it ships;
* the MPIJob's launcher and worker pod templates the same way (as ``v1`` PodTemplates), and its
  own fields against the MPI Operator's ``kubeflow.org/v2beta1`` CRD and validation rules,
  written out below (no package on PyPI ships that CRD, so it cannot be loaded here);
* YAML well-formedness (PyYAML, and ``kubectl kustomize`` where kubectl is installed), names
  and labels as Kubernetes accepts them;
* the commands against those of the local and docker backends;
* the init container's and the launcher's scripts, run under bash with stand-ins for the
  image's programs, and shellcheck;
* the whole workflow: emit, run the launcher's script on the SPECFEM3D test doubles under
  ``mpiexec`` (standing in for the pods), copy OUTPUT_FILES back, ``--collect``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import numpy as np
import pytest
import yaml
from obspy import read
from socal1d_fixtures import socal_inventory, socal_stations, write_download_stage

from dare_cli.ra.config import RAConfig, load_config
from dare_cli.ra.errors import ConfigError
from dare_cli.ra.simulate.specfem.backends import (
    IMAGE_BIN_DIR,
    DockerBackend,
    SpecfemConfig,
    SpecfemRun,
    prepare_run,
    specfem_steps,
)
from dare_cli.ra.simulate.specfem.cmtsolution import read_cmtsolution
from dare_cli.ra.simulate.specfem.kubernetes import (
    INPUTS_MOUNT,
    KubernetesConfig,
    Manifest,
    default_name,
    inputs_configmap,
    prepare_emit_folder,
    render_manifests,
    run_steps,
    write_manifests,
)
from dare_cli.ra.stages.specfem import specfem_backend

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DOUBLES = HERE / "specfem_doubles"
SOCAL = HERE / "data" / "specfem" / "socal1D"
ARCHIVE = SOCAL / "REF_SEIS.default" / "semd.tar.xz"
PICKED = ("CE.24851", "CI.BVH", "CI.DJJ")
MPIEXEC = shutil.which("mpiexec")
#: The oldest and newest Kubernetes whose schemas kubernetes-validate ships.
K8S_VERSIONS = (kubernetes_validate.utils.all_versions()[0], kubernetes_validate.latest_version())
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

needs_mpiexec = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec (pip install mpich) is "
                                                           "not on PATH")


# -- a prepared run ----------------------------------------------------------------------------
def _prepared(work: Path, **specfem: Any) -> tuple[SpecfemRun, SpecfemConfig]:
    values: dict[str, Any] = dict(nproc_xi=2, nproc_eta=2, element_size_km=5.0, margin_km=10.0,
                                  workers=2)
    values.update(specfem)
    config = SpecfemConfig(**values)
    run = prepare_run(work, cmt=read_cmtsolution(SOCAL / "DATA" / "CMTSOLUTION"),
                      inventory=socal_inventory(socal_stations(PICKED)), config=config,
                      duration=9.0)
    return run, config


def _documents(manifests: list[Manifest]) -> list[dict[str, Any]]:
    """Every document, after a round trip through the YAML that write_manifests writes."""
    from dare_cli.ra.simulate.specfem.kubernetes import manifests_yaml

    return [doc for m in manifests for doc in yaml.safe_load_all(manifests_yaml(m.documents))]


def _by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def _pod_specs(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Pod specs by role: launcher, worker, files."""
    specs = {}
    for doc in documents:
        if doc["kind"] == "MPIJob":
            for role, replica in doc["spec"]["mpiReplicaSpecs"].items():
                specs[role.lower()] = replica["template"]["spec"]
        elif doc["kind"] in ("StatefulSet", "Job"):
            specs[doc["spec"]["template"]["metadata"]["labels"][
                "app.kubernetes.io/component"]] = doc["spec"]["template"]["spec"]
        elif doc["kind"] == "Pod":
            specs["files"] = doc["spec"]
    return specs


@pytest.fixture(scope="module")
def mpijob(tmp_path_factory: pytest.TempPathFactory) -> tuple[SpecfemRun, list[dict[str, Any]]]:
    work = tmp_path_factory.mktemp("mpijob") / "specfem"
    run, config = _prepared(work, image="registry.example.org/geo/dare-specfem:v4.1.0",
                            memory="6g", shm_size="2g")
    kube = KubernetesConfig(namespace="seismo", storage_class="nfs-client",
                            storage_size="20Gi", image_pull_policy="Always", cpu="3",
                            labels={"team": "hazard", "example.org/event": "ci9703873"})
    return run, _documents(render_manifests(run, config, kube, run_name="ra-run"))


@pytest.fixture(scope="module")
def statefulset(tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[SpecfemRun, list[dict[str, Any]]]:
    work = tmp_path_factory.mktemp("statefulset") / "specfem"
    run, config = _prepared(work, slots_per_worker=3, keep_databases=True)
    kube = KubernetesConfig(form="statefulset", name="hollywood-m42")
    return run, _documents(render_manifests(run, config, kube, run_name="ra-run"))


# -- what the manifests say ----------------------------------------------------------------------
def test_mpijob_form_carries_the_configured_values(mpijob) -> None:
    run, documents = mpijob
    name = default_name("ra-run", {p.relative_to(run.work_dir / "DATA").as_posix():
                                   p.read_bytes()
                                   for p in sorted((run.work_dir / "DATA").rglob("*"))
                                   if p.is_file()})
    assert re.fullmatch(r"specfem-ra-run-[0-9a-f]{6}", name)
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("PersistentVolumeClaim", f"{name}-work"), ("ConfigMap", f"{name}-inputs"),
        ("ConfigMap", f"{name}-ssh"), ("MPIJob", name), ("Pod", f"{name}-files")]
    for doc in documents:
        assert doc["metadata"]["namespace"] == "seismo"
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == name
        assert doc["metadata"]["labels"]["team"] == "hazard"
        assert doc["metadata"]["labels"]["example.org/event"] == "ci9703873"
    claim = documents[0]["spec"]
    assert claim["accessModes"] == ["ReadWriteMany"]
    assert claim["storageClassName"] == "nfs-client"
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    job = _by_kind(documents, "MPIJob")[0]
    assert job["apiVersion"] == "kubeflow.org/v2beta1"
    spec = job["spec"]
    assert spec["slotsPerWorker"] == 2  # NPROC 4 over 2 workers
    assert spec["mpiImplementation"] == "OpenMPI"
    assert spec["sshAuthMountPath"] == "/home/specfem/.ssh"
    assert spec["launcherCreationPolicy"] == "WaitForWorkersReady"
    assert spec["mpiReplicaSpecs"]["Launcher"]["replicas"] == 1
    assert spec["mpiReplicaSpecs"]["Worker"]["replicas"] == 2
    pods = _pod_specs(documents)
    worker = pods["worker"]["containers"][0]
    assert worker["image"] == "registry.example.org/geo/dare-specfem:v4.1.0"
    assert worker["imagePullPolicy"] == "Always"
    assert worker["resources"] == {"requests": {"cpu": "3", "memory": "6Gi"},
                                   "limits": {"cpu": "3", "memory": "6Gi"}}
    assert worker["readinessProbe"]["tcpSocket"]["port"] == 2222
    assert worker["args"][:2] == ["bash", "-c"]
    assert ("exec /usr/sbin/sshd -D -e -f /etc/specfem/sshd_config "
            "-o AuthorizedKeysFile=/home/specfem/.ssh/authorized_keys") in worker["args"][2]
    shm = next(v for v in pods["worker"]["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    for role in ("launcher", "worker", "files"):
        assert pods[role]["securityContext"]["runAsUser"] == 1000
        assert pods[role]["securityContext"]["fsGroup"] == 1000
        mounts = {m["mountPath"]: m["name"] for m in pods[role]["containers"][0]["volumeMounts"]}
        assert mounts["/work"] == "work"
        claims = {v["name"]: v.get("persistentVolumeClaim") for v in pods[role]["volumes"]}
        assert claims["work"] == {"claimName": f"{name}-work"}
    ssh = _by_kind(documents, "ConfigMap")[1]["data"]["dare-specfem.conf"]
    assert "Port 2222" in ssh and "StrictHostKeyChecking no" in ssh
    launcher = pods["launcher"]["containers"][0]
    assert {"name": "ssh-client", "mountPath": "/etc/ssh/ssh_config.d/dare-specfem.conf",
            "subPath": "dare-specfem.conf", "readOnly": True} in launcher["volumeMounts"]
    assert "rm -rf OUTPUT_FILES/DATABASES_MPI" in launcher["args"][2]  # keep_databases false


@pytest.mark.parametrize("form", ["mpijob", "statefulset"])
def test_core_resources_validate_against_the_kubernetes_schemas(form, request) -> None:
    _, documents = request.getfixturevalue(form)
    checked = []
    for doc in documents:
        if doc["kind"] == "MPIJob":
            # a custom resource: its pod templates are core PodTemplateSpecs
            resources = [{"apiVersion": "v1", "kind": "PodTemplate",
                          "metadata": {"name": f"{doc['metadata']['name']}-{role.lower()}"},
                          "template": replica["template"]}
                         for role, replica in doc["spec"]["mpiReplicaSpecs"].items()]
        else:
            resources = [doc]
        for resource in resources:
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(resource, version, strict=True)
            checked.append(resource["kind"])
    expected = (["PersistentVolumeClaim", "ConfigMap", "ConfigMap", "PodTemplate",
                 "PodTemplate", "Pod"] if form == "mpijob" else
                ["PersistentVolumeClaim", "ConfigMap", "Service", "StatefulSet", "Job", "Pod"])
    assert checked == expected


def test_strict_validation_catches_a_misspelt_field(mpijob) -> None:
    _, documents = mpijob
    pod = dict(_by_kind(documents, "Pod")[0])
    pod["spec"] = {**pod["spec"], "restartPolicyy": "Never"}
    with pytest.raises(kubernetes_validate.ValidationError, match="restartPolicyy"):
        kubernetes_validate.validate(pod, K8S_VERSIONS[-1], strict=True)


#: The MPIJob fields of the MPI Operator's kubeflow.org/v2beta1 CRD (mpi-operator v0.8.2,
#: manifests/base/kubeflow.org_mpijobs.yaml) and the rules of its validation
#: (pkg/apis/kubeflow/validation/validation.go), read there and written out here.
MPIJOB_SPEC_FIELDS = {"launcherCreationPolicy", "mpiImplementation", "mpiReplicaSpecs",
                      "runLauncherAsWorker", "runPolicy", "slotsPerWorker", "sshAuthMountPath"}
RUN_POLICY_FIELDS = {"activeDeadlineSeconds", "backoffLimit", "cleanPodPolicy", "managedBy",
                     "schedulingPolicy", "suspend", "ttlSecondsAfterFinished"}
REPLICA_FIELDS = {"replicas", "restartPolicy", "template"}


def test_mpijob_follows_the_operators_v2beta1_schema_and_rules(mpijob) -> None:
    _, documents = mpijob
    job = _by_kind(documents, "MPIJob")[0]
    assert set(job) == {"apiVersion", "kind", "metadata", "spec"}
    spec = job["spec"]
    assert set(spec) <= MPIJOB_SPEC_FIELDS
    assert set(spec["runPolicy"]) <= RUN_POLICY_FIELDS
    assert spec["runPolicy"]["cleanPodPolicy"] in ("None", "Running", "All")
    assert spec["runPolicy"]["backoffLimit"] >= 0
    assert isinstance(spec["slotsPerWorker"], int) and spec["slotsPerWorker"] >= 0
    assert spec["sshAuthMountPath"]
    assert spec["mpiImplementation"] in ("OpenMPI", "Intel", "MPICH")
    assert spec["launcherCreationPolicy"] in ("AtStartup", "WaitForWorkersReady")
    assert set(spec["mpiReplicaSpecs"]) == {"Launcher", "Worker"}
    for role, replica in spec["mpiReplicaSpecs"].items():
        assert set(replica) <= REPLICA_FIELDS
        assert isinstance(replica["replicas"], int)
        assert replica["restartPolicy"] in ("Never", "OnFailure")
        assert replica["template"]["spec"]["containers"], role
    assert spec["mpiReplicaSpecs"]["Launcher"]["replicas"] == 1
    assert spec["mpiReplicaSpecs"]["Worker"]["replicas"] >= 1
    # the operator names pods NAME-worker-N and a Service NAME: DNS-1035 labels
    last = f"{job['metadata']['name']}-worker-{spec['mpiReplicaSpecs']['Worker']['replicas'] - 1}"
    assert DNS_1035.match(last) and len(last) <= 63
    # the operator adds its ssh volume and the hostfile's env to the first container
    assert spec["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["name"] \
        == "launcher"


@pytest.mark.parametrize("form", ["mpijob", "statefulset"])
def test_names_and_labels_are_what_kubernetes_accepts(form, request) -> None:
    _, documents = request.getfixturevalue(form)
    for doc in documents:
        name = doc["metadata"]["name"]
        assert DNS_LABEL.match(name) and len(name) <= 63, name
        if doc["kind"] in ("Service", "MPIJob"):  # Services (the MPIJob makes one) are DNS-1035
            assert DNS_1035.match(name), name
        for key, value in doc["metadata"]["labels"].items():
            assert LABEL_VALUE.match(value) and len(value) <= 63, (key, value)
    for volume in _pod_specs(documents)["launcher"]["volumes"]:
        for item in volume.get("configMap", {}).get("items", []):
            assert not item["path"].startswith("/") and ".." not in item["path"]


def test_default_name_follows_the_inputs(tmp_path: Path) -> None:
    files = {"Par_file": b"NPROC = 4\n", "meshfem3D_files/Mesh_Par_file": b"NEX_XI = 8\n"}
    name = default_name("Ridgecrest 2019 (M7.1)!", files)
    assert re.fullmatch(r"specfem-ridgecrest-2019-m7-1-[0-9a-f]{6}", name)
    assert default_name("Ridgecrest 2019 (M7.1)!", dict(files)) == name
    other = default_name("Ridgecrest 2019 (M7.1)!", {**files, "Par_file": b"NPROC = 8\n"})
    assert other != name and other[:-6] == name[:-6]
    long = default_name("a" * 80, files)
    assert len(long) <= 40 and DNS_1035.match(long)
    assert default_name("___", files).startswith("specfem-run-")


# -- the commands ------------------------------------------------------------------------------
def test_commands_match_the_local_and_docker_backends(mpijob, statefulset) -> None:
    nproc = 4
    plain = [step.argv for step in specfem_steps(IMAGE_BIN_DIR, nproc, launcher="mpirun")]
    assert plain == [("mpirun", "-np", "4", f"/opt/specfem3d/bin/{p}")
                     for p in ("xmeshfem3D", "xgenerate_databases", "xspecfem3D")]
    wrapped = run_steps(nproc, "mpijob")
    assert [s.argv for s in wrapped] == [
        ("specfem-step", f"OUTPUT_FILES/{log}", "--", *argv)
        for argv, log in zip(plain, ("output_meshfem3D.txt", "output_generate_databases.txt",
                                     "output_solver.txt"), strict=True)]
    docker = DockerBackend(SpecfemConfig(nproc_xi=2, nproc_eta=2, workers=2))
    assert run_steps(nproc, "statefulset") == docker.steps(nproc)
    for fixture, form in ((mpijob, "mpijob"), (statefulset, "statefulset")):
        script = _pod_specs(fixture[1])["launcher"]["containers"][0]["args"][2]
        commands = [line for line in script.splitlines() if line.startswith("specfem-step")]
        assert commands == [shlex.join(step.argv) for step in run_steps(nproc, form)]


def test_statefulset_form_is_wired_like_the_compose_cluster(statefulset) -> None:
    _, documents = statefulset
    service = _by_kind(documents, "Service")[0]
    workers = _by_kind(documents, "StatefulSet")[0]
    job = _by_kind(documents, "Job")[0]
    assert service["metadata"]["name"] == "hollywood-m42-workers"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"] == [{"name": "ssh", "port": 2222, "targetPort": 2222}]
    template_labels = workers["spec"]["template"]["metadata"]["labels"]
    for selector in (service["spec"]["selector"], workers["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= template_labels.items()
    assert workers["spec"]["serviceName"] == "hollywood-m42-workers"
    assert workers["spec"]["replicas"] == 2
    assert workers["spec"]["podManagementPolicy"] == "Parallel"
    worker = workers["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["worker"]  # specfem-node worker: waits for the key, serves sshd
    assert worker["resources"]["requests"] == {"cpu": "3"}  # one CPU per slot by default
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    script = pod["containers"][0]["args"][2].splitlines()
    assert script[2] == ("specfem-hostfile --expect 2 --slots 3 --service hollywood-m42-workers "
                         "/work/hostfile")
    assert "rm -rf OUTPUT_FILES/DATABASES_MPI" not in script  # keep_databases = true
    init = pod["initContainers"][0]["command"][2]
    assert "ssh-keygen -q -t ed25519 -N '' -C specfem-cluster -f /work/.ssh/new" in init


# -- the scripts, run --------------------------------------------------------------------------
def _project_configmap(documents: list[dict[str, Any]], target: Path) -> None:
    """Lay out the inputs ConfigMap as the kubelet mounts it for the launcher's init container."""
    volume = next(v for v in _pod_specs(documents)["launcher"]["volumes"] if v["name"] == "inputs")
    configmap = next(d for d in _by_kind(documents, "ConfigMap")
                 if d["metadata"]["name"] == volume["configMap"]["name"])
    for item in volume["configMap"]["items"]:
        path = target / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(configmap["data"][item["key"]])


def _localised(script: str, work: Path, inputs: Path | None = None) -> str:
    """The pods' script with the volume (and the ConfigMap's mount) at folders of this test."""
    if inputs is not None:
        script = script.replace(INPUTS_MOUNT, str(inputs))
    return script.replace("cd /work\n", f"cd {shlex.quote(str(work))}\n").replace(
        "/work/", f"{work}/")


@pytest.mark.parametrize("form", ["mpijob", "statefulset"])
def test_init_container_puts_data_on_the_volume_byte_for_byte(form, request,
                                                              tmp_path: Path) -> None:
    run, documents = request.getfixturevalue(form)
    inputs, volume = tmp_path / "configmap", tmp_path / "volume"
    _project_configmap(documents, inputs)
    (volume / "OUTPUT_FILES").mkdir(parents=True)
    (volume / "OUTPUT_FILES" / "error_message000000.txt").write_text("an earlier failure\n")
    script = _pod_specs(documents)["launcher"]["initContainers"][0]["command"][2]
    if form == "statefulset" and shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    done = subprocess.run(["bash", "-c", _localised(script, volume, inputs)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    expected = {p.relative_to(run.work_dir / "DATA"): p.read_bytes()
                for p in (run.work_dir / "DATA").rglob("*") if p.is_file()}
    copied = {p.relative_to(volume / "DATA"): p.read_bytes()
              for p in (volume / "DATA").rglob("*") if p.is_file()}
    assert copied == expected and len(copied) == 9
    assert [p.name for p in (volume / "OUTPUT_FILES").iterdir()] == ["DATABASES_MPI"]
    if form == "statefulset":
        assert (volume / ".ssh" / "id_ed25519").is_file()
        assert (volume / ".ssh" / "id_ed25519.pub").read_text().endswith("specfem-cluster\n")


STUB_STEP = """#!/usr/bin/env bash
# stands in for the image's specfem-step and mpirun: records the command, plays the program
echo "$*" >> "$STUB_LOG"
program=${!#}
name=${program##*/}
[ "$name" = "${STUB_FAIL:-}" ] && exit 3
mkdir -p OUTPUT_FILES/DATABASES_MPI
if [ "$name" = xspecfem3D ]; then
    echo "${STUB_SOLVER_END-End of the simulation}" > OUTPUT_FILES/output_solver.txt
fi
"""


def _run_launcher(script: str, work: Path, tmp_path: Path, **env: str
                  ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("specfem-step", "specfem-hostfile"):
        (bin_dir / name).write_text(STUB_STEP)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "commands.txt"
    log.unlink(missing_ok=True)
    done = subprocess.run(["bash", "-c", _localised(script, work)], capture_output=True,
                          text=True, check=False,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                               "STUB_LOG": str(log), **env})
    return done, log.read_text().splitlines() if log.exists() else []


def test_launcher_runs_the_programs_in_order_and_fails_as_specfem_does(mpijob,
                                                                       tmp_path: Path) -> None:
    script = _pod_specs(mpijob[1])["launcher"]["containers"][0]["args"][2]
    work = tmp_path / "volume"
    (work / "OUTPUT_FILES" / "DATABASES_MPI").mkdir(parents=True)
    done, commands = _run_launcher(script, work, tmp_path)
    assert done.returncode == 0, done.stderr
    assert commands == [shlex.join(step.argv[1:]) for step in run_steps(4, "mpijob")]
    assert not (work / "OUTPUT_FILES" / "DATABASES_MPI").exists()
    done, commands = _run_launcher(script, work, tmp_path, STUB_FAIL="xgenerate_databases")
    assert done.returncode == 3
    assert [c.split()[-1].rsplit("/", 1)[1] for c in commands] == ["xmeshfem3D",
                                                                    "xgenerate_databases"]
    done, _ = _run_launcher(script, work, tmp_path, STUB_SOLVER_END="Error: stopped")
    assert done.returncode == 1
    assert "SPECFEM3D did not end normally" in done.stderr
    (work / "OUTPUT_FILES" / "error_message000001.txt").write_text("rank 1 stopped\n")
    done, _ = _run_launcher(script, work, tmp_path)
    assert done.returncode == 1


def test_launcher_scripts_keep_the_databases_when_asked(statefulset, tmp_path: Path) -> None:
    script = _pod_specs(statefulset[1])["launcher"]["containers"][0]["args"][2]
    work = tmp_path / "volume"
    (work / "OUTPUT_FILES" / "DATABASES_MPI").mkdir(parents=True)
    done, commands = _run_launcher(script, work, tmp_path)
    assert done.returncode == 0, done.stderr
    assert commands[0] == "--expect 2 --slots 3 --service hollywood-m42-workers " \
                          f"{work}/hostfile"
    assert (work / "OUTPUT_FILES" / "DATABASES_MPI").is_dir()


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("form", ["mpijob", "statefulset"])
def test_scripts_pass_shellcheck(form, request, tmp_path: Path) -> None:
    _, documents = request.getfixturevalue(form)
    scripts = []
    for spec in _pod_specs(documents).values():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            argv = container.get("command") or container.get("args")
            if argv[:2] == ["bash", "-c"]:
                scripts.append(argv[2])
    assert len(scripts) == (3 if form == "mpijob" else 2)  # init, launcher(, worker)
    for number, script in enumerate(scripts):
        path = tmp_path / f"script{number}.sh"
        path.write_text("#!/usr/bin/env bash\n" + script)
        done = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stdout


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_reads_the_written_manifests(tmp_path: Path) -> None:
    """kubectl's own reader, offline: kustomize parses each resource and refuses duplicates."""
    run, config = _prepared(tmp_path / "out" / "specfem")
    written = write_manifests(tmp_path / "out", run, config, KubernetesConfig(),
                              run_name="ra-run", collect=["dare"])
    (tmp_path / "out" / "kustomization.yaml").write_text(
        "resources:\n" + "".join(f"- {p.relative_to(tmp_path / 'out')}\n" for p in written))
    done = subprocess.run(["kubectl", "kustomize", str(tmp_path / "out")], capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(done.stdout)]
    assert sorted(kinds) == ["ConfigMap", "ConfigMap", "MPIJob", "PersistentVolumeClaim", "Pod"]


# -- configuration and limits ------------------------------------------------------------------
def test_kubernetes_config_errors_name_the_key() -> None:
    for kwargs, message in (
        ({"form": "mpi"}, r"form 'mpi' is not known; forms: mpijob, statefulset"),
        ({"name": "Specfem_Run"}, r"name 'Specfem_Run' must be at most 40"),
        ({"name": "s" * 41}, r"name 's{41}' must be at most 40"),
        ({"namespace": "Seismo"}, r"namespace 'Seismo' is not a DNS label"),
        ({"image_pull_policy": "always"}, r"image_pull_policy 'always' is not one of"),
        ({"storage_size": "10GB"}, r"storage_size '10GB' is not a Kubernetes quantity"),
        ({"memory": "4g"}, r"memory '4g' is not a Kubernetes quantity"),
        ({"labels": {"bad key!": "x"}}, r"labels: 'bad key!' = 'x' is not a Kubernetes label"),
        ({"labels": {"team": "-x"}}, r"labels: the value of 'team', '-x', is not a label value"),
    ):
        with pytest.raises(ConfigError, match=r"\[simulate.specfem.kubernetes\] " + message):
            KubernetesConfig(**kwargs)


def test_toml_kubernetes_table(tmp_path: Path) -> None:
    config = tmp_path / "ra.toml"
    config.write_text('[simulate]\nsolver = "specfem"\n[simulate.specfem]\nbackend = '
                      '"kubernetes"\nworkers = 3\n[simulate.specfem.kubernetes]\nform = '
                      '"statefulset"\nnamespace = "seismo"\nstorage_class = "cephfs"\n'
                      '[simulate.specfem.kubernetes.labels]\nteam = "hazard"\n')
    loaded = load_config(config)
    assert loaded.specfem.backend == "kubernetes" and loaded.specfem.workers == 3
    assert loaded.kubernetes == KubernetesConfig(form="statefulset", namespace="seismo",
                                                 storage_class="cephfs",
                                                 labels={"team": "hazard"})
    config.write_text('[simulate.specfem.kubernetes]\nnamespce = "seismo"\n')
    with pytest.raises(ConfigError, match=r"\[simulate.specfem.kubernetes\]: unknown key "
                                          r"'namespce' \(did you mean 'namespace'\?\)"):
        load_config(config)
    config.write_text('[simulate.specfem.kubernetes]\nform = "mpi"\n')
    with pytest.raises(ConfigError, match=r"ra.toml \[simulate.specfem.kubernetes\]: form "
                                          r"'mpi' is not known"):
        load_config(config)
    config.write_text('[simulate.specfem]\nkubernetes = "yes"\n')
    with pytest.raises(ConfigError, match=r"'kubernetes' must be a table"):
        load_config(config)


def test_slots_inputs_and_size_limits(tmp_path: Path) -> None:
    run, config = _prepared(tmp_path / "specfem")
    kube = KubernetesConfig()
    with pytest.raises(ConfigError, match=r"workers must be >= 1 on Kubernetes"):
        render_manifests(run, dataclasses.replace(config, workers=0), kube, run_name="r")
    with pytest.raises(ConfigError, match=r"workers x slots_per_worker = 2 x 1 is less than "
                                          r"NPROC = 4"):
        render_manifests(run, dataclasses.replace(config, slots_per_worker=1), kube,
                         run_name="r")
    with pytest.raises(ConfigError, match=r"memory 'lots' is neither Docker's size"):
        render_manifests(run, dataclasses.replace(config, memory="lots"), kube, run_name="r")
    labels = {"app.kubernetes.io/instance": "x"}
    binary = inputs_configmap("x", kube, labels, {"Par_file": b"NPROC = 4\n",
                                                  "model.bin": b"\xff\x00\x01"})
    assert binary["data"] == {"Par_file": "NPROC = 4\n"}
    assert binary["binaryData"] == {"model.bin": "/wAB"}
    with pytest.raises(ConfigError, match=r"holds 1048577 bytes, more than a ConfigMap's "
                                          r"1048576"):
        inputs_configmap("x", kube, labels, {"a": b"x" * (1024 * 1024 + 1)})


def test_the_pipeline_refuses_to_run_the_kubernetes_backend() -> None:
    config = RAConfig(solver="specfem", specfem=SpecfemConfig(backend="kubernetes"))
    with pytest.raises(ConfigError, match=r"backend 'kubernetes' runs nothing from dare.*"
                                          r"--emit-manifests DIR"):
        specfem_backend(config)


def test_emit_folder_is_new_empty_or_dares(tmp_path: Path) -> None:
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    with pytest.raises(ConfigError, match=r"holds files dare did not write"):
        prepare_emit_folder(foreign)
    assert (foreign / "notes.txt").exists()
    target = tmp_path / "k8s"
    assert prepare_emit_folder(target) == target / "specfem"
    run, config = _prepared(target / "specfem")
    write_manifests(target, run, config, KubernetesConfig(), run_name="r", collect=["dare"])
    assert (target / "30-mpijob.yaml").exists()
    prepare_emit_folder(target)  # dare's own: earlier manifests cleared
    assert not (target / "30-mpijob.yaml").exists() and not (target / "collect").exists()
    (target / "specfem" / "OUTPUT_FILES" / "CI.BVH.BXZ.semd").write_text("0 0\n")
    with pytest.raises(ConfigError, match=r"holds a run's results; collect them first, or "
                                          r"give --force"):
        prepare_emit_folder(target)
    prepare_emit_folder(target, force=True)
    with pytest.raises(ConfigError, match=r"not a folder"):
        prepare_emit_folder(foreign / "notes.txt")


# -- the command line, and the workflow end to end ---------------------------------------------
def _toml(folder: Path, run_dir: Path, extra: str = "") -> Path:
    config = folder / "ra.toml"
    config.write_text(f"""[run]
out = "{run_dir}"
[simulate]
solver = "specfem"
duration = 9.0
[simulate.specfem]
nproc_xi = 2
element_size_km = 5.0
margin_km = 10.0
{extra}""")
    return config


def test_cli_kubernetes_backend_without_manifests_is_a_usage_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dare_cli.main import app

    run_dir = tmp_path / "run"
    write_download_stage(run_dir, socal_stations(PICKED[:1]))
    config = _toml(tmp_path, run_dir)
    runner = CliRunner()
    for extra in ([], ["--dry-run"]):
        result = runner.invoke(app, ["ra", "simulate", str(config), "--backend", "kubernetes",
                                     *extra])
        assert result.exit_code == 2, result.output
        assert "backend 'kubernetes' runs nothing from dare (it reaches no cluster)" in \
            " ".join(result.output.split())
    for args, message in (
        (["--emit-manifests", str(tmp_path / "k"), "--backend", "docker"],
         "it goes with --backend kubernetes, not 'docker'"),
        (["--emit-manifests", str(tmp_path / "k"), "--emit-batch", "slurm"],
         "give --emit-batch or --emit-manifests, not both"),
        (["--emit-manifests", str(tmp_path / "k"), "--solver", "embedded"],
         "--emit-manifests needs --solver specfem"),
        (["--k8s-form", "statefulset"], "--k8s-form and --namespace go with --emit-manifests"),
        (["--emit-manifests", str(tmp_path / "k"), "--specfem-data", str(SOCAL / "DATA")],
         "a hand-made DATA folder (--specfem-data, data_dir) is not supported there"),
        (["--emit-manifests", str(tmp_path / "k"), "--k8s-form", "helm"],
         "form 'helm' is not known"),
    ):
        result = runner.invoke(app, ["ra", "simulate", str(config), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), result.output
    # a configuration whose backend is kubernetes: the simulate stage refuses too
    config = _toml(tmp_path, run_dir, 'backend = "kubernetes"\n')
    result = runner.invoke(app, ["ra", "simulate", str(config)])
    assert result.exit_code == 2 and "--emit-manifests DIR" in " ".join(result.output.split())


def _mpirun_stand_in(folder: Path) -> Path:
    """``mpirun`` of the image, here: mpich's mpiexec on the test doubles (no hostfile)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "mpirun"
    script.write_text(f"""#!/usr/bin/env bash
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --hostfile) shift 2; continue ;;
        {IMAGE_BIN_DIR}/*) args+=("{DOUBLES}/${{1##*/}}") ;;
        *) args+=("$1") ;;
    esac
    shift
done
exec {shlex.quote(str(MPIEXEC))} "${{args[@]}}"
""")
    script.chmod(0o755)
    hostfile = folder / "specfem-hostfile"
    hostfile.write_text("#!/usr/bin/env bash\necho \"localhost slots=4\" > \"${!#}\"\n")
    hostfile.chmod(0o755)
    step = next(p for p in (ROOT / "containers" / "specfem" / "specfem-step",
                            ROOT / "specfem" / "specfem-step") if p.is_file())
    shutil.copy(step, folder / "specfem-step")
    (folder / "specfem-step").chmod(0o755)
    return folder


@needs_mpiexec
@pytest.mark.parametrize("form", ["mpijob", "statefulset"])
def test_cli_emit_apply_copy_collect(form: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """--emit-manifests; the pods' scripts run here (the doubles under mpiexec stand in for
    the MPI cluster); OUTPUT_FILES copied back as kubectl cp does; the README's dare line."""
    from typer.testing import CliRunner

    from dare_cli.main import app

    run_dir = tmp_path / "run"
    write_download_stage(run_dir, socal_stations(PICKED))
    config = _toml(tmp_path, run_dir)
    folder = tmp_path / "k8s"
    runner = CliRunner()
    result = runner.invoke(app, ["ra", "simulate", str(config), "--backend", "kubernetes",
                                 "--emit-manifests", str(folder), "--k8s-form", form,
                                 "--namespace", "seismo"])
    assert result.exit_code == 0, result.output
    written = [Path(line) for line in result.stdout.split()]
    main = "30-mpijob.yaml" if form == "mpijob" else "40-launcher.yaml"
    assert folder / main in written and folder / "collect" / "files-pod.yaml" in written
    assert (folder / "specfem" / "DATA" / "Par_file").is_file()
    documents = [d for path in written for d in yaml.safe_load_all(path.read_text())]
    assert {d["metadata"]["namespace"] for d in documents} == {"seismo"}
    readme = (folder / "README.md").read_text()
    assert f"kubectl apply -f {folder}\n" in readme
    name = documents[0]["metadata"]["name"][:-len("-work")]
    assert f"kubectl cp seismo/{name}-files:/work/OUTPUT_FILES " \
           f"{folder}/specfem/OUTPUT_FILES\n" in readme

    # the pods: the init container, then the launcher, on a folder standing for the volume
    volume = tmp_path / "volume"
    pods = _pod_specs(documents)
    _project_configmap(documents, tmp_path / "configmap")
    init = pods["launcher"]["initContainers"][0]["command"][2]
    done = subprocess.run(["bash", "-c", _localised(init, volume, tmp_path / "configmap")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    bin_dir = _mpirun_stand_in(tmp_path / "bin")
    monkeypatch.setenv("SPECFEM_DOUBLE_SEISMOGRAMS", str(ARCHIVE))
    launcher = pods["launcher"]["containers"][0]["args"][2]
    done = subprocess.run(["bash", "-c", _localised(launcher, volume)], capture_output=True,
                          text=True, check=False, timeout=300,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "End of the simulation" in done.stdout  # specfem-step showed the solver's log
    assert not (volume / "OUTPUT_FILES" / "DATABASES_MPI").exists()

    # kubectl cp: the volume's OUTPUT_FILES into the folder; then the README's last command
    shutil.copytree(volume / "OUTPUT_FILES", folder / "specfem" / "OUTPUT_FILES",
                    dirs_exist_ok=True)
    collect = shlex.split(readme.split("## Collect the seismograms")[1].split("```")[1]
                          .strip().splitlines()[-1])
    assert collect[:3] == ["dare", "ra", "simulate"] and "--collect" in collect
    result = runner.invoke(app, collect[1:])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in (run_dir / "simulate").glob("*.mseed")) == sorted(PICKED)
    stream = read(str(run_dir / "simulate" / "CI.BVH.mseed"))
    import tarfile

    with tarfile.open(ARCHIVE) as archive:
        member = archive.extractfile("CI.BVH.HXZ.semd")
        assert member is not None
        reference = np.loadtxt(member)
    np.testing.assert_array_equal(stream.select(channel="HXZ")[0].data, reference[:, 1])

    # emitting again into the folder with results in it needs --force
    result = runner.invoke(app, ["ra", "simulate", str(config), "--backend", "kubernetes",
                                 "--emit-manifests", str(folder)])
    assert result.exit_code == 2 and "give --force" in " ".join(result.output.split())
    assert sys.executable  # the doubles ran under this machine's python3
