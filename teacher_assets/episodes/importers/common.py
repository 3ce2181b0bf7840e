"""What every importer shares: picking 9 frames, the per-episode result records, writing one folder.

A reader (``rlds.py``, ``lerobot.py``) yields, per source episode, either a ``SourceEpisode`` (the
9 chosen frames already decoded) or a ``SourceFailure`` with a reason code. ``import_episodes``
writes each good one as an episode folder in the format of ``datasets/oxe/README.md`` — built in a
temp folder, checked with the teacher's own loader, then swapped in (``replace_dir``) — so a bad
episode never leaves a folder behind and never stops the others.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable, Literal, Optional, Union

from pydantic import BaseModel, Field

from resources.atomic import atomic_write_json, replace_dir

from ..loader import FRAME_COUNT, build_contact_sheet, episode_id_for, load_episode

REPORT_NAME = "_import_report.json"  # "_" prefix: discovery skips it like any non-episode entry
_ID_MAX = 64


class SourceError(Exception):
    """One source episode cannot be imported: ``code`` (machine-readable) and ``reason`` (for people)."""

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code, self.reason = code, reason


class SourceUnusable(Exception):
    """The whole source cannot be read (not a dataset of that format, no metadata …)."""


class SourceEpisode(BaseModel):
    """One source episode, reduced to what the teacher needs."""

    folder_name: str
    source_format: Literal["rlds", "lerobot"]
    source_dataset: str
    episode_index: int
    instruction: str
    frames_png: list[bytes] = Field(repr=False)  # FRAME_COUNT frames, PNG encoded
    source_frame_indices: list[int]
    source_frame_count: int
    source_path: str
    camera: str
    robot: Optional[str] = None
    fps: Optional[float] = None
    extra: dict[str, Any] = Field(default_factory=dict)  # format-specific facts (split, codebase version …)


class SourceFailure(BaseModel):
    folder_name: str
    episode_index: Optional[int]  # None when the failure is not tied to one episode (a lost shard tail)
    source_path: str
    code: str
    reason: str


class ImportedEpisode(BaseModel):
    episode_id: str
    episode_index: Optional[int]
    status: Literal["imported", "failed"]
    source_path: str
    folder: Optional[str] = None
    code: Optional[str] = None
    reason: Optional[str] = None


class ImportReport(BaseModel):
    source_format: str
    source: str
    out: str
    episodes: list[ImportedEpisode]

    @property
    def imported(self) -> list[ImportedEpisode]:
        return [e for e in self.episodes if e.status == "imported"]

    @property
    def failed(self) -> list[ImportedEpisode]:
        return [e for e in self.episodes if e.status == "failed"]


def folder_name_for(dataset: str, episode_index: int, split: str = "") -> str:
    """``<dataset>[_<split>]_<index:06d>`` as an episode id; the dataset part is shortened, never the index."""
    suffix = f"_{episode_id_for(split)}_{episode_index:06d}" if split else f"_{episode_index:06d}"
    return (episode_id_for(dataset)[: _ID_MAX - len(suffix)] or "episode") + suffix


def pick_frame_indices(frame_count: int, k: int = FRAME_COUNT) -> list[int]:
    """``k`` indices spread evenly from the first to the last frame (both included)."""
    if frame_count < k:
        raise SourceError("too_few_frames", f"the episode has {frame_count} frame(s); {k} are needed")
    return [int(i * (frame_count - 1) / (k - 1) + 0.5) for i in range(k)]


def to_png(image: Any, what: str) -> bytes:
    """Encoded image bytes (JPEG, PNG …) or a PIL image → PNG bytes, fully decoded first."""
    from PIL import Image

    try:
        img = image if isinstance(image, Image.Image) else Image.open(io.BytesIO(image))
        img.load()
        out = io.BytesIO()
        img.convert("RGB").save(out, format="PNG")
    except Exception as exc:  # Pillow raises OSError / SyntaxError / ValueError … for broken bytes
        raise SourceError("corrupt_frame", f"{what} cannot be decoded: {exc}") from None
    return out.getvalue()


def _metadata(episode: SourceEpisode, frame_size: tuple[int, int]) -> dict:
    return {
        "source_format": episode.source_format,
        "source_dataset": episode.source_dataset,
        "episode_index": episode.episode_index,
        "robot": episode.robot,
        "fps": episode.fps,
        "camera": episode.camera,
        "source_frame_indices": episode.source_frame_indices,
        "source_frame_count": episode.source_frame_count,
        "source_path": episode.source_path,
        "frame_size": list(frame_size),
        **episode.extra,
    }


def write_episode_folder(episode: SourceEpisode, out_dir: Path) -> Path:
    """The episode folder, complete and accepted by ``load_episode``, or nothing (``SourceError``)."""
    from PIL import Image

    def build(tmp: Path) -> None:
        (tmp / "frames").mkdir()
        for i, png in enumerate(episode.frames_png):
            (tmp / "frames" / f"frame_{i:02d}.png").write_bytes(png)
        (tmp / "instruction.txt").write_text(episode.instruction + "\n", encoding="utf-8")
        (tmp / "contact_sheet.png").write_bytes(build_contact_sheet(episode.frames_png))
        size = Image.open(io.BytesIO(episode.frames_png[0])).size
        (tmp / "metadata.json").write_text(json.dumps(_metadata(episode, size), indent=2) + "\n", encoding="utf-8")
        loaded = load_episode(tmp)
        if not loaded.valid:  # e.g. an instruction longer than the loader allows
            raise SourceError(loaded.code, loaded.reason)

    return replace_dir(out_dir / episode.folder_name, build)


def guarded(folder_name: str, episode_index: Optional[int], source_path: str,
            load) -> Union[SourceEpisode, SourceFailure]:
    """``load()``'s episode, or a failure with its reason: one broken episode never stops the others."""
    try:
        return load()
    except SourceError as exc:
        code, reason = exc.code, exc.reason
    except Exception as exc:  # noqa: BLE001 — any decoder's error, reported for this episode only
        code, reason = "unreadable", f"{type(exc).__name__}: {exc}"
    return SourceFailure(folder_name=folder_name, episode_index=episode_index, source_path=source_path,
                         code=code, reason=reason)


def import_episodes(source_format: str, source: Path, out_dir: Path,
                    items: Iterable[Union[SourceEpisode, SourceFailure]], *, progress=None) -> ImportReport:
    """Write every good episode, record every failure, save ``_import_report.json`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[ImportedEpisode] = []
    for item in items:
        entry = ImportedEpisode(episode_id=episode_id_for(item.folder_name), episode_index=item.episode_index,
                                status="failed", source_path=item.source_path)
        if isinstance(item, SourceFailure):
            entry.code, entry.reason = item.code, item.reason
        else:
            try:
                entry.folder = str(write_episode_folder(item, out_dir))
                entry.status = "imported"
            except SourceError as exc:
                entry.code, entry.reason = exc.code, exc.reason
            except OSError as exc:
                entry.code, entry.reason = "write_failed", str(exc)
        results.append(entry)
        if progress:
            progress(entry)
    report = ImportReport(source_format=source_format, source=str(source), out=str(out_dir), episodes=results)
    atomic_write_json(out_dir / REPORT_NAME, report.model_dump(mode="json"))
    return report
