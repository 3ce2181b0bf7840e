"""What the build server and its clients agree on (no heavy imports)."""

from __future__ import annotations

import hashlib
import os
import socket
from functools import lru_cache
from pathlib import Path

SOCKET_NAME = "server.sock"
LOCK_NAME = "server.lock"
LOG_NAME = "server.log"
DEFAULT_IDLE_TIMEOUT_S = 600.0
MAX_LINE_BYTES = 64 * 1024 * 1024


def runtime_dir() -> Path:
    """``$BENCHGEN_SANDBOX_DIR`` or ``/tmp/benchgen-sandbox-<uid>``: socket, lock, log, job dirs."""
    path = Path(os.environ.get("BENCHGEN_SANDBOX_DIR") or f"/tmp/benchgen-sandbox-{os.getuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the sandbox and scene code: a server running older code is replaced, not reused."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted([*here.glob("*.py"), here.parent / "scene.py", here.parent / "records.py"]):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def read_line(conn: socket.socket) -> str:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") or size > MAX_LINE_BYTES:
            break
    data = b"".join(chunks)
    if not data.endswith(b"\n"):
        raise ConnectionError("connection closed before a complete message arrived")
    return data.decode()
