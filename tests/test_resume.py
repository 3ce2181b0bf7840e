"""kill -9 mid-batch, then the same command again: it finishes from the LLM cache, leaves no partial
files, and its outputs are those of an uninterrupted run (issue 11, point 4b). Real CLIs in
subprocesses on temp Dagster homes and datasets roots."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resources.paths import PROJECT_ROOT

SAMPLES = PROJECT_ROOT / "datasets" / "oxe"
EPISODES = ["pick_cup_place_tray", "apple_into_bowl", "lamp_on", "open_drawer", "stove_off", "close_cabinet_door"]
# What depends on when and how a call was answered, not on what was answered: a cache hit spends no
# tokens and no attempts.
CALL_ACCOUNTING = {"latency_s", "cache_hit", "prompt_tokens", "completion_tokens", "cost_usd", "attempts"}


def _env(datasets: Path, home: Path, sandbox: Path) -> dict:
    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCHGEN_DATASETS": str(datasets),
           "BENCHGEN_SANDBOX_DIR": str(sandbox), "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("BENCHGEN_LLM_MODEL", None)
    return env


def _run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=PROJECT_ROOT, env=env,
                          timeout=900)


def _kill_when(args, env, ready, what: str, timeout: float = 600, whole_group: bool = True) -> None:
    """Start the CLI in a process group of its own, wait until ``ready()``, then SIGKILL the whole group,
    or the CLI process alone (its workers must then die with it)."""
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=PROJECT_ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the CLI finished (rc {proc.returncode}) before {what}: nothing was interrupted")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:.0f} s")
            time.sleep(0.05)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL) if whole_group else proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()
        gone = _wait_group_gone(proc.pid)
        if not gone:
            os.killpg(proc.pid, signal.SIGKILL)
    assert gone, "workers of the killed CLI lived on"


def _wait_group_gone(pgid: int, timeout: float = 30) -> bool:
    """Until the killed workers have exited (as a user who runs the command again a moment later); a
    zombie not reaped yet counts as gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [stat for stat in Path("/proc").glob("[0-9]*/stat") if _in_group_and_running(stat, pgid)]:
            return True
        time.sleep(0.05)
    return False


def _in_group_and_running(stat: Path, pgid: int) -> bool:
    try:
        state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
    except (OSError, IndexError):  # exited meanwhile
        return False
    return int(group) == pgid and state != "Z"


def _temp_files(root: Path) -> list[Path]:
    """Leftovers of an interrupted atomic write, folder swap or removal (``resources.atomic``: all ``.tmp``)."""
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def _traces(datasets: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((datasets / "traces" / "llm").rglob("*.jsonl"))
            for line in path.read_text().splitlines()]


def _audit(path: Path) -> dict:
    log = json.loads(path.read_text())
    log["agents"] = [{k: v for k, v in call.items() if k not in CALL_ACCOUNTING} for call in log["agents"]]
    return log


def _proposer_rows(datasets: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return sorted(pq.read_table(datasets / "proposer" / "proposer_dataset.parquet").to_pylist(),
                  key=lambda r: r["episode_id"])


@pytest.fixture(scope="module")
def teacher_reference(tmp_path_factory):
    """The episodes, and an uninterrupted teacher CLI run over them into a datasets root of its own."""
    tmp = tmp_path_factory.mktemp("teacher")
    episodes = tmp / "episodes"
    for name in EPISODES:
        shutil.copytree(SAMPLES / name, episodes / name)
    args = ["teacher_assets.manager", "run", "--episodes", str(episodes), "--workers", "2"]
    whole = _run(args, _env(tmp / "reference", tmp / "home_reference", tmp / "sbx"))
    assert whole.returncode == 0, whole.stdout + whole.stderr
    return args, tmp / "reference"


# Where the kill lands: amid the LLM stages (the first trace of the architect), or amid the writes of
# the episodes' outputs (the first outcome record); and whether it hits the CLI's whole process group or
# the CLI process alone (its workers die with it, as the kernel is told to kill them when it dies).
KILL_POINTS = {"llm_stages": ("traces/llm/bt_draft", "*.jsonl", True),
               "output_writes": ("proposer/_outcomes", "*.json", True),
               "cli_process_alone": ("traces/llm/bt_draft", "*.jsonl", False)}


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_teacher_cli_killed_mid_batch_resumes_from_the_cache_with_the_outputs_of_an_uninterrupted_run(
        tmp_path, teacher_reference, kill_point):
    args, reference = teacher_reference
    resumed = tmp_path / "resumed"
    env = _env(resumed, tmp_path / "home_resumed", tmp_path / "sbx")
    folder, pattern, whole_group = KILL_POINTS[kill_point]
    _kill_when(args, env, lambda: (resumed / folder).is_dir() and any((resumed / folder).glob(pattern)), folder,
               whole_group=whole_group)
    assert not (resumed / "proposer" / "proposer_dataset.parquet").exists()  # killed before the end
    before_kill = _traces(resumed)
    answered = {t["prompt_hash"] for t in before_kill if t["outcome"] == "ok"}
    cached = {p.stem[:16] for p in (resumed / "cache" / "llm").rglob("*.json")}  # prompt hash: the key's start
    # Every reply traced as answered is in the cache (the cache is written first); a reply the kill caught
    # between its cache entry and its trace (one call in flight per worker) is cached all the same.
    assert answered and answered <= cached
    assert len(cached - answered) <= 2

    again = _run(args, env)
    assert again.returncode == 0, again.stdout + again.stderr
    # The runs the kill stopped are FAILED now, by the rerun's start, with why; none is left STARTED.
    failed = _runs_of(tmp_path / "home_resumed", "FAILURE")
    assert failed and not _runs_of(tmp_path / "home_resumed", "STARTED")
    for run_id, message in failed.items():
        assert re.fullmatch(r"worker pid \d+ died \(killed\?\) — its partitions are re-run", message), message
        assert f"run {run_id} marked FAILED: {message}" in again.stdout
    _assert_rerun_asks_only_what_the_cache_lacked(resumed, reference, before_kill, cached)
    _assert_outputs_of_an_uninterrupted_run(resumed, reference)


def _assert_rerun_asks_only_what_the_cache_lacked(resumed: Path, reference: Path, before_kill: list[dict],
                                                  cached: set[str]) -> None:
    rerun = _new_trace_lines(resumed, before_kill)
    # Every call answered and cached before the kill comes from the cache: 0 new LLM calls for finished stages.
    new_calls = {t["prompt_hash"] for t in rerun if t["outcome"] == "ok"}
    assert not new_calls & cached
    assert {t["prompt_hash"] for t in rerun if t["outcome"] == "cache_hit"} >= cached
    # ...and the rerun asks the model exactly what the uninterrupted run asked and the cache lacked.
    assert new_calls == {t["prompt_hash"] for t in _traces(reference) if t["outcome"] == "ok"} - cached


def _assert_outputs_of_an_uninterrupted_run(resumed: Path, reference: Path) -> None:
    assert _temp_files(resumed) == []
    ref, got = reference / "proposer", resumed / "proposer"
    accepted = sorted(p.parent.name for p in ref.glob("*/bt.xml"))
    assert accepted and sorted(p.parent.name for p in got.glob("*/bt.xml")) == accepted
    for name in accepted:
        assert (got / name / "bt.xml").read_text() == (ref / name / "bt.xml").read_text(), name
        assert _audit(got / name / "audit_log.json") == _audit(ref / name / "audit_log.json"), name
        assert (got / name / "subtree_map.json").read_text() == (ref / name / "subtree_map.json").read_text(), name
    assert sorted(p.name for p in (got / "_outcomes").iterdir()) == sorted(p.name for p in (ref / "_outcomes").iterdir())
    assert _proposer_rows(resumed) == _proposer_rows(reference)


def _runs_of(home: Path, status: str) -> dict[str, str]:
    """Run id → the message of its failure (or "") of the runs in ``status`` in the Dagster instance at ``home``."""
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

    with DagsterInstance.from_config(str(home)) as instance:
        return {r.dagster_run.run_id: next((e.message for e in instance.all_logs(
                    r.dagster_run.run_id, of_type=DagsterEventType.RUN_FAILURE)), "")
                for r in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus[status]]))}


def test_teacher_cli_one_of_whose_workers_is_killed_fails_only_its_episodes_and_the_rerun_completes_them(
        tmp_path, teacher_reference, monkeypatch):
    """kill -9 of one run worker, the CLI and its other worker alive: that worker's episodes fail with a
    clear reason and its run ends FAILED; the other run's episodes finish; the same command again does
    the rest from the cache."""
    from dagster import DagsterInstance

    args, reference = teacher_reference
    resumed, home = tmp_path / "resumed", tmp_path / "home"
    home.mkdir()  # the project's instance settings: its "llm" pool, whose slots a killed run must not keep
    shutil.copyfile(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = _env(resumed, home, tmp_path / "sbx")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    killed, returncode, first = _kill_one_worker(args, env, resumed, "episodes")
    assert returncode == 1, first  # the CLI itself lived on and said some episodes failed
    assert "Traceback" not in first, first
    reason = f"worker pid {killed['pid']} died (killed by SIGKILL) before its run finished"
    summary = first.split("\nsummary\n", 1)[1]
    assert f"  failed    {len(killed['partitions'])}\n" in summary
    for episode in killed["partitions"]:
        assert f"    - {episode}: {reason}" in summary
    survivors = sorted(set(EPISODES) - set(killed["partitions"]))
    assert sorted(p.parent.name for p in (resumed / "proposer").glob("*/bt.xml")) == sorted(
        name for name in survivors if (reference / "proposer" / name / "bt.xml").exists())
    # Its run is FAILED already (the CLI saw its worker die), and holds no slot of the llm pool.
    message = _runs_of(home, "FAILURE")[killed["run_id"]]
    assert message == f"worker pid {killed['pid']} died (killed?) — its partitions are re-run"
    assert f"run {killed['run_id']} marked FAILED: {message}" in first
    with DagsterInstance.get() as instance:
        assert killed["run_id"] not in instance.event_log_storage.get_concurrency_info("llm").active_run_ids
    captured = home / "storage" / killed["run_id"] / "compute_logs"  # kept, and closed as a finished run's
    assert sorted(p.stem for p in captured.glob("*.out")) == sorted(p.stem for p in captured.glob("*.complete")) != []
    assert _temp_files(resumed) == [] and _temp_files(home) == []

    before_kill = _traces(resumed)
    cached = {p.stem[:16] for p in (resumed / "cache" / "llm").rglob("*.json")}
    killed_prompts = {t["prompt_hash"] for t in before_kill
                      if t["partition"] in killed["partitions"] and t["outcome"] == "ok"}
    assert killed_prompts and killed_prompts <= cached
    again = _run(args, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "marked FAILED" not in again.stdout  # nothing left to mark
    _assert_rerun_asks_only_what_the_cache_lacked(resumed, reference, before_kill, cached)
    _assert_outputs_of_an_uninterrupted_run(resumed, reference)


def _kill_one_worker(args, env, datasets: Path, partitions_name: str) -> tuple[dict, int, str]:
    """Run the CLI and, once one of its runs has traced an LLM call for one of its partitions, SIGKILL that
    run's worker alone (by the run's worker tag). The killed ``{"pid", "run_id", "partitions"}``, the
    CLI's return code and its output."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    from resources.run_workers import WORKER_PID_TAG
    from teacher_assets.manager import RANGE_END_TAG, RANGE_START_TAG

    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    traces, killed = datasets / "traces" / "llm", {}
    deadline = time.monotonic() + 600
    while not killed and proc.poll() is None and time.monotonic() < deadline:
        if traces.is_dir():  # the runs are under way (opening the instance while the CLI creates it races)
            with DagsterInstance.get() as instance:
                for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
                    tags = record.dagster_run.tags
                    if RANGE_START_TAG in tags:
                        order = instance.get_dynamic_partitions(partitions_name)
                        partitions = order[order.index(tags[RANGE_START_TAG]):order.index(tags[RANGE_END_TAG]) + 1]
                    else:
                        partitions = [tags.get("dagster/partition")]
                    if WORKER_PID_TAG in tags and any(any(traces.glob(f"*/{p}.jsonl")) for p in partitions):
                        os.kill(int(tags[WORKER_PID_TAG]), signal.SIGKILL)
                        killed = {"pid": tags[WORKER_PID_TAG], "run_id": record.dagster_run.run_id,
                                  "partitions": partitions}
                        break
        time.sleep(0.05)
    first = proc.communicate(timeout=900)[0]
    assert killed, f"no worker was killed once its run had called the LLM:\n{first}"
    return killed, proc.returncode, first


def _new_trace_lines(datasets: Path, before: list[dict]) -> list[dict]:
    """Trace lines appended after ``before`` was read (files are append-only, one per asset and episode)."""
    seen: dict[tuple, int] = {}
    for t in before:
        seen[t["asset"], t["partition"]] = seen.get((t["asset"], t["partition"]), 0) + 1
    new = []
    for path in sorted((datasets / "traces" / "llm").rglob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        if lines:
            new += lines[seen.get((lines[0]["asset"], lines[0]["partition"]), 0):]
    return new


_KILLED_MID_SWAP = """
import sys, time
from pathlib import Path
from resources.atomic import replace_dir

def build(tmp):
    (tmp / "part.txt").write_text("half")
    Path(sys.argv[2]).touch()  # tells the test the temp folder exists
    time.sleep(600)

replace_dir(Path(sys.argv[1]), build)
"""


def test_a_rerun_removes_the_temp_folder_of_a_writer_killed_mid_write_and_keeps_a_live_writers(tmp_path):
    from resources.atomic import remove_stale_scratch, replace_dir

    target, started = tmp_path / "ep", tmp_path / "started"
    replace_dir(target, lambda tmp: (tmp / "bt.xml").write_text("whole"))
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_MID_SWAP, str(target), str(started)], env=env)
    deadline = time.monotonic() + 120
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leftover = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftover) == 1 and (leftover[0] / "part.txt").read_text() == "half"

    def build_while_sweeping(tmp):  # this process's own write in progress is not stale
        (tmp / "bt.xml").write_text("new")
        assert remove_stale_scratch(tmp_path) == leftover

    replace_dir(target, build_while_sweeping)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep", "started"]
    assert (target / "bt.xml").read_text() == "new"


def _scene_files(datasets: Path) -> dict[str, str]:
    root = datasets / "benchmarks"
    return {str(p.relative_to(root)): p.read_text() for name in ("scene.xml", "task.json") for p in root.rglob(name)}


SCENARIO_ARGS = ["benchgen_assets.manager", "generate", "--family", "lever", "--count", "2", "--parallel", "2"]


@pytest.fixture(scope="module")
def scenario_reference(tmp_path_factory):
    """An uninterrupted scenario CLI run (two levers, two workers) into a datasets root of its own."""
    from benchgen_assets.sandbox import shutdown_server

    tmp = tmp_path_factory.mktemp("scenarios")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHGEN_SANDBOX_DIR", str(tmp / "sbx"))
        try:
            whole = _run(SCENARIO_ARGS, _env(tmp / "reference", tmp / "home_reference", tmp / "sbx"))
            assert whole.returncode == 0, whole.stdout + whole.stderr
        finally:
            shutdown_server()
    assert len([k for k in _scene_files(tmp / "reference") if k.endswith("scene.xml")]) >= 2
    return tmp / "reference"


def test_scenario_cli_whose_build_server_is_killed_mid_batch_reruns_to_the_outputs_of_an_uninterrupted_run(
        tmp_path, monkeypatch, scenario_reference):
    from benchgen_assets.sandbox import server_status, shutdown_server

    resumed, sandbox = tmp_path / "resumed", tmp_path / "sbx_resumed"
    try:
        env = _env(resumed, tmp_path / "home_resumed", sandbox)
        monkeypatch.setenv("BENCHGEN_SANDBOX_DIR", str(sandbox))
        proc = subprocess.Popen([sys.executable, "-m", *SCENARIO_ARGS], cwd=PROJECT_ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline, killed = time.monotonic() + 600, None
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            status = server_status() if (sandbox / "server.sock").exists() else None
            if status and status.get("jobs_started", 0) >= 1:  # a build is under way
                os.kill(status["pid"], signal.SIGKILL)
                killed = status["pid"]
            time.sleep(0.05)
        first = proc.communicate(timeout=900)[0]
        assert killed, f"the build server never started a build:\n{first}"
        # The CLI either restarted the server and finished, or failed its scenarios with a clear error.
        assert "Traceback" not in first, first

        again = _run(SCENARIO_ARGS, env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert status_pid_changed(killed)
        assert _temp_files(resumed / "benchmarks") == []
        assert _scene_files(resumed) == _scene_files(scenario_reference)
    finally:
        shutdown_server()


def test_scenario_cli_one_of_whose_workers_is_killed_fails_only_its_scenario_and_the_rerun_completes_it(
        tmp_path, monkeypatch, scenario_reference):
    """kill -9 of one of the two run workers (one scenario each) once its scenario's agents have answered:
    that scenario fails with a clear reason and its run ends FAILED, the other is built; the same command
    again builds the first from the cache."""
    from benchgen_assets.defs.partitions import SCENARIOS
    from benchgen_assets.sandbox import shutdown_server

    resumed, home, sandbox = tmp_path / "resumed", tmp_path / "home", tmp_path / "sbx"
    env = _env(resumed, home, sandbox)
    monkeypatch.setenv("BENCHGEN_SANDBOX_DIR", str(sandbox))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    try:
        killed, returncode, first = _kill_one_worker(SCENARIO_ARGS, env, resumed, SCENARIOS)
        (scenario,) = killed["partitions"]
        assert returncode == 1 and "Traceback" not in first, first
        assert (f"FAILED {scenario}: worker pid {killed['pid']} died (killed by SIGKILL) before its run "
                "finished") in first.split("== summary ==", 1)[1]
        others = {k for k in _scene_files(scenario_reference) if not k.startswith(f"{scenario}/")}
        assert others and others <= set(_scene_files(resumed))  # the other worker's scenario was built
        message = _runs_of(home, "FAILURE")[killed["run_id"]]
        assert message == f"worker pid {killed['pid']} died (killed?) — its partitions are re-run"
        assert f"run {killed['run_id']} marked FAILED: {message}" in first
        assert _temp_files(resumed / "benchmarks") == [] and _temp_files(home) == []

        before_kill = _traces(resumed)
        asked = {t["prompt_hash"] for t in before_kill if t["partition"] == scenario and t["outcome"] == "ok"}
        assert asked
        again = _run(SCENARIO_ARGS, env)
        assert again.returncode == 0, again.stdout + again.stderr
        rerun = _new_trace_lines(resumed, before_kill)
        assert not {t["prompt_hash"] for t in rerun if t["outcome"] == "ok"} & asked  # from the cache instead
        assert {t["prompt_hash"] for t in rerun if t["outcome"] == "cache_hit"} >= asked
        assert _temp_files(resumed / "benchmarks") == []
        assert _scene_files(resumed) == _scene_files(scenario_reference)
    finally:
        shutdown_server()


def status_pid_changed(killed: int) -> bool:
    from benchgen_assets.sandbox import server_status

    status = server_status()
    return bool(status) and status["pid"] != killed


_ONE_CALL = """
import sys
from benchgen_assets.authoring.agents import REVIEWER_ROLE
from benchgen_assets.records import ReviewVerdict
from resources.llm import LLMClient, LLMSettings, input_block

client = LLMClient(LLMSettings(cache_dir=sys.argv[1], traces_dir=sys.argv[2]), asset="review", partition="p1")
client.complete(role=REVIEWER_ROLE, messages=[{"role": "user", "content": input_block({"code": "x = 1"})}],
                schema=ReviewVerdict, prompt_version="kill-9")
"""


def test_a_reply_is_in_the_cache_before_its_trace_so_a_kill_between_them_neither_loses_nor_double_counts_it(tmp_path):
    """The trace file is a named pipe: the caller's open of it waits for the test to open the other end,
    so the test learns the moment the first trace record is being written and kills the caller there."""
    import threading

    from resources.llm import LLMClient, LLMSettings

    cache, traces = tmp_path / "cache", tmp_path / "traces"
    settings = LLMSettings(cache_dir=str(cache), traces_dir=str(traces))
    assert settings.is_offline
    trace = LLMClient(settings, asset="review", partition="p1").trace_path
    trace.parent.mkdir(parents=True)
    os.mkfifo(trace)
    reader: dict = {}
    opened = threading.Thread(target=lambda: reader.setdefault("fd", os.open(trace, os.O_RDONLY)), daemon=True)
    opened.start()
    proc = subprocess.Popen([sys.executable, "-c", _ONE_CALL, str(cache), str(traces)], cwd=PROJECT_ROOT,
                            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, stderr=subprocess.PIPE, text=True)
    opened.join(timeout=300)
    if opened.is_alive():  # the call never wrote a trace: unblock our open, then report why
        proc.kill()
        os.close(os.open(trace, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"the call never wrote its trace (rc {proc.wait()}): {proc.stderr.read()}")
    proc.send_signal(signal.SIGKILL)  # the caller is writing its first trace record: the "ok" of the paid reply
    proc.wait()
    os.close(reader["fd"])
    assert proc.returncode == -signal.SIGKILL
    entries = [p for p in cache.rglob("*.json")]
    assert len(entries) == 1, "the reply was not in the cache when its trace was written"
    paid = json.loads(entries[0].read_text())["paid"]
    assert paid["prompt_tokens"] > 0 and paid["completion_tokens"] > 0  # what the reply cost stays with it

    trace.unlink()  # the same call again, in a new process: from the cache, and traced once, as a hit
    again = subprocess.run([sys.executable, "-c", _ONE_CALL, str(cache), str(traces)], cwd=PROJECT_ROOT,
                           env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert [json.loads(line)["outcome"] for line in trace.read_text().splitlines()] == ["cache_hit"]
    assert [p for p in cache.rglob("*.json")] == entries
