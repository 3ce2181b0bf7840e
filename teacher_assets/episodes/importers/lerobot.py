"""LeRobot datasets (codebase v2.x and v3.0): parquet frames + mp4 videos per camera.

* v2.x: ``meta/info.json`` (fps, robot_type, features, ``data_path`` / ``video_path`` templates),
  ``meta/episodes.jsonl`` (episode_index, tasks, length), ``meta/tasks.jsonl``,
  ``data/chunk-XXX/episode_XXXXXX.parquet``, ``videos/chunk-XXX/<camera>/episode_XXXXXX.mp4``.
* v3.0: many episodes per file — ``meta/episodes/chunk-XXX/file-XXX.parquet`` rows say which data
  file and which video file (``videos/<camera>/from_timestamp``) hold each episode;
  ``meta/tasks.parquet``.

A frame's picture is the video frame at ``from_timestamp + timestamp`` (its ``timestamp`` column), or,
for ``image`` features, the encoded bytes in the parquet row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from .common import (SourceEpisode, SourceError, SourceFailure, SourceUnusable, folder_name_for, guarded,
                     pick_frame_indices, to_png)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceUnusable(f"{path} is not readable JSON lines: {exc}") from None


def _read_parquet_rows(paths: list[Path]) -> list[dict]:
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for path in paths:
        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 — pyarrow raises ArrowInvalid, OSError …
            raise SourceUnusable(f"{path} is not readable parquet: {exc}") from None
        rows.extend(table.to_pylist())
    return rows


class _LeRobotDataset:
    def __init__(self, root: Path):
        info_path = root / "meta" / "info.json"
        if not info_path.is_file():
            raise SourceUnusable(f"{root} is not a LeRobot dataset: meta/info.json is missing")
        try:
            self.info: dict = json.loads(info_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SourceUnusable(f"{info_path} is not readable JSON: {exc}") from None
        self.root = root
        self.version = str(self.info.get("codebase_version", ""))
        if not self.version.startswith(("v2", "v3")):
            raise SourceUnusable(f"LeRobot codebase_version {self.version!r} is not supported (v2.x, v3.0)")
        self.v3 = self.version.startswith("v3")
        self.fps = float(self.info["fps"]) if self.info.get("fps") else None
        self.features: dict = self.info.get("features") or {}
        self.tasks = self._tasks()
        self.episodes = sorted(self._episodes(), key=lambda e: int(e["episode_index"]))

    def _tasks(self) -> dict[int, str]:
        meta = self.root / "meta"
        if self.v3:
            if not (meta / "tasks.parquet").is_file():
                return {}
            import pyarrow.parquet as pq

            try:  # the task string is the (pandas) index; written as a column "task" or "__index_level_0__"
                frame = pq.read_table(meta / "tasks.parquet").to_pandas().reset_index()
            except Exception as exc:  # noqa: BLE001
                raise SourceUnusable(f"{meta / 'tasks.parquet'} is not readable parquet: {exc}") from None
            text = "task" if "task" in frame.columns else next(c for c in frame.columns if c != "task_index")
            return {int(i): str(t) for i, t in zip(frame["task_index"], frame[text])}
        return {int(r["task_index"]): str(r["task"]) for r in _read_jsonl(meta / "tasks.jsonl")}

    def _episodes(self) -> list[dict]:
        meta = self.root / "meta"
        if self.v3:
            files = sorted((meta / "episodes").glob("chunk-*/*.parquet"))
            if not files:
                raise SourceUnusable(f"{self.root}: no meta/episodes/chunk-*/*.parquet")
            return _read_parquet_rows(files)
        rows = _read_jsonl(meta / "episodes.jsonl")
        if not rows:
            raise SourceUnusable(f"{self.root}: meta/episodes.jsonl is missing or empty")
        return rows

    def camera(self, wanted: Optional[str]) -> tuple[str, str]:
        """(feature key, dtype) of the camera to import: ``wanted`` or the first video/image feature."""
        cams = [(k, f.get("dtype")) for k, f in self.features.items() if f.get("dtype") in ("video", "image")]
        if wanted:
            cams = [c for c in cams if c[0] == wanted or c[0].endswith("." + wanted)]
        if not cams:
            raise SourceUnusable(f"no {'camera ' + repr(wanted) if wanted else 'video or image feature'} in "
                                 f"meta/info.json (features: {sorted(self.features)})")
        return cams[0]

    def data_path(self, ep: dict) -> Path:
        template = self.info.get("data_path") or ("data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
                                                  if self.v3 else
                                                  "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
        return self.root / template.format(**self._keys(ep, "data"))

    def video_path(self, ep: dict, camera: str) -> tuple[Path, float]:
        """The mp4 holding the episode's camera stream and the episode's start time in it."""
        template = self.info.get("video_path") or (
            "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4" if self.v3 else
            "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4")
        path = self.root / template.format(video_key=camera, **self._keys(ep, f"videos/{camera}"))
        return path, float(ep.get(f"videos/{camera}/from_timestamp") or 0.0) if self.v3 else 0.0

    def _keys(self, ep: dict, prefix: str) -> dict[str, int]:
        index = int(ep["episode_index"])
        chunks = int(self.info.get("chunks_size") or 1000)
        return {"episode_index": index, "episode_chunk": index // chunks,
                "chunk_index": int(ep.get(f"{prefix}/chunk_index") or 0),
                "file_index": int(ep.get(f"{prefix}/file_index") or 0)}


def decode_video_frames(path: Path, timestamps: list[float], tolerance_s: float) -> list[Any]:
    """PIL images of the frames nearest each timestamp (seconds); ``SourceError`` if one is further
    than ``tolerance_s`` (the video is shorter than its table) or the file does not decode."""
    import av

    best: list[tuple[float, Any]] = [(float("inf"), None)] * len(timestamps)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # Seek to the keyframe before the first wanted frame rather than decoding from the start.
            container.seek(int(max(0.0, min(timestamps) - tolerance_s) / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                t = float(frame.pts * stream.time_base) if frame.pts is not None else frame.time
                closer = [i for i, want in enumerate(timestamps)
                          if abs(t - want) <= tolerance_s and abs(t - want) < best[i][0]]
                if closer:  # converting to RGB only the frames that are kept
                    image = frame.to_image()
                    for i in closer:
                        best[i] = (abs(t - timestamps[i]), image)
                if t > max(timestamps) + tolerance_s:
                    break
    except (av.error.FFmpegError, IndexError) as exc:
        raise SourceError("corrupt_video", f"{path.name} does not decode: {exc}") from None
    missing = [round(want, 3) for want, (gap, _) in zip(timestamps, best) if gap > tolerance_s]
    if missing:
        raise SourceError("missing_video_frames", f"{path.name} has no frame at t={missing} s "
                          f"(the video is shorter than the episode's table)")
    return [img for _, img in best]


def _episode_rows(ds: _LeRobotDataset, ep: dict, columns: list[str]) -> list[dict]:
    import pyarrow.parquet as pq

    path = ds.data_path(ep)
    if not path.is_file():
        raise SourceError("missing_data", f"{path.relative_to(ds.root)} is missing")
    try:
        names = pq.read_schema(path).names
        # v3 files hold many episodes: row-group statistics let pyarrow skip the others.
        filters = [("episode_index", "=", int(ep["episode_index"]))] if "episode_index" in names else None
        table = pq.read_table(path, columns=[c for c in columns if c in names], filters=filters)
    except Exception as exc:  # noqa: BLE001 — ArrowInvalid, OSError … for a damaged file
        raise SourceError("unreadable_parquet", f"{path.relative_to(ds.root)} is not readable parquet: {exc}") from None
    return sorted(table.to_pylist(), key=lambda r: r.get("frame_index", 0))


def _instruction(ds: _LeRobotDataset, ep: dict, rows: list[dict]) -> str:
    tasks = [str(t).strip() for t in (ep.get("tasks") or []) if str(t).strip()]
    if not tasks and rows and rows[0].get("task_index") is not None:
        tasks = [ds.tasks.get(int(rows[0]["task_index"]), "").strip()]
    if not tasks or not tasks[0]:
        raise SourceError("missing_instruction", "the episode names no task (meta tasks / task_index)")
    return tasks[0]


def _episode(ds: _LeRobotDataset, ep: dict, camera: str, dtype: str, base: SourceEpisode) -> SourceEpisode:
    rows = _episode_rows(ds, ep, ["episode_index", "frame_index", "timestamp", "task_index",
                                  *([camera] if dtype == "image" else [])])
    if not rows:
        raise SourceError("missing_data", f"{ds.data_path(ep).relative_to(ds.root)} has no rows of this episode")
    instruction = _instruction(ds, ep, rows)
    indices = pick_frame_indices(len(rows))
    if dtype == "image":
        frames = [to_png((rows[i][camera] or {}).get("bytes") or b"", f"frame {i} of {camera}") for i in indices]
        source = str(ds.data_path(ep))
    else:
        video, start = ds.video_path(ep, camera)
        if not video.is_file():
            raise SourceError("missing_video", f"{video.relative_to(ds.root)} is missing")
        tolerance = 0.5 / ds.fps if ds.fps else 0.02  # half a frame
        images = decode_video_frames(video, [start + float(rows[i]["timestamp"]) for i in indices], tolerance)
        frames = [to_png(img, f"frame {i} of {video.name}") for img, i in zip(images, indices)]
        source = str(video)
    return base.model_copy(update={"instruction": instruction, "frames_png": frames, "source_frame_indices": indices,
                                   "source_frame_count": len(rows), "source_path": source})


def read_lerobot(src: Path, *, camera: Optional[str] = None, dataset: Optional[str] = None, robot: Optional[str] = None,
                 fps: Optional[float] = None) -> Iterator[Union[SourceEpisode, SourceFailure]]:
    """Every episode listed in the dataset's meta, in episode order."""
    if not src.is_dir():
        raise SourceUnusable(f"{src} is not a folder")
    ds = _LeRobotDataset(src)
    key, dtype = ds.camera(camera)
    name = dataset or ds.info.get("repo_id") or src.name
    for ep in ds.episodes:
        index = int(ep["episode_index"])
        folder = folder_name_for(name, index)
        base = SourceEpisode(folder_name=folder, source_format="lerobot", source_dataset=name, episode_index=index,
                             instruction="", frames_png=[], source_frame_indices=[], source_frame_count=0,
                             source_path=str(src), camera=key, robot=robot or ds.info.get("robot_type"),
                             fps=fps or ds.fps, extra={"lerobot_codebase_version": ds.version})
        yield guarded(folder, index, str(src), lambda: _episode(ds, ep, key, dtype, base))
