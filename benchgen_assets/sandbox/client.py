"""Client side of the sandbox: ``run_build`` talks to the shared build server, starting it if needed."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Union

from benchgen_assets.records import BuildOutput, SandboxError, SandboxLimits
from benchgen_assets.sandbox import protocol
from benchgen_assets.sandbox.policy import check_source

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 180.0  # importing build123d takes 10–20 s on a busy 2-core machine


def _connect(path: Path, timeout: Optional[float]) -> Optional[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        return sock
    except OSError:  # absent, stale (nobody listening) or refused
        sock.close()
        return None


def _exchange(directory: Path, request: dict, timeout: Optional[float]) -> Optional[dict]:
    """One request/response; None if no server answers on the socket."""
    sock = _connect(directory / protocol.SOCKET_NAME, timeout)
    if sock is None:
        return None
    with sock:
        sock.sendall((json.dumps(request) + "\n").encode())
        return json.loads(protocol.read_line(sock))


def server_status() -> Optional[dict]:
    """The running server's ``{"pid", "jobs_started", "version", ...}``, or None (never starts one)."""
    try:
        return _exchange(protocol.runtime_dir(), {"op": "ping"}, timeout=10)
    except (OSError, ValueError):
        return None


def _wait_gone(directory: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (directory / protocol.SOCKET_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def shutdown_server(timeout: float = 10.0) -> bool:
    """Ask the build server to exit (running jobs finish in their own processes). True if one was running."""
    directory = protocol.runtime_dir()
    try:
        answered = _exchange(directory, {"op": "shutdown"}, timeout=timeout) is not None
    except (OSError, ValueError):
        answered = False
    if answered:
        _wait_gone(directory, timeout)
    return answered


def _spawn_server(directory: Path) -> None:
    log = open(directory / protocol.LOG_NAME, "ab")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    idle = os.environ.get("BENCHGEN_SANDBOX_IDLE_S", str(protocol.DEFAULT_IDLE_TIMEOUT_S))
    with log:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchgen_assets.sandbox.server", "--dir", str(directory), "--idle-timeout", idle],
            cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,  # not killed with the caller's process group (e.g. a Dagster run)
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (directory / protocol.LOG_NAME).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"build server exited with {process.returncode} while starting:\n{tail}")
        try:
            if _exchange(directory, {"op": "ping"}, timeout=5) is not None:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"build server did not start within {SERVER_START_TIMEOUT_S:.0f} s")


def ensure_server() -> dict:
    """Return the ping of a server running the current code, starting one if necessary.

    A file lock makes concurrent callers (parallel Dagster runs) start at most one server; a stale
    socket or a server running older code is replaced.
    """
    directory = protocol.runtime_dir()
    version = protocol.code_version()
    status = server_status()
    if status and status.get("version") == version:
        return status
    with open(directory / protocol.LOCK_NAME, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        status = server_status()
        if status and status.get("version") == version:
            return status
        if status:  # outdated code: retire it
            shutdown_server()
        (directory / protocol.SOCKET_NAME).unlink(missing_ok=True)
        _spawn_server(directory)
        status = server_status()
        if not status:
            raise RuntimeError("build server started but does not answer")
        return status


def run_build(script_source: str, seed: int, scale: tuple[float, float, float], out_dir: Union[str, Path],
              limits: SandboxLimits = SandboxLimits()) -> Union[BuildOutput, SandboxError]:
    """Run ``build(seed, scale)`` of an untrusted scenario script in the sandbox.

    Returns the exported parts (binary STL files in ``out_dir``) or the reason it was refused or
    failed — never raises for anything the script does.
    """
    if limits.static_check:
        refused = check_source(script_source)
        if refused is not None:
            return refused
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    request = {"op": "build", "script": script_source, "seed": int(seed), "scale": [float(s) for s in scale],
               "out_dir": str(out_dir), "limits": limits.model_dump()}
    last_problem = ""
    for _attempt in range(2):  # a server that died (or idled out) between ping and request: restart once
        try:
            ensure_server()
            reply = _exchange(protocol.runtime_dir(), request, timeout=limits.wall_timeout_s + 60)
        except (OSError, ValueError, RuntimeError) as exc:
            last_problem = str(exc)
            continue
        if reply is None:
            last_problem = "no build server is listening"
            continue
        if "ok" in reply:
            return BuildOutput.model_validate(reply["ok"])
        return SandboxError.model_validate(reply["error"])
    return SandboxError(kind="crashed", message=f"the sandbox build server is unavailable: {last_problem}")
