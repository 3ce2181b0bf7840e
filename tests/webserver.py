"""A real dagster-webserver (or `dagster dev`: webserver + daemon) on 127.0.0.1 and a headless Debian Chromium, for UI tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from resources.paths import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialing out, which this machine refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dagster_exe(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _new_session_with_ctrl_c() -> None:
    os.setsid()  # its own process group: the code servers and run workers it spawns are stopped with it
    # A test run from a background shell job inherits an ignored SIGINT, and so would Dagster.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(cmd: list[str], dagster_home: Path, log_path: Path, env: dict | None) -> subprocess.Popen:
    full_env = {**os.environ, "DAGSTER_HOME": str(dagster_home), **(env or {})}
    with open(log_path, "w") as log:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_new_session_with_ctrl_c)


def _stop(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """Ctrl-C to the process group (how a user stops ``dagster dev``), SIGKILL whatever is left."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _wait_until_serving(proc: subprocess.Popen, url: str, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/server_info", timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.args[0]} not serving {url} after {timeout_s}s: {log_path.read_text()[-3000:]}")
            time.sleep(0.5)


@contextmanager
def _serving(command: list[str], dagster_home: Path, log_path: Path, env: dict | None, timeout_s: float):
    """``command -w workspace.yaml`` on 127.0.0.1 and a free port; yields the base URL once it answers."""
    port = free_port()
    proc = _start([*command, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], dagster_home, log_path, env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(proc, url, log_path, timeout_s)
        yield url
    finally:
        _stop(proc)


def running_webserver(dagster_home: Path, log_path: Path, env: dict | None = None, timeout_s: float = 180):
    """``dagster-webserver``: the UI and GraphQL only."""
    return _serving([_dagster_exe("dagster-webserver")], dagster_home, log_path, env, timeout_s)


def running_dagster_dev(dagster_home: Path, log_path: Path, env: dict | None = None, timeout_s: float = 240):
    """``dagster dev``: the webserver plus the daemon (which dequeues the runs launched from the UI
    under the queued run coordinator), sharing one code server per location; everything it started
    ends with it."""
    return _serving([_dagster_exe("dagster"), "dev"], dagster_home, log_path, env, timeout_s)


@contextmanager
def running_daemon(dagster_home: Path, log_path: Path, env: dict | None = None):
    """``dagster-daemon run`` on the workspace (its own code servers; the run workers it launches are in
    its process group, so they end with it). Yields the process."""
    proc = _start([_dagster_exe("dagster-daemon"), "run", "-w", "workspace.yaml"], dagster_home, log_path, env)
    try:
        yield proc
    finally:
        _stop(proc)


LAUNCH_BACKFILL = """mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most spans (start, end) open at one instant."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])  # an end sorts before a start
    most = current = 0
    for _, delta in events:
        current += delta
        most = max(most, current)
    return most


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = json.loads(resp.read())
    if body.get("errors"):
        raise AssertionError(body["errors"])
    return body["data"]
