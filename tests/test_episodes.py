"""OXE episode folders: shipped samples load, every corruption is isolated with a reason, samples are reproducible."""

import json
import shutil
from pathlib import Path

import pytest

from teacher_assets.episodes import (FRAME_COUNT, MAX_INSTRUCTION_CHARS, Episode, InvalidEpisode, build_contact_sheet,
                                     discover_episodes, episode_id_for, load_episode)
from teacher_assets.episodes.samples import sample_specs, write_sample

SHIPPED = Path(__file__).resolve().parent.parent / "datasets" / "oxe"


def test_all_shipped_samples_load_valid_with_contact_sheets():
    episodes = discover_episodes(SHIPPED)
    assert len(episodes) >= 12
    assert all(isinstance(e, Episode) for e in episodes), [e for e in episodes if not e.valid]
    specs = {s.id: s for s in sample_specs()}
    assert {e.id for e in episodes} == set(specs)
    for e in episodes:
        assert len(e.frame_paths) == FRAME_COUNT and e.frame_size == (160, 120)
        assert e.instruction == specs[e.id].instruction
        assert e.contact_sheet_built and e.contact_sheet_png.startswith(b"\x89PNG")
        assert e.metadata["expected_feasible"] == specs[e.id].expected_feasible
    infeasible = [e.instruction.lower() for e in episodes if not e.metadata["expected_feasible"]]
    for verb in ("cook", "fold", "screw"):
        assert any(verb in text for text in infeasible)
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total < 2_000_000


def test_contact_sheet_is_a_3x3_grid_and_a_given_one_is_used(tmp_path):
    from PIL import Image
    import io

    src = SHIPPED / "lamp_on"
    frames = [p.read_bytes() for p in sorted((src / "frames").glob("*.png"))]
    sheet = Image.open(io.BytesIO(build_contact_sheet(frames)))
    assert sheet.size == (3 * 160, 3 * 120)
    first = Image.open(io.BytesIO(frames[0])).convert("RGB")
    assert sheet.crop((0, 0, 160, 120)).tobytes() == first.tobytes()
    last = Image.open(io.BytesIO(frames[8])).convert("RGB")
    assert sheet.crop((320, 240, 480, 360)).tobytes() == last.tobytes()

    copy = tmp_path / "lamp_on"
    shutil.copytree(src, copy)
    (copy / "contact_sheet.png").write_bytes(frames[4])
    episode = load_episode(copy)
    assert isinstance(episode, Episode) and not episode.contact_sheet_built
    assert episode.contact_sheet_png == frames[4]


def _corrupt(kind: str, folder: Path) -> None:
    frames = folder / "frames"
    if kind == "missing_frame":
        (frames / "frame_04.png").unlink()
    elif kind == "extra_frame":
        shutil.copy(frames / "frame_00.png", frames / "frame_09.png")
    elif kind == "truncated_frame":
        data = (frames / "frame_03.png").read_bytes()
        (frames / "frame_03.png").write_bytes(data[: len(data) // 2])
    elif kind == "no_frames_dir":
        shutil.rmtree(frames)
    elif kind == "empty_instruction":
        (folder / "instruction.txt").write_text("  \n")
    elif kind == "missing_instruction":
        (folder / "instruction.txt").unlink()
    elif kind == "non_utf8_instruction":
        (folder / "instruction.txt").write_bytes("Öffne die Schublade".encode("latin-1"))
    elif kind == "huge_instruction":
        (folder / "instruction.txt").write_text("pick up the cup " * 200)
    elif kind == "bad_metadata":
        (folder / "metadata.json").write_text("{not json")
    elif kind == "metadata_not_object":
        (folder / "metadata.json").write_text("[1, 2]")
    elif kind == "corrupt_contact_sheet":
        (folder / "contact_sheet.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")


@pytest.mark.parametrize("kind, code", [
    ("missing_frame", "wrong_frame_count"),
    ("extra_frame", "wrong_frame_count"),
    ("truncated_frame", "corrupt_frame"),
    ("no_frames_dir", "missing_frames"),
    ("empty_instruction", "empty_instruction"),
    ("missing_instruction", "missing_instruction"),
    ("non_utf8_instruction", "instruction_not_utf8"),
    ("huge_instruction", "instruction_too_long"),
    ("bad_metadata", "bad_metadata"),
    ("metadata_not_object", "bad_metadata"),
    ("corrupt_contact_sheet", "corrupt_contact_sheet"),
])
def test_each_corruption_is_invalid_with_reason_and_isolated(tmp_path, kind, code):
    root = tmp_path / "oxe"
    for name in ("pick_cup_place_tray", "lamp_on", "cook_pasta"):
        shutil.copytree(SHIPPED / name, root / name)
    _corrupt(kind, root / "lamp_on")
    episodes = {e.id: e for e in discover_episodes(root)}
    bad = episodes["lamp_on"]
    assert isinstance(bad, InvalidEpisode) and bad.code == code and bad.reason
    assert all(isinstance(episodes[i], Episode) for i in ("pick_cup_place_tray", "cook_pasta"))
    # Checked without building a sheet (the teacher's first stage): the same verdict.
    unbuilt = load_episode(root / "lamp_on", contact_sheet=False)
    assert isinstance(unbuilt, InvalidEpisode) and unbuilt.code == bad.code and unbuilt.reason


def test_an_episode_checked_without_its_sheet_is_valid_and_builds_nothing(tmp_path):
    shutil.copytree(SHIPPED / "lamp_on", tmp_path / "lamp_on")
    assert not (tmp_path / "lamp_on" / "contact_sheet.png").exists()
    checked, loaded = load_episode(tmp_path / "lamp_on", contact_sheet=False), load_episode(tmp_path / "lamp_on")
    assert isinstance(checked, Episode) and checked.contact_sheet_png == b"" and checked.contact_sheet_built
    assert checked.model_dump() == loaded.model_dump() and loaded.contact_sheet_png.startswith(b"\x89PNG")


def test_instruction_limit_is_characters_not_bytes(tmp_path):
    folder = tmp_path / "utf8_ok"
    shutil.copytree(SHIPPED / "open_drawer", folder)
    (folder / "instruction.txt").write_text("ö" * MAX_INSTRUCTION_CHARS, encoding="utf-8")
    assert isinstance(load_episode(folder), Episode)


def test_episode_ids_are_sanitized_and_duplicates_flagged(tmp_path):
    assert episode_id_for("Bridge Episode #7 (v2)") == "bridge_episode__7__v2"
    root = tmp_path / "oxe"
    shutil.copytree(SHIPPED / "open_drawer", root / "Open Drawer")
    shutil.copytree(SHIPPED / "open_drawer", root / "open_drawer")
    (root / ".hidden").mkdir()
    episodes = discover_episodes(root)
    assert [e.id for e in episodes] == ["open_drawer", "open_drawer"]
    assert isinstance(episodes[0], Episode) and episodes[1].code == "duplicate_id"
    assert load_episode(tmp_path / "nope").code == "not_a_directory"


def test_sample_generator_is_byte_identical(tmp_path):
    spec = next(s for s in sample_specs() if s.id == "cut_bread_knife")
    first, second = write_sample(spec, tmp_path / "a"), write_sample(spec, tmp_path / "b")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == FRAME_COUNT + 2
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    assert json.loads((first / "metadata.json").read_text())["objects"] == ["table", "cutting_board", "bread", "knife"]
    # Frames show motion: the knife moves, so first and last frames differ.
    assert (first / "frames/frame_00.png").read_bytes() != (first / "frames/frame_08.png").read_bytes()
