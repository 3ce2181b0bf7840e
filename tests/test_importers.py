"""Importers: RLDS (Open X-Embodiment tfrecords) and LeRobot v2/v3 → teacher episode folders.

The sources are written here in their real formats (``robot_data_fixtures``); every source frame
carries its index as a grey level, so the tests see which frames were picked.
"""

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.robot_data_fixtures import (CAMERA, SIZE, encode_mp4, jpeg, rlds_episode, rlds_sequence_episode,
                                       source_index_of, tfrecord_frame, write_lerobot_v2, write_lerobot_v3, write_rlds)
from teacher_assets.episodes import FRAME_COUNT, discover_episodes, load_episode
from teacher_assets.episodes.importers import REPORT_NAME, SourceUnusable, import_dataset, pick_frame_indices
from teacher_assets.manager import main as manager_main

RED_CUP = "Pick up the red cup and place it on the tray."


def picked_sources(folder) -> list[int]:
    return [source_index_of((folder / "frames" / f"frame_{i:02d}.png").read_bytes()) for i in range(FRAME_COUNT)]


def outcome(report) -> dict:
    return {e.episode_index: e.code or e.status for e in report.episodes}


def test_pick_frame_indices_spans_the_episode():
    assert pick_frame_indices(9) == list(range(9))
    assert pick_frame_indices(17) == [0, 2, 4, 6, 8, 10, 12, 14, 16]
    picked = pick_frame_indices(100)
    assert picked[0] == 0 and picked[-1] == 99 and len(set(picked)) == 9 and picked == sorted(picked)
    with pytest.raises(Exception, match="too_few_frames"):
        pick_frame_indices(8)


def test_rlds_episodes_become_loadable_folders_with_nine_even_frames(tmp_path):
    src = write_rlds(tmp_path / "src", [[rlds_episode(12, RED_CUP), rlds_episode(30, "open the drawer")],
                                        [rlds_episode(9, "knock the can over")]])
    out = tmp_path / "episodes"
    report = import_dataset("rlds", tmp_path / "src", out)
    assert outcome(report) == {0: "imported", 1: "imported", 2: "imported"}

    episodes = {e.id: e for e in discover_episodes(out)}
    assert sorted(episodes) == [f"fractal20220817_data_train_00000{i}" for i in range(3)]
    assert all(e.valid for e in episodes.values())
    first = episodes["fractal20220817_data_train_000000"]
    assert first.instruction == RED_CUP and first.frame_size == SIZE and not first.contact_sheet_built
    assert Image.open(io.BytesIO(first.contact_sheet_png)).size == (3 * SIZE[0], 3 * SIZE[1])
    meta = first.metadata
    assert (meta["source_format"], meta["source_dataset"], meta["episode_index"], meta["robot"], meta["fps"]) == \
        ("rlds", "fractal20220817_data", 0, "Google Robot", 3.0)
    assert meta["camera"] == "steps/observation/image" and meta["source_split"] == "train"
    assert meta["source_frame_count"] == 12 and meta["source_path"].endswith("tfrecord-00000-of-00002#record=0")
    # The pixels are those of the source frames the metadata names, spread over the whole episode.
    for e, steps in zip(episodes.values(), (12, 30, 9)):
        assert e.metadata["source_frame_indices"] == pick_frame_indices(steps)
        assert picked_sources(Path(e.path)) == pick_frame_indices(steps)
    saved = json.loads((out / REPORT_NAME).read_text())
    assert [e["status"] for e in saved["episodes"]] == ["imported"] * 3

    # Importing again replaces the folders whole, leaving no temp folders behind.
    again = import_dataset("rlds", src, out, robot="my robot", fps=4)
    assert len(again.imported) == 3 and json.loads((Path(first.path) / "metadata.json").read_text())["robot"] == "my robot"
    assert sorted(p.name for p in out.iterdir()) == [REPORT_NAME, *sorted(episodes)]


def test_rlds_missing_shard_reports_its_episodes(tmp_path):
    src = write_rlds(tmp_path / "src", [[rlds_episode(9, RED_CUP)], [rlds_episode(9, RED_CUP)] * 2,
                                        [rlds_episode(9, RED_CUP)]])
    sorted(src.glob("*.tfrecord-*"))[1].unlink()
    report = import_dataset("rlds", tmp_path / "src", tmp_path / "out")
    assert outcome(report) == {0: "imported", 1: "missing_shard", 2: "missing_shard", 3: "imported"}
    assert "shard 1 of 3 (train)" in report.failed[0].reason


def test_rlds_sequence_example_without_tfds_metadata(tmp_path):
    shards = tmp_path / "raw"
    shards.mkdir()
    (shards / "taco_play-train.tfrecord-00000-of-00001").write_bytes(
        tfrecord_frame(rlds_sequence_episode(10, "stack the blocks")))
    report = import_dataset("rlds", shards, tmp_path / "out")
    assert outcome(report) == {0: "imported"}
    missing = import_dataset("rlds", shards, tmp_path / "out2", camera="wrist_image")
    assert outcome(missing) == {0: "missing_camera"} and "steps/observation/image" in missing.failed[0].reason
    episode = load_episode(tmp_path / "out" / "taco_play_train_000000")
    assert episode.valid and episode.instruction == "stack the blocks"
    assert (episode.metadata["robot"], episode.metadata["fps"]) == ("Franka", 15.0)
    assert picked_sources(tmp_path / "out" / "taco_play_train_000000") == pick_frame_indices(10)


def test_rlds_corrupt_and_partial_records_are_reported_per_episode(tmp_path):
    good = rlds_episode(12, RED_CUP)
    bad_jpeg = rlds_episode(10, "open the drawer", images=[b"\xff\xd8\xff\xe0 not really a jpeg"] * 10)
    src = write_rlds(tmp_path / "src", [
        [good, good, good],                                           # 0-2: record 1 gets a flipped CRC
        [rlds_episode(12, None), rlds_episode(5, "open the drawer"),  # 3: no instruction, 4: 5 steps
         rlds_episode(12, "open the drawer", is_last=False), bad_jpeg, b"\x0a\x05garbage", good],  # 5-9
        [good, good],                                                 # 10-11: file truncated inside 11
        [good, good, good],                                           # 12-14: length CRC of record 1 broken
    ])
    shard = sorted(src.glob("*.tfrecord-*"))
    one = len(tfrecord_frame(good))
    data = bytearray(shard[0].read_bytes())
    data[2 * one - 1] ^= 0xFF  # the data CRC of record 1
    shard[0].write_bytes(bytes(data))
    shard[2].write_bytes(shard[2].read_bytes()[:-40])
    data = bytearray(shard[3].read_bytes())
    data[one + 9] ^= 0x01  # the length CRC of record 1
    shard[3].write_bytes(bytes(data))

    report = import_dataset("rlds", tmp_path / "src", tmp_path / "out")
    expected = {0: "imported", 1: "bad_crc", 2: "imported", 3: "missing_instruction", 4: "too_few_frames",
                5: "partial_episode", 6: "corrupt_frame", 7: "corrupt_record", 8: "imported", 9: "imported",
                10: "truncated_record", 11: "imported", 12: "bad_length_crc", 13: "bad_length_crc"}
    assert outcome(report) == expected
    reasons = {e.episode_index: e.reason for e in report.failed}
    assert "CRC" in reasons[1] and "cut short" in reasons[5] and "5 frame(s)" in reasons[4]
    imported = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert imported == [f"fractal20220817_data_train_{i:06d}" for i in (0, 2, 8, 9, 11)]
    assert all(e.valid for e in discover_episodes(tmp_path / "out"))


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_lerobot_episodes_become_folders_with_the_right_video_frames(tmp_path, version):
    tasks = [RED_CUP, "open the top drawer"]
    write = write_lerobot_v2 if version == "v2.1" else write_lerobot_v3
    write(tmp_path / "so100_pick", [12, 20], tasks)
    report = import_dataset("lerobot", tmp_path / "so100_pick", tmp_path / "out")
    assert outcome(report) == {0: "imported", 1: "imported"}

    first_global = 0
    for index, (length, task) in enumerate(zip([12, 20], tasks)):
        folder = tmp_path / "out" / f"so100_pick_{index:06d}"
        episode = load_episode(folder)
        assert episode.valid and episode.instruction == task and episode.frame_size == SIZE
        meta = episode.metadata
        assert (meta["source_format"], meta["source_dataset"], meta["episode_index"], meta["robot"], meta["fps"]) == \
            ("lerobot", "so100_pick", index, "so100", 10.0)
        assert meta["camera"] == CAMERA and meta["lerobot_codebase_version"] == version
        assert meta["source_frame_indices"] == pick_frame_indices(length) and meta["source_frame_count"] == length
        assert meta["source_path"].endswith(".mp4")
        # v2: one video per episode; v3: one video for all, the episode starting at its from_timestamp.
        offset = first_global if version == "v3.0" else 0
        assert picked_sources(folder) == [offset + i for i in pick_frame_indices(length)]
        first_global += length


def test_lerobot_broken_episodes_are_reported_and_the_rest_imported(tmp_path):
    tasks = ["open the drawer", "close the drawer", "pick up the cup", "", "push the block", "stack the cups", "wipe"]
    root = write_lerobot_v2(tmp_path / "ds", [12, 12, 12, 12, 5, 12, 12], tasks)
    (root / f"videos/chunk-000/{CAMERA}/episode_000001.mp4").unlink()
    (root / "data/chunk-000/episode_000002.parquet").write_bytes(b"PAR1 not a parquet file")
    encode_mp4(root / f"videos/chunk-000/{CAMERA}/episode_000005.mp4", 0, 6)  # shorter than its 12-row table
    (root / f"videos/chunk-000/{CAMERA}/episode_000006.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)
    report = import_dataset("lerobot", root, tmp_path / "out")
    assert outcome(report) == {0: "imported", 1: "missing_video", 2: "unreadable_parquet", 3: "missing_instruction",
                               4: "too_few_frames", 5: "missing_video_frames", 6: "corrupt_video"}
    reasons = {e.episode_index: e.reason for e in report.failed}
    assert "episode_000001.mp4 is missing" in reasons[1] and "episode_000002.parquet" in reasons[2]
    assert [e.id for e in discover_episodes(tmp_path / "out")] == ["ds_000000"]


def test_lerobot_image_features_are_read_from_the_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = write_lerobot_v2(tmp_path / "ds", [10], ["open the drawer"])
    shutil.rmtree(root / "videos")
    info = json.loads((root / "meta" / "info.json").read_text())
    info["features"] = {"observation.image": {"dtype": "image", "shape": [SIZE[1], SIZE[0], 3], "names": None},
                        **info["features"]}
    (root / "meta" / "info.json").write_text(json.dumps(info))
    path = root / "data/chunk-000/episode_000000.parquet"
    table = pq.read_table(path)
    images = [{"bytes": jpeg(9 - i), "path": f"frame_{i:06d}.jpg"} for i in range(10)]  # reversed: 9, 8, … 0
    pq.write_table(table.append_column("observation.image", pa.array(images)), path)
    report = import_dataset("lerobot", root, tmp_path / "out")
    assert outcome(report) == {0: "imported"}
    folder = tmp_path / "out" / "ds_000000"
    assert load_episode(folder).metadata["camera"] == "observation.image"
    assert picked_sources(folder) == [9 - i for i in pick_frame_indices(10)]


def test_not_a_dataset_is_unusable(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceUnusable, match="meta/info.json"):
        import_dataset("lerobot", tmp_path / "empty", tmp_path / "out")
    with pytest.raises(SourceUnusable, match="no \\*.tfrecord"):
        import_dataset("rlds", tmp_path / "empty", tmp_path / "out")


def test_import_cli_exit_codes_and_report(tmp_path, capsys):
    write_rlds(tmp_path / "good", [[rlds_episode(9, RED_CUP)]])
    assert manager_main(["import", "--from", "rlds", str(tmp_path / "good"), "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "1 imported, 0 failed" in printed and "fractal20220817_data_train_000000" in printed
    assert f"run --episodes {tmp_path / 'a'}" in printed

    write_lerobot_v2(tmp_path / "lr", [12, 4], ["open the drawer", "close the drawer"])
    assert manager_main(["import", "--from", "lerobot", str(tmp_path / "lr"), "--out", str(tmp_path / "b")]) == 1
    printed = capsys.readouterr().out
    assert "FAILED too_few_frames" in printed and "1 imported, 1 failed" in printed

    assert manager_main(["import", "--from", "lerobot", str(tmp_path / "good"), "--out", str(tmp_path / "c")]) == 2
    assert "meta/info.json is missing" in capsys.readouterr().err


def test_imported_episode_runs_through_the_teacher_in_dagster(tmp_path, datasets_dir):
    from dagster import DagsterInstance, materialize

    from resources.dagster_resources import shared_resources
    from teacher_assets.defs.assets import EPISODE_ASSETS, episodes_partitions
    from teacher_assets.defs.checks import TEACHER_CHECKS

    write_lerobot_v3(tmp_path / "lr", [12], [RED_CUP], codec="libx264")
    episodes = tmp_path / "episodes"
    assert len(import_dataset("lerobot", tmp_path / "lr", episodes).imported) == 1
    episode_id = "lr_000000"
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(episodes_partitions.name, [episode_id])
        result = materialize([*EPISODE_ASSETS, *TEACHER_CHECKS], partition_key=episode_id, instance=instance,
                             resources=shared_resources(),
                             run_config={"ops": {"oxe_episode": {"config": {"episodes_dir": str(episodes)}}}})
    assert result.success
    state = result.output_for_node("bt_score")
    assert state.status == "accepted", state.reason
    assert state.metadata["source_dataset"] == "lr" and state.metadata["source_format"] == "lerobot"
    assert all(e.passed for e in result.get_asset_check_evaluations())
    out = datasets_dir / "proposer" / episode_id
    assert (out / "bt.xml").read_text().count('ID="GRASP"') >= 1
    scene = next(a for a in json.loads((out / "audit_log.json").read_text())["agents"] if a["role"] == "teacher.scene_analysis")
    assert "episode from lr" in scene["output"]["scene_description"]


def test_rlds_language_table_instruction_as_code_points(tmp_path):
    from teacher_assets.episodes.importers.example_proto import message_classes

    example = message_classes()["Example"]()
    feature = example.features.feature
    feature["steps/observation/rgb"].bytes_list.value.extend(jpeg(i) for i in range(9))
    text = [ord(c) for c in "push the red star to the left"]
    feature["steps/observation/instruction"].int64_list.value.extend((text + [0] * (64 - len(text))) * 9)
    (tmp_path / "lt").mkdir()
    (tmp_path / "lt" / "language_table-train.tfrecord-00000-of-00001").write_bytes(tfrecord_frame(example.SerializeToString()))
    report = import_dataset("rlds", tmp_path / "lt", tmp_path / "out")
    assert outcome(report) == {0: "imported"}
    episode = load_episode(tmp_path / "out" / "language_table_train_000000")
    assert episode.instruction == "push the red star to the left"
    assert (episode.metadata["camera"], episode.metadata["robot"]) == ("steps/observation/rgb", "xArm")
