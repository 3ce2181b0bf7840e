"""Importers: real robot datasets (RLDS / Open X-Embodiment, LeRobot v2/v3) → teacher episode folders.

``import_dataset("rlds" | "lerobot", src, out)`` writes one folder per source episode (9 frames
picked evenly, instruction, contact sheet, metadata) in the format of ``datasets/oxe/README.md`` and
returns an ``ImportReport``: every source episode imported or failed with a reason code
(``bad_crc``, ``truncated_record``, ``corrupt_record``, ``missing_shard``, ``missing_video``, ``unreadable_parquet``,
``missing_instruction``, ``too_few_frames`` …). ``SourceUnusable`` when the source as a whole is not
a dataset of that format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from .common import REPORT_NAME, ImportedEpisode, ImportReport, SourceUnusable, import_episodes, pick_frame_indices

FORMATS = ("rlds", "lerobot")


def import_dataset(source_format: Literal["rlds", "lerobot"], src: Path, out_dir: Path, *, camera: Optional[str] = None,
                   dataset: Optional[str] = None, robot: Optional[str] = None, fps: Optional[float] = None,
                   progress=None) -> ImportReport:
    if source_format == "rlds":
        from .rlds import read_rlds as reader
    elif source_format == "lerobot":
        from .lerobot import read_lerobot as reader
    else:
        raise ValueError(f"unknown source format {source_format!r}; one of {FORMATS}")
    items = reader(Path(src), camera=camera, dataset=dataset, robot=robot, fps=fps)
    return import_episodes(source_format, Path(src), Path(out_dir), items, progress=progress)


__all__ = ["FORMATS", "REPORT_NAME", "ImportReport", "ImportedEpisode", "SourceUnusable", "import_dataset",
           "pick_frame_indices"]
