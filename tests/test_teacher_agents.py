"""The teacher's agents through the real LLMClient (litellm) and the offline teacher."""

import pytest

from resources.llm import FaultConfig, LLMClient, LLMSettings
from teacher_assets.agents.cognition import analyse_scene, assess_feasibility
from teacher_assets.agents.construction import design_tree
from teacher_assets.agents.offline_critic import simulate_preconditions
from teacher_assets.agents.prompts import PROMPTS_DIR, load_prompt
from teacher_assets.agents.schemas import SceneReport
from teacher_assets.agents.tree_reading import read_tree
from teacher_assets.agents.validation import enforce_conformance, judge_tree, tree_issues
from teacher_assets.bt.pal import PAL_ACTIONS
from teacher_assets.episodes import build_contact_sheet
from teacher_assets.pipeline import EpisodeState, design_stage

# Instructions of the shipped samples plus two that need RELEASE and SOAK_INSIDE.
INSTRUCTIONS = {
    "Pick up the red cup and place it on the tray.": ["red_cup", "tray"],
    "Put the green apple into the blue bowl.": ["green_apple", "blue_bowl"],
    "Open the drawer, put the red block inside, then close the drawer.": ["drawer", "red_block"],
    "Turn on the desk lamp.": ["lamp"],
    "Turn off the stove burner.": ["stove", "burner"],
    "Wipe the table with the yellow sponge.": ["table", "yellow_sponge"],
    "Cut the bread on the cutting board with the knife.": ["bread", "cutting_board", "knife"],
    "Turn on the faucet and soak the sponge under the running water.": ["sink", "faucet", "sponge"],
    "Place the pan next to the heating element of the stove.": ["stove", "pan"],
    "Pick up the ball and drop it.": ["ball"],
    "Wet the rag in the bowl of water.": ["rag", "bowl"],
}


def client(**faults) -> LLMClient:
    return LLMClient(LLMSettings(backoff_s=0.01, backoff_max_s=0.05, faults=FaultConfig(**faults)), asset="test", partition="p")


def report_for(instruction: str, objects: list[str]) -> SceneReport:
    report, _ = analyse_scene(client(), instruction, contact_sheet=None, frames=[], metadata={"objects": objects})
    return report


def test_prompts_have_versions_that_enter_the_cache_key(datasets_dir):
    names = sorted(p.stem for p in PROMPTS_DIR.glob("*.md"))
    assert names == ["architect", "critic", "feasibility", "repairer", "robustness", "scene_analysis", "scorer", "subtrees"]
    assert all(load_prompt(n).version for n in names)
    c = client()
    _, first = assess_feasibility(c, "Turn on the desk lamp.")
    _, again = assess_feasibility(c, "Turn on the desk lamp.")
    assert (first.cache_hit, again.cache_hit) == (False, True)
    assert first.prompt_version == f"feasibility@{load_prompt('feasibility').version}"


def test_feasibility_accepts_pal_tasks_and_rejects_the_rest_with_reason(datasets_dir):
    c = client()
    for instruction in INSTRUCTIONS:
        reply, record = assess_feasibility(c, instruction)
        assert reply.feasible, (instruction, reply.reason)
        assert record.verdict == "FEASIBLE" and record.prompt_tokens > 0
    for instruction, verb in [("Cook the pasta in the pot until it is al dente.", "cook"),
                              ("Fold the towel neatly in half.", "fold"),
                              ("Screw the light bulb into the lamp socket.", "screw"),
                              ("Pour the water into the glass.", "pour"),
                              ("Juggle three oranges.", "juggle")]:
        reply, record = assess_feasibility(c, instruction)
        assert not reply.feasible and record.verdict == "INFEASIBLE"
        assert verb in reply.reason.lower()


def test_scene_analysis_sends_the_contact_sheet_and_is_honest_about_it(datasets_dir):
    from PIL import Image
    import io

    def png(color):
        buf = io.BytesIO()
        Image.new("RGB", (16, 12), color).save(buf, format="PNG")
        return buf.getvalue()

    frames = [png((i * 20, 0, 0)) for i in range(9)]
    c = client()
    instruction = "Put the green apple into the blue bowl."
    report, record = analyse_scene(c, instruction, contact_sheet=build_contact_sheet(frames), frames=frames,
                                   metadata={"objects": ["table", "blue_bowl", "green_apple"]})
    assert report.scene_description and report.dynamic_progression and report.planner_hints
    assert {"blue_bowl", "green_apple"} <= set(report.entities)
    assert "no pixels" in report.evidence
    # The image is part of the request: another contact sheet is another cache key.
    other = [png((0, i * 20, 0)) for i in range(9)]
    _, record2 = analyse_scene(c, instruction, contact_sheet=build_contact_sheet(other), frames=other,
                               metadata={"objects": ["table", "blue_bowl", "green_apple"]})
    assert not record2.cache_hit and record2.input_digest != record.input_digest


def test_plans_cover_all_14_primitives_and_pass_the_critic(datasets_dir):
    c = client()
    used: set[str] = set()
    for instruction, objects in INSTRUCTIONS.items():
        design = design_tree(c, instruction, report_for(instruction, objects))
        assert design.accepted and design.final_verdict == "ACCEPT", (instruction, design.reason)
        actions = read_tree(design.bt_xml).actions
        assert not simulate_preconditions(actions).findings, instruction
        used |= {a.action for a in actions}
    assert used == set(PAL_ACTIONS)


def test_open_before_grasp_and_report_states_are_used(datasets_dir):
    c = client()
    instruction = "Put the red cup in the drawer and close it."
    report = report_for(instruction, ["red_cup", "drawer"])
    steps = [(a.action, a.obj) for a in read_tree(design_tree(c, instruction, report).bt_xml).actions]
    assert steps.index(("OPEN", "drawer")) < steps.index(("GRASP", "red_cup")) < steps.index(("PLACE_INSIDE", "drawer"))
    assert steps[-1] == ("CLOSE", "drawer")
    # The scene report says the drawer is already open: the architect skips OPEN.
    opened = report.model_copy(update={"object_states": {"drawer": "open"}})
    steps = [(a.action, a.obj) for a in read_tree(design_tree(c, instruction, opened).bt_xml).actions]
    assert ("OPEN", "drawer") not in steps and ("PLACE_INSIDE", "drawer") in steps


def test_critic_loop_recovers_from_a_faulty_architect(datasets_dir):
    instruction = "Pick up the red cup and place it on the tray."
    report = report_for(instruction, ["red_cup", "tray"])
    recovered = 0
    for seed in range(12):
        design = design_tree(client(seed=seed, domain=0.5), instruction, report)
        first_review = design.dialogue[1].critique
        if design.accepted:  # whatever the faults, what passes the dialogue is a sound plan
            assert not simulate_preconditions(read_tree(design.bt_xml).actions).findings
        else:
            assert design.final_verdict == "REJECT" and "critic REJECT" in design.reason
        if first_review.critical_issues and design.accepted:
            recovered += 1
            assert design.revisions >= 1 and design.dialogue[2].responses  # the architect answered
    assert recovered >= 1


def test_permanent_reject_skips_the_episode(datasets_dir):
    c = client()
    instruction = "Fold the towel neatly in half."
    report = report_for(instruction, ["towel"])
    state = EpisodeState(episode_id="fold", episode_path="/x", instruction=instruction, scene_report=report)
    after = design_stage(c, state)
    assert after.status == "rejected" and after.stopped_at == "bt_draft"
    assert after.design.final_verdict == "REJECT" and after.design.revisions == 0
    # Non-strict mode records the verdict and goes on.
    assert design_stage(c, state, strict=False).status == "running"


BROKEN_TREES = {
    "non_pal": '<root BTCPP_format="4" main_tree_to_execute="MainTree"><BehaviorTree ID="MainTree"><Sequence>'
               '<Action ID="NAVIGATE_TO" obj="cup"/><Action ID="PickUp" obj="cup"/></Sequence></BehaviorTree></root>',
    "timeout": '<root BTCPP_format="4" main_tree_to_execute="MainTree"><BehaviorTree ID="MainTree"><Sequence>'
               '<Action ID="NAVIGATE_TO" obj="cup"/><Action ID="GRASP" obj="cup" timeout_ms="500"/></Sequence></BehaviorTree></root>',
    "missing_obj": '<root BTCPP_format="4" main_tree_to_execute="MainTree"><BehaviorTree ID="MainTree"><Sequence>'
                   '<Action ID="NAVIGATE_TO" obj="cup"/><Action ID="GRASP"/></Sequence></BehaviorTree></root>',
    "truncated": '<root BTCPP_format="4" main_tree_to_execute="MainTree"><BehaviorTree ID="MainTree"><Sequence>'
                 '<Action ID="NAVIGATE_TO" obj="cup"/><Action ID="GRASP" obj="cup"/></Sequence>',
}


@pytest.mark.parametrize("kind", sorted(BROKEN_TREES))
def test_conformance_agent_repairs_broken_trees(datasets_dir, kind):
    outcome = enforce_conformance(client(), BROKEN_TREES[kind])
    assert outcome.issues_found and outcome.ok and outcome.repaired, outcome.remaining_issues
    assert tree_issues(outcome.bt_xml)[1] == []
    assert 'name="node_01"' in outcome.bt_xml and "PickUp" not in outcome.bt_xml and "timeout_ms" not in outcome.bt_xml
    assert [c.agent for c in outcome.calls] == ["F conformance", "F LLMRepairer"]
    assert outcome.calls[0].verdict == "REPAIRED"


def test_repair_loop_recovers_from_a_faulty_repairer_and_rejects_when_it_cannot(datasets_dir):
    # With faults the first repair may claim a fix it did not make; the second, told so, fixes it.
    second_try = [enforce_conformance(client(seed=s, domain=0.5), BROKEN_TREES["non_pal"]) for s in range(10)]
    assert any(o.ok and len(o.repairs) == 2 for o in second_try)
    always_wrong = enforce_conformance(client(domain=1.0), BROKEN_TREES["non_pal"])
    assert not always_wrong.ok and len(always_wrong.repairs) == 2
    assert always_wrong.calls[0].verdict == "REJECT" and always_wrong.remaining_issues


def test_scorer_verdict_follows_its_scores(datasets_dir):
    instruction = "Pick up the red cup and place it on the tray."
    report = report_for(instruction, ["red_cup", "tray"])
    design = design_tree(client(), instruction, report)
    good = enforce_conformance(client(), design.bt_xml)  # no retries yet: robustness is weak
    judged = judge_tree(client(), instruction, report, good.bt_xml, [])
    assert judged.score.verdict == "REJECT" and "robustness" in judged.score.rationale
    # A scorer that always contradicts itself is re-asked, then overruled by its own scores.
    contrary = judge_tree(client(domain=1.0), instruction, report, good.bt_xml, [])
    assert contrary.score.verdict == "REJECT" and len(contrary.calls) == 2 and "scores decided" in contrary.note


def test_critic_judges_another_models_tree_on_its_merits(datasets_dir):
    from teacher_assets.agents.construction import critique_tree

    instruction = "Turn on the desk lamp."
    report = report_for(instruction, ["table", "lamp"])

    def tree(*actions):
        leaves = "".join(f'<Action ID="{a}" obj="{o}"/>' for a, o in actions)
        return (f'<root BTCPP_format="4" main_tree_to_execute="Main"><BehaviorTree ID="Main"><Sequence>{leaves}'
                "</Sequence></BehaviorTree></root>")

    # Another name for the same lamp is fine; a missing approach is a critical issue, a wrong action too.
    ok, _ = critique_tree(client(), instruction, report, tree(("NAVIGATE_TO", "desk_lamp"), ("TOGGLE_ON", "desk_lamp")), 1, 2)
    assert ok.verdict == "ACCEPT", ok.critical_issues
    rushed, _ = critique_tree(client(), instruction, report, tree(("TOGGLE_ON", "lamp")), 1, 2)
    assert rushed.verdict == "CONCERNS" and "no NAVIGATE_TO lamp before TOGGLE_ON" in rushed.critical_issues[0]
    wrong, _ = critique_tree(client(), instruction, report, tree(("NAVIGATE_TO", "lamp"), ("TOGGLE_OFF", "lamp")), 2, 2)
    assert wrong.verdict == "REJECT" and any("TOGGLE_ON lamp" in i for i in wrong.critical_issues)
