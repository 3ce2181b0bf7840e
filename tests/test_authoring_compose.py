"""Free text on the offline author: a prompt naming several known things gives ONE composed scene
(real sandbox, validator, oracle and Dagster), a prompt it cannot serve gets a message naming what
it can build (planner, CLI, request inbox) instead of a wrong scenario, and a tier batch spans every
family of its tier. The task library fills from accepted scripts and feeds the next coder prompt."""

import json
from collections import Counter

import pytest
from benchgen_assets.authoring import library
from benchgen_assets.authoring.agents import coder_messages, plan_scenario, write_script
from benchgen_assets.authoring.composition import composition_of
from benchgen_assets.authoring.request_text import known_families, read_prompt
from benchgen_assets.authoring.static_review import static_review
from benchgen_assets.families import FAMILIES
from benchgen_assets.manager import main as manager_main
from benchgen_assets.manager import make_requests
from benchgen_assets.records import GenerationRequest, ScenarioPlan, ScenarioScript, ScenarioValidation
from benchgen_assets.requests_inbox import RequestFileError, parse_request_file
from resources.llm import LLMClient, LLMSettings
from resources.llm.client import LLMCallError
from tests.scenario_runs import materialize_scenario

UNSERVABLE = "a humanoid robot"


def _client() -> LLMClient:
    return LLMClient(LLMSettings(), asset="scenario_plan", partition="test")


def _known():
    return known_families([f.model_dump() for f in FAMILIES.values()])


@pytest.mark.parametrize("prompt, named, on_top", [
    ("a drawer with a peg-in-hole on top", [("drawer_slide", 1), ("peg_in_hole", 1)], (1, 0)),
    ("a peg in a hole above a drawer", [("peg_in_hole", 1), ("drawer_slide", 1)], (0, 1)),
    ("two levers", [("lever", 2)], None),
    ("a door and a drawer", [("hinged_door", 1), ("drawer_slide", 1)], None),
    ("10 levers, tier 2", [("lever", 1)], None),
    ("open the drawer and insert the peg", [("drawer_slide", 1), ("peg_in_hole", 1)], None),
])
def test_prompt_names_known_families_in_order(prompt, named, on_top):
    reading = read_prompt(prompt, _known())
    assert [(m.family, m.copies) for m in reading.mentions] == named
    assert reading.on_top == on_top and reading.unknown == ()


def test_prompt_reading_tells_counts_from_names_and_breaks_ties_by_description():
    from benchgen_assets.authoring.request_text import KnownFamily

    catalog = [KnownFamily("four_bar", 3, "Four-bar linkage", "A crank, coupler and rocker pinned in a loop."),
               KnownFamily("block_stacking", 1, "Block stacking", "Free blocks and a pad to stack them on."),
               KnownFamily("block_in_bin", 1, "Block in bin", "A free block beside an open bin.")]
    assert [(m.family, m.copies) for m in read_prompt("two four-bar linkages", catalog).mentions] == [("four_bar", 2)]
    assert [(m.family, m.copies) for m in read_prompt("a four-bar linkage", catalog).mentions] == [("four_bar", 1)]
    assert [m.family for m in read_prompt("stack three blocks", catalog).mentions] == ["block_stacking"]
    assert [m.family for m in read_prompt("a block in a bin", catalog).mentions] == ["block_in_bin"]


def test_prompt_naming_unknown_things_lists_them():
    assert read_prompt(UNSERVABLE, _known()).unknown == ("humanoid",)
    if not any("gear" in name for name in FAMILIES):
        assert read_prompt("a tier 3 gear train", _known()).unknown == ("gear", "train")


def test_composed_plan_carries_the_components_and_the_coder_writes_one_script(datasets_dir):
    client = _client()
    plan, _ = plan_scenario(client, GenerationRequest(scenario_id="s", prompt="a drawer with a peg-in-hole on top"))
    composition = composition_of(plan.geometric_requirements)
    assert plan.family is None and composition is not None
    assert [(c.label, c.family, c.on_top_of) for c in composition.components] == [
        ("drawer_slide", "drawer_slide", None), ("peg_in_hole", "peg_in_hole", "drawer_slide")]
    assert plan.scale_limits.min[:2] == (0.7, 0.7)  # the drawer's cabinet keeps room for the peg's block

    levers, _ = plan_scenario(client, GenerationRequest(scenario_id="s", prompt="two levers"))
    assert [c.label for c in composition_of(levers.geometric_requirements).components] == ["lever_1", "lever_2"]
    reply, _ = write_script(client, coder_messages(levers))
    assert reply.code.count("def lever_family()") == 1 and "beside(" in reply.code
    assert static_review(reply.code) == []


def test_two_levers_stand_apart_with_prefixed_names(private_build_server, datasets_dir, tmp_path):
    from benchgen_assets.sandbox import run_build

    client = _client()
    plan, _ = plan_scenario(client, GenerationRequest(scenario_id="s", prompt="two levers"))
    reply, _ = write_script(client, coder_messages(plan))
    built = run_build(reply.code, 5, (1.0, 1.0, 1.0), tmp_path / "cad")
    names = [p.name for p in built.parts]
    assert names == [f"lever_{k}_{n}" for k in (1, 2) for n in ("fulcrum_stand", "beam", "load")]
    first = [p for p in built.parts if p.name.startswith("lever_1_")]
    second = [p for p in built.parts if p.name.startswith("lever_2_")]
    assert max(p.bbox_max_mm[0] for p in first) + 39.9 < min(p.bbox_min_mm[0] for p in second)
    assert built.parameters["lever_1_lever"] != built.parameters["lever_2_lever"]  # drawn apart
    if built.task is not None:  # the merged task refers to the prefixed names
        assert {g.part for g in built.task.goal if hasattr(g, "part")} <= set(names)


def test_unservable_prompt_planner_says_what_it_can_build(datasets_dir):
    with pytest.raises(LLMCallError) as err:
        plan_scenario(_client(), GenerationRequest(scenario_id="s", prompt=UNSERVABLE))
    text = str(err.value)
    assert "cannot build 'a humanoid robot'" in text and "'humanoid'" in text
    assert all(name in text for name in FAMILIES) and "a drawer with a peg-in-hole on top" in text


def test_unservable_prompt_cli_and_inbox_refuse_before_making_partitions(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BENCHGEN_DATASETS", str(tmp_path / "datasets"))
    assert manager_main(["generate", "--prompt", UNSERVABLE]) == 2
    err = capsys.readouterr().err
    assert "cannot build 'a humanoid robot'" in err and "peg_in_hole (Peg in hole, tier 1)" in err
    assert not (tmp_path / "datasets").exists()  # no request saved, no partition made
    with pytest.raises(RequestFileError, match="cannot build 'a humanoid robot'"):
        parse_request_file(b'{prompt: "a humanoid robot", count: 2}\n')


@pytest.mark.parametrize("tier", sorted({f.tier for f in FAMILIES.values()}))
def test_a_tier_batch_of_ten_spans_every_family_of_the_tier(datasets_dir, tier):
    client = _client()
    families = Counter()
    for r in make_requests(tier=tier, family=None, prompt=None, count=10, seed=7, variants=1):
        plan, _ = plan_scenario(client, r)
        families[plan.family] += 1
    assert set(families) == {n for n, f in FAMILIES.items() if f.tier == tier}
    assert max(families.values()) - min(families.values()) <= 1  # round-robin


def test_drawer_with_peg_on_top_end_to_end_and_into_the_library(datasets_dir):
    sid = "drawer-peg"
    result = materialize_scenario(GenerationRequest(scenario_id=sid, prompt="a drawer with a peg-in-hole on top",
                                                    seed=2, variants=2))
    assert result.success
    validation = ScenarioValidation.model_validate_json((datasets_dir / "benchmarks" / sid / "scenario.json").read_text())
    assert validation.valid >= 1
    for v in validation.variants:
        if not v.report.passed:
            continue
        d = datasets_dir / v.manifest.dir
        task = json.loads((d / "task.json").read_text())
        refs = {g.get("part") or g.get("site") for g in task["goal"]}
        assert any(r.startswith("drawer_slide_") for r in refs) and any(r.startswith("peg_in_hole_") for r in refs)
        assert v.report.oracle.solved and v.report.oracle.time_to_success_s <= task["time_limit_s"]
        parts = {p["name"]: p for p in json.loads((d / "build.json").read_text())["parts"]}
        cabinet, block = parts["drawer_slide_cabinet"], parts["peg_in_hole_block"]
        assert block["bbox_min_mm"][2] == pytest.approx(cabinet["bbox_max_mm"][2], abs=1e-6)  # stands on it

    plan = ScenarioPlan.model_validate(json.loads((datasets_dir / "benchmarks" / sid / "plan.json").read_text())["plan"])
    stored = library.stored_entries()
    assert [e.entry.scenarios for e in stored] == [[sid]]
    entry = stored[0].entry
    assert entry.families == ["drawer_slide", "peg_in_hole"] and entry.oracle
    assert "drawer_slide_drawer >=" in entry.predicate and " mm AND " in entry.predicate and "peg_in_hole_" in entry.predicate
    assert all(o.solved for o in entry.oracle)
    # the next composed request gets it as its first worked example; its own scenario does not
    nxt = library.examples_for(plan, exclude_scenario="another")
    assert nxt[0].entry.code_sha256 == entry.code_sha256
    assert entry.code_sha256 not in {e.entry.code_sha256 for e in library.examples_for(plan, exclude_scenario=sid)}
    assert stored[0].code in coder_messages(plan, nxt)[1]["content"]

    # accepted again by another scenario: still one entry, both scenarios recorded
    script = ScenarioScript(scenario_id="again", code=stored[0].code, accepted=True, source="coder", attempts=[],
                            code_sha256=entry.code_sha256)
    library.add_accepted(plan, script, validation)
    again = library.stored_entries()
    assert len(again) == 1 and again[0].entry.scenarios == ["again", sid]
    assert again[0].entry.added_at == entry.added_at


def test_coder_prompt_carries_the_contract_and_bounded_relevant_examples(datasets_dir):
    from benchgen_assets.authoring.prompts import load_prompt
    from benchgen_assets.sandbox.policy import ALLOWED_MODULES

    system = load_prompt("coder")
    assert system.prompt_version == "coder@2"
    for needle in (", ".join(ALLOWED_MODULES), "class JointCoupling", "class SiteInBox", "class CarryPart",
                   "def combine_scenes(", "millimetres", "radians", "0 as\n  built", "must NOT satisfy"):
        assert needle in system.text, needle
    assert "_NAME_FIELDS" not in system.text and "{{" not in system.text

    lever = ScenarioPlan(title="Lever", family="lever", tier=2, summary="s", geometric_requirements=["g"],
                         learning_objectives=["l"], self_verification=["v"])
    examples = library.examples_for(lever)
    assert examples[0].entry.family == "lever" and len(examples) == library.MAX_EXAMPLES
    assert all(e.entry.tier == 2 for e in examples)  # same family first, then the same tier
    assert sum(len(e.code) for e in examples) <= library.MAX_EXAMPLE_CHARS
    small = library.examples_for(lever, max_chars=len(examples[0].code))
    assert [e.entry.family for e in small] == ["lever"]
    text = coder_messages(lever, examples)[1]["content"]
    assert text.index("### Example 1: Lever on a fulcrum (family lever, tier 2, shipped)") < text.index("```json input")


def _accept_in_process(args):
    from benchgen_assets.records import (ScenarioManifest, ScenarioValidation, ValidationReport, VariantOutcome)
    from benchgen_assets.variant_runner import code_sha256

    scenario_id, code = args
    plan = ScenarioPlan(title="Lever", family="lever", tier=2, summary="s", geometric_requirements=["g"],
                        learning_objectives=["l"], self_verification=["v"])
    report = ValidationReport(scenario_id=scenario_id, variant_id="v00", seed=1, scale=(1, 1, 1), passed=True)
    manifest = ScenarioManifest(scenario_id=scenario_id, variant_id="v00", name="lever", title="Lever", tier=2,
                                family="lever", seed=1, scale=(1, 1, 1), status="valid", dir="x",
                                validation_path="x/validation.json", script_sha256=code_sha256(code),
                                instruction="Tip the beam.", predicate="joint of beam >= 0.2 rad", time_limit_s=5.0)
    script = ScenarioScript(scenario_id=scenario_id, code=code, accepted=True, source="coder", attempts=[],
                            code_sha256=code_sha256(code))
    library.add_accepted(plan, script, ScenarioValidation(scenario_id=scenario_id,
                                                          variants=[VariantOutcome(manifest=manifest, report=report)]))


def test_parallel_acceptances_of_one_script_make_one_entry_with_every_scenario(datasets_dir):
    import multiprocessing

    jobs = [(f"s{i}", "A = 1\n" if i % 2 else "B = 2\n") for i in range(8)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_accept_in_process, jobs)
    stored = {e.code: e.entry for e in library.stored_entries()}
    assert set(stored) == {"A = 1\n", "B = 2\n"}
    assert stored["A = 1\n"].scenarios == ["s1", "s3", "s5", "s7"] and stored["B = 2\n"].scenarios == ["s0", "s2", "s4", "s6"]
    assert stored["A = 1\n"].predicate == "joint of beam >= 0.2 rad"
    assert not [p for p in (datasets_dir / "library").iterdir() if p.name.startswith(".") and p.name != ".lock"]
