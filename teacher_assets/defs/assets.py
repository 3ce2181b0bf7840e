"""The teacher's stages as assets partitioned by episode id; lineage shows where an episode stopped.

Every asset materializes for every episode: a stopped episode passes its state through unchanged
(no tokens spent) and the metadata says where and why it stopped (``stage_result``, ``reason``).
"""

from pathlib import Path

from dagster import AssetExecutionContext, Config, DynamicPartitionsDefinition, MetadataValue, Output, asset
from pydantic import Field

from resources.dagster_prompts import prompt_asset_specs, prompt_key
from resources.dagster_resources import LLM_POOL, LLMResource
from resources.paths import datasets_root
from teacher_assets.agents.prompts import PROMPTS_DIR

from .metadata import dialogue_table, scene_markdown, score_table, stage_metadata

GROUP = "agentic_teacher"
episodes_partitions = DynamicPartitionsDefinition(name="episodes")


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


@asset(partitions_def=episodes_partitions, group_name=GROUP, code_version="1",
       description="The OXE episode (instruction, 9 frames, contact sheet, metadata); invalid → recorded with reason.")
def oxe_episode(context: AssetExecutionContext, config: EpisodeSourceConfig):
    from teacher_assets.episodes.watch import episodes_root, fingerprint_for, teacher_prompt_versions
    from teacher_assets.pipeline import load_stage

    root = Path(config.episodes_dir) if config.episodes_dir else episodes_root()
    # Taken before loading: if the folder changes meanwhile, the nightly refresh sees a mismatch and re-runs.
    fingerprint = fingerprint_for(root, context.partition_key)
    state = load_stage(root, context.partition_key)
    return Output(state, metadata=stage_metadata(state, "oxe_episode", episode_path=state.episode_path,
                                                 frames=len(state.frame_paths),
                                                 contact_sheet_built=state.contact_sheet_built,
                                                 episode_fingerprint=fingerprint,
                                                 teacher_prompts=teacher_prompt_versions()))


@asset(partitions_def=episodes_partitions, group_name=GROUP, code_version="1", pool=LLM_POOL,
       deps=[prompt_key("feasibility")],
       description="Agent A (gatekeeper): is the task possible with PAL v1? Infeasible → skipped, no further tokens.")
def feasibility(context: AssetExecutionContext, llm: LLMResource, oxe_episode):
    from teacher_assets.pipeline import feasibility_stage

    client = llm.client_for(context)
    state = feasibility_stage(client, oxe_episode)
    extra = {}
    if state.feasibility and oxe_episode.running:
        extra = {"feasible": state.feasibility.feasible,
                 "required_primitives": ", ".join(state.feasibility.required_primitives)}
    return Output(state, metadata=stage_metadata(state, "feasibility", client, **extra))


@asset(partitions_def=episodes_partitions, group_name=GROUP, code_version="1", pool=LLM_POOL,
       deps=[prompt_key("scene_analysis")],
       description="Agent B (vision): situation report from the contact sheet — scene, progression, assessment, hints.")
def scene_report(context: AssetExecutionContext, llm: LLMResource, config: SceneConfig, feasibility):
    from teacher_assets.pipeline import scene_stage

    client = llm.client_for(context)
    state = scene_stage(client, feasibility, attach_frames=config.attach_frames)
    extra = {"report": scene_markdown(state.scene_report)} if state.scene_report and feasibility.running else {}
    return Output(state, metadata=stage_metadata(state, "scene_report", client, **extra))


@asset(partitions_def=episodes_partitions, group_name=GROUP, code_version="1", pool=LLM_POOL,
       deps=[prompt_key("architect"), prompt_key("critic")],
       description="Agent C (architect) drafts the tree; C.5 (critic) challenges it, up to 2 revisions.")
def bt_draft(context: AssetExecutionContext, llm: LLMResource, config: CriticConfig, scene_report):
    from teacher_assets.pipeline import design_stage

    client = llm.client_for(context)
    state = design_stage(client, scene_report, strict=config.strict, max_iterations=config.max_iterations)
    extra = {}
    if state.design and scene_report.running:
        extra = {"critic_dialogue": dialogue_table(state.design), "critic_verdict": state.design.final_verdict,
                 "revisions": state.design.revisions, "draft_xml": MetadataValue.md(f"```xml\n{state.design.bt_xml}\n```")}
    return Output(state, metadata=stage_metadata(state, "bt_draft", client, **extra))


@asset(partitions_def=episodes_partitions, group_name=GROUP, code_version="1", pool=LLM_POOL,
       deps=[prompt_key("robustness"), prompt_key("subtrees")],
       description="Agents D (robustness: retries, fallback recovery) and E (standard subtrees with port remapping).")
def refined_bt(context: AssetExecutionContext, llm: LLMResource, bt_draft):
    from teacher_assets.pipeline import refine_stage

    client = llm.client_for(context)
    state = refine_stage(client, bt_draft)
    extra = {}
    if state.refined_xml and bt_draft.running:
        extra = {"changes": MetadataValue.text("; ".join(state.robustness_changes)),
                 "subtrees": ", ".join(d.id for d in state.subtree_map.subtrees) if state.subtree_map else ""}
    return Output(state, metadata=stage_metadata(state, "refined_bt", client, **extra))


@asset(partitions_def=episodes_partitions, group_name=GROUP, code_version="1", pool=LLM_POOL,
       deps=[prompt_key("repairer")],
       description="Agent F (police): v4 schema, PAL compliance, BT.CPP load; LLMRepairer on failure; node ids.")
def bt_xml(context: AssetExecutionContext, llm: LLMResource, refined_bt):
    from teacher_assets.pipeline import conformance_stage

    client = llm.client_for(context)
    state = conformance_stage(client, refined_bt)
    extra = {}
    if state.conformance and refined_bt.running:
        c = state.conformance
        extra = {"issues_found": MetadataValue.text("; ".join(f"[{i.code}] {i.message}" for i in c.issues_found) or "none"),
                 "repairs": len(c.repairs), "repaired": state.repaired}
        if state.bt_xml:
            extra["bt_xml"] = MetadataValue.md(f"```xml\n{state.bt_xml}\n```")
    return Output(state, metadata=stage_metadata(state, "bt_xml", client, **extra))


@asset(partitions_def=episodes_partitions, group_name=GROUP, code_version="1", pool=LLM_POOL,
       deps=[prompt_key("scorer")],
       description="Agent G (judge): structure, robustness, compliance, grounding, verdict; writes the episode's outputs.")
def bt_score(context: AssetExecutionContext, llm: LLMResource, config: ScoreConfig, bt_xml):
    from teacher_assets.pipeline import score_stage, write_outputs

    client = llm.client_for(context)
    state = score_stage(client, bt_xml, threshold=config.threshold)
    outcome = write_outputs(state, proposer_dir())
    extra = {"repaired": outcome.repaired, "episode_prompt_tokens": outcome.prompt_tokens,
             "episode_completion_tokens": outcome.completion_tokens}
    if state.score and bt_xml.running:
        extra["score"] = score_table(state.score.score, state.score.note)
    if state.status == "accepted":
        extra["output_dir"] = MetadataValue.path(str(proposer_dir() / state.episode_id))
    return Output(state, metadata=stage_metadata(state, "bt_score", client, **extra))


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
