"""The scenario generator's request sensor and nightly schedule, evaluated for real on a temp-dir instance."""

import json
import os
import time
from datetime import datetime, timezone

import pandas as pd
import pytest
from dagster import (DefaultScheduleStatus, DefaultSensorStatus, build_schedule_context,
                     instance_for_test, materialize)

from benchgen_assets.definitions import defs, materializable
from benchgen_assets.defs.jobs import CHAIN_KEYS, SCENARIO_TAG, TABLE_KEYS
from benchgen_assets.defs.schedules import nightly_scenario_refresh
from benchgen_assets.defs.sensors import generation_request_sensor
from benchgen_assets.pipeline import load_request, save_request
from benchgen_assets.records import GenerationRequest
from benchgen_assets.requests_inbox import (MAX_COUNT, PER_TICK_ENV, REQUESTS_DIR_ENV, SETTLE_SECONDS_ENV,
                                            parse_request_file)
from resources.dagster_resources import shared_resources
from tests.sensor_ticks import Ticker

SCENARIOS = "scenarios"
CHECKS = ["compilation_check", "geometry_check", "mjcf_schema_check", "stability_check", "solvability_check"]


@pytest.fixture
def instance():
    """A real (temp-dir SQLite) instance, like the daemon's."""
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def inbox(datasets_dir, monkeypatch):
    """The default requests folder under the test's datasets root; files count as settled at once."""
    monkeypatch.delenv(REQUESTS_DIR_ENV, raising=False)
    monkeypatch.setenv(SETTLE_SECONDS_ENV, "0")
    monkeypatch.delenv(PER_TICK_ENV, raising=False)
    folder = datasets_dir / "requests"
    folder.mkdir()
    return folder


def drop(folder, name, text, age_s=60):
    path = folder / name
    path.write_text(text)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path




def requested(data) -> list[str]:
    return [r.partition_key for r in data.run_requests or [] if r.partition_key]


def test_automation_is_registered_and_stopped_by_default():
    assert generation_request_sensor.default_status == DefaultSensorStatus.STOPPED
    assert nightly_scenario_refresh.default_status == DefaultScheduleStatus.STOPPED
    assert (nightly_scenario_refresh.cron_schedule, nightly_scenario_refresh.execution_timezone) == ("0 3 * * *", "UTC")
    repo = defs.get_repository_def()
    assert repo.has_sensor_def("generation_request_sensor") and repo.has_schedule_def("nightly_scenario_refresh")
    assert "<datasets>/requests/" in generation_request_sensor.description


def test_request_file_adds_partitions_and_runs_once(instance, inbox, datasets_dir):
    tick = Ticker(generation_request_sensor, instance, defs)
    assert not tick().run_requests  # empty folder

    drop(inbox, "levers.yaml", "{tier: 2, family: lever, count: 3, seed: 7, variants: 2}\n")
    first = tick()
    ids = requested(first)
    assert len(ids) == 3 and len(set(ids)) == 3
    assert sorted(instance.get_dynamic_partitions(SCENARIOS)) == sorted(ids)
    # Ids are minted from the content: the same content gives the same ids (and run keys) again.
    digest, expected = parse_request_file((inbox / "levers.yaml").read_bytes())
    assert ids == [r.scenario_id for r in expected]
    assert all(i.startswith("t2-lever-s7-") and i.endswith(digest[:8]) for i in ids)
    for run in first.run_requests:
        assert set(run.asset_selection) == set(CHAIN_KEYS)
        assert run.run_key == f"{run.partition_key}:{digest[:16]}" and run.tags[SCENARIO_TAG] == run.partition_key
    # What generation_request will read for each partition.
    saved = [load_request(i) for i in ids]
    assert [(r.tier, r.family, r.seed, r.variants) for r in saved] == [(2, "lever", 7 + k, 2) for k in range(3)]

    again = tick()
    assert not again.run_requests and not again.dynamic_partitions_requests and again.skip_message

    # Same request in another file (other formatting): same scenarios, same run keys — never duplicates.
    drop(inbox, "copy.yml", "tier: 2\nfamily: lever\ncount: 3\nseed: 7\nvariants: 2  # again\n")
    copy = tick()
    assert [r.run_key for r in copy.run_requests] == [r.run_key for r in first.run_requests]
    assert not copy.dynamic_partitions_requests

    # A changed file is a new request: new scenarios, the old ones stay.
    drop(inbox, "levers.yaml", "{tier: 2, family: lever, count: 3, seed: 8, variants: 2}\n")
    changed = tick()
    assert len(requested(changed)) == 3 and not set(requested(changed)) & set(ids)
    assert len(instance.get_dynamic_partitions(SCENARIOS)) == 6


def test_prompt_request_takes_count_and_tier_from_the_text(instance, inbox):
    tick = Ticker(generation_request_sensor, instance, defs)
    drop(inbox, "prompt.yaml", 'prompt: "4 levers, tier 2"\nseed: 1\n')
    ids = requested(tick())
    assert len(ids) == 4
    request = load_request(ids[0])
    assert request.prompt == "4 levers, tier 2" and request.tier == 2 and request.family is None


@pytest.mark.parametrize("text, reason", [
    ("{tier: 2, family: lever, count: [3\n", "not valid YAML"),
    ("- tier: 1\n", "expected a YAML mapping"),
    ("{family: catapult, count: 2}\n", "unknown family 'catapult'"),
    ("{tier: 1, count: 0}\n", "count: Input should be greater than or equal to 1"),
    (f"{{tier: 1, count: {MAX_COUNT * 10}}}\n", f"count: Input should be less than or equal to {MAX_COUNT}"),
    ("{tier: 1, count: '10'}\n", "count: Input should be a valid integer"),
    ("{tier: 1, cuont: 10}\n", "cuont: Extra inputs are not permitted"),
    ("{tier: 1, family: lever}\n", "family 'lever' is tier 2, not tier 1"),
    ("{seed: 3}\n", "give at least one of tier, family, prompt"),
    ('{prompt: "500 levers"}\n', f"count 500 (from the prompt) is over the limit of {MAX_COUNT}"),
])
def test_malformed_file_is_reported_once_and_retried_only_when_fixed(instance, inbox, text, reason):
    tick = Ticker(generation_request_sensor, instance, defs)
    drop(inbox, "bad.yaml", text)
    first = tick()
    assert not first.run_requests and not first.dynamic_partitions_requests
    assert reason in first.skip_message
    sidecar = inbox / "bad.yaml.error.txt"
    assert reason in sidecar.read_text()
    assert json.loads(first.cursor)["files"]["bad.yaml"]["status"] == "rejected"

    second = tick()  # the same content is not read again
    assert not second.run_requests and reason not in (second.skip_message or "")
    assert not instance.get_dynamic_partitions(SCENARIOS)

    drop(inbox, "bad.yaml", "{tier: 1, count: 2, variants: 1}\n")
    fixed = tick()
    assert len(requested(fixed)) == 2 and not sidecar.exists()
    assert json.loads(fixed.cursor)["files"]["bad.yaml"]["status"] == "requested"


def test_removed_file_is_forgotten_with_its_error_note(instance, inbox):
    tick = Ticker(generation_request_sensor, instance, defs)
    bad = drop(inbox, "typo.yaml", "{tier: 1, count: -2}\n")
    assert "count" in tick().skip_message and (inbox / "typo.yaml.error.txt").exists()
    bad.unlink()
    gone = tick()
    assert json.loads(gone.cursor)["files"] == {} and not (inbox / "typo.yaml.error.txt").exists()
    drop(inbox, "typo.yaml", "{tier: 1, count: -2}\n")  # back again: a new file, reported again
    assert "count" in tick().skip_message


def test_work_per_tick_is_bounded_and_fresh_files_wait(instance, inbox, monkeypatch):
    monkeypatch.setenv(PER_TICK_ENV, "4")
    tick = Ticker(generation_request_sensor, instance, defs)
    for i, name in enumerate(("a.yaml", "b.yaml", "c.yaml")):
        drop(inbox, name, f"{{tier: 1, count: 3, seed: {10 * i}}}\n", age_s=300 - i)  # a oldest
    seen = []
    for _ in range(3):
        data = tick()
        assert len(requested(data)) == 3  # 3 + 3 > 4: one file per tick
        seen.append({r.tags["benchgen/request_file"] for r in data.run_requests})
    assert seen == [{"a.yaml"}, {"b.yaml"}, {"c.yaml"}]
    assert not tick().run_requests

    # A big file still goes (alone): the bound delays, never blocks.
    drop(inbox, "big.yaml", "{tier: 1, count: 6}\n")
    assert len(requested(tick())) == 6

    monkeypatch.setenv(SETTLE_SECONDS_ENV, "30")
    drop(inbox, "new.yaml", "{tier: 1, count: 1, seed: 99}\n", age_s=0)  # maybe still being written
    assert not tick().run_requests
    drop(inbox, "new.yaml", "{tier: 1, count: 1, seed: 99}\n", age_s=60)
    assert len(requested(tick())) == 1


def test_requests_folder_can_be_moved(instance, tmp_path, datasets_dir, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv(REQUESTS_DIR_ENV, str(elsewhere))
    monkeypatch.setenv(SETTLE_SECONDS_ENV, "0")
    drop(elsewhere, "one.yaml", "{family: peg_in_hole}\n")
    assert len(requested(Ticker(generation_request_sensor, instance, defs)())) == 1


def _materialize(instance, sid, run_config=None):
    return materialize(materializable, instance=instance, partition_key=sid, resources=shared_resources(),
                       selection=[k.to_user_string() for k in CHAIN_KEYS], run_config=run_config or {},
                       raise_on_error=False)


def _schedule_tick(instance):
    context = build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                     scheduled_execution_time=datetime(2025, 1, 2, 3, 0, tzinfo=timezone.utc))
    return nightly_scenario_refresh.evaluate_tick(context).run_requests


@pytest.mark.slow
def test_nightly_refresh_reruns_only_what_changed_or_failed(instance, inbox, datasets_dir):
    good = GenerationRequest(scenario_id="good", tier=1, seed=3, variants=1)
    bad = GenerationRequest(scenario_id="bad", family="peg_in_hole", seed=1, variants=1)
    fresh = GenerationRequest(scenario_id="fresh", tier=1, seed=5, variants=1)
    for r in (good, bad, fresh):
        save_request(r)
    instance.add_dynamic_partitions(SCENARIOS, ["good", "bad", "fresh", "no-request"])

    assert _materialize(instance, "good").success
    override = "from benchgen_assets.scene import Scene\n\n\ndef build(seed, scale):\n    return 1 / 0\n"
    broken = _materialize(instance, "bad", {"ops": {"scenario_script": {"config": {"code_override": override}}}})
    assert not broken.success
    assert not next(e for e in broken.get_asset_check_evaluations() if e.check_name == "compilation_check").passed

    runs = _schedule_tick(instance)
    by_partition = {r.partition_key: r for r in runs if r.partition_key}
    assert set(by_partition) == {"bad", "fresh"}  # not good (up to date), not no-request (nothing to run)
    assert by_partition["fresh"].tags["benchgen/refresh_reason"] == "never materialized"
    assert by_partition["bad"].tags["benchgen/refresh_reason"] == "last run failed"
    assert all(set(r.asset_selection) == set(CHAIN_KEYS) for r in by_partition.values())
    tables = [r for r in runs if not r.partition_key]
    assert len(tables) == 1 and set(tables[0].asset_selection) == set(TABLE_KEYS)
    assert tables[0].run_key == "tables@2025-01-02"

    # An edited request is a changed input: the scenario is refreshed.
    save_request(good.model_copy(update={"seed": 4}))
    changed = {r.partition_key: r for r in _schedule_tick(instance) if r.partition_key}
    assert changed["good"].tags["benchgen/refresh_reason"].startswith("inputs changed")
    save_request(good)
    assert "good" not in {r.partition_key for r in _schedule_tick(instance)}

    # The requested runs are real: the schedule's run of "fresh" through scenario_job, checks included …
    job = defs.resolve_job_def("scenario_job")
    rerun = by_partition["fresh"]
    result = job.execute_in_process(instance=instance, partition_key="fresh", asset_selection=list(rerun.asset_selection),
                                    tags=rerun.tags, raise_on_error=False)
    assert result.success
    assert sorted(e.check_name for e in result.get_asset_check_evaluations() if e.passed) == sorted(CHECKS)
    assert {r.partition_key for r in _schedule_tick(instance)} == {"bad", None}

    # … and the request sensor rebuilds the tables once scenario runs have finished (none are running here).
    data = Ticker(generation_request_sensor, instance, defs)()
    assert [set(r.asset_selection) for r in data.run_requests] == [set(TABLE_KEYS)]
    assert job.execute_in_process(instance=instance, asset_selection=list(data.run_requests[0].asset_selection)).success
    manifest = pd.read_parquet(datasets_dir / "benchmarks" / "manifest.parquet").set_index("scenario_id")
    assert manifest.loc["good", "status"] == "valid" and manifest.loc["fresh", "status"] == "valid"
    assert manifest.loc["bad", "status"] == "rejected"
    assert not Ticker(generation_request_sensor, instance, defs)().run_requests  # the tables are up to date now
