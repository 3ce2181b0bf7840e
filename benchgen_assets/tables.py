"""The two dataset tables, built from disk so they cover every scenario ever materialized.

- manifest: one row per variant (ScenarioManifest + ValidationReport fields), from each
  ``<id>/scenario.json``.
- traces: one row per planner / coder / reviewer / validator step of every attempt (prompt,
  reply, verdict, validator feedback, tokens), from ``plan.json`` + ``attempts/attempts.json``,
  joined with the LLM call log (``datasets/traces/llm``) for the per-call outcomes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from benchgen_assets import layout
from benchgen_assets.records import AgentStep, CoderAttempt, ScenarioValidation

MANIFEST_COLUMNS = ["scenario_id", "variant_id", "name", "title", "tier", "family", "status", "seed", "scale",
                    "parameters", "dir", "mjcf_path", "stl_paths", "validation_path", "preview_path", "mjcf_sha256",
                    "stl_sha256", "script_sha256", "instruction", "predicate", "success_metric", "oracle_time_s",
                    "time_limit_s", "passed", "failed_stage", "failure", "max_velocity",
                    "max_penetration_m", "warnings", "stages", "timings_s"]


def _scenario_dirs() -> list[Path]:
    root = layout.benchmarks_root()
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and d.name not in layout.RESERVED and not d.name.startswith("."))


def manifest_rows() -> list[dict]:
    rows = []
    datasets = layout.benchmarks_root().parent
    for d in _scenario_dirs():
        path = d / "scenario.json"
        if not path.exists():
            continue
        validation = ScenarioValidation.model_validate_json(path.read_text())
        for v in validation.variants:
            m, r = v.manifest, v.report
            failed = r.first_failure()
            preview = datasets / m.dir / "preview.png"
            rows.append({
                **m.model_dump(mode="json", exclude={"parameters", "preview_path"}),
                "parameters": json.dumps(m.parameters, sort_keys=True),
                "preview_path": str(preview.relative_to(datasets)) if preview.exists() else None,
                "scale": list(m.scale),
                "passed": r.passed,
                "failed_stage": failed.name if failed else None,
                "failure": (failed.message if failed else None),
                "max_velocity": r.max_velocity,
                "max_penetration_m": r.max_penetration_m,
                "warnings": list(r.warnings),
                "stages": json.dumps([s.model_dump(mode="json") for s in r.stages]),
                "timings_s": json.dumps(r.timings_s, sort_keys=True),
            })
    return rows


def manifest_table():
    import pandas as pd

    return pd.DataFrame(manifest_rows(), columns=MANIFEST_COLUMNS)


TRACE_COLUMNS = ["scenario_id", "attempt", "step", "role", "prompt_version", "prompt_hash", "prompt", "reply",
                 "verdict", "issues", "validator_feedback", "failed_stage", "prompt_tokens", "completion_tokens",
                 "cost_usd", "latency_s", "cache_hit", "llm_outcomes", "final_accepted"]


def _llm_outcomes() -> dict[tuple[str, str], list[str]]:
    """(partition, prompt hash) → outcomes of every litellm call made for it (ok, parse_error …)."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    root = layout.llm_traces_root()
    for f in sorted(root.glob("scenario_*/*.jsonl")) if root.is_dir() else []:
        for line in f.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash: the rest of the log still counts
            out[(rec.get("partition") or "", rec.get("prompt_hash") or "")].append(rec.get("outcome"))
    return out


def _agent_row(sid: str, attempt: int, step: str, agent: AgentStep, outcomes) -> dict:
    return {"scenario_id": sid, "attempt": attempt, "step": step, "role": agent.role,
            "prompt_version": agent.prompt_version, "prompt_hash": agent.prompt_hash,
            "prompt": json.dumps(agent.messages), "reply": agent.reply, "prompt_tokens": agent.prompt_tokens,
            "completion_tokens": agent.completion_tokens, "cost_usd": agent.cost_usd, "latency_s": agent.latency_s,
            "cache_hit": agent.cache_hit, "llm_outcomes": outcomes.get((sid, agent.prompt_hash), [])}


def trace_rows() -> list[dict]:
    outcomes = _llm_outcomes()
    rows = []
    for d in _scenario_dirs():
        sid = d.name
        plan_file, attempts_file = d / "plan.json", d / "attempts" / "attempts.json"
        if plan_file.exists():
            planner = AgentStep.model_validate(json.loads(plan_file.read_text())["planner"])
            rows.append({**_agent_row(sid, 0, "planner", planner, outcomes), "verdict": "planned"})
        if not attempts_file.exists():
            continue
        attempts = [CoderAttempt.model_validate(a) for a in json.loads(attempts_file.read_text())]
        final_accepted = bool(attempts) and attempts[-1].accepted
        for a in attempts:
            if a.coder is not None:
                rows.append(_agent_row(sid, a.attempt, "coder", a.coder, outcomes))
            if a.reviewer is not None and a.review is not None:
                rows.append({**_agent_row(sid, a.attempt, "reviewer", a.reviewer, outcomes),
                             "verdict": a.review.decision, "issues": list(a.review.issues)})
            if a.validation is not None:
                failed = a.validation.first_failure()
                rows.append({"scenario_id": sid, "attempt": a.attempt, "step": "validator", "role": "validator",
                             "reply": a.validation.model_dump_json(),
                             "verdict": "passed" if a.validation.passed else "failed",
                             "failed_stage": failed.name if failed else None, "validator_feedback": a.feedback,
                             "latency_s": round(sum(a.validation.timings_s.values()), 3)})
            if a.source == "override":
                rows.append({"scenario_id": sid, "attempt": a.attempt, "step": "override", "role": "human",
                             "reply": a.code, "verdict": "override"})
        for r in rows:
            if r["scenario_id"] == sid:
                r["final_accepted"] = final_accepted
    # Every row has every column, lists never null: parquet gets one type per column.
    return [{**dict.fromkeys(TRACE_COLUMNS), "issues": [], "llm_outcomes": [], **r} for r in rows]


def traces_table():
    import pandas as pd

    df = pd.DataFrame(trace_rows(), columns=TRACE_COLUMNS)
    for col in ("prompt_tokens", "completion_tokens", "attempt"):
        df[col] = df[col].fillna(0).astype("int64")
    for col in ("cache_hit", "final_accepted"):
        df[col] = df[col].fillna(False).astype(bool)
    return df
