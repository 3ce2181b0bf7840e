"""Atomic file writes: a reader never sees half a file, a rerun never leaves half its outputs.

A write the disk refuses (full, read-only, no permission) raises ``DatasetWriteError``, which names
the path and the cause, after removing its temp file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
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


HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
# ``.<target>.<host>_<pid>.<random or what>.tmp``: a temp sibling of <target> that names its writer.
_SCRATCH = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)_(?P<pid>\d+)\.(?P<what>[^.]+)\.tmp$")


def _scratch_prefix(target: Path) -> str:
    return f".{target.name}.{HOST}_{os.getpid()}."


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # a killed process nobody has reaped yet (a zombie) still answers the signal
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def remove_stale_scratch(root: str | os.PathLike) -> list[Path]:
    """Clean up after writers that were killed (kill -9, OOM) under ``root``: their temp files and
    folders go; a folder a killed ``replace_dir`` had moved aside but not yet replaced goes back in
    place. Only what a process of this host made that is no longer running (a write in progress,
    or one on another host sharing the disk, stays). Returns what it removed or restored."""
    cleaned: list[Path] = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            match = _SCRATCH.match(name)
            if not match or match["host"] != HOST or process_alive(int(match["pid"])):
                continue
            path, target = Path(folder, name), Path(folder, match["target"])
            if match["what"] == "old" and not target.exists():
                os.replace(path, target)  # killed between the two renames of replace_dir: the old copy is all there is
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            cleaned.append(path)
        dirs[:] = [d for d in dirs if (Path(folder, d)).exists() and not _SCRATCH.match(d)]
    return cleaned


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
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_scratch_prefix(path), suffix=".tmp")
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


def remove_dir(target: str | os.PathLike) -> None:
    """Remove a folder by moving it aside first, so that no reader (or a kill -9) sees half of it."""
    target = Path(target)
    gone = target.with_name(f"{_scratch_prefix(target)}removed.tmp")
    os.replace(target, gone)
    shutil.rmtree(gone, ignore_errors=True)


def replace_dir(target: str | os.PathLike, build: "callable") -> Path:
    """Build a directory's full contents in a sibling temp dir, then swap it in place.

    ``build(tmp_dir)`` writes the files. The old directory disappears only after the new one is
    complete, so a failed re-materialization keeps the previous outputs whole.
    """
    target = Path(target)
    with disk_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=_scratch_prefix(target), suffix=".tmp"))
        try:
            tmp.chmod(0o755)  # mkdtemp makes 0700
            build(tmp)
            old = None
            if target.exists():
                old = target.with_name(f"{_scratch_prefix(target)}old.tmp")
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target
