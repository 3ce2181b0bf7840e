"""Watching the episodes folder: which episode folders exist, whether they have settled, what their content is.

Plain logic behind the Dagster episode sensor and nightly schedule (``teacher_assets.defs.sensors`` /
``schedules``). Two signatures per folder:

* the *stat signature* (names, sizes, mtimes of everything inside) — cheap, read every tick, tells
  whether anything may have changed;
* the *content fingerprint* (sha256 over relative paths and file bytes, hidden files ignored) — read
  only when the stat signature changed; it decides whether the episode really changed (a ``touch``
  or a re-copy of the same files does not).

A folder still being copied must not be processed half-written: it counts as *settled* only when
nothing in it (the folder, its sub-folders, its files) was modified for ``settle_seconds``.
Copy tools that preserve file mtimes (``cp -a``, ``rsync``) still give the folders being filled a
fresh mtime until they are done, and a ``mv`` within one file system is atomic.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, Field

from resources.paths import datasets_root

from .loader import episode_id_for

EPISODES_DIR_ENV = "BENCHGEN_EPISODES_DIR"  # moves the watched root (default <datasets>/oxe)
SETTLE_SECONDS_ENV = "BENCHGEN_EPISODES_SETTLE_SECONDS"
PER_TICK_ENV = "BENCHGEN_EPISODES_PER_TICK"
DEFAULT_SETTLE_SECONDS = 30.0
DEFAULT_PER_TICK = 20
MISSING = "missing"  # the fingerprint of an episode whose folder is gone


def episodes_root() -> Path:
    """The folder of OXE episodes: ``$BENCHGEN_EPISODES_DIR`` or ``<datasets>/oxe``."""
    env = os.environ.get(EPISODES_DIR_ENV, "").strip()
    return Path(env).expanduser().resolve() if env else datasets_root() / "oxe"


def settle_seconds() -> float:
    return float(os.environ.get(SETTLE_SECONDS_ENV, DEFAULT_SETTLE_SECONDS))


def per_tick_limit() -> int:
    return max(1, int(os.environ.get(PER_TICK_ENV, DEFAULT_PER_TICK)))


class EpisodeFolder(BaseModel):
    episode_id: str
    path: str
    stat_signature: str
    newest_mtime: float  # newest mtime of the folder, its sub-folders and files

    def settled(self, now: float, settle_s: float) -> bool:
        return self.newest_mtime <= now - settle_s


def _stat_signature(folder: Path) -> tuple[str, float]:
    digest = hashlib.sha256()
    newest = folder.stat().st_mtime
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            path = Path(dirpath, name)
            try:
                st = path.lstat()
            except FileNotFoundError:  # removed while we walk: still changing, so not settled
                digest.update(f"{path.relative_to(folder)}|gone\n".encode())
                newest = float("inf")
                continue
            digest.update(f"{path.relative_to(folder)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            newest = max(newest, st.st_mtime)
    return digest.hexdigest(), newest


def list_episode_folders(root: Path) -> dict[str, EpisodeFolder]:
    """Episode id → the folder the teacher loads for it (same rules as ``discover_episodes``: hidden and
    ``_`` folders skipped; of two folders giving one id, the one named exactly the id, else the first)."""
    if not root.is_dir():
        return {}
    out: dict[str, EpisodeFolder] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        eid = episode_id_for(folder.name)
        if not eid or (eid in out and folder.name != eid):
            continue  # an empty id cannot be a partition; a duplicate id stays the first folder's
        try:
            signature, newest = _stat_signature(folder)
        except OSError:  # vanished or unreadable right now: look again next tick
            continue
        out[eid] = EpisodeFolder(episode_id=eid, path=str(folder), stat_signature=signature, newest_mtime=newest)
    return out


def content_fingerprint(folder: str | Path) -> str:
    """sha256 over (relative path, sha256 of bytes) of every non-hidden file; ``MISSING`` for no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return MISSING
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(f for f in filenames if not f.startswith(".")):
            path = Path(dirpath, name)
            digest.update(f"{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def fingerprint_for(root: Path, episode_id: str) -> str:
    """The content fingerprint of the folder the teacher loads for ``episode_id`` (exact name first)."""
    if (root / episode_id).is_dir():
        return content_fingerprint(root / episode_id)
    folder = list_episode_folders(root).get(episode_id)
    return content_fingerprint(folder.path) if folder else MISSING


# ------------------------------------------------------------------------------------ sensor tick
class SeenEpisode(BaseModel):
    fingerprint: str
    stat_signature: str
    requests: int  # runs requested so far for this episode (makes each request's run_key unique)


class EpisodeCursor(BaseModel):
    """The sensor's cursor (JSON): episode id → what was last requested for it."""

    episodes: dict[str, SeenEpisode] = Field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Optional[str]) -> "EpisodeCursor":
        return cls.model_validate_json(raw) if raw else cls()


class EpisodeRequest(BaseModel):
    episode_id: str
    fingerprint: str
    run_key: str
    changed: bool  # seen before with other content (False: a new episode)


class TickPlan(BaseModel):
    requests: list[EpisodeRequest]
    cursor: EpisodeCursor
    unsettled: list[str]  # still being written: looked at again next tick
    deferred: list[str]  # over this tick's limit: next tick


def plan_tick(root: Path, cursor: EpisodeCursor, *, now: float, settle_s: float, limit: int) -> TickPlan:
    """New or changed, settled folders → one request each (at most ``limit`` folders fingerprinted per
    tick). An invalid episode is requested like any other (its run records it as invalid with the
    reason) and, being in the cursor afterwards, only again when its content changes."""
    seen = dict(cursor.episodes)
    requests: list[EpisodeRequest] = []
    unsettled: list[str] = []
    deferred: list[str] = []
    fingerprinted = 0
    for eid, folder in list_episode_folders(root).items():
        before = seen.get(eid)
        if before and before.stat_signature == folder.stat_signature:
            continue
        if not folder.settled(now, settle_s):
            unsettled.append(eid)
            continue
        if fingerprinted >= limit:
            deferred.append(eid)
            continue
        fingerprinted += 1
        fingerprint = content_fingerprint(folder.path)
        if before and before.fingerprint == fingerprint:  # touched or re-copied, same content
            seen[eid] = before.model_copy(update={"stat_signature": folder.stat_signature})
            continue
        count = (before.requests if before else 0) + 1
        seen[eid] = SeenEpisode(fingerprint=fingerprint, stat_signature=folder.stat_signature, requests=count)
        requests.append(EpisodeRequest(episode_id=eid, fingerprint=fingerprint, changed=before is not None,
                                       run_key=f"{eid}@{count}:{fingerprint[:12]}"))
    return TickPlan(requests=requests, cursor=EpisodeCursor(episodes=seen), unsettled=unsettled, deferred=deferred)


# -------------------------------------------------------------------------------- nightly refresh
class PartitionHistory(BaseModel):
    """What the instance knows about one episode partition (storage ids: larger is later)."""

    episode_id: str
    score_storage_id: Optional[int] = None  # latest bt_score materialization
    latest_stage_storage_id: Optional[int] = None  # latest materialization of any episode asset
    recorded_fingerprint: Optional[str] = None  # on the latest oxe_episode materialization
    recorded_prompts: Optional[str] = None  # the teacher prompt versions that run used (same record)
    last_run_failed: bool = False


def teacher_prompt_versions() -> str:
    """The agents' prompt versions, e.g. ``architect@1,critic@1,…`` (read from the files now)."""
    from resources.llm.prompts import prompt_versions
    from teacher_assets.agents import prompts

    return ",".join(prompt_versions(prompts.PROMPTS_DIR))


def refresh_reason(history: PartitionHistory, current_fingerprint: str, current_prompts: str) -> Optional[str]:
    """Why the nightly refresh re-runs this episode, or None: it is up to date."""
    if history.score_storage_id is None:
        return "not_materialized"  # never reached bt_score (never run, or stopped by a blocking check)
    if history.last_run_failed:
        return "last_run_failed"
    if (history.latest_stage_storage_id or 0) > history.score_storage_id:
        return "last_run_incomplete"  # a later run stopped before bt_score (failed step or blocking check)
    if history.recorded_fingerprint != current_fingerprint:
        return "episode_changed"
    if history.recorded_prompts != current_prompts:
        return "prompts_changed"  # agents whose prompt is unchanged hit the LLM cache on the re-run
    return None
