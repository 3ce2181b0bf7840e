"""Per-call trace records, appended as JSONL, with secrets redacted before anything is written."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from .models import TraceRecord

_SECRET_NAME = re.compile(r"(API_KEY|_TOKEN|_SECRET|PASSWORD)$|^(OPENAI|ANTHROPIC|GEMINI|GOOGLE|AZURE|COHERE|MISTRAL|GROQ|TOGETHER|HF)_.*KEY", re.I)
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,})")


def secret_values() -> list[str]:
    return sorted(
        (v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 6),
        key=len,
        reverse=True,
    )


def redact(text: str) -> str:
    """Remove provider keys: every secret-looking env value, and key-shaped strings."""
    for value in secret_values():
        text = text.replace(value, "[REDACTED]")
    return _KEY_SHAPES.sub("[REDACTED]", text)


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", s)[:150] or "_"


class TraceWriter:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, asset: str, partition: str | None) -> Path:
        return self.root / _safe_name(asset) / f"{_safe_name(partition or '__unpartitioned__')}.jsonl"

    def write(self, record: TraceRecord) -> Path:
        from resources.atomic import disk_errors

        path = self.path_for(record.asset, record.partition)
        data = (redact(record.model_dump_json()) + "\n").encode()
        with disk_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            # One write() of one line on an O_APPEND file: parallel writers do not interleave lines.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                size = os.fstat(fd).st_size
                try:
                    if os.write(fd, data) != len(data):  # a full disk took only part of the line
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                except OSError:
                    os.ftruncate(fd, size)  # no half line stays behind
                    raise
            finally:
                os.close(fd)
        return path
