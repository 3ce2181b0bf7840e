"""Asset metadata for the teacher: where an episode stands, the critic dialogue and score as tables."""

from __future__ import annotations

from typing import Optional

from dagster import MetadataValue

from resources.dagster_resources import llm_metadata


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def stage_metadata(state, stage: str, client=None, **extra) -> dict:
    """Status of the episode as seen from ``stage``: passed, stopped here (why), or stopped upstream."""
    if state.running or state.status == "accepted":
        where = "passed"
    elif state.stopped_at == stage:
        where = f"STOPPED HERE ({state.status})"
    else:
        where = f"stopped upstream at {state.stopped_at} ({state.status})"
    meta = {
        "episode_status": state.status,
        "stage_result": where,
        "stopped_at": state.stopped_at or "",
        "reason": MetadataValue.text(state.reason or ""),
        "instruction": MetadataValue.text(state.instruction),
    }
    if client is not None:
        meta.update(llm_metadata(client))
    meta.update(extra)
    return meta


def dialogue_table(design) -> MetadataValue:
    lines = ["| turn | speaker | verdict | logic | grounding | questions / responses |", "|---|---|---|---|---|---|"]
    for i, t in enumerate(design.dialogue):
        if t.speaker == "critic":
            c = t.critique
            said = "; ".join(c.critical_issues + c.questions) or "—"
            lines.append(f"| {i} | critic (iteration {t.iteration}) | {c.verdict} | {c.logical_coherence} | "
                         f"{c.visual_grounding} | {_cell(said)} |")
        else:
            said = "; ".join(t.responses) or t.rationale
            lines.append(f"| {i} | architect ({'draft' if t.iteration == 0 else 'revision'}) | | | | {_cell(said)} |")
    return MetadataValue.md("\n".join(lines))


def score_table(score, note: Optional[str] = None) -> MetadataValue:
    s = score
    md = ("| structure | robustness | compliance | grounding | verdict |\n|---|---|---|---|---|\n"
          f"| {s.structure} | {s.robustness} | {s.compliance} | {s.grounding} | {s.verdict} |\n\n{_cell(s.rationale)}")
    if note:
        md += f"\n\n_{note}_"
    return MetadataValue.md(md)


def scene_markdown(report) -> MetadataValue:
    def bullets(items):
        return "\n".join(f"- {x}" for x in items) or "- (none)"

    return MetadataValue.md(
        f"**Scene description.** {report.scene_description}\n\n**Dynamic progression.** {report.dynamic_progression}\n\n"
        f"**Favorable.**\n{bullets(report.favorable_conditions)}\n\n**Unfavorable.**\n{bullets(report.unfavorable_conditions)}\n\n"
        f"**Predicted failures.**\n{bullets(report.predicted_failures)}\n\n**Planner hints.**\n{bullets(report.planner_hints)}\n\n"
        f"_Evidence: {report.evidence}_")
