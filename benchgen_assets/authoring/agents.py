"""The three authoring agents as plain functions over an ``LLMClient``.

Each builds a real prompt (system prompt file + a JSON input block) that a hosted model can
follow, and returns the parsed reply together with the ``AgentStep`` kept for traces.
"""

from __future__ import annotations

from typing import Any, Optional

from benchgen_assets.records import (AgentStep, CoderReply, GenerationRequest, ReviewVerdict, ScenarioPlan,
                                     ValidationReport)
from resources.llm import LLMClient, LLMResult, input_block

from .library import Example, example_text
from .prompts import load_prompt

PLANNER_ROLE = "scenario.planner"
CODER_ROLE = "scenario.coder"
REVIEWER_ROLE = "scenario.reviewer"


def family_catalog() -> list[dict[str, Any]]:
    """The known parametric families, as the planner sees them."""
    from benchgen_assets.families import FAMILIES

    return [info.model_dump(mode="json") for info in FAMILIES.values()]


def _step(role: str, prompt_version: str, messages: list[dict], result: LLMResult) -> AgentStep:
    u = result.usage
    return AgentStep(role=role, prompt_version=prompt_version, prompt_hash=u.prompt_hash, messages=messages,
                     reply=result.raw, prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                     cost_usd=u.cost_usd, latency_s=u.latency_s, cache_hit=u.cache_hit)


def plan_scenario(client: LLMClient, request: GenerationRequest,
                  families: Optional[list[dict[str, Any]]] = None) -> tuple[ScenarioPlan, AgentStep]:
    prompt = load_prompt("planner")
    payload = {
        "request": request.model_dump(mode="json", include={"tier", "family", "prompt", "seed"}),
        "known_families": families if families is not None else family_catalog(),
    }
    messages = [
        {"role": "system", "content": prompt.text},
        {"role": "user", "content": "Plan one benchmark scenario for this request.\n" + input_block(payload)},
    ]
    result = client.complete(role=PLANNER_ROLE, messages=messages, schema=ScenarioPlan,
                             prompt_version=prompt.prompt_version)
    return result.value, _step(PLANNER_ROLE, prompt.prompt_version, messages, result)


def coder_messages(plan: ScenarioPlan, examples: Optional[list[Example]] = None) -> list[dict]:
    """The opening of the coder conversation: the contract, worked examples from the task library,
    the plan. Repair turns are appended by ``add_feedback``."""
    prompt = load_prompt("coder")
    shown = ("Worked examples from the task library (accepted scripts, most relevant to this plan first):\n\n"
             + example_text(examples) + "\n\n") if examples else ""
    return [
        {"role": "system", "content": prompt.text},
        {"role": "user", "content": shown + "Write the scenario module for this plan.\n"
                                    + input_block({"attempt": 1, "family": plan.family, "plan": plan.model_dump(mode="json")})},
    ]


def add_feedback(messages: list[dict], reply_raw: str, *, attempt: int, family: Optional[str],
                 source: str, feedback: str) -> list[dict]:
    """The conversation after a rejected attempt: the coder's reply, then the exact error."""
    note = (f"The {source} rejected your module (attempt {attempt - 1}). Fix exactly this and answer "
            f"with the whole corrected module:\n\n{feedback}\n")
    return [*messages, {"role": "assistant", "content": reply_raw},
            {"role": "user", "content": note + input_block({"attempt": attempt, "family": family,
                                                            "feedback": {"source": source, "text": feedback}})}]


def write_script(client: LLMClient, messages: list[dict]) -> tuple[CoderReply, AgentStep]:
    prompt = load_prompt("coder")
    result = client.complete(role=CODER_ROLE, messages=messages, schema=CoderReply,
                             prompt_version=prompt.prompt_version)
    return result.value, _step(CODER_ROLE, prompt.prompt_version, messages, result)


def review_script(client: LLMClient, plan: ScenarioPlan, code: str) -> tuple[ReviewVerdict, AgentStep]:
    prompt = load_prompt("reviewer")
    messages = [
        {"role": "system", "content": prompt.text},
        {"role": "user", "content": "Review this scenario module against the plan.\n"
                                    + input_block({"plan": plan.model_dump(mode="json"), "code": code})},
    ]
    result = client.complete(role=REVIEWER_ROLE, messages=messages, schema=ReviewVerdict,
                             prompt_version=prompt.prompt_version)
    return result.value, _step(REVIEWER_ROLE, prompt.prompt_version, messages, result)


def validator_feedback(report: ValidationReport) -> str:
    """The exact validator error as the coder gets it: failed stage, message, traceback tail."""
    failed = report.first_failure()
    lines = [f"Validation of variant {report.variant_id} (seed={report.seed}, scale={tuple(report.scale)}) failed"
             + (f" at stage '{failed.name}': {failed.message}" if failed else ".")]
    if report.error is not None:
        lines.append(f"Error ({report.error.kind}): {report.error.message}")
        if report.error.traceback:
            lines.append("Traceback (last lines):\n" + "\n".join(report.error.traceback.strip().splitlines()[-8:]))
    lines.extend(f"Warning: {w}" for w in report.warnings[:5])
    return "\n".join(lines)
