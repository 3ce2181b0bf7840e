"""The build server: imports build123d once, then forks one supervised job per request.

Run as ``python -m benchgen_assets.sandbox.server --dir RUNTIME_DIR`` (``client.py`` starts it).
Protocol: one JSON line per connection in, one JSON line out.
  {"op": "ping"}                     → {"pid", "jobs_started", "version", "started_at"}
  {"op": "shutdown"}                 → {"stopping": true}
  {"op": "build", "script", "seed", "scale", "out_dir", "limits"} → {"ok": BuildOutput} | {"error": SandboxError}

The main loop is single-threaded (safe to fork). Each connection gets a supervisor process that
forks the job, enforces the wall timeout by killing the job's process group, moves the STL files
into ``out_dir`` and answers the client; the main loop only accepts, reaps and idles out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Keep the server single-threaded so fork() copies no half-held lock.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from benchgen_assets.records import BuildOutput, SandboxError, SandboxLimits  # noqa: E402
from benchgen_assets.sandbox import protocol  # noqa: E402


def preload() -> None:
    """Import everything a script or the export may need, so jobs never pay for it."""
    import collections.abc  # noqa: F401
    import dataclasses  # noqa: F401
    import enum  # noqa: F401
    import functools  # noqa: F401
    import itertools  # noqa: F401
    import math  # noqa: F401
    import random  # noqa: F401
    import typing  # noqa: F401

    import build123d  # noqa: F401
    import numpy as np
    import scipy.spatial  # noqa: F401
    import trimesh

    import benchgen_assets.scene  # noqa: F401
    from benchgen_assets.sandbox import export, job  # noqa: F401
    from benchgen_assets.sandbox.policy import python_read_roots

    # trimesh imports parts of itself lazily: touch what the export uses (pure Python + qhull).
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    _ = (box.is_watertight, box.is_winding_consistent, box.volume, box.convex_hull.volume, box.face_normals)
    trimesh.Trimesh(vertices=np.asarray(box.vertices), faces=np.asarray(box.faces), process=True)
    python_read_roots()


def _send(conn: socket.socket, obj: dict) -> None:
    conn.sendall((json.dumps(obj) + "\n").encode())


def _error_reply(kind: str, message: str, tb: str | None = None) -> dict:
    return {"error": SandboxError(kind=kind, message=message, traceback=tb).model_dump()}


def _log_tail(job_dir: Path, limit: int = 2000) -> str:
    try:
        return (job_dir / "output.log").read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def _interpret_exit(status: int, job_dir: Path, limits: SandboxLimits) -> dict:
    from benchgen_assets.sandbox.job import RESULT_NAME

    result_file = job_dir / RESULT_NAME
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and result_file.exists():
        return json.loads(result_file.read_text())
    tail = _log_tail(job_dir)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return _error_reply("cpu_limit", f"The script used more than {limits.cpu_time_s} s of CPU time "
                                "and was stopped. Avoid unbounded loops; build fewer/simpler solids.", tail)
        if sig == signal.SIGXFSZ:
            return _error_reply("crashed", f"The job tried to write a file larger than {limits.max_file_mb} MB.", tail)
        name = signal.Signals(sig).name
        if sig == signal.SIGKILL:
            return _error_reply("crashed", "The build process was killed (CPU hard limit or the system ran out "
                                "of memory). Build fewer/simpler solids.", tail)
        if "bad_alloc" in tail or "OutOfMemory" in tail or "MemoryError" in tail:
            return _error_reply("memory_limit", f"The script exhausted its {limits.memory_mb} MB memory budget "
                                f"(killed by {name}).", tail)
        return _error_reply("crashed", f"The build process crashed with {name} (often an OCCT failure on "
                            "degenerate geometry: zero-size or self-touching features).", tail)
    if "MemoryError" in tail:
        return _error_reply("memory_limit", f"The script exhausted its {limits.memory_mb} MB memory budget.", tail)
    return _error_reply("crashed", f"The build process exited with status {os.waitstatus_to_exitcode(status)} "
                        "without a result.", tail)


def _publish_stls(result: dict, job_stl_dir: Path, out_dir: Path) -> dict:
    """Move the job's STL files into out_dir atomically; the result then points there."""
    from resources.atomic import atomic_write_bytes

    output = BuildOutput.model_validate(result["ok"])
    if not all(re.fullmatch(r"[A-Za-z0-9_-]+\.stl", part.stl_file) for part in output.parts):
        raise ValueError("job reported an unsafe STL file name")
    for part in output.parts:
        atomic_write_bytes(out_dir / part.stl_file, (job_stl_dir / part.stl_file).read_bytes())
    output.out_dir = str(out_dir)
    return {"ok": output.model_dump(mode="json")}


def supervise(conn: socket.socket, request: dict, jobs_root: Path) -> None:
    """In the supervisor process: run one job under the wall timeout and answer the client."""
    from benchgen_assets.sandbox.job import SCRIPT_NAME, STL_DIR, run_job

    limits = SandboxLimits.model_validate(request.get("limits") or {})
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=jobs_root))
    try:
        (job_dir / SCRIPT_NAME).write_text(request["script"])
        pid = os.fork()
        if pid == 0:
            conn.close()
            run_job(job_dir, request)  # never returns
        try:
            os.setpgid(pid, pid)  # also done in the child: whichever runs first
        except OSError:
            pass
        deadline = time.monotonic() + limits.wall_timeout_s
        status = None
        while status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
            elif time.monotonic() > deadline:
                _kill_group(pid)
                os.waitpid(pid, 0)
                reply = _error_reply("timeout", f"The build did not finish within {limits.wall_timeout_s:g} s "
                                     "(wall clock) and was stopped. Check for endless loops or very "
                                     "expensive operations.", _log_tail(job_dir))
                break
            else:
                time.sleep(0.01)
        if status is not None:
            _kill_group(pid)  # anything the job left running
            reply = _interpret_exit(status, job_dir, limits)
            if "ok" in reply:
                reply = _publish_stls(reply, job_dir / STL_DIR, Path(request["out_dir"]))
        _send(conn, reply)
    except BaseException as exc:  # noqa: BLE001 — the client always gets an answer
        try:
            _send(conn, _error_reply("crashed", f"build server failure: {exc}", traceback.format_exc()))
        except OSError:
            pass
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class BuildServer:
    def __init__(self, runtime_dir: Path, idle_timeout_s: float):
        self.runtime_dir = runtime_dir
        self.idle_timeout_s = idle_timeout_s
        self.jobs_root = runtime_dir / "jobs"
        self.socket_path = runtime_dir / protocol.SOCKET_NAME
        self.supervisors: set[int] = set()
        self.jobs_started = 0
        self.started_at = time.time()
        self.last_activity = time.monotonic()
        self.stopping = False

    def bind(self) -> socket.socket:
        self.jobs_root.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bind under a private name, then rename: a client never sees a socket that is not listening.
        tmp_path = self.runtime_dir / f".{protocol.SOCKET_NAME}.{os.getpid()}"
        tmp_path.unlink(missing_ok=True)
        listener.bind(str(tmp_path))
        os.chmod(tmp_path, 0o600)
        listener.listen(64)
        os.replace(tmp_path, self.socket_path)
        self.socket_inode = os.stat(self.socket_path).st_ino
        return listener

    def _reap(self) -> None:
        for pid in list(self.supervisors):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.supervisors.discard(pid)
                self.last_activity = time.monotonic()

    def _handle(self, conn: socket.socket, listener: socket.socket) -> None:
        conn.settimeout(10)
        try:
            request = json.loads(protocol.read_line(conn))
        except (OSError, ValueError) as exc:
            conn.close()
            print(f"bad request: {exc}", file=sys.stderr)
            return
        op = request.get("op")
        if op == "ping":
            _send(conn, {"pid": os.getpid(), "jobs_started": self.jobs_started, "version": protocol.code_version(),
                         "started_at": self.started_at, "active_jobs": len(self.supervisors)})
        elif op == "shutdown":
            _send(conn, {"stopping": True})
            self.stopping = True
        elif op == "build":
            self.jobs_started += 1
            pid = os.fork()
            if pid == 0:
                status = 0
                try:
                    listener.close()
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    conn.settimeout(None)
                    supervise(conn, request, self.jobs_root)
                except BaseException:  # noqa: BLE001
                    traceback.print_exc()
                    status = 1
                finally:
                    os._exit(status)
            self.supervisors.add(pid)
        else:
            _send(conn, {"error": f"unknown op {op!r}"})
        conn.close()

    def serve(self) -> None:
        listener = self.bind()
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        print(f"build server {os.getpid()} listening on {self.socket_path}", file=sys.stderr, flush=True)
        try:
            while not self.stopping:
                for _key, _ in selector.select(timeout=0.5):
                    conn, _addr = listener.accept()
                    self.last_activity = time.monotonic()
                    self._handle(conn, listener)
                self._reap()
                if not self.supervisors and time.monotonic() - self.last_activity > self.idle_timeout_s:
                    print("idle timeout: exiting", file=sys.stderr, flush=True)
                    break
        finally:
            self._remove_socket()
            listener.close()

    def _remove_socket(self) -> None:
        # Only our own socket: a newer server may already have replaced it.
        try:
            if os.stat(self.socket_path).st_ino == self.socket_inode:
                self.socket_path.unlink()
        except OSError:
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="runtime directory (socket, lock, jobs)")
    parser.add_argument("--idle-timeout", type=float, default=protocol.DEFAULT_IDLE_TIMEOUT_S)
    args = parser.parse_args(argv)
    preload()
    BuildServer(args.dir, args.idle_timeout).serve()


if __name__ == "__main__":
    main()
