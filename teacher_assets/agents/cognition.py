"""Phase 1 — cognition: A feasibility (the gatekeeper) and B scene analysis (the vision)."""

from __future__ import annotations

from typing import Optional, Sequence

from resources.llm import LLMClient
from teacher_assets.bt.pal import PAL_V1

from .calling import call_agent
from .schemas import AgentCallRecord, FeasibilityReply, SceneReport


def pal_catalog() -> list[dict]:
    return [{"name": p.name, "ports": list(p.ports), "hand": p.hand, "description": p.description}
            for p in PAL_V1.values()]


def assess_feasibility(client: LLMClient, instruction: str) -> tuple[FeasibilityReply, AgentCallRecord]:
    return call_agent(
        client, agent="A feasibility", prompt_name="feasibility", role="teacher.feasibility",
        task="Is this task feasible with PAL v1 primitives only?",
        payload={"instruction": instruction, "pal_primitives": pal_catalog()},
        schema=FeasibilityReply, verdict_of=lambda r: "FEASIBLE" if r.feasible else "INFEASIBLE",
    )


def analyse_scene(client: LLMClient, instruction: str, *, contact_sheet: Optional[bytes],
                  frames: Sequence[bytes] = (), metadata: Optional[dict] = None,
                  attach_frames: bool = False) -> tuple[SceneReport, AgentCallRecord]:
    """The contact sheet (9 frames in one image) goes as an image part; single frames only on request."""
    images = ([contact_sheet] if contact_sheet else []) + (list(frames) if attach_frames or not contact_sheet else [])
    attached = (["contact_sheet: 3x3 grid of the 9 frames, row by row in temporal order"] if contact_sheet else []) \
        + [f"frame_{i:02d}" for i in range(len(images) - bool(contact_sheet))]
    return call_agent(
        client, agent="B scene analysis", prompt_name="scene_analysis", role="teacher.scene_analysis",
        task="Analyse this robot episode and write the situation report for the Architect.",
        payload={"instruction": instruction, "metadata": metadata or {}, "frame_count": len(frames),
                 "attached_images": attached},
        schema=SceneReport, images=images,
    )
