"""Real Prometheus components for tests: node_exporter and prometheus from the distribution,
each on a free 127.0.0.1 port, always stopped and reaped; and a parent whose zombies
grow on demand (for the growth alert).

    with node_exporter(textfile_dir, log) as ne:
        families(ne.get("/metrics"))
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from proctools import (
    GLOBAL_TIMEOUT,
    read_line,
    reap_adopted,
    terminate,
    wait_until,
    zombie_children,
)
from prometheus_client.parser import text_string_to_metric_families

# No proxy for loopback, whatever the environment says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = GLOBAL_TIMEOUT) -> tuple[int, str]:
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8")
    except OSError:  # refused, reset, timeout, or an HTTP error status
        return 0, ""


class Server:
    """One server process on 127.0.0.1; `url` once ready."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.port = port
        self.log = log
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.address}"

    def get(self, path: str) -> str:
        status, body = http_get(self.url + path)
        assert status == 200, f"{self.name} GET {path} failed; log:\n{self.log_tail()}"
        return body

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(GLOBAL_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float = GLOBAL_TIMEOUT) -> bool:
    wait_until(lambda: proc.poll() is not None or http_get(url, 2)[0] == 200, timeout, 0.05)
    return proc.poll() is None and http_get(url, 5)[0] == 200


@contextmanager
def running(
    name: str,
    argv_for_port: Callable[[int], list[str]],
    ready_path: str,
    log: Path,
    cls: type[Server] = Server,
) -> Iterator[Server]:
    """Start a server on a free port (another port if that one was taken meanwhile),
    wait until ready_path answers 200, and always stop and reap it."""
    server = None
    try:
        for _attempt in range(3):
            port = free_port()
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    argv_for_port(port), stdin=subprocess.DEVNULL, stdout=out, stderr=out
                )
            server = cls(name, proc, port, log)
            if _wait_ready(proc, server.url + ready_path):
                break
            server.stop()
            if "address already in use" not in server.log_tail(50):
                raise RuntimeError(f"{name} did not start; log:\n{server.log_tail()}")
        else:
            raise RuntimeError(f"{name}: no free port after 3 attempts")
        yield server
    finally:
        if server is not None:
            server.stop()


@contextmanager
def node_exporter(binary: str, textfile_dir: Path, log: Path) -> Iterator[Server]:
    def argv(port: int) -> list[str]:
        return [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            # Only what the test compares: starts fast, scrapes fast.
            "--collector.disable-defaults",
            "--web.disable-exporter-metrics",
            "--collector.textfile",
            f"--collector.textfile.directory={textfile_dir}",
            "--collector.processes",
        ]

    with running("node_exporter", argv, "/metrics", log) as server:
        yield server


class PrometheusServer(Server):
    def query(self, expr: str) -> list[dict]:
        body = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        data = json.loads(body)
        assert data["status"] == "success", data
        result: list[dict] = data["data"]["result"]
        return result

    def alerting_rules(self) -> dict[str, dict]:
        data = json.loads(self.get("/api/v1/rules"))
        return {
            rule["name"]: rule
            for group in data["data"]["groups"]
            for rule in group["rules"]
            if rule["type"] == "alerting"
        }


@contextmanager
def prometheus(
    binary: str, target: str, rule_file: Path, workdir: Path, interval: str = "1s"
) -> Iterator[PrometheusServer]:
    config = workdir / "prometheus.yml"
    config.write_text(
        f"""global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
rule_files:
  - {rule_file}
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["{target}"]
"""
    )

    def argv(port: int) -> list[str]:
        return [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]

    log = workdir / "prometheus.log"
    with running("prometheus", argv, "/-/ready", log, PrometheusServer) as server:
        assert isinstance(server, PrometheusServer)
        yield server


def families(text: str) -> dict[str, list]:
    """name -> samples, parsed by the reference client's own parser."""
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        out.setdefault(fam.name, []).extend(fam.samples)
    return out


def sample(fams: dict[str, list], name: str, **labels: str) -> float | None:
    for s in fams.get(name, []):
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


# A parent that makes N more zombie children for each number read on stdin, printing
# their pids; on EOF it reaps them all and exits. argv[1]: a name to take (comm).
_GROWING = r"""
import ctypes, os, sys
if sys.argv[1]:
    ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
pids = []
for line in sys.stdin:
    new = []
    for _ in range(int(line)):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        new.append(pid)
    pids += new
    sys.stdout.write(" ".join(map(str, new)) + "\n")
    sys.stdout.flush()
for pid in pids:
    os.waitpid(pid, 0)
"""


class GrowingParent:
    """A real parent whose zombie children grow when asked: grow(n) adds n."""

    def __init__(self, name: str = "") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _GROWING, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid
        self.zombie_pids: list[int] = []

    def grow(self, n: int, timeout: float = GLOBAL_TIMEOUT) -> None:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        self.zombie_pids += [int(x) for x in read_line(self.proc.stdout).split()]
        want = len(self.zombie_pids)
        if not wait_until(lambda: len(zombie_children(self.pid)) == want, timeout):
            raise RuntimeError(f"{want} zombies did not appear under {self.pid}")

    def close(self, timeout: float = GLOBAL_TIMEOUT) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin:
                self.proc.stdin.close()
                self.proc.wait(timeout)
        except (subprocess.TimeoutExpired, OSError):
            pass
        terminate(self.proc, signal.SIGKILL)
        reap_adopted(pids=[self.pid, *self.zombie_pids])


def comm_of(pid: int) -> str:
    with open(f"/proc/{pid}/comm", "rb") as f:
        return f.read()[:-1].decode("utf-8", "replace")
