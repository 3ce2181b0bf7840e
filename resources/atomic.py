"""Atomic file writes: a reader never sees half a file, a rerun never leaves half its outputs.

A write the disk refuses (full, read-only, no permission) raises ``DatasetWriteError``, which names
the path and the cause, after removing its temp file.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

DISK_CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


class DatasetWriteError(OSError):
    """A dataset file the disk would not take, for a reason of the disk, not of the data."""

    def __init__(self, path: str | os.PathLike, cause: OSError):
        super().__init__(cause.errno, DISK_CAUSES[cause.errno], str(path))

    def __str__(self) -> str:
        return (f"cannot write {self.filename}: {self.strerror} ({errno.errorcode[self.errno]}); "
                "nothing half-written was left there")


@contextmanager
def disk_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn the disk's refusals while writing ``path`` into one ``DatasetWriteError``."""
    try:
        yield
    except DatasetWriteError:
        raise
    except OSError as exc:
        if exc.errno in DISK_CAUSES:
            raise DatasetWriteError(path, exc) from exc
        raise


def require_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and write (then remove) a small file in it: a read-only or full
    disk fails here, before any work, with one ``DatasetWriteError``."""
    folder = Path(folder)
    try:
        atomic_write_bytes(folder / ".write_probe", b"\0" * 4096).unlink()
    except DatasetWriteError as exc:
        raise DatasetWriteError(folder, exc) from exc
    return folder


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """``durable=False`` skips the fsync: still never half a file after a crash of the process, but
    after a power loss the file may be missing (fine for what can be recomputed, e.g. step outputs)."""
    path = Path(path)
    with disk_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; datasets are shared read-only with others
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def replace_dir(target: str | os.PathLike, build: "callable") -> Path:
    """Build a directory's full contents in a sibling temp dir, then swap it in place.

    ``build(tmp_dir)`` writes the files. The old directory disappears only after the new one is
    complete, so a failed re-materialization keeps the previous outputs whole.
    """
    target = Path(target)
    with disk_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        try:
            tmp.chmod(0o755)  # mkdtemp makes 0700
            build(tmp)
            old = None
            if target.exists():
                old = target.with_name(f".{target.name}.old.{os.getpid()}")
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target
