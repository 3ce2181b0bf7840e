"""The teacher's stages as plain functions over one episode's state (the Dagster assets call these).

Each stage takes the ``EpisodeState`` its upstream asset produced and returns the next one. A stage
that stops an episode (invalid input, infeasible task, critic REJECT, non-conformant tree, score
REJECT) sets ``status`` / ``stopped_at`` / ``reason``; later stages pass a stopped state through
unchanged and spend no tokens. Outputs of an accepted episode are written as one set.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel

from resources.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, remove_dir, replace_dir
from resources.llm import LLMClient

from .agents.cognition import analyse_scene, assess_feasibility
from .agents.construction import MAX_CRITIC_ITERATIONS, TreeDesign, design_tree, error_taxonomy
from .agents.refinement import harden_tree, modularize_tree
from .agents.schemas import AgentCallRecord, FeasibilityReply, SceneReport
from .agents.validation import SCORE_THRESHOLD, ConformanceOutcome, ScoreOutcome, enforce_conformance, judge_tree
from .bt.transforms import SubtreeMap

# "failed": a stage raised, or a blocking check failed, for this episode in a run over many episodes.
Status = Literal["running", "accepted", "invalid", "skipped", "rejected", "failed"]
OUTCOMES_DIR = "_outcomes"  # per-episode outcome records inside the proposer folder


class EpisodeState(BaseModel):
    episode_id: str
    episode_path: str
    status: Status = "running"
    stopped_at: Optional[str] = None  # the stage (asset) that stopped the episode
    reason: Optional[str] = None
    instruction: str = ""
    metadata: dict = {}
    frame_paths: list[str] = []
    contact_sheet_built: bool = False
    feasibility: Optional[FeasibilityReply] = None
    scene_report: Optional[SceneReport] = None
    design: Optional[TreeDesign] = None
    robustness_changes: list[str] = []
    refined_xml: Optional[str] = None
    subtree_map: Optional[SubtreeMap] = None
    conformance: Optional[ConformanceOutcome] = None
    score: Optional[ScoreOutcome] = None
    audit: list[AgentCallRecord] = []

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def bt_xml(self) -> Optional[str]:
        return self.conformance.bt_xml if self.conformance and self.conformance.ok else None

    @property
    def repaired(self) -> bool:
        return bool(self.conformance and self.conformance.repaired)

    def stop(self, stage: str, status: Status, reason: str, **update) -> "EpisodeState":
        return self.model_copy(update={"status": status, "stopped_at": stage, "reason": reason, **update})

    def add(self, stage_update: dict, calls: list[AgentCallRecord]) -> "EpisodeState":
        return self.model_copy(update={**stage_update, "audit": [*self.audit, *calls]})


# ---------------------------------------------------------------------------------------- stages
def load_stage(episodes_dir: Path, episode_id: str) -> EpisodeState:
    from .episodes import discover_episodes, load_episode

    folder = episodes_dir / episode_id
    # The sheet is built where it is sent (scene_stage), not here as well.
    episode = load_episode(folder, contact_sheet=False) if folder.is_dir() else next(
        (e for e in discover_episodes(episodes_dir) if e.id == episode_id), None)
    if episode is None:
        return EpisodeState(episode_id=episode_id, episode_path=str(folder)).stop(
            "oxe_episode", "invalid", f"missing_episode: no folder for episode {episode_id!r} in {episodes_dir}")
    if not getattr(episode, "valid", False):
        return EpisodeState(episode_id=episode_id, episode_path=episode.path).stop(
            "oxe_episode", "invalid", f"{episode.code}: {episode.reason}")
    return EpisodeState(episode_id=episode_id, episode_path=episode.path, instruction=episode.instruction,
                        metadata=episode.metadata, frame_paths=episode.frame_paths,
                        contact_sheet_built=episode.contact_sheet_built)


def feasibility_stage(client: LLMClient, state: EpisodeState) -> EpisodeState:
    if not state.running:
        return state
    reply, record = assess_feasibility(client, state.instruction)
    state = state.add({"feasibility": reply}, [record])
    return state if reply.feasible else state.stop("feasibility", "skipped", f"infeasible: {reply.reason}")


def scene_stage(client: LLMClient, state: EpisodeState, *, attach_frames: bool = False) -> EpisodeState:
    if not state.running:
        return state
    from .episodes import load_episode

    episode = load_episode(state.episode_path)
    if not getattr(episode, "valid", False):  # changed on disk since it was loaded
        return state.stop("scene_report", "invalid", f"{episode.code}: {episode.reason}")
    frames = [Path(p).read_bytes() for p in episode.frame_paths]
    report, record = analyse_scene(client, state.instruction, contact_sheet=episode.contact_sheet_png, frames=frames,
                                   metadata=state.metadata, attach_frames=attach_frames)
    return state.add({"scene_report": report}, [record])


def design_stage(client: LLMClient, state: EpisodeState, *, strict: bool = True,
                 max_iterations: int = MAX_CRITIC_ITERATIONS) -> EpisodeState:
    if not state.running:
        return state
    design = design_tree(client, state.instruction, state.scene_report, max_iterations=max_iterations, strict=strict)
    state = state.add({"design": design}, design.calls)
    return state if design.accepted else state.stop("bt_draft", "rejected", design.reason)


def refine_stage(client: LLMClient, state: EpisodeState) -> EpisodeState:
    if not state.running:
        return state
    hardened, d_record = harden_tree(client, state.design.bt_xml)
    modular, e_record = modularize_tree(client, hardened.bt_xml)
    return state.add({"robustness_changes": hardened.changes, "refined_xml": modular.bt_xml,
                      "subtree_map": modular.subtree_map}, [d_record, e_record])


def conformance_stage(client: LLMClient, state: EpisodeState) -> EpisodeState:
    if not state.running:
        return state
    outcome = enforce_conformance(client, state.refined_xml)
    state = state.add({"conformance": outcome}, outcome.calls)
    if outcome.ok:
        return state
    issues = "; ".join(f"[{i.code}] {i.message}" for i in outcome.remaining_issues[:4])
    return state.stop("bt_xml", "rejected", f"still non-conformant after {len(outcome.repairs)} repair(s): {issues}")


def score_stage(client: LLMClient, state: EpisodeState, *, threshold: int = SCORE_THRESHOLD) -> EpisodeState:
    if not state.running:
        return state
    outcome = judge_tree(client, state.instruction, state.scene_report, state.bt_xml,
                         state.conformance.remaining_issues, threshold=threshold)
    state = state.add({"score": outcome}, outcome.calls)
    if not outcome.accepted:
        return state.stop("bt_score", "rejected", f"scorer REJECT: {outcome.score.rationale}")
    return state.model_copy(update={"status": "accepted", "reason": outcome.score.rationale})


# ---------------------------------------------------------------------------------------- outputs
class EpisodeOutcome(BaseModel):
    """One row of the teacher's bookkeeping: what happened to an episode, and why."""

    episode_id: str
    status: Status
    stopped_at: Optional[str]
    reason: Optional[str]
    repaired: bool
    critic_revisions: int
    instruction: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Optional[float]
    source_dataset: Optional[str] = None  # from the episode's metadata (importers write it)
    robot: Optional[str] = None


def outcome_of(state: EpisodeState) -> EpisodeOutcome:
    costs = [c.cost_usd for c in state.audit if c.cost_usd is not None]
    return EpisodeOutcome(
        episode_id=state.episode_id, status=state.status, stopped_at=state.stopped_at, reason=state.reason,
        repaired=state.repaired, critic_revisions=state.design.revisions if state.design else 0,
        instruction=state.instruction, prompt_tokens=sum(c.prompt_tokens for c in state.audit),
        completion_tokens=sum(c.completion_tokens for c in state.audit), cost_usd=sum(costs) if costs else None,
        source_dataset=_text_or_none(state.metadata.get("source_dataset")),
        robot=_text_or_none(state.metadata.get("robot")),
    )


def _text_or_none(value) -> Optional[str]:
    return None if value is None else str(value)


def audit_log(state: EpisodeState) -> dict:
    return {
        "episode_id": state.episode_id,
        "instruction": state.instruction,
        "status": state.status,
        "reason": state.reason,
        "critic_dialogue": [t.model_dump(mode="json") for t in state.design.dialogue] if state.design else [],
        "conformance": state.conformance.model_dump(mode="json", exclude={"bt_xml", "calls"}) if state.conformance else None,
        "score": state.score.score.model_dump(mode="json") if state.score else None,
        "error_taxonomy": error_taxonomy(state.design, state.score.score if state.score else None).model_dump(mode="json"),
        "vocabulary": {"reason_codes": state.feasibility.reason_codes, "notes": state.feasibility.notes}
        if state.feasibility else None,
        "agents": [c.model_dump(mode="json") for c in state.audit],
    }


def write_outputs(state: EpisodeState, proposer_dir: Path) -> EpisodeOutcome:
    """Accepted: ``<episode>/{bt.xml, audit_log.json, subtree_map.json}`` swapped in as one set.
    Otherwise any earlier output of the episode goes. Either way the outcome record is written."""
    target = proposer_dir / state.episode_id
    if state.status == "accepted":
        def build(tmp: Path) -> None:
            (tmp / "bt.xml").write_text(state.bt_xml, encoding="utf-8")
            (tmp / "audit_log.json").write_text(json.dumps(audit_log(state), indent=2, default=str) + "\n")
            (tmp / "subtree_map.json").write_text(
                (state.subtree_map or SubtreeMap()).model_dump_json(indent=2) + "\n")

        replace_dir(target, build)
    elif target.exists():  # moved aside first, so the dataset never sees half a folder
        remove_dir(target)
    outcome = outcome_of(state)
    atomic_write_json(proposer_dir / OUTCOMES_DIR / f"{state.episode_id}.json", outcome.model_dump(mode="json"))
    return outcome


def read_outcomes(proposer_dir: Path) -> list[EpisodeOutcome]:
    folder = proposer_dir / OUTCOMES_DIR
    if not folder.is_dir():
        return []
    return [EpisodeOutcome.model_validate_json(p.read_text()) for p in sorted(folder.glob("*.json"))]


class DatasetSummary(BaseModel):
    episodes: int
    accepted: int
    repaired: int  # accepted after the LLMRepairer fixed the tree
    skipped: int  # infeasible
    invalid: int
    rejected: int
    reasons: dict[str, list[str]]  # status → "episode: reason"


# Columns of the proposer table with their arrow types; per-episode fields that other stages add to
# the audit log (beyond AUDIT_KEYS) follow as extra columns.
DATASET_COLUMNS: dict[str, str] = {
    "episode_id": "string", "instruction": "string", "bt_xml": "string", "subtree_map": "string",
    "scene_report": "string", "score_structure": "int64", "score_robustness": "int64", "score_compliance": "int64",
    "score_grounding": "int64", "critic_revisions": "int64", "critic_error_labels": "labels",
    "critic_error_labels_fixed": "labels", "interpretation_notes": "labels", "repaired": "bool",
    "prompt": "string", "completion": "string", "messages": "messages",
    "source_dataset": "string", "robot": "string", "teacher_model": "string",
}
AUDIT_KEYS = {"episode_id", "instruction", "status", "reason", "critic_dialogue", "conformance", "score", "agents",
              "error_taxonomy", "vocabulary"}  # the last two become the critic_error_labels* / interpretation_notes columns


def build_proposer_dataset(proposer_dir: Path) -> tuple[list[dict], DatasetSummary]:
    """Rows of accepted episodes (from their files on disk) and counts over every episode's outcome."""
    from .proposer_format import trainer_columns

    outcomes = read_outcomes(proposer_dir)
    rows: list[dict] = []
    for o in outcomes:
        folder = proposer_dir / o.episode_id
        if o.status != "accepted" or not (folder / "bt.xml").is_file():
            continue
        audit = json.loads((folder / "audit_log.json").read_text())
        scene = next((a["output"] for a in audit["agents"] if a["role"] == "teacher.scene_analysis"), {})
        bt_xml = (folder / "bt.xml").read_text(encoding="utf-8")
        row = {
            "episode_id": o.episode_id,
            "instruction": o.instruction,
            "bt_xml": bt_xml,
            "subtree_map": (folder / "subtree_map.json").read_text(encoding="utf-8"),
            "scene_report": json.dumps(scene),
            "score_structure": audit["score"]["structure"],
            "score_robustness": audit["score"]["robustness"],
            "score_compliance": audit["score"]["compliance"],
            "score_grounding": audit["score"]["grounding"],
            "critic_revisions": o.critic_revisions,
            "critic_error_labels": audit.get("error_taxonomy", {}).get("raised", []),
            "critic_error_labels_fixed": audit.get("error_taxonomy", {}).get("fixed", []),
            "interpretation_notes": (audit.get("vocabulary") or {}).get("notes", []),
            "repaired": o.repaired,
            **trainer_columns(o.instruction, scene, bt_xml),
            "source_dataset": o.source_dataset,
            "robot": o.robot,
            "teacher_model": next((a["model"] for a in audit["agents"] if a["role"] == "teacher.architect"), None),
        }
        row.update({k: v for k, v in audit.items() if k not in AUDIT_KEYS and k not in DATASET_COLUMNS})
        rows.append(row)
    count = lambda s: sum(o.status == s for o in outcomes)  # noqa: E731
    reasons: dict[str, list[str]] = {}
    for o in outcomes:
        if o.status != "accepted":
            reasons.setdefault(o.status, []).append(f"{o.episode_id}: {o.reason}")
    summary = DatasetSummary(episodes=len(outcomes), accepted=count("accepted"), repaired=sum(o.repaired for o in outcomes
                             if o.status == "accepted"), skipped=count("skipped"), invalid=count("invalid"),
                             rejected=count("rejected"), reasons=reasons)
    return rows, summary


def _dataset_table(rows: list[dict]):
    """The rows as an arrow table: fixed types for the known columns (also when empty), inferred for extras."""
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "bool": pa.bool_(), "labels": pa.list_(pa.string()),
             "messages": pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))}
    fields = [pa.field(name, types[kind]) for name, kind in DATASET_COLUMNS.items()]
    extras = sorted({k for r in rows for k in r} - set(DATASET_COLUMNS))
    fields += [pa.field(k, pa.array([r.get(k) for r in rows]).type) for k in extras]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def write_proposer_dataset(proposer_dir: Path) -> tuple[list[dict], DatasetSummary]:
    """``proposer_dataset.parquet`` (loads with Hugging Face ``datasets``), the same rows as JSONL, the
    counts in ``summary.json`` and the dataset card ``README.md``."""
    import pyarrow.parquet as pq

    from .proposer_format import dataset_card

    rows, summary = build_proposer_dataset(proposer_dir)
    table = _dataset_table(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(proposer_dir / "proposer_dataset.parquet", buf.getvalue())
    atomic_write_text(proposer_dir / "proposer_dataset.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_json(proposer_dir / "summary.json", summary.model_dump(mode="json"))
    atomic_write_text(proposer_dir / "README.md", dataset_card(table.schema, summary.model_dump(mode="json"), rows,
                                                               "proposer_dataset.parquet"))
    return rows, summary
