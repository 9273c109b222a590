"""contrib/kubernetes: the DaemonSet is valid Kubernetes (schemas bundled: offline) and
asks for what zombiectl needs on a node; the Dockerfile installs the package."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import kubernetes_validate
import yaml

KUBE = Path(__file__).resolve().parent.parent / "contrib" / "kubernetes"


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
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["hostPath"]["path"] == "/var/lib/node_exporter/textfile_collector"
    script = container["args"][-1]
    command = shlex.split(re.search(r"do (.*?);", script).group(1))  # type: ignore[union-attr]
    assert command[:3] == ["zombiectl", "list", "--textfile"]
    # The textfile is written (atomically, through a temporary beside it) in the mount.
    assert Path(command[3]).parent == Path(mount["mountPath"])
    assert command[3].endswith(".prom")


def test_dockerfile_installs_zombiectl_on_a_slim_python_and_reaps_as_pid_1() -> None:
    text = (KUBE / "Dockerfile").read_text()
    assert re.search(r"^FROM python:[0-9.]+-slim$", text, re.M)
    assert "pip install --no-cache-dir zombiectl" in text
    assert 'ENTRYPOINT ["zombiectl", "run", "--"]' in text
