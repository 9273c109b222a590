"""contrib/kubernetes: the DaemonSet is valid Kubernetes (schemas bundled: offline) and
asks for what zombiectl needs on a node; the Dockerfile builds this checkout, from the
repository's root, at the version the DaemonSet names."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import zombiectl

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "contrib" / "kubernetes"


def daemonset() -> dict:
    return yaml.safe_load((KUBE / "daemonset.yaml").read_text())


def test_daemonset_validates_strictly_against_the_bundled_schemas() -> None:
    kubernetes_validate.validate(daemonset(), kubernetes_validate.latest_version(), strict=True)


def test_an_unknown_field_would_fail_validation() -> None:
    bad = daemonset()
    bad["spec"]["template"]["spec"]["hostPid"] = True  # misspelt: silently ignored by kubectl
    try:
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError:
        return
    raise AssertionError("strict validation accepted an unknown field")


def test_daemonset_sees_the_host_reads_namespaces_and_writes_the_textfile() -> None:
    pod = daemonset()["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["SYS_PTRACE"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    textfile = mounts["/textfile"]
    assert not textfile.get("readOnly")
    assert (
        volumes[textfile["name"]]["hostPath"]["path"] == "/var/lib/node_exporter/textfile_collector"
    )
    # kubelet's log symlinks, for the k8s_* names: read-only, where zombiectl looks.
    logs = mounts["/var/log/containers"]
    assert logs["readOnly"] is True
    assert volumes[logs["name"]]["hostPath"]["path"] == "/var/log/containers"
    script = container["args"][-1]
    command = shlex.split(re.search(r"do (.*?);", script).group(1))  # type: ignore[union-attr]
    assert command[:3] == ["zombiectl", "list", "--textfile"]
    # The textfile is written (atomically, through a temporary beside it) in the mount.
    assert Path(command[3]).parent == Path(textfile["mountPath"])
    assert command[3].endswith(".prom")
    doctor = shlex.split(re.search(r"\|\| (zombiectl doctor .*?) >", script).group(1))  # type: ignore[union-attr]
    assert doctor[:3] == ["zombiectl", "doctor", "--containers"]
    assert Path(doctor[doctor.index("--textfile") + 1]).parent == Path(textfile["mountPath"])
    assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0


def _dockerfile() -> str:
    return (KUBE / "Dockerfile").read_text()


def test_dockerfile_builds_this_checkout_on_a_pinned_slim_python_and_reaps_as_pid_1() -> None:
    text = _dockerfile()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:3\.[0-9]+\.[0-9]+-slim", b) for b in bases), bases
    assert len(set(bases)) == 1
    assert "pip install --no-cache-dir zombiectl" not in text  # nothing from an index
    assert 'ENTRYPOINT ["zombiectl", "run", "--"]' in text


def test_image_version_is_the_checkouts_everywhere() -> None:
    version = zombiectl.__version__
    (arg,) = re.findall(r"^ARG ZOMBIECTL_VERSION=(\S+)$", _dockerfile(), re.M)
    assert arg == version
    (container,) = daemonset()["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"zombiectl:{version}"
    assert f"-t zombiectl:{version} ." in _dockerfile()


def _copied() -> list[str]:
    """The paths the Dockerfile copies from the build context (not --from a stage)."""
    out = []
    for line in re.findall(r"^COPY (?!--from)(.*)$", _dockerfile(), re.M):
        out.extend(line.split()[:-1])
    return out


def test_the_build_context_is_the_repository_root_and_holds_what_the_build_needs() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    copied = _copied()
    for path in copied:
        assert (ROOT / path).exists(), f"COPY {path}: not in the repository's root"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    hatch = project["tool"]["hatch"]
    needed = {
        "pyproject.toml",
        project["project"]["readme"],
        hatch["version"]["path"].split("/")[0],
        *hatch["build"]["targets"]["wheel"]["packages"],
        *hatch["build"]["targets"]["wheel"]["force-include"],
    }
    assert needed <= set(copied), needed - set(copied)
    # The ignore file beside the Dockerfile keeps exactly those in the context.
    ignore = [ln for ln in (KUBE / "Dockerfile.dockerignore").read_text().splitlines()
              if ln and not ln.startswith("#")]  # fmt: skip
    assert ignore[0] == "*"
    assert {ln[1:] for ln in ignore if ln.startswith("!")} == set(copied)
