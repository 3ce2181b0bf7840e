"""The teacher at scale, for real: runs over partition ranges, per-episode failures and blocking
checks inside them, calls in flight against a local OpenAI-compatible server, the RPM cap."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from dagster import AssetCheckKey, AssetKey, build_schedule_context, instance_for_test, materialize
from pydantic import BaseModel

from resources.dagster_resources import LLMResource, shared_resources
from resources.llm import LLMClient, LLMSettings, input_block
from resources.llm.messages import extract_input
from resources.paths import PROJECT_ROOT
from teacher_assets.defs.assets import EPISODE_ASSETS, episodes_partitions
from teacher_assets.defs.checks import TEACHER_CHECKS
from teacher_assets.manager import RANGE_END_TAG, RANGE_START_TAG
from tests.llm_server import offline_answer, serving, teacher_role

SAMPLES = PROJECT_ROOT / "datasets" / "oxe"


@pytest.fixture
def instance(tmp_path):
    """A real (temp-dir SQLite) instance, with the project's storage (dagster_home/dagster.yaml)."""
    storage = {"custom": {"module": "resources.dagster_storage", "class": "SqliteStorage",
                          "config": {"base_dir": str(tmp_path / "dagster_home")}}}
    with instance_for_test(overrides={"storage": storage}) as inst:
        yield inst


def copy_episodes(root, names):
    for name in names:
        shutil.copytree(SAMPLES / name, root / name)
    return root


def run_range(instance, episodes, names, llm: LLMResource, *, strict=True):
    """One Dagster run over the partition range ``names[0]..names[-1]``, as the manager CLI launches it."""
    instance.add_dynamic_partitions(episodes_partitions.name, names)
    return materialize(
        [*EPISODE_ASSETS, *TEACHER_CHECKS], instance=instance, resources={**shared_resources(), "llm": llm},
        run_config={"ops": {"oxe_episode": {"config": {"episodes_dir": str(episodes)}},
                            "bt_draft": {"config": {"strict": strict}}}},
        tags={RANGE_START_TAG: names[0], RANGE_END_TAG: names[-1]}, raise_on_error=False)


def metadata_by_partition(result, asset: str) -> dict:
    return {e.materialization.partition: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset}


# A well-formed PAL tree for the apple episode with no retry and no fallback anywhere.
BARE_APPLE_TREE = ('<root BTCPP_format="4" main_tree_to_execute="MainTree"><BehaviorTree ID="MainTree"><Sequence>'
                   '<Action ID="NAVIGATE_TO" obj="apple"/><Action ID="GRASP" obj="apple"/>'
                   '<Action ID="NAVIGATE_TO" obj="bowl"/><Action ID="PLACE_INSIDE" obj="bowl"/>'
                   '</Sequence></BehaviorTree></root>')


def _no_recovery_for_the_apple(body: dict) -> str:
    """A hosted model whose robustness (D) and subtree (E) agents give the apple episode a tree without
    any recovery (the blocking executability check must fail it); everything else as the offline
    author answers."""
    if teacher_role(body) in ("teacher.robustness", "teacher.subtrees"):  # their input is text: the tree
        if "apple" in extract_input(body["messages"][-1]["content"])["bt_xml"]:
            return json.dumps({"bt_xml": BARE_APPLE_TREE, "changes": []})
    return offline_answer(body)


def test_a_failing_blocking_check_blocks_only_its_episode_in_a_range_run(datasets_dir, tmp_path, instance, monkeypatch):
    names = ["pick_cup_place_tray", "apple_into_bowl", "lamp_on", "fold_towel"]
    episodes = copy_episodes(tmp_path / "episodes", names)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
    with serving(_no_recovery_for_the_apple) as (base, _):
        hosted = LLMResource(model="openai/test-model", api_base=base, max_retries=0, use_cache=False)
        result = run_range(instance, episodes, names, hosted)
        assert result.success  # the check steps and bt_score succeed: no episode takes the others down

        evaluations = result.get_asset_check_evaluations()
        assert {(e.partition, e.check_name) for e in evaluations} == {
            (n, c) for n in names for c in ("bt_schema_check", "btcpp_load_check", "pal_compliance_check",
                                            "executability_check")}
        failed = {(e.partition, e.check_name): e for e in evaluations if not e.passed}
        assert list(failed) == [("apple_into_bowl", "executability_check")]
        # The instance holds the same, per partition (the UI's check history): written as one batch per check.
        history = {(r.partition, r.key.name): r.status.value for e in evaluations
                   for r in instance.event_log_storage.get_asset_check_execution_history(
                       AssetCheckKey(AssetKey("bt_xml"), e.check_name), limit=100)}
        assert history == {(e.partition, e.check_name): "FAILED" if not e.passed else "SUCCEEDED" for e in evaluations}
        assert failed["apple_into_bowl", "executability_check"].blocking
        assert failed["apple_into_bowl", "executability_check"].description  # why, in the UI

        score = metadata_by_partition(result, "bt_score")
        assert {k: m["episode_status"] for k, m in score.items()} == {
            "pick_cup_place_tray": "accepted", "apple_into_bowl": "failed", "lamp_on": "accepted", "fold_towel": "skipped"}
        blocked = score["apple_into_bowl"]
        assert blocked["reason"] == "blocked by failed blocking checks on bt_xml: executability_check"
        assert blocked["blocked_by"] == "executability_check" and blocked["llm_calls"] == 0  # never scored
        proposer = datasets_dir / "proposer"
        assert not (proposer / "apple_into_bowl").exists() and not (proposer / "_outcomes" / "apple_into_bowl.json").exists()
        assert (proposer / "pick_cup_place_tray" / "bt.xml").is_file() and (proposer / "lamp_on" / "bt.xml").is_file()

        # The same episode alone: Dagster's own blocking skips bt_score and fails the run.
        alone = materialize([*EPISODE_ASSETS, *TEACHER_CHECKS], partition_key="apple_into_bowl", instance=instance,
                            resources={**shared_resources(), "llm": hosted}, raise_on_error=False,
                            run_config={"ops": {"oxe_episode": {"config": {"episodes_dir": str(episodes)}}}})
    assert not alone.success and not metadata_by_partition(alone, "bt_score")


def test_an_episode_whose_stage_raises_fails_alone_and_keeps_its_earlier_outputs(datasets_dir, tmp_path, instance,
                                                                               monkeypatch):
    names = ["pick_cup_place_tray", "apple_into_bowl", "lamp_on"]
    episodes = copy_episodes(tmp_path / "episodes", names)
    assert run_range(instance, episodes, names, LLMResource()).success  # offline: all accepted
    before = (datasets_dir / "proposer" / "apple_into_bowl" / "bt.xml").read_text()

    # Now a hosted model that is down for one episode (every request about the apple fails).
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
    with serving(offline_answer) as (base, server):
        server.fail_when = staticmethod(lambda body: "apple" in json.dumps(body["messages"][-1]["content"]).lower())
        hosted = LLMResource(model="openai/test-model", api_base=base, max_retries=0, use_cache=False)
        result = run_range(instance, episodes, names, hosted)
    assert result.success
    status = {k: m["episode_status"] for k, m in metadata_by_partition(result, "bt_score").items()}
    assert status == {"pick_cup_place_tray": "accepted", "apple_into_bowl": "failed", "lamp_on": "accepted"}
    feasibility = metadata_by_partition(result, "feasibility")["apple_into_bowl"]
    assert feasibility["stage_result"] == "STOPPED HERE (failed)"
    assert "feasibility raised LLMCallError" in feasibility["reason"] and "apple_into_bowl" in feasibility["reason"]
    assert "sk-test-local" not in feasibility["reason"]
    # Nothing of the earlier accepted run is lost: its tree and outcome stay until a run succeeds.
    assert (datasets_dir / "proposer" / "apple_into_bowl" / "bt.xml").read_text() == before
    outcome = json.loads((datasets_dir / "proposer" / "_outcomes" / "apple_into_bowl.json").read_text())
    assert outcome["status"] == "accepted"

    # The nightly refresh runs it again.
    from teacher_assets.definitions import defs
    from teacher_assets.defs.schedules import nightly_teacher_refresh

    monkeypatch.setenv("BENCHGEN_EPISODES_DIR", str(episodes))
    context = build_schedule_context(instance=instance, instance_ref=instance.get_ref(), repository_def=defs.get_repository_def(),
                                     scheduled_execution_time=datetime(2026, 12, 3, 2, tzinfo=timezone.utc))
    reasons = {r.partition_key: r.tags["teacher/refresh_reason"]
               for r in nightly_teacher_refresh.evaluate_tick(context).run_requests if r.partition_key}
    assert reasons == {"apple_into_bowl": "last_run_failed"}


def test_llm_steps_keep_calls_in_flight_against_a_slow_hosted_model(datasets_dir, tmp_path, instance, monkeypatch):
    names = ["pick_cup_place_tray", "apple_into_bowl", "lamp_on", "open_drawer", "stove_off", "close_cabinet_door"]
    episodes = copy_episodes(tmp_path / "episodes", names)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
    with serving(offline_answer, latency=(0.2, 0.4)) as (base, server):
        hosted = LLMResource(model="openai/test-model", api_base=base, use_cache=False, calls_in_flight=3)
        result = run_range(instance, episodes, names, hosted)
    assert result.success
    assert len(server.seen) >= 6 * 7  # every agent of every episode went to the server
    statuses = {m["episode_status"] for m in metadata_by_partition(result, "bt_score").values()}
    assert statuses == {"accepted"}
    assert server.most_in_flight == 3  # as many as asked for, never more
    # Results are recorded per partition as in a sequential run: the trace of each call names its episode.
    traces = list((datasets_dir / "traces" / "llm" / "feasibility").glob("*.jsonl"))
    assert sorted(t.stem for t in traces) == sorted(names)


class Echo(BaseModel):
    n: int


def _echo_reply(body: dict) -> str:
    user = body["messages"][-1]["content"]
    return json.dumps({"n": json.loads(user.split("```json input\n", 1)[1].rsplit("\n```", 1)[0])["n"]})


def _calls(api_base: str, first: int, count: int, max_rpm) -> list[int]:
    """``count`` calls from 4 threads of this process (a spawned worker in the test below)."""
    settings = LLMSettings(model="openai/test-model", api_base=api_base, use_cache=False, max_retries=0, max_rpm=max_rpm)

    def one(n):
        client = LLMClient(settings, asset="rate_test", partition=str(n))
        messages = [{"role": "user", "content": f"Echo n.\n\n{input_block({'n': n})}"}]
        return client.complete(role="test.echo", messages=messages, schema=Echo, prompt_version="v1").value.n

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(first, first + count)))


def _most_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times))


@pytest.mark.parametrize("max_rpm", [60, None])
def test_requests_per_minute_cap_holds_across_threads_and_processes(datasets_dir, monkeypatch, max_rpm):
    """Timing is the subject here, so the bounds leave room for a loaded machine: a request can reach
    the server a few seconds after its slot (a process's first request also opens its connection)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
    with serving(_echo_reply, latency=(0.02, 0.05)) as (base, server):
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            answers = list(pool.map(_calls, [base, base], [0, 100], [8, 8], [max_rpm, max_rpm]))
    assert answers == [list(range(8)), list(range(100, 108))]
    arrivals = [r["t"] for r in server.seen]
    assert len(arrivals) == 16
    busiest = _most_in_window(arrivals, 3.0)
    if max_rpm:
        # 60/min = one request sent per second, whichever of the 8 threads in 2 processes sends it:
        # 3 in 3 s, +1 at the window's edge, +2 delayed on their way; 16 requests take 15 s, less delays.
        assert busiest <= 6, busiest
        assert max(arrivals) - min(arrivals) >= 15 - 3
    else:  # the control: uncapped, each process's 4 threads send its 8 requests within a second or two
        assert busiest >= 8, busiest


# -- a full disk or a read-only datasets folder: one clear error, nothing half-written -----------------

def _mount_tmpfs(path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    return path


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB file system: fills up part-way through a teacher run."""
    disk = _mount_tmpfs(tmp_path / "small_disk", "size=256k")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


@pytest.fixture
def readonly_disk(tmp_path):
    disk = _mount_tmpfs(tmp_path / "readonly_disk", "size=1m,ro")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def _cli(args, datasets, home):
    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCHGEN_DATASETS": str(datasets)}
    env.pop("BENCHGEN_LLM_MODEL", None)
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=PROJECT_ROOT, env=env,
                          timeout=600)


def _assert_nothing_half_written(root):
    for path in root.rglob("*"):
        assert not path.name.endswith(".tmp"), path  # no temp file or folder of an interrupted write
        if path.is_file() and path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)  # every trace line whole
        elif path.is_file() and path.suffix == ".json":
            json.loads(path.read_text())


@pytest.mark.parametrize("cli", ["teacher", "scenarios"])
@pytest.mark.parametrize("disk", ["readonly_disk", "full"])
def test_cli_on_a_readonly_or_full_datasets_disk_gives_one_clear_error(tmp_path, request, disk, cli):
    if disk == "full":
        datasets = request.getfixturevalue("small_disk")
        subprocess.run(["dd", "if=/dev/zero", f"of={datasets / 'filler'}", "bs=4k"], capture_output=True)
        cause = "no space left on the device (ENOSPC)"
    else:
        datasets, cause = request.getfixturevalue("readonly_disk"), "read-only file system (EROFS)"
    if cli == "teacher":
        episodes = copy_episodes(tmp_path / "episodes", ["pick_cup_place_tray"])
        args = ["teacher_assets.manager", "run", "--episodes", str(episodes)]
    else:
        args = ["benchgen_assets.manager", "generate", "--family", "lever"]
    out = _cli(args, datasets, tmp_path / "home")
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip() == f"error: cannot write {datasets}: {cause}; nothing half-written was left there"
    assert "Traceback" not in out.stdout + out.stderr
    assert sorted(p.name for p in datasets.iterdir()) == ([] if disk == "readonly_disk" else ["filler"])


def test_teacher_cli_when_the_disk_fills_up_mid_run_says_so_once_and_leaves_nothing_half_written(tmp_path, small_disk):
    episodes = copy_episodes(tmp_path / "episodes", ["pick_cup_place_tray", "lamp_on", "apple_into_bowl", "stove_off"])
    out = _cli(["teacher_assets.manager", "run", "--episodes", str(episodes)], small_disk, tmp_path / "home")
    assert out.returncode == 2, out.stdout + out.stderr
    errors = [line for line in out.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "no space left on the device (ENOSPC)" in errors[0] and str(small_disk) in errors[0]
    assert "Traceback" not in out.stdout + out.stderr
    _assert_nothing_half_written(small_disk)


def test_teacher_and_scenario_assets_name_the_path_and_the_cause_on_a_readonly_disk(tmp_path, readonly_disk, monkeypatch):
    monkeypatch.setenv("BENCHGEN_DATASETS", str(readonly_disk))
    episodes = copy_episodes(tmp_path / "episodes", ["pick_cup_place_tray"])
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(episodes_partitions.name, ["pick_cup_place_tray"])
        teacher = materialize([*EPISODE_ASSETS, *TEACHER_CHECKS], partition_key="pick_cup_place_tray",
                              instance=instance, resources=shared_resources(), raise_on_error=False,
                              run_config={"ops": {"oxe_episode": {"config": {"episodes_dir": str(episodes)}}}})
        from benchgen_assets.defs.assets import generation_request
        from benchgen_assets.defs.partitions import SCENARIOS

        instance.add_dynamic_partitions(SCENARIOS, ["lever_0"])
        scenario = materialize([generation_request], partition_key="lever_0", instance=instance, raise_on_error=False,
                               resources=shared_resources(),
                               run_config={"ops": {"generation_request": {"config": {"family": "lever", "tier": 1}}}})
    for result in (teacher, scenario):
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
        message = (failure.cause or failure).message
        assert "DatasetWriteError: cannot write " + str(readonly_disk) in message
        assert "read-only file system (EROFS)" in message
    assert list(readonly_disk.iterdir()) == []
