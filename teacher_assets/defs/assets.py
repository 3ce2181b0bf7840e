"""The teacher's stages as assets partitioned by episode id; lineage shows where an episode stopped.

Every asset materializes for every episode: a stopped episode passes its state through unchanged
(no tokens spent) and the metadata says where and why it stopped (``stage_result``, ``reason``).

A run covers one episode (a UI launch, the sensor, the nightly refresh) or a range of them (a
backfill: ``BackfillPolicy.multi_run``; the manager CLI): each asset then loops over the run's
partitions, records metadata per partition, and an episode whose stage raises is marked failed
(``episode_status: failed``) instead of failing the others; see ``for_each_episode``.
"""

import os
import warnings
from pathlib import Path
from typing import Callable, Optional

from dagster import (AssetExecutionContext, BackfillPolicy, BetaWarning, Config, DynamicPartitionsDefinition,
                     MetadataValue, Output, asset)
from pydantic import Field

from resources.dagster_prompts import prompt_asset_specs, prompt_key
from resources.dagster_resources import LLM_POOL, PARTITIONS_IO_MANAGER, LLMResource
from resources.paths import datasets_root
from teacher_assets.agents.prompts import PROMPTS_DIR

from .metadata import dialogue_table, scene_markdown, score_table, stage_metadata

# backfill_policy is "beta" in Dagster 1.13; it is what groups a backfill's partitions into range runs.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)

GROUP = "agentic_teacher"
episodes_partitions = DynamicPartitionsDefinition(name="episodes")
EPISODES_PER_RUN_ENV = "BENCHGEN_EPISODES_PER_RUN"


def episodes_per_run() -> int:
    """Partitions per backfill run (``$BENCHGEN_EPISODES_PER_RUN``, default 50): big enough that a run's
    fixed cost is shared, small enough that a backfill still spreads over the run queue's slots."""
    return max(1, int(os.environ.get(EPISODES_PER_RUN_ENV, "50")))


# Shared by the episode assets: a backfill groups their partitions into range runs.
EPISODE_ASSET_ARGS = dict(partitions_def=episodes_partitions, group_name=GROUP, code_version="1",
                          io_manager_key=PARTITIONS_IO_MANAGER,
                          backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=episodes_per_run()))


def proposer_dir() -> Path:
    return datasets_root() / "proposer"


class EpisodeSourceConfig(Config):
    episodes_dir: str = Field("", description="folder of OXE episodes (one sub-folder each); empty: "
                                             "$BENCHGEN_EPISODES_DIR or <datasets>/oxe")


class SceneConfig(Config):
    attach_frames: bool = Field(False, description="send the 9 single frames as well as the contact sheet")


class CriticConfig(Config):
    strict: bool = Field(True, description="strict mode: a critic REJECT (or unresolved critical issues) skips the episode")
    max_iterations: int = Field(2, ge=1, le=5, description="critic reviews at most this many drafts")


class ScoreConfig(Config):
    threshold: int = Field(6, ge=0, le=10, description="every score must reach this for ACCEPT")


def for_each_episode(context: AssetExecutionContext, stage: str, upstream, work: Callable, *, in_flight: int = 1):
    """Run ``work(episode_id, upstream_state) -> (state, metadata)`` for every partition of the run.

    ``upstream`` is the upstream asset's value: the state itself for one partition, ``{id: state}``
    for a range (``PartitionsIOManager``). For one partition an error fails the step, as any Dagster
    step; in a range it marks only that episode failed (its later stages pass it through), so one
    bad episode never takes down the others. ``in_flight`` > 1: that many episodes at once, in
    threads (LLM calls that wait on a hosted model); results are recorded in partition order.
    """
    from concurrent.futures import ThreadPoolExecutor

    from teacher_assets.pipeline import EpisodeState

    keys = context.partition_keys
    states = upstream if len(keys) > 1 else {keys[0]: upstream}

    def guarded(key):
        state: Optional[EpisodeState] = states.get(key) if states is not None else None
        try:
            return work(key, state)
        except Exception as exc:  # noqa: BLE001 — recorded on the episode, never swallowed
            if len(keys) == 1:
                raise
            context.log.error(f"episode {key}: {stage} failed: {type(exc).__name__}: {exc}")
            base = state or EpisodeState(episode_id=key, episode_path="")
            failed = base.stop(stage, "failed", f"{stage} raised {type(exc).__name__}: {exc}")
            return failed, stage_metadata(failed, stage)

    if in_flight > 1 and len(keys) > 1:
        with ThreadPoolExecutor(max_workers=min(in_flight, len(keys)), thread_name_prefix=stage) as pool:
            results = list(pool.map(guarded, keys))
    else:
        results = [guarded(key) for key in keys]
    out = {}
    for key, (state, metadata) in zip(keys, results):
        context.add_asset_metadata(metadata, partition_key=key)
        out[key] = state
    return out if len(keys) > 1 else out[keys[0]]


@asset(**EPISODE_ASSET_ARGS,
       description="The OXE episode (instruction, 9 frames, contact sheet, metadata); invalid → recorded with reason.")
def oxe_episode(context: AssetExecutionContext, config: EpisodeSourceConfig):
    from teacher_assets.episodes.watch import episodes_root, fingerprint_for, teacher_prompt_versions
    from teacher_assets.pipeline import load_stage

    root = Path(config.episodes_dir) if config.episodes_dir else episodes_root()
    prompts = teacher_prompt_versions()

    def work(key, _):
        # Taken before loading: if the folder changes meanwhile, the nightly refresh sees a mismatch and re-runs.
        fingerprint = fingerprint_for(root, key)
        state = load_stage(root, key)
        return state, stage_metadata(state, "oxe_episode", episode_path=state.episode_path,
                                     frames=len(state.frame_paths), contact_sheet_built=state.contact_sheet_built,
                                     episode_fingerprint=fingerprint, teacher_prompts=prompts)

    return for_each_episode(context, "oxe_episode", None, work)


@asset(**EPISODE_ASSET_ARGS, pool=LLM_POOL, deps=[prompt_key("feasibility")],
       description="Agent A (gatekeeper): is the task possible with PAL v1? Infeasible → skipped, no further tokens.")
def feasibility(context: AssetExecutionContext, llm: LLMResource, oxe_episode):
    from teacher_assets.pipeline import feasibility_stage

    def work(key, upstream):
        client = llm.client_for(context, key)
        state = feasibility_stage(client, upstream)
        extra = {}
        if state.feasibility and upstream.running:
            extra = {"feasible": state.feasibility.feasible,
                     "required_primitives": ", ".join(state.feasibility.required_primitives)}
        return state, stage_metadata(state, "feasibility", client, **extra)

    return for_each_episode(context, "feasibility", oxe_episode, work, in_flight=llm.calls_in_flight)


@asset(**EPISODE_ASSET_ARGS, pool=LLM_POOL, deps=[prompt_key("scene_analysis")],
       description="Agent B (vision): situation report from the contact sheet — scene, progression, assessment, hints.")
def scene_report(context: AssetExecutionContext, llm: LLMResource, config: SceneConfig, feasibility):
    from teacher_assets.pipeline import scene_stage

    def work(key, upstream):
        client = llm.client_for(context, key)
        state = scene_stage(client, upstream, attach_frames=config.attach_frames)
        extra = {"report": scene_markdown(state.scene_report)} if state.scene_report and upstream.running else {}
        return state, stage_metadata(state, "scene_report", client, **extra)

    return for_each_episode(context, "scene_report", feasibility, work, in_flight=llm.calls_in_flight)


@asset(**EPISODE_ASSET_ARGS, pool=LLM_POOL, deps=[prompt_key("architect"), prompt_key("critic")],
       description="Agent C (architect) drafts the tree; C.5 (critic) challenges it, up to 2 revisions.")
def bt_draft(context: AssetExecutionContext, llm: LLMResource, config: CriticConfig, scene_report):
    from teacher_assets.pipeline import design_stage

    def work(key, upstream):
        client = llm.client_for(context, key)
        state = design_stage(client, upstream, strict=config.strict, max_iterations=config.max_iterations)
        extra = {}
        if state.design and upstream.running:
            extra = {"critic_dialogue": dialogue_table(state.design), "critic_verdict": state.design.final_verdict,
                     "revisions": state.design.revisions,
                     "draft_xml": MetadataValue.md(f"```xml\n{state.design.bt_xml}\n```")}
        return state, stage_metadata(state, "bt_draft", client, **extra)

    return for_each_episode(context, "bt_draft", scene_report, work, in_flight=llm.calls_in_flight)


@asset(**EPISODE_ASSET_ARGS, pool=LLM_POOL, deps=[prompt_key("robustness"), prompt_key("subtrees")],
       description="Agents D (robustness: retries, fallback recovery) and E (standard subtrees with port remapping).")
def refined_bt(context: AssetExecutionContext, llm: LLMResource, bt_draft):
    from teacher_assets.pipeline import refine_stage

    def work(key, upstream):
        client = llm.client_for(context, key)
        state = refine_stage(client, upstream)
        extra = {}
        if state.refined_xml and upstream.running:
            extra = {"changes": MetadataValue.text("; ".join(state.robustness_changes)),
                     "subtrees": ", ".join(d.id for d in state.subtree_map.subtrees) if state.subtree_map else ""}
        return state, stage_metadata(state, "refined_bt", client, **extra)

    return for_each_episode(context, "refined_bt", bt_draft, work, in_flight=llm.calls_in_flight)


@asset(**EPISODE_ASSET_ARGS, pool=LLM_POOL, deps=[prompt_key("repairer")],
       description="Agent F (police): v4 schema, PAL compliance, BT.CPP load; LLMRepairer on failure; node ids.")
def bt_xml(context: AssetExecutionContext, llm: LLMResource, refined_bt):
    from teacher_assets.pipeline import conformance_stage

    def work(key, upstream):
        client = llm.client_for(context, key)
        state = conformance_stage(client, upstream)
        extra = {}
        if state.conformance and upstream.running:
            c = state.conformance
            extra = {"issues_found": MetadataValue.text("; ".join(f"[{i.code}] {i.message}" for i in c.issues_found) or "none"),
                     "repairs": len(c.repairs), "repaired": state.repaired}
            if state.bt_xml:
                extra["bt_xml"] = MetadataValue.md(f"```xml\n{state.bt_xml}\n```")
        return state, stage_metadata(state, "bt_xml", client, **extra)

    return for_each_episode(context, "bt_xml", refined_bt, work, in_flight=llm.calls_in_flight)


def failed_blocking_checks(context: AssetExecutionContext) -> dict[str, list[str]]:
    """Episode id → blocking checks that failed for it in this run (a range run records one
    evaluation per partition and leaves the blocking to the downstream asset: ``bt_score``)."""
    from dagster import DagsterEventType

    records = context.instance.get_records_for_run(context.run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    failed: dict[str, list[str]] = {}
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.partition and evaluation.blocking and not evaluation.passed:
            failed.setdefault(evaluation.partition, []).append(evaluation.check_name)
    return failed


@asset(**EPISODE_ASSET_ARGS, pool=LLM_POOL, deps=[prompt_key("scorer")],
       description="Agent G (judge): structure, robustness, compliance, grounding, verdict; writes the episode's outputs.")
def bt_score(context: AssetExecutionContext, llm: LLMResource, config: ScoreConfig, bt_xml):
    from teacher_assets.pipeline import score_stage, write_outputs

    # One partition: Dagster itself skips this step when a blocking check failed. A range: do it per episode.
    blocked = failed_blocking_checks(context) if len(context.partition_keys) > 1 else {}

    def work(key, upstream):
        client = llm.client_for(context, key)
        if key in blocked:
            checks = ", ".join(sorted(blocked[key]))
            state = upstream.stop("bt_score", "failed", f"blocked by failed blocking checks on bt_xml: {checks}")
            return state, stage_metadata(state, "bt_score", client, blocked_by=checks)
        if upstream.status == "failed":  # failed upstream in this range run: keep the earlier outputs
            return upstream, stage_metadata(upstream, "bt_score", client)
        state = score_stage(client, upstream, threshold=config.threshold)
        outcome = write_outputs(state, proposer_dir())
        extra = {"repaired": outcome.repaired, "episode_prompt_tokens": outcome.prompt_tokens,
                 "episode_completion_tokens": outcome.completion_tokens}
        if state.score and upstream.running:
            extra["score"] = score_table(state.score.score, state.score.note)
        if state.status == "accepted":
            extra["output_dir"] = MetadataValue.path(str(proposer_dir() / state.episode_id))
        return state, stage_metadata(state, "bt_score", client, **extra)

    return for_each_episode(context, "bt_score", bt_xml, work, in_flight=llm.calls_in_flight)


@asset(group_name=GROUP, deps=[bt_score], code_version="1",
       description="Accepted episodes as a training table (parquet + JSONL), with counts and reasons; read from disk.")
def proposer_dataset(context: AssetExecutionContext):
    from teacher_assets.pipeline import write_proposer_dataset

    rows, summary = write_proposer_dataset(proposer_dir())
    reasons = "\n".join(f"| {status} | {r.replace('|', '/')} |" for status, items in summary.reasons.items() for r in items)
    return Output(summary.model_dump(mode="json"), metadata={
        "rows": len(rows), "episodes": summary.episodes, "accepted": summary.accepted, "repaired": summary.repaired,
        "skipped": summary.skipped, "invalid": summary.invalid, "rejected": summary.rejected,
        "reasons": MetadataValue.md("| status | episode: reason |\n|---|---|\n" + reasons) if reasons else "none",
        "parquet": MetadataValue.path(str(proposer_dir() / "proposer_dataset.parquet")),
    })


TEACHER_ASSETS = [oxe_episode, feasibility, scene_report, bt_draft, refined_bt, bt_xml, bt_score, proposer_dataset]
EPISODE_ASSETS = TEACHER_ASSETS[:-1]
# Not materializable: lineage nodes of the agents' prompt files, in a group of their own.
PROMPT_SPECS = prompt_asset_specs(PROMPTS_DIR, group=f"{GROUP}_prompts")
