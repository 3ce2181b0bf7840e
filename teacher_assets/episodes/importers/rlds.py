"""Open X-Embodiment episodes stored as RLDS (TFDS tfrecord shards), read without TensorFlow.

One record = one episode: a ``tf.train.Example`` whose ``steps/...`` features hold one value per
step (``steps/observation/image`` encoded JPEG/PNG, ``steps/language_instruction``,
``steps/is_first`` / ``steps/is_last`` …); the ``SequenceExample`` form (steps as feature lists) is
read too. ``dataset_info.json`` (name, shard lengths) and ``features.json`` (which keys are images
or text) beside the shards are used when present; otherwise images are found by their magic bytes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator, Optional, Union

from .common import (SourceEpisode, SourceError, SourceFailure, SourceUnusable, folder_name_for, guarded,
                     pick_frame_indices, to_png)

# Robot and control rate of well-known OXE datasets (the OXE dataset overview); others come from
# --robot / --fps or stay unknown.
KNOWN_DATASETS: dict[str, tuple[str, float]] = {
    "fractal20220817_data": ("Google Robot", 3.0),
    "bridge": ("WidowX", 5.0),
    "bridge_dataset": ("WidowX", 5.0),
    "taco_play": ("Franka", 15.0),
    "language_table": ("xArm", 10.0),
    "kuka": ("KUKA iiwa", 10.0),
}
INSTRUCTION_KEYS = ("steps/language_instruction", "steps/observation/natural_language_instruction",
                    "steps/observation/language_instruction", "steps/observation/instruction",
                    "episode_metadata/language_instruction")
_SHARD = re.compile(r"^(?P<name>.+?)-(?P<split>[^-]+)\.tfrecord(?:-(?P<shard>\d+)-of-(?P<count>\d+))?$")
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


class _DatasetInfo:
    """What the TFDS folder of one shard says: name, shard lengths per split, image and text keys."""

    def __init__(self, folder: Path):
        info = _read_json(folder / "dataset_info.json")
        self.name: Optional[str] = info.get("name")
        self.shard_lengths = {s.get("name"): [int(n) for n in s.get("shardLengths", [])]
                              for s in info.get("splits", []) if isinstance(s, dict)}
        self.image_keys: list[str] = []
        self.text_keys: list[str] = []
        _walk_features(_read_json(folder / "features.json"), "", self)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceUnusable(f"{path} is not readable JSON: {exc}") from None
    return data if isinstance(data, dict) else {}


def _walk_features(node: dict, prefix: str, into: _DatasetInfo) -> None:
    """TFDS ``features.json``: FeaturesDict nest under ``featuresDict.features``, Dataset/Sequence under
    ``sequence.feature``; leaves name their class (``...image_feature.Image``, ``...text_feature.Text``)."""
    if not isinstance(node, dict):
        return
    children = (node.get("featuresDict") or {}).get("features")
    if isinstance(children, dict):
        for key, child in children.items():
            _walk_features(child, f"{prefix}/{key}" if prefix else key, into)
        return
    if isinstance(node.get("sequence"), dict):
        _walk_features(node["sequence"].get("feature", {}), prefix, into)
        return
    cls = str(node.get("pythonClassName", ""))
    if cls.endswith(".Image"):
        into.image_keys.append(prefix)
    elif cls.endswith(".Text"):
        into.text_keys.append(prefix)


def _tfrecord_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise SourceUnusable(f"{src} does not exist")
    files = sorted(p for p in src.rglob("*.tfrecord*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SourceUnusable(f"no *.tfrecord* files under {src}")
    return files


def _pick_image_key(features: dict[str, list], info: _DatasetInfo, camera: Optional[str]) -> str:
    candidates = [k for k in info.image_keys if k.startswith("steps/")] or sorted(
        k for k, v in features.items() if k.startswith("steps/") and v and isinstance(v[0], bytes)
        and v[0].startswith(_IMAGE_MAGIC))
    if camera:
        chosen = [k for k in candidates if k == camera or k.endswith("/" + camera)]
        if not chosen:
            raise SourceError("missing_camera", f"no image feature {camera!r}; images here: {candidates}")
        return chosen[0]
    if not candidates:
        raise SourceError("missing_images", "the episode has no image feature under steps/")
    return next((k for k in candidates if k.endswith("/image")), candidates[0])


def _text(value) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise SourceError("instruction_not_utf8", f"the instruction is not UTF-8 ({exc.reason})") from None
    return str(value).strip()


def _instruction(features: dict[str, list], info: _DatasetInfo) -> str:
    keys = list(dict.fromkeys([*INSTRUCTION_KEYS, *(k for k in info.text_keys if "instruction" in k or "language" in k)]))
    for key in keys:
        values = features.get(key) or []
        if values and isinstance(values[0], int):  # Language Table: unicode code points, 0-padded
            text = "".join(chr(c) for c in values[: values.index(0) if 0 in values else None]).strip()
            if text:
                return text
            continue
        text = next((t for t in map(_text, values) if t), "")
        if text:
            return text
    raise SourceError("missing_instruction", f"no language instruction in the episode (looked at {', '.join(keys)})")


def _check_boundaries(features: dict[str, list], steps: int) -> None:
    """RLDS marks the first and last step; a last step without ``is_last`` means a cut-off episode."""
    first, last = features.get("steps/is_first"), features.get("steps/is_last")
    if first and len(first) == steps and not first[0]:
        raise SourceError("partial_episode", "the first step is not marked is_first: the episode's start is missing")
    if last and len(last) == steps and not last[-1]:
        raise SourceError("partial_episode", "the last step is not marked is_last: the episode was cut short")


def _episode(record: bytes, *, info: _DatasetInfo, camera: Optional[str], base: SourceEpisode) -> SourceEpisode:
    from google.protobuf.message import DecodeError

    from .example_proto import features_of

    try:
        features = features_of(record)
    except DecodeError as exc:
        raise SourceError("corrupt_record", f"the record is not a tf.train.Example: {exc}") from None
    image_key = _pick_image_key(features, info, camera)
    images = features.get(image_key) or []
    if not images:
        raise SourceError("missing_images", f"the episode has no {image_key} values")
    _check_boundaries(features, len(images))
    instruction = _instruction(features, info)
    indices = pick_frame_indices(len(images))
    frames = [to_png(images[i], f"step {i} of {image_key}") for i in indices]
    return base.model_copy(update={"instruction": instruction, "frames_png": frames, "source_frame_indices": indices,
                                   "source_frame_count": len(images), "camera": image_key})


def read_rlds(src: Path, *, camera: Optional[str] = None, dataset: Optional[str] = None, robot: Optional[str] = None,
              fps: Optional[float] = None) -> Iterator[Union[SourceEpisode, SourceFailure]]:
    """Every episode of every shard under ``src`` (a TFDS folder, any folder of shards, or one file)."""
    from .tfrecord import RecordError, iter_records

    files = _tfrecord_files(src)
    infos = {folder: _DatasetInfo(folder) for folder in {p.parent for p in files}}  # unusable → before any write
    next_index: dict[tuple[str, str], int] = {}  # (dataset, split) → index of the next episode
    seen_shards: dict[tuple[Path, str, str], set[int]] = {}  # (folder, dataset, split) → shard numbers read
    for path in files:
        info = infos[path.parent]
        shard = _SHARD.match(path.name)
        name = dataset or info.name or (shard.group("name") if shard else path.parent.name)
        split = shard.group("split") if shard else ""
        known_robot, known_fps = KNOWN_DATASETS.get(name, (None, None))
        lengths = info.shard_lengths.get(split, [])
        shard_no = int(shard.group("shard")) if shard and shard.group("shard") else 0
        seen_shards.setdefault((path.parent, name, split), set()).add(shard_no)
        # Shard lengths fix each episode's index even when an earlier shard lost records.
        start = sum(lengths[:shard_no]) if len(lengths) > shard_no else next_index.get((name, split), 0)
        count = 0  # episode indices this file used up
        for n, record in enumerate(iter_records(path)):
            index, count = start + n, n + 1
            folder = folder_name_for(name, index, split)
            where = f"{path}#record={n}"
            if isinstance(record, RecordError):
                if record.framing_lost and len(lengths) > shard_no:  # every episode the shard should still hold
                    for lost in range(n, max(n + 1, lengths[shard_no])):
                        yield SourceFailure(folder_name=folder_name_for(name, start + lost, split),
                                            episode_index=start + lost, source_path=f"{path}#record={lost}",
                                            code=record.code, reason=record.reason)
                    count = max(count, lengths[shard_no])
                else:
                    reason = record.reason + ("; later records of this file are lost" if record.framing_lost else "")
                    yield SourceFailure(folder_name=folder, episode_index=index, source_path=where,
                                        code=record.code, reason=reason)
                continue
            base = SourceEpisode(folder_name=folder, source_format="rlds", source_dataset=name, episode_index=index,
                                 instruction="", frames_png=[], source_frame_indices=[], source_frame_count=0,
                                 source_path=where, camera="", robot=robot or known_robot, fps=fps or known_fps,
                                 extra={"source_split": split, "source_file": path.name, "source_record": n})
            yield guarded(folder, index, where, lambda: _episode(record, info=info, camera=camera, base=base))
        next_index[(name, split)] = start + count
    yield from _missing_shards(seen_shards, infos)


def _missing_shards(seen: dict[tuple[Path, str, str], set[int]],
                    infos: dict[Path, _DatasetInfo]) -> Iterator[SourceFailure]:
    """The episodes of shards that ``dataset_info.json`` lists but that are not on disk."""
    for (folder, name, split), shards in seen.items():
        lengths = infos[folder].shard_lengths.get(split, [])
        for shard_no in sorted(set(range(len(lengths))) - shards):
            first = sum(lengths[:shard_no])
            for index in range(first, first + lengths[shard_no]):
                yield SourceFailure(folder_name=folder_name_for(name, index, split), episode_index=index,
                                    source_path=str(folder), code="missing_shard",
                                    reason=f"shard {shard_no} of {len(lengths)} ({split}) is not in {folder}")
