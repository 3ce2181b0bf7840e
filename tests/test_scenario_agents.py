"""Planner, Coder and Internal Reviewer through the real LLMClient (litellm + offline author), the
request parsing, the variant draw, and the generation loop repairing broken scripts with the
real sandbox and validator."""

import json

import pytest

from benchgen_assets.authoring.agents import plan_scenario, review_script, write_script, coder_messages
from benchgen_assets.authoring.loop import generate_script
from benchgen_assets.authoring.offline_author import FAULT_KINDS, broken_script
from benchgen_assets.authoring.request_text import parse_request_text
from benchgen_assets.authoring.static_review import static_review
from benchgen_assets.authoring.variants import draw_variants
from benchgen_assets.families import FAMILIES, family_source
from benchgen_assets.records import GenerationRequest, ScaleLimits, ScenarioPlan
from resources.llm import FaultConfig, LLMClient, LLMSettings


def _client(max_parse_attempts: int = 3, **faults) -> LLMClient:
    settings = LLMSettings(backoff_s=0.01, backoff_max_s=0.05, max_parse_attempts=max_parse_attempts,
                           faults=FaultConfig(**faults))
    return LLMClient(settings, asset="scenario_script", partition="test")


def test_request_text_gives_count_tier_and_family(datasets_dir):
    parsed = parse_request_text("10 levers, tier 2")
    assert (parsed.count, parsed.tier) == (10, 2)
    # a number word counts the things in ONE scene (see test_authoring_compose), digits the batch
    assert parse_request_text("three hinged doors").count is None
    assert parse_request_text("a peg in a hole").count is None

    plan, step = plan_scenario(_client(), GenerationRequest(scenario_id="s", prompt="10 levers, tier 2", seed=4))
    assert isinstance(plan, ScenarioPlan)
    assert (plan.family, plan.tier) == ("lever", 2)
    assert plan.geometric_requirements and plan.learning_objectives and plan.self_verification
    assert step.role == "scenario.planner" and step.prompt_version == "planner@2" and step.prompt_tokens > 0
    # The prompt a hosted model would get names the families and the request.
    assert "lever" in step.messages[1]["content"] and "10 levers, tier 2" in step.messages[1]["content"]


def test_planner_covers_the_tier_families_and_uses_their_scale_limits(datasets_dir):
    client = _client()
    tier1 = {name for name, info in FAMILIES.items() if info.tier == 1}
    assert len(tier1) >= 2
    seen = set()
    for seed in range(len(tier1) * 2):
        plan, _ = plan_scenario(client, GenerationRequest(scenario_id="s", tier=1, seed=seed))
        assert plan.tier == 1 and plan.family in tier1
        info = FAMILIES[plan.family]
        assert plan.scale_limits == ScaleLimits(min=tuple(info.scale_min), max=tuple(info.scale_max))
        seen.add(plan.family)
    assert seen == tier1
    explicit, _ = plan_scenario(client, GenerationRequest(scenario_id="s", family="hinged_door"))
    assert explicit.family == "hinged_door" and explicit.tier == 2


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_coder_writes_the_family_module_and_reviewer_approves_it(datasets_dir, family):
    client = _client()
    info = FAMILIES[family]
    plan = ScenarioPlan(title=info.title, family=family, tier=info.tier, summary="s", geometric_requirements=["g"],
                        learning_objectives=["l"], self_verification=["v"])
    reply, step = write_script(client, coder_messages(plan))
    assert reply.code == family_source(family)
    assert "def build(seed" in reply.code and step.completion_tokens > 0
    verdict, _ = review_script(client, plan, reply.code)
    assert verdict.decision == "approve", verdict.issues


@pytest.mark.parametrize("kind,expected", [
    ("syntax", "SyntaxError"),
    ("signature", "must take exactly (seed, scale)"),
    ("forbidden_import", "import of 'os' is not allowed"),
])
def test_reviewer_sends_back_broken_scripts_with_the_reason(datasets_dir, kind, expected):
    source = family_source("peg_in_hole")
    assert static_review(source) == []
    broken = broken_script(source, kind)
    plan = ScenarioPlan(title="t", family="peg_in_hole", tier=1, summary="s", geometric_requirements=["g"],
                        learning_objectives=["l"], self_verification=["v"])
    verdict, _ = review_script(_client(), plan, broken)
    assert verdict.decision == "revise"
    assert any(expected in issue for issue in verdict.issues), verdict.issues


def test_reviewer_flags_global_random_and_unused_scale():
    src = family_source("peg_in_hole")
    issues = static_review(src.replace("random.Random(seed)", "random.Random(1)"))
    assert any("random.Random(seed)" in i for i in issues)
    assert any("global random state" in i for i in static_review(src + "\n\nJITTER = random.uniform(0, 1)\n"))


def test_variants_are_deterministic_and_within_limits():
    limits = ScaleLimits(min=(0.5, 0.8, 1.0), max=(2.0, 1.25, 1.5))
    a = draw_variants(42, 6, limits)
    assert a == draw_variants(42, 6, limits)
    assert draw_variants(42, 3, limits) == a[:3]  # more variants extend, never reshuffle
    assert a != draw_variants(43, 6, limits)
    assert a[0].scale == (1.0, 1.0, 1.0)
    assert len({v.seed for v in a}) == 6 and [v.variant_id for v in a] == [f"v{i:02d}" for i in range(6)]
    for v in a:
        assert all(lo <= s <= hi for s, lo, hi in zip(v.scale, limits.min, limits.max))
    with pytest.raises(ValueError):
        ScaleLimits(min=(1.0, 1.0, 1.0), max=(0.5, 2.0, 2.0))


def _tier1_plan(client) -> ScenarioPlan:
    plan, _ = plan_scenario(client, GenerationRequest(scenario_id="loop", family="peg_in_hole", seed=1))
    return plan


@pytest.mark.slow
def test_loop_repairs_fault_injected_scripts_and_keeps_every_attempt(datasets_dir, tmp_path):
    """Every coder call is faulty (and the reviewer lax): the first script fails in the real sandbox
    or validator, the exact error goes back to the coder, the repaired script passes."""
    plan = _tier1_plan(_client())
    probe = draw_variants(1, 1, plan.scale_limits)[0]
    kinds_seen = set()
    # which fault a seed draws depends on the whole coder prompt (its library examples too): run
    # seeds until the sandbox (compile) and the validator (geometry) have each caught one
    for fault_seed in range(12):
        if {"compile", "geometry"} <= kinds_seen:
            break
        # 30 % malformed replies over up to 12 seeds: allow more parse retries than 3 in a row can use up
        client = _client(seed=fault_seed, domain=1.0, malformed=0.3, max_parse_attempts=6)
        script = generate_script(client, plan, probe, scenario_id=f"loop{fault_seed}", work_dir=tmp_path / str(fault_seed),
                                 max_attempts=4)
        assert script.accepted, [a.feedback for a in script.attempts]
        first, last = script.attempts[0], script.attempts[-1]
        assert len(script.attempts) >= 2 and first.validation is not None and not first.validation.passed
        assert first.feedback and first.code != last.code and last.code == family_source("peg_in_hole")
        # the repair turn carried the validator's exact error
        repair_prompt = json.dumps(script.attempts[1].coder.messages)
        assert first.validation.first_failure().message.splitlines()[0][:60] in json.loads(repair_prompt)[-1]["content"]
        kinds_seen.add(first.validation.first_failure().name)
    assert {"compile", "geometry"} <= kinds_seen


@pytest.mark.slow
def test_each_injected_fault_is_caught_by_the_validator(datasets_dir, tmp_path):
    from benchgen_assets.variant_runner import run_variant

    source = family_source("peg_in_hole")
    probe = draw_variants(1, 1, ScaleLimits())[0]
    failed_stage = {}
    for kind in FAULT_KINDS:
        report = run_variant(broken_script(source, kind), "faults", probe, tmp_path / kind).report
        assert not report.passed, kind
        failed_stage[kind] = (report.first_failure().name, report.error.kind if report.error else None)
    assert failed_stage["syntax"] == ("compile", "syntax")
    assert failed_stage["forbidden_import"] == ("compile", "forbidden_import")
    assert failed_stage["signature"][0] == "compile" and failed_stage["exception"][0] == "compile"
    assert failed_stage["geometry"][0] == "geometry"


def test_loop_with_too_few_attempts_returns_the_unaccepted_script(datasets_dir, tmp_path):
    plan = _tier1_plan(_client())
    probe = draw_variants(1, 1, plan.scale_limits)[0]
    # fault seed 0 with domain=1: the coder's first answer is broken and there is no second round
    script = generate_script(_client(seed=0, domain=1.0), plan, probe, scenario_id="once", work_dir=tmp_path,
                             max_attempts=1)
    assert not script.accepted and len(script.attempts) == 1
    assert script.attempts[0].validation is not None and script.attempts[0].feedback
