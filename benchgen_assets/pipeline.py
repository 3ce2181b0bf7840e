"""The scenario generator's stages as plain functions (the Dagster assets are thin calls of these).

request → plan (+ human edits) → script (generation loop or code override); the variants are
validated, exported and previewed by ``variant_runner``.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from pydantic import ValidationError

from benchgen_assets import layout
from benchgen_assets.authoring.agents import plan_scenario
from benchgen_assets.authoring.loop import DEFAULT_MAX_ATTEMPTS, generate_script, override_script
from benchgen_assets.authoring.variants import draw_variants
from benchgen_assets.records import AgentStep, GenerationRequest, ScenarioPlan, ScenarioScript, VariantSpec
from resources.atomic import atomic_write_json, atomic_write_text, replace_dir
from resources.llm import LLMClient


class RequestError(ValueError):
    """A partition without a usable generation request."""


# -- request ------------------------------------------------------------------------------------

def save_request(request: GenerationRequest) -> None:
    atomic_write_json(layout.request_path(request.scenario_id), request.model_dump(mode="json"))


def load_request(scenario_id: str, overrides: Optional[dict[str, Any]] = None) -> GenerationRequest:
    """The saved request of a partition with any set ``overrides`` applied (UI launch config)."""
    path = layout.request_path(scenario_id)
    data: dict[str, Any] = {"scenario_id": scenario_id}
    if path.exists():
        try:
            data.update(json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            raise RequestError(f"request file {path} is not valid JSON: {e}") from None
    set_overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not path.exists() and not any(k in set_overrides for k in ("tier", "family", "prompt")):
        raise RequestError(f"no generation request saved for scenario {scenario_id!r} ({path}); create it with "
                           "`python -m benchgen_assets.manager generate ...` or give tier/family/prompt in the run config")
    data.update(set_overrides)
    if data.get("scenario_id") != scenario_id:
        raise RequestError(f"request file {path} belongs to scenario {data.get('scenario_id')!r}, not {scenario_id!r}")
    try:
        return GenerationRequest.model_validate(data)
    except ValidationError as e:
        raise RequestError(f"invalid generation request for scenario {scenario_id!r}: {e}") from None


# -- plan ---------------------------------------------------------------------------------------

def apply_plan_edits(plan: ScenarioPlan, edits: dict[str, Any]) -> ScenarioPlan:
    """A human's edits (any ScenarioPlan field; ``scale_limits`` may give only min or max) over the
    planner's plan, validated like a reply."""
    unknown = set(edits) - set(ScenarioPlan.model_fields)
    if unknown:
        raise ValueError(f"unknown plan field(s) {sorted(unknown)}; editable: {sorted(ScenarioPlan.model_fields)}")
    data = plan.model_dump(mode="json")
    for key, value in edits.items():
        data[key] = {**data[key], **value} if key == "scale_limits" else value
    return ScenarioPlan.model_validate(data)


def make_plan(client: LLMClient, request: GenerationRequest,
              edits: Optional[dict[str, Any]] = None) -> tuple[ScenarioPlan, AgentStep]:
    plan, step = plan_scenario(client, request)
    if edits:
        plan = apply_plan_edits(plan, edits)
    atomic_write_json(layout.scenario_dir(request.scenario_id) / "plan.json",
                      {"plan": plan.model_dump(mode="json"), "edits": edits or {}, "planner": step.model_dump(mode="json")})
    return plan, step


def variants_for(request: GenerationRequest, plan: ScenarioPlan) -> list[VariantSpec]:
    return draw_variants(request.seed, request.variants, plan.scale_limits)


# -- script -------------------------------------------------------------------------------------

def make_script(client: LLMClient, request: GenerationRequest, plan: ScenarioPlan, *,
                max_attempts: int = DEFAULT_MAX_ATTEMPTS, code_override: Optional[str] = None) -> ScenarioScript:
    """The generation loop (or a human's override) on the probe variant; writes script + attempts."""
    sid = request.scenario_id
    probe = variants_for(request, plan)[0]
    work = layout.work_dir(sid) / "script"
    if code_override is not None:
        script = override_script(code_override, probe, scenario_id=sid, work_dir=work)
    else:
        script = generate_script(client, plan, probe, scenario_id=sid, work_dir=work, max_attempts=max_attempts)
    save_script(script)
    return script


def save_script(script: ScenarioScript) -> None:
    def fill(tmp):
        for a in script.attempts:
            (tmp / f"attempt_{a.attempt:02d}.py").write_text(a.code)
        (tmp / "attempts.json").write_text(json.dumps([a.model_dump(mode="json") for a in script.attempts], indent=1))

    scenario = layout.scenario_dir(script.scenario_id)
    replace_dir(scenario / "attempts", fill)
    atomic_write_text(scenario / "script.py", script.code)

