"""The hosted path: ``BENCHGEN_LLM_MODEL=openai/...`` + ``BENCHGEN_LLM_API_BASE`` pointing at a local
OpenAI-compatible server that answers like a hosted model would, with a plan and a HAND-WRITTEN
script for a family the offline author lacks (a sliding gate). The script goes through the real
Dagster chain: sandbox, validation, the oracle's solvability check, export; it enters the task
library and becomes a worked example of the next coder prompt for that family."""

import json

import pytest
from benchgen_assets.authoring import library
from benchgen_assets.authoring.agents import coder_messages
from benchgen_assets.families import FAMILIES
from benchgen_assets.records import GenerationRequest, ScenarioPlan, ScenarioValidation
from tests.llm_server import serving
from tests.scenario_runs import materialize_scenario

GATE_SCRIPT = '''"""A sliding gate: a rail with an end post, and a gate panel that slides along +x on the rail."""

import random

from build123d import Align, Box, Pos
from benchgen_assets.scene import DriveJoint, JointAtLeast, Part, Scene, Settle, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)


def build(seed, scale):
    rng = random.Random(seed)
    sx, sy, sz = scale
    rail_len = rng.uniform(300.0, 420.0) * sx
    rail_w = rng.uniform(30.0, 45.0) * sy
    rail_h = rng.uniform(8.0, 14.0) * sz
    post_w = 20.0 * sx
    post_h = rng.uniform(90.0, 140.0) * sz
    gate_w = rng.uniform(0.3, 0.4) * rail_len
    gate_t = rng.uniform(6.0, 10.0) * sy
    gate_h = post_h * rng.uniform(0.7, 0.85)
    x0 = -rail_len / 2
    rail = Box(rail_len, rail_w, rail_h, align=BOTTOM) + Pos(x0 + post_w / 2, 0, rail_h) * Box(
        post_w, rail_w, post_h, align=BOTTOM)
    gate_x = x0 + post_w + 2.0 + gate_w / 2
    gate_z = rail_h + 1.0
    gate = Pos(gate_x, 0, gate_z) * Box(gate_w, gate_t, gate_h, align=BOTTOM)
    travel = rail_len - post_w - gate_w - 6.0
    open_mm = 0.6 * travel
    return Scene(
        name="sliding_gate",
        description=f"Slide the gate open along the rail by at least {open_mm:.0f} mm.",
        parts=[
            Part("rail", rail, role="fixture", joint="fixed", rgba=(0.45, 0.45, 0.5, 1.0)),
            Part("gate", gate, role="link", joint="slide", parent="rail", joint_axis=(1.0, 0.0, 0.0),
                 joint_pos_mm=(gate_x, 0.0, gate_z), joint_range=(0.0, travel), density_kg_m3=500.0,
                 rgba=(0.8, 0.55, 0.3, 1.0)),
        ],
        parameters={"rail_mm": [round(rail_len, 3), round(rail_w, 3), round(rail_h, 3)],
                    "gate_mm": [round(gate_w, 3), round(gate_t, 3), round(gate_h, 3)], "travel_mm": round(travel, 3)},
        task=Task(instruction="Slide the gate open.", goal=[JointAtLeast("gate", open_mm)],
                  oracle=[DriveJoint("gate", 0.8 * travel, duration_s=1.5), Settle(0.3)], time_limit_s=6.0),
    )
'''

GATE_PLAN = {
    "title": "Sliding gate", "family": "sliding_gate", "tier": 2,
    "summary": "A gate panel on a rail slides along +x away from its end post; the robot pushes it open.",
    "geometric_requirements": ["a fixed rail with an end post", "a gate panel on a slide joint along +x, 1 mm above the rail"],
    "learning_objectives": ["pushing along a prismatic joint"],
    "self_verification": ["the oracle slides the gate open past 60 % of its travel"],
    "scale_limits": {"min": [0.7, 0.7, 0.7], "max": [1.4, 1.4, 1.4]},
}


def _hosted_answer(body: dict) -> str:
    """Each agent answered by its system prompt, as a hosted model would."""
    system = body["messages"][0]["content"]
    if system.startswith("You are the Planner"):
        answer = GATE_PLAN
    elif system.startswith("You are the Coder"):
        answer = {"code": GATE_SCRIPT, "notes": "a new family: sliding gate"}
    else:
        answer = {"decision": "approve", "issues": [], "summary": "follows the plan and the contract"}
    return json.dumps(answer)


@pytest.fixture
def hosted_model(monkeypatch):
    with serving(_hosted_answer) as (base, server):
        monkeypatch.setenv("BENCHGEN_LLM_MODEL", "openai/test-model")
        monkeypatch.setenv("BENCHGEN_LLM_API_BASE", base)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
        yield server


def test_hosted_model_authors_a_new_family_through_the_whole_chain(datasets_dir, hosted_model):
    assert "sliding_gate" not in FAMILIES
    sid = "gate"
    result = materialize_scenario(GenerationRequest(scenario_id=sid, prompt="a sliding gate to push open, tier 2",
                                                    seed=4, variants=2))
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks.get("solvability_check") is True and all(checks.values())

    # every call went to the local server: planner, coder, reviewer
    bodies = [r["body"] for r in hosted_model.seen]
    systems = [b["messages"][0]["content"].split(".")[0] for b in bodies]
    assert systems == ["You are the Planner of a benchmark scenario generator for robot learning",
                       "You are the Coder of a benchmark scenario generator for robot learning",
                       "You are the Internal Reviewer of a benchmark scenario generator"]
    coder_prompt = bodies[1]["messages"]
    # the contract and worked examples (shipped tier-2 family scripts) reached the hosted coder
    assert "JointAtLeast" in coder_prompt[0]["content"] and "benchgen_assets.scene" in coder_prompt[0]["content"]
    assert "### Example 1:" in coder_prompt[1]["content"] and "tier 2, shipped" in coder_prompt[1]["content"]

    root = datasets_dir / "benchmarks" / sid
    assert (root / "script.py").read_text() == GATE_SCRIPT
    validation = ScenarioValidation.model_validate_json((root / "scenario.json").read_text())
    assert validation.valid == 2
    for v in validation.variants:
        d = datasets_dir / v.manifest.dir
        assert (d / "scene.xml").exists() and list((d / "meshes").glob("*.stl"))
        task = json.loads((d / "task.json").read_text())
        assert task["instruction"] == "Slide the gate open." and task["goal"][0]["part"] == "gate"
        assert v.report.oracle.solved and v.report.oracle.time_to_success_s < task["time_limit_s"]

    # into the library, and the first worked example of the next sliding-gate plan
    entry = next(e.entry for e in library.stored_entries() if e.entry.family == "sliding_gate")
    assert entry.scenarios == [sid] and len(entry.oracle) == 2 and all(o.solved for o in entry.oracle)
    nxt = ScenarioPlan.model_validate(GATE_PLAN)
    messages = coder_messages(nxt, library.examples_for(nxt, exclude_scenario="gate-2"))
    assert "### Example 1: Sliding gate (family sliding_gate, tier 2, accepted)" in messages[1]["content"]
    assert GATE_SCRIPT.strip() in messages[1]["content"] and "Oracle solved 2/2" in messages[1]["content"]
