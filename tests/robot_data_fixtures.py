"""Small robot datasets in their real on-disk formats, written by the tests themselves (no downloads).

* ``write_rlds(...)``: a TFDS folder as Open X-Embodiment ships it — ``dataset_info.json``,
  ``features.json``, tfrecord shards (length + masked CRC32C framing) of ``tf.train.Example``
  episodes with ``steps/observation/image`` JPEG bytes, ``steps/language_instruction``,
  ``steps/is_first`` / ``steps/is_last`` / ``steps/action``.
* ``write_lerobot_v2(...)`` / ``write_lerobot_v3(...)``: ``meta/`` + parquet tables + mp4 videos
  encoded with PyAV (H.264 / AV1).

Every frame is a flat grey whose level says which source frame it is (``frame_level``), so a test
can tell from the imported PNGs which source frames were picked, through JPEG or video compression.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from teacher_assets.episodes.importers.example_proto import message_classes
from teacher_assets.episodes.importers.tfrecord import masked_crc32c

SIZE = (64, 48)  # width, height


def frame_level(i: int) -> int:
    return 20 + 7 * (i % 34)  # 34 levels 7 apart inside 0..255 (the tests use fewer frames)


def frame_image(i: int) -> Image.Image:
    return Image.new("RGB", SIZE, (frame_level(i),) * 3)


def level_of(png: bytes) -> int:
    return int(round(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float).mean()))


def source_index_of(png: bytes) -> int:
    return int(round((level_of(png) - 20) / 7))


def jpeg(i: int) -> bytes:
    out = io.BytesIO()
    frame_image(i).save(out, format="JPEG", quality=95)
    return out.getvalue()


# ------------------------------------------------------------------------------------------ RLDS
def tfrecord_frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def rlds_episode(steps: int, instruction: Optional[str], *, is_last: bool = True, images: Optional[list[bytes]] = None,
                 instruction_key: str = "steps/language_instruction") -> bytes:
    """One RLDS episode as a serialized ``tf.train.Example`` (per-step values flattened per key)."""
    example = message_classes()["Example"]()
    feature = example.features.feature
    feature["steps/observation/image"].bytes_list.value.extend(images or [jpeg(i) for i in range(steps)])
    if instruction is not None:
        feature[instruction_key].bytes_list.value.extend([instruction.encode()] * steps)
    feature["steps/is_first"].int64_list.value.extend([1] + [0] * (steps - 1))
    feature["steps/is_last"].int64_list.value.extend([0] * (steps - 1) + [1 if is_last else 0])
    feature["steps/action"].float_list.value.extend([0.1 * i for i in range(steps * 7)])
    feature["episode_metadata/file_path"].bytes_list.value.append(b"/data/raw/episode.npy")
    return example.SerializeToString()


def _tfds_features() -> dict:
    def leaf(cls: str, **kw) -> dict:
        return {"pythonClassName": f"tensorflow_datasets.core.features.{cls}", **kw}

    def fdict(**children) -> dict:
        return leaf("features_dict.FeaturesDict", featuresDict={"features": children})

    step = fdict(
        observation=fdict(image=leaf("image_feature.Image", image={"shape": {"dimensions": [str(SIZE[1]), str(SIZE[0]), "3"]},
                                                                   "dtype": "uint8", "encodingFormat": "jpeg"})),
        language_instruction=leaf("text_feature.Text", text={}),
        is_first=leaf("scalar.Scalar", tensor={"shape": {}, "dtype": "bool"}),
        is_last=leaf("scalar.Scalar", tensor={"shape": {}, "dtype": "bool"}),
        action=leaf("tensor_feature.Tensor", tensor={"shape": {"dimensions": ["7"]}, "dtype": "float32"}),
    )
    return fdict(steps=leaf("dataset_feature.Dataset", sequence={"feature": step, "length": "-1"}),
                 episode_metadata=fdict(file_path=leaf("text_feature.Text", text={})))


def write_rlds(root: Path, shards: list[list[bytes]], *, name: str = "fractal20220817_data") -> Path:
    """A TFDS folder ``root/<name>/0.1.0`` with one ``train`` shard per list of serialized episodes."""
    folder = root / name / "0.1.0"
    folder.mkdir(parents=True)
    info = {"name": name, "version": "0.1.0", "fileFormat": "tfrecord", "moduleName": f"{name}.{name}",
            "splits": [{"name": "train", "numBytes": "0", "shardLengths": [str(len(s)) for s in shards],
                        "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}]}
    (folder / "dataset_info.json").write_text(json.dumps(info))
    (folder / "features.json").write_text(json.dumps(_tfds_features()))
    for i, records in enumerate(shards):
        path = folder / f"{name}-train.tfrecord-{i:05d}-of-{len(shards):05d}"
        path.write_bytes(b"".join(tfrecord_frame(r) for r in records))
    return folder


# --------------------------------------------------------------------------------------- LeRobot
CAMERA = "observation.images.top"
FPS = 10


def encode_mp4(path: Path, first: int, count: int, codec: str = "libx264") -> None:
    """``count`` frames of ``frame_image(first …)`` at ``FPS``, as LeRobot writes them (yuv420p)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for i in range(first, first + count):
            for packet in stream.encode(av.VideoFrame.from_image(frame_image(i))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _info(version: str, episodes: int, frames: int, **templates) -> dict:
    return {"codebase_version": version, "robot_type": "so100", "fps": FPS, "total_episodes": episodes,
            "total_frames": frames, "total_tasks": 1, "chunks_size": 1000, "splits": {"train": f"0:{episodes}"},
            **templates,
            "features": {
                CAMERA: {"dtype": "video", "shape": [SIZE[1], SIZE[0], 3], "names": ["height", "width", "channels"]},
                "action": {"dtype": "float32", "shape": [6], "names": None},
                "timestamp": {"dtype": "float32", "shape": [1], "names": None},
                "frame_index": {"dtype": "int64", "shape": [1], "names": None},
                "episode_index": {"dtype": "int64", "shape": [1], "names": None},
                "index": {"dtype": "int64", "shape": [1], "names": None},
                "task_index": {"dtype": "int64", "shape": [1], "names": None}}}


def _table(episode_index: int, length: int, first_index: int, task_index: int = 0):
    import pyarrow as pa

    return pa.table({
        "action": [[0.0] * 6 for _ in range(length)],
        "timestamp": pa.array([i / FPS for i in range(length)], pa.float32()),
        "frame_index": list(range(length)),
        "episode_index": [episode_index] * length,
        "index": list(range(first_index, first_index + length)),
        "task_index": [task_index] * length,
    })


def write_lerobot_v2(root: Path, lengths: list[int], tasks: list[str]) -> Path:
    """LeRobot v2.1: one parquet and one H.264 mp4 per episode; episode i does task i."""
    import pyarrow.parquet as pq

    (root / "meta").mkdir(parents=True)
    info = _info("v2.1", len(lengths), sum(lengths),
                 data_path="data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
                 video_path="videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4")
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    (root / "meta" / "tasks.jsonl").write_text("".join(json.dumps({"task_index": i, "task": t}) + "\n"
                                                       for i, t in enumerate(tasks)))
    (root / "meta" / "episodes.jsonl").write_text("".join(json.dumps({"episode_index": i, "tasks": [tasks[i]], "length": n}) + "\n"
                                                          for i, n in enumerate(lengths)))
    first = 0
    for i, n in enumerate(lengths):
        path = root / f"data/chunk-000/episode_{i:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_table(i, n, first, task_index=i), path)
        encode_mp4(root / f"videos/chunk-000/{CAMERA}/episode_{i:06d}.mp4", 0, n)
        first += n
    return root


def write_lerobot_v3(root: Path, lengths: list[int], tasks: list[str], codec: str = "libsvtav1") -> Path:
    """LeRobot v3.0: every episode in one data file and one video file; meta/episodes parquet says where."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    info = _info("v3.0", len(lengths), sum(lengths),
                 data_path="data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
                 video_path="videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4")
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    # As LeRobot writes it: the task string is the pandas index.
    pd.DataFrame({"task_index": range(len(tasks))}, index=pd.Index(tasks, name="task")).to_parquet(root / "meta" / "tasks.parquet")
    rows, tables, first = [], [], 0
    for i, n in enumerate(lengths):
        tables.append(_table(i, n, first, task_index=i))
        rows.append({"episode_index": i, "tasks": [tasks[i]], "length": n, "data/chunk_index": 0, "data/file_index": 0,
                     "dataset_from_index": first, "dataset_to_index": first + n,
                     f"videos/{CAMERA}/chunk_index": 0, f"videos/{CAMERA}/file_index": 0,
                     f"videos/{CAMERA}/from_timestamp": first / FPS, f"videos/{CAMERA}/to_timestamp": (first + n) / FPS})
        first += n
    pq.write_table(pa.Table.from_pylist(rows), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    (root / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.concat_tables(tables), root / "data" / "chunk-000" / "file-000.parquet")
    encode_mp4(root / f"videos/{CAMERA}/chunk-000/file-000.mp4", 0, first, codec=codec)
    return root


def rlds_sequence_episode(steps: int, instruction: str) -> bytes:
    """The same episode as a ``tf.train.SequenceExample`` (steps as feature lists), RT-1's instruction key."""
    seq = message_classes()["SequenceExample"]()
    seq.context.feature["episode_metadata/file_path"].bytes_list.value.append(b"/data/raw/episode.npy")
    lists = seq.feature_lists.feature_list
    for i in range(steps):
        lists["steps/observation/image"].feature.add().bytes_list.value.append(jpeg(i))
        lists["steps/observation/natural_language_instruction"].feature.add().bytes_list.value.append(instruction.encode())
        lists["steps/is_first"].feature.add().int64_list.value.append(int(i == 0))
        lists["steps/is_last"].feature.add().int64_list.value.append(int(i == steps - 1))
    return seq.SerializeToString()
