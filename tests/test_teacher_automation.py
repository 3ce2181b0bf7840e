"""The teacher's episode-folder sensor and nightly schedule, evaluated for real on an ephemeral instance."""

import os
import re
import shutil
import time
from datetime import datetime, timezone

import pytest
from dagster import (AssetKey, DefaultScheduleStatus, DefaultSensorStatus, build_schedule_context,
                     instance_for_test, materialize)

from resources.dagster_resources import LLMResource, shared_resources
from resources.paths import PROJECT_ROOT
from teacher_assets.agents import prompts as teacher_prompts
from teacher_assets.definitions import defs
from teacher_assets.defs.assets import EPISODE_ASSETS, episodes_partitions, proposer_dataset
from teacher_assets.defs.checks import TEACHER_CHECKS
from teacher_assets.defs.jobs import EPISODE_TAG
from teacher_assets.defs.schedules import nightly_teacher_refresh
from teacher_assets.defs.sensors import episode_folder_sensor
from teacher_assets.episodes.watch import EPISODES_DIR_ENV, PER_TICK_ENV, SETTLE_SECONDS_ENV, content_fingerprint
from tests.sensor_ticks import Ticker

SAMPLES = PROJECT_ROOT / "datasets" / "oxe"
EPISODE_KEYS = {a.key for a in EPISODE_ASSETS}


@pytest.fixture
def instance():
    """A real (temp-dir SQLite) instance: evaluation checks partition keys through its ref, like the daemon."""
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def root(tmp_path, monkeypatch):
    folder = tmp_path / "episodes"
    folder.mkdir()
    monkeypatch.setenv(EPISODES_DIR_ENV, str(folder))
    monkeypatch.delenv(SETTLE_SECONDS_ENV, raising=False)
    monkeypatch.delenv(PER_TICK_ENV, raising=False)
    return folder


def age(folder, seconds=300):
    """Make everything in ``folder`` look untouched for ``seconds`` (what waiting would do)."""
    past = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            os.utime(os.path.join(dirpath, name), (past, past))
    os.utime(folder, (past, past))


def add_episode(root, name, sample="lamp_on"):
    shutil.copytree(SAMPLES / sample, root / name)
    age(root / name)
    return root / name




def added(data) -> list[str]:
    return [k for r in data.dynamic_partitions_requests or [] for k in r.partition_keys]


def episodes_requested(data) -> list[str]:
    return [r.partition_key for r in data.run_requests or [] if r.partition_key]


def test_automation_is_registered_and_stopped_by_default():
    assert episode_folder_sensor.default_status == DefaultSensorStatus.STOPPED
    assert nightly_teacher_refresh.default_status == DefaultScheduleStatus.STOPPED
    assert (nightly_teacher_refresh.cron_schedule, nightly_teacher_refresh.execution_timezone) == ("0 2 * * *", "UTC")
    repo = defs.get_repository_def()
    assert repo.has_sensor_def("episode_folder_sensor") and repo.has_schedule_def("nightly_teacher_refresh")


def test_new_episode_is_requested_once_and_again_when_its_content_changes(instance, root):
    tick = Ticker(episode_folder_sensor, instance, defs)
    assert not tick().run_requests  # empty root

    episode = add_episode(root, "lamp_on")
    first = tick()
    assert added(first) == ["lamp_on"] and episodes_requested(first) == ["lamp_on"]
    request = first.run_requests[0]
    assert set(request.asset_selection) == EPISODE_KEYS
    assert request.run_config["ops"]["oxe_episode"]["config"]["episodes_dir"] == str(root)
    assert request.tags["teacher/episode_fingerprint"] == content_fingerprint(episode)
    assert instance.get_dynamic_partitions(episodes_partitions.name) == ["lamp_on"]

    second = tick()
    assert not second.run_requests and not added(second) and second.skip_message

    age(episode, 10)  # touched, same content: nothing to do
    assert not tick().run_requests

    (episode / "instruction.txt").write_text("Turn the lamp off.\n")
    age(episode)
    changed = tick()
    assert episodes_requested(changed) == ["lamp_on"] and not added(changed)  # the partition exists already
    assert changed.run_requests[0].run_key != request.run_key
    assert changed.run_requests[0].tags["teacher/changed"] == "true"
    assert not tick().run_requests


def test_half_written_folder_waits_until_it_has_settled(instance, root):
    tick = Ticker(episode_folder_sensor, instance, defs)
    partial = root / "stove_off"
    (partial / "frames").mkdir(parents=True)
    shutil.copy2(SAMPLES / "stove_off" / "instruction.txt", partial)
    for i in range(4):  # the copy is still going: fresh mtimes
        shutil.copyfile(SAMPLES / "stove_off" / "frames" / f"frame_{i:02d}.png", partial / "frames" / f"frame_{i:02d}.png")
    waiting = tick()
    assert not waiting.run_requests and not added(waiting)
    assert not tick().run_requests

    for i in range(4, 9):
        shutil.copyfile(SAMPLES / "stove_off" / "frames" / f"frame_{i:02d}.png", partial / "frames" / f"frame_{i:02d}.png")
    shutil.copy2(SAMPLES / "stove_off" / "metadata.json", partial)
    assert not tick().run_requests  # complete now, but just written
    age(partial)
    done = tick()
    assert added(done) == ["stove_off"] and episodes_requested(done) == ["stove_off"]
    assert done.run_requests[0].tags["teacher/episode_fingerprint"] == content_fingerprint(SAMPLES / "stove_off")


def test_invalid_episode_gets_its_partition_once_and_is_not_retried(instance, root):
    tick = Ticker(episode_folder_sensor, instance, defs)
    corrupt = add_episode(root, "corrupt_frames")
    frame = corrupt / "frames" / "frame_04.png"
    frame.write_bytes(frame.read_bytes()[:60])  # a truncated PNG
    age(corrupt)
    first = tick()
    assert added(first) == ["corrupt_frames"] and episodes_requested(first) == ["corrupt_frames"]
    for _ in range(3):
        assert not tick().run_requests
    age(corrupt, 20)  # touched again: still the same broken content
    assert not tick().run_requests


def test_work_per_tick_is_bounded(instance, root, monkeypatch):
    monkeypatch.setenv(PER_TICK_ENV, "2")
    for name in ("ep_a", "ep_b", "ep_c"):
        add_episode(root, name)
    tick = Ticker(episode_folder_sensor, instance, defs)
    assert episodes_requested(tick()) == ["ep_a", "ep_b"]
    assert episodes_requested(tick()) == ["ep_c"]
    assert not tick().run_requests
    assert sorted(instance.get_dynamic_partitions(episodes_partitions.name)) == ["ep_a", "ep_b", "ep_c"]


def run_chain(instance, episode_id, **resources):
    """One episode's run, tagged like the manager CLI tags its runs."""
    instance.add_dynamic_partitions(episodes_partitions.name, [episode_id])
    return materialize([*EPISODE_ASSETS, *TEACHER_CHECKS], partition_key=episode_id, instance=instance,
                       resources={**shared_resources(), **resources}, tags={EPISODE_TAG: episode_id},
                       raise_on_error=False)


def nightly(instance, day):
    context = build_schedule_context(instance=instance, instance_ref=instance.get_ref(),
                                     repository_def=defs.get_repository_def(),
                                     scheduled_execution_time=datetime(2026, 11, day, 2, tzinfo=timezone.utc))
    return nightly_teacher_refresh.evaluate_tick(context).run_requests


def test_nightly_refresh_reruns_only_what_changed_or_failed(datasets_dir, instance, monkeypatch):
    monkeypatch.delenv(EPISODES_DIR_ENV, raising=False)  # the default root: <datasets>/oxe
    root = datasets_dir / "oxe"
    for name in ("pick_cup_place_tray", "fold_towel", "cook_pasta", "screw_light_bulb"):
        add_episode(root, name, sample=name)

    for name in ("pick_cup_place_tray", "fold_towel", "cook_pasta"):
        assert run_chain(instance, name).success
    record = instance.fetch_materializations(AssetKey("oxe_episode"), limit=1).records[0]
    assert record.asset_materialization.metadata["episode_fingerprint"].value == content_fingerprint(root / "cook_pasta")
    # A later run of cook_pasta fails (its provider is unreachable) after oxe_episode re-materialized.
    broken = LLMResource(model="openai/gpt-4o-mini", api_base="http://127.0.0.1:9", max_retries=0, use_cache=False,
                         timeout_s=5)
    assert not run_chain(instance, "cook_pasta", llm=broken).success
    (root / "fold_towel" / "instruction.txt").write_text("Fold the towel in half twice.\n")
    age(root / "fold_towel")
    instance.add_dynamic_partitions(episodes_partitions.name, ["screw_light_bulb"])  # known, never materialized

    requests = nightly(instance, day=22)
    reasons = {r.partition_key: r.tags["teacher/refresh_reason"] for r in requests if r.partition_key}
    assert reasons == {"screw_light_bulb": "not_materialized", "fold_towel": "episode_changed",
                       "cook_pasta": "last_run_failed"}
    for r in requests:
        if r.partition_key:
            assert set(r.asset_selection) == EPISODE_KEYS
            assert r.run_config["ops"]["oxe_episode"]["config"]["episodes_dir"] == str(root)
    dataset = [r for r in requests if not r.partition_key]
    assert len(dataset) == 1 and dataset[0].asset_selection == [proposer_dataset.key]

    # The request runs as asked (teacher_job, its config and selection); the next night leaves it alone.
    changed = next(r for r in requests if r.partition_key == "fold_towel")
    assert defs.resolve_job_def("teacher_job").execute_in_process(
        instance=instance, partition_key="fold_towel", asset_selection=list(changed.asset_selection),
        run_config=changed.run_config, tags=changed.tags).success
    assert sorted(r.partition_key for r in nightly(instance, day=23) if r.partition_key) == ["cook_pasta", "screw_light_bulb"]

    # The sensor, once it knows the folders, rebuilds the dataset the episode runs have made stale …
    tick = Ticker(episode_folder_sensor, instance, defs)
    assert sorted(episodes_requested(tick())) == ["cook_pasta", "fold_towel", "pick_cup_place_tray", "screw_light_bulb"]
    rebuild = tick()
    assert [r.asset_selection for r in rebuild.run_requests] == [[proposer_dataset.key]]
    # … and not again once it has been rebuilt.
    assert materialize([proposer_dataset], instance=instance).success
    assert not tick().run_requests

    # A bumped prompt version is a changed input: the episodes that reached bt_score with the old
    # one run again (the agents whose prompt did not change hit the LLM cache).
    bumped = datasets_dir.parent / "prompts"
    shutil.copytree(teacher_prompts.PROMPTS_DIR, bumped)
    critic = bumped / "critic.md"
    critic.write_text(re.sub(r"^version: (\d+)$", lambda m: f"version: {int(m.group(1)) + 1}", critic.read_text(),
                             count=1, flags=re.M))
    monkeypatch.setattr(teacher_prompts, "PROMPTS_DIR", bumped)
    reasons = {r.partition_key: r.tags["teacher/refresh_reason"] for r in nightly(instance, day=24) if r.partition_key}
    assert reasons == {"pick_cup_place_tray": "prompts_changed", "fold_towel": "prompts_changed",
                       "cook_pasta": "last_run_failed", "screw_light_bulb": "not_materialized"}
