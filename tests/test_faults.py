"""A batch with 30 % injected LLM faults (malformed replies, timeouts, 429s) ends with every partition
accounted for (issue 11, point 4a): accepted, rejected or skipped with a reason, or failed with an error
that names the agent, the partition and the injected cause; in the CLI's output and in the Dagster
instance alike; nothing half-written. Real CLIs in subprocesses on a fresh Dagster home and datasets root."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from bench.bench_scale import reworded_episodes
from tests.outcomes import injected_faults, instance_at, latest_metadata
from tests.test_scale import _assert_nothing_half_written, _cli

# Few retries, so that some partitions do fail within a small batch; no backoff to wait through.
FAULTS = ["--faults", "0.3", "--llm-backoff-s", "0"]
# An agent call that failed for good, as the client words it: who, where, and why.
GAVE_UP = (r"LLMCallError: agent '[\w.]+' \(asset (?P<asset>\w+), partition (?P<partition>\S+)\) "
           r"(?:failed, gave up after \d+ attempts: (?:Timeout|RateLimitError): .*offline author: injected "
           r"(?:timeout|rate limit) \([\w.]+\)|gave no valid \w+ after \d+ replies; last parse error: .+)$")


def test_a_30_percent_fault_teacher_batch_accounts_for_every_episode(tmp_path):
    episodes = reworded_episodes(tmp_path / "episodes", 24)
    ids = sorted(p.name for p in episodes.iterdir())
    datasets, home = tmp_path / "datasets", tmp_path / "home"
    out = _cli(["teacher_assets.manager", "run", "--episodes", str(episodes), "--workers", "2", *FAULTS,
                "--llm-retries", "1"], datasets, home)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr

    # The CLI: one line per episode, its outcome and, unless accepted, why.
    lines = re.findall(r"^\[\d+/\d+\] (\S+): (\w+)(?: \(repaired\))?(?: — (.+))?$", out.stdout, re.M)
    printed = {episode: (status, reason) for episode, status, reason in lines}
    assert len(lines) == len(ids) and sorted(printed) == ids, out.stdout
    assert {status for status, _ in printed.values()} <= {"accepted", "skipped", "invalid", "rejected", "failed"}
    failed = sorted(e for e, (status, _) in printed.items() if status == "failed")
    assert failed and len(failed) < len(ids), out.stdout  # some episodes lost a call for good, not all
    assert out.returncode == 1  # some failed: the CLI says so in its exit code
    for episode, (status, reason) in printed.items():
        if status == "accepted":
            continue
        assert reason.strip(), (episode, status)
        if status == "failed":  # the stage, the agent, this episode and the injected cause
            match = re.fullmatch(r"(\w+) raised " + GAVE_UP, reason)
            assert match and match["partition"] == episode and match["asset"] == match[1], reason
    assert f"failed    {len(failed)}" in out.stdout

    # The instance: every episode's bt_score materialized with the same outcome and reason, and the
    # stage that failed says it stopped there.
    score = latest_metadata(home, "bt_score")
    assert sorted(score) == ids
    for episode, (status, reason) in printed.items():
        assert score[episode]["episode_status"] == status
        if reason:
            assert score[episode]["reason"] == reason
    for episode in failed:
        stage = printed[episode][1].split(" raised ", 1)[0]
        assert latest_metadata(home, stage)[episode]["stage_result"] == "STOPPED HERE (failed)"

    # The faults were real: the traces hold injected timeouts, 429s and malformed replies.
    kinds = injected_faults(datasets)
    assert kinds["timeout"] and kinds["rate_limit"] and kinds["malformed"], kinds

    # Nothing half-written: whole files only; outputs for exactly the accepted episodes.
    _assert_nothing_half_written(datasets)
    import pandas as pd

    accepted = sorted(e for e, (status, _) in printed.items() if status == "accepted")
    proposer = datasets / "proposer"
    assert sorted(pd.read_parquet(proposer / "proposer_dataset.parquet")["episode_id"]) == accepted
    for episode in ids:
        files = sorted(p.name for p in (proposer / episode).iterdir()) if (proposer / episode).exists() else []
        assert files == (["audit_log.json", "bt.xml", "subtree_map.json"] if episode in accepted else []), episode
        assert (proposer / "_outcomes" / f"{episode}.json").exists() == (episode not in failed), episode


def test_a_30_percent_fault_scenario_batch_accounts_for_every_scenario(tmp_path, private_build_server):
    datasets, home = tmp_path / "datasets", tmp_path / "home"
    out = _cli(["benchgen_assets.manager", "generate", "--tier", "1", "--count", "8", "--variants", "1",
                "--parallel", "2", *FAULTS, "--llm-retries", "0"], datasets, home)

    # The CLI: one line per scenario, valid variants or the error.
    lines = re.findall(r"^\[\d+/\d+\] (\S+) \w* attempts=\S+ (?:(\d+)/(\d+) valid|FAILED: (.+)) \([\d.]+ s\)$",
                       out.stdout, re.M)
    printed = {sid: (int(valid or 0), int(total or 0), error) for sid, valid, total, error in lines}
    ids = [f"t1-s0-{i:03d}" for i in range(8)]
    assert sorted(printed) == ids and len(lines) == len(ids), out.stdout
    failed = sorted(sid for sid, (_, _, error) in printed.items() if error)
    assert failed and len(failed) < len(ids), out.stdout
    assert out.returncode == 1
    gave_up = {sid: re.fullmatch(r"(\w+): " + GAVE_UP, printed[sid][2]) for sid in failed}
    assert any(gave_up.values()), out.stdout
    for sid in failed:  # an agent call that failed for good, or (no valid variant) the checks that said no
        match = gave_up[sid]
        assert (match and match["partition"] == sid and match["asset"] == match[1]
                or re.fullmatch(r"blocking check\(s\) failed: \w+.* — .+", printed[sid][2])), printed[sid][2]
        assert f"FAILED {sid}: {printed[sid][2]}" in out.stdout  # again in the summary
    for sid in set(ids) - set(failed):
        assert printed[sid][:2] == (1, 1), (sid, printed[sid])

    # The instance: every scenario's preview step recorded it, rendered or why not; a failed one's
    # stage carries the very error the CLI printed.
    preview = latest_metadata(home, "scenario_preview")
    assert sorted(preview) == ids
    for sid in ids:
        if gave_up.get(sid):
            stage = gave_up[sid][1]
            assert latest_metadata(home, stage)[sid]["scenario_error"] == printed[sid][2]
            assert latest_metadata(home, stage)[sid]["failed_stage"] == stage
        if sid in failed:
            assert preview[sid]["rendered"] == 0 and preview[sid]["scenario_error"].startswith("not rendered")
        else:
            assert preview[sid]["rendered"] == 1 and "scenario_error" not in preview[sid]

    kinds = injected_faults(datasets)
    assert kinds["timeout"] + kinds["rate_limit"] and kinds["malformed"], kinds

    _assert_nothing_half_written(datasets)
    import pandas as pd

    manifest = pd.read_parquet(datasets / "benchmarks" / "manifest.parquet")
    assert sorted(set(manifest["scenario_id"])) == sorted(sid for sid in ids if not gave_up.get(sid))
    for sid in set(ids) - set(failed):
        assert {"scene.xml", "task.json", "validation.json"} <= {p.name for p in (datasets / "benchmarks" / sid / "v00").iterdir()}


def test_the_fault_rate_is_the_share_of_calls_that_get_one_of_the_three_faults(datasets_dir):
    """``--faults 0.3`` through the resource the CLIs build: with no retry, 30 % of calls fail, a third each."""
    from benchgen_assets.authoring.agents import REVIEWER_ROLE
    from benchgen_assets.records import ReviewVerdict
    from resources.dagster_resources import LLMResource
    from resources.llm import LLMCallError, LLMClient, input_block
    from resources.llm_options import LLMOptions

    llm = LLMResource(**LLMOptions(faults=0.3, fault_seed=3, max_retries=0).resource_fields(), max_parse_attempts=1,
                      use_cache=False)
    client = LLMClient(llm.settings(), asset="fault_rate")
    calls, failures = 600, Counter()
    for i in range(calls):
        try:
            client.complete(role=REVIEWER_ROLE, messages=[{"role": "user", "content": input_block({"code": f"# {i}"})}],
                            schema=ReviewVerdict, prompt_version="fault-rate")
        except LLMCallError as exc:
            kind = re.search(r"injected (timeout|rate limit)|(gave no valid)", str(exc))
            failures[kind[1] or "malformed" if kind else str(exc)] += 1
    assert set(failures) == {"timeout", "rate limit", "malformed"}, failures
    assert abs(sum(failures.values()) / calls - 0.3) < 0.06, failures  # 3 standard deviations of a binomial
    assert all(abs(n / calls - 0.1) < 0.04 for n in failures.values()), failures


@pytest.mark.parametrize("cli", ["teacher", "scenarios"])
def test_a_one_partition_run_that_loses_its_call_fails_its_step_naming_the_cause(tmp_path, cli, private_build_server):
    """A run over one partition fails the step as any Dagster step (no range to carry on with): the
    instance's step failure and the CLI's line both name the agent, the partition and the injected cause."""
    from dagster import DagsterEventType

    datasets, home = tmp_path / "datasets", tmp_path / "home"
    every_call_fails = ["--faults", "1", "--llm-retries", "0", "--llm-backoff-s", "0"]
    if cli == "teacher":
        episodes = reworded_episodes(tmp_path / "episodes", 1)
        partition = next(episodes.iterdir()).name
        out = _cli(["teacher_assets.manager", "run", "--episodes", str(episodes), *every_call_fails], datasets, home)
        line = re.search(rf"^\[1/1\] {partition}: failed — failed step feasibility: (.+)$", out.stdout, re.M)
    else:
        partition = "lever-s0-000"
        out = _cli(["benchgen_assets.manager", "generate", "--family", "lever", "--variants", "1", *every_call_fails],
                   datasets, home)
        line = re.search(rf"^\[1/1\] {partition} +attempts=- FAILED: scenario_plan: (.+) \([\d.]+ s\)$", out.stdout, re.M)
    assert out.returncode == 1 and line, out.stdout + out.stderr
    match = re.fullmatch(r"(?:\w+\.)*" + GAVE_UP, line[1])
    assert match and match["partition"] == partition, line[1]

    with instance_at(home) as instance:
        [run] = [r for r in instance.get_runs() if r.tags.get("dagster/partition") == partition]
        failures = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    [failure] = failures
    error = failure.dagster_event.event_specific_data.error
    assert failure.dagster_event.step_key == match["asset"] and line[1] in (error.cause or error).message
    _assert_nothing_half_written(datasets)
