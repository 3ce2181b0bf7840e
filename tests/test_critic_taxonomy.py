"""The C.5 critic and G scorer label a tree's errors with the Embodied Agent Interface taxonomy.

Trees come from the real offline architect through the real LLM client; faults are injected with
``inject_fault``; the critic and scorer are called as agents (litellm → offline teacher).
"""

import json
import re

import pytest

from resources.llm import FaultConfig, LLMClient, LLMSettings
from teacher_assets.agents.cognition import analyse_scene
from teacher_assets.agents.construction import critique_tree, design_tree
from teacher_assets.agents.fault_injection import INJECTABLE, inject_fault
from teacher_assets.agents.schemas import ERROR_LABELS, error_labels
from teacher_assets.agents.tree_reading import read_tree
from teacher_assets.agents.validation import judge_tree


def client(**faults) -> LLMClient:
    return LLMClient(LLMSettings(backoff_s=0.01, backoff_max_s=0.05, faults=FaultConfig(**faults)), asset="test", partition="p")


def report_for(instruction: str, objects: list[str]):
    report, _ = analyse_scene(client(), instruction, contact_sheet=None, frames=[], metadata={"objects": objects})
    return report


def tree(*actions) -> str:
    leaves = "".join(f'<Action ID="{a}" obj="{o}"/>' if o else f'<Action ID="{a}"/>' for a, o in actions)
    return (f'<root BTCPP_format="4" main_tree_to_execute="MainTree"><BehaviorTree ID="MainTree"><Sequence>{leaves}'
            "</Sequence></BehaviorTree></root>")


def review(instruction, objects, xml, iteration=1):
    reply, record = critique_tree(client(), instruction, report_for(instruction, objects), xml, iteration, 2)
    return reply, error_labels(reply.errors), record


# ------------------------------------------------------------------- the three trees of issue 10
def test_a_block_placed_on_an_object_named_left_is_a_hallucinated_object(datasets_dir):
    placed_on_left = tree(("NAVIGATE_TO", "red_block"), ("GRASP", "red_block"), ("NAVIGATE_TO", "left"),
                          ("PLACE_ON_TOP", "left"))
    # The instruction asks for a relation PAL cannot express: the task is infeasible, "left" made up.
    reply, labels, record = review("Put the red block on the left of the blue bowl.", ["red_block", "blue_bowl"],
                                   placed_on_left)
    assert reply.verdict == "REJECT" and labels == ["hallucinated_object", "infeasible_task"]
    assert reply.logical_coherence < 10 and any("'left' names a place" in i for i in reply.critical_issues)
    assert record.output["errors"] and record.verdict == "REJECT"
    # A feasible instruction with the same made-up target: caught as well, and only as that.
    reply, labels, _ = review("Stack the red block on the blue block.", ["red_block", "blue_block"], placed_on_left)
    assert reply.verdict == "CONCERNS" and labels == ["hallucinated_object"]


def test_a_lid_taken_off_a_pot_and_never_put_down_is_a_missing_step(datasets_dir):
    lid_kept = tree(("NAVIGATE_TO", "lid"), ("GRASP", "lid"))
    reply, labels, _ = review("Take the lid off the pot.", ["lid", "pot", "table"], lid_kept)
    assert reply.verdict == "CONCERNS" and labels == ["missing_step"]
    assert any("PLACE_ON_TOP table" in i and "keeps holding" in i for i in reply.critical_issues)
    # Taking the next object with the lid still in hand: the set-down is missing, not misplaced.
    carrot = tree(("NAVIGATE_TO", "lid"), ("GRASP", "lid"), ("NAVIGATE_TO", "carrot"), ("GRASP", "carrot"),
                  ("NAVIGATE_TO", "pot"), ("PLACE_INSIDE", "pot"))
    reply, labels, _ = review("Take the lid off the pot and put it on the table, then put the carrot in the pot.",
                              ["lid", "pot", "carrot", "table"], carrot)
    assert labels == ["missing_step"] and any("needs an empty hand but lid is held" in i for i in reply.critical_issues)


def test_move_near_turned_into_place_on_top_is_a_wrong_relation(datasets_dir):
    on_top = tree(("NAVIGATE_TO", "pepsi_can"), ("GRASP", "pepsi_can"), ("NAVIGATE_TO", "orange"),
                  ("PLACE_ON_TOP", "orange"))
    reply, labels, _ = review("move the pepsi can near the orange", ["pepsi_can", "orange"], on_top)
    assert reply.verdict == "REJECT" and labels == ["wrong_relation", "infeasible_task"]
    assert (reply.logical_coherence, reply.visual_grounding) == (0, 0)
    assert any("unsupported_relation:near" in i for i in reply.critical_issues)


def test_a_subtree_port_nothing_sets_is_an_arity_error(datasets_dir):
    unbound = ('<root BTCPP_format="4" main_tree_to_execute="MainTree"><BehaviorTree ID="MainTree"><Sequence>'
               '<SubTree ID="T_Toggle" target="{lamp_name}"/></Sequence></BehaviorTree>'
               '<BehaviorTree ID="T_Toggle"><Sequence><Action ID="NAVIGATE_TO" obj="{target}"/>'
               '<Action ID="TOGGLE_ON" obj="{target}"/></Sequence></BehaviorTree></root>')
    reply, labels, _ = review("Turn on the desk lamp.", ["lamp", "table"], unbound)
    assert labels == ["arity_error"] and reply.verdict == "CONCERNS"
    assert any("{lamp_name} is a blackboard entry nothing sets" in i for i in reply.critical_issues)


# ------------------------------------------------------------- trees played by the world's rules
def doc(body: str) -> str:
    return (f'<root BTCPP_format="4" main_tree_to_execute="MainTree"><BehaviorTree ID="MainTree"><Sequence>{body}'
            "</Sequence></BehaviorTree></root>")


def act(action: str, obj: str | None = None) -> str:
    return f'<Action ID="{action}" obj="{obj}"/>' if obj else f'<Action ID="{action}"/>'


def test_the_critic_judges_reach_by_the_worlds_navigation_rule(datasets_dir):
    """NAVIGATE_TO the drawer brings what lies in it within reach; from the table it is out of reach."""
    instruction, objects = "Take the red block out of the drawer and put it on the table.", ["drawer", "red_block", "table"]
    from_the_drawer = tree(("NAVIGATE_TO", "drawer"), ("OPEN", "drawer"), ("GRASP", "red_block"),
                           ("NAVIGATE_TO", "table"), ("PLACE_ON_TOP", "table"))
    reply, labels, _ = review(instruction, objects, from_the_drawer)
    assert reply.verdict == "ACCEPT" and labels == [], reply.critical_issues
    from_the_table = tree(("NAVIGATE_TO", "drawer"), ("OPEN", "drawer"), ("NAVIGATE_TO", "table"), ("GRASP", "red_block"),
                          ("PLACE_ON_TOP", "table"))
    reply, labels, _ = review(instruction, objects, from_the_table)
    assert labels == ["missing_step"] and len(reply.critical_issues) == 1  # the robot stays at the table for PLACE
    assert "step 4 (GRASP red_block): no NAVIGATE_TO red_block" in reply.critical_issues[0]
    assert "the robot is next to table" in reply.critical_issues[0]
    approach_late = tree(("NAVIGATE_TO", "drawer"), ("OPEN", "drawer"), ("NAVIGATE_TO", "table"), ("GRASP", "red_block"),
                         ("NAVIGATE_TO", "drawer"), ("NAVIGATE_TO", "table"), ("PLACE_ON_TOP", "table"))
    reply, labels, _ = review(instruction, objects, approach_late)
    assert labels == ["wrong_order"] and "(the approach comes later)" in reply.critical_issues[0]


def test_guard_conditions_are_asked_of_the_world(datasets_dir):
    instruction, objects = "Put the red cup in the drawer and close it.", ["red_cup", "drawer"]
    report = report_for(instruction, objects)
    opened = report.model_copy(update={"object_states": {"drawer": "open"}})
    rest = act("NAVIGATE_TO", "red_cup") + act("GRASP", "red_cup") + act("NAVIGATE_TO", "drawer") + \
        act("PLACE_INSIDE", "drawer") + act("CLOSE", "drawer")
    guarded_open = doc(act("NAVIGATE_TO", "drawer") + '<Fallback><Condition ID="IsOpen" obj="drawer"/>'
                       + act("OPEN", "drawer") + "</Fallback>" + rest)
    # The report says the drawer is open: the guard holds, OPEN is skipped, nothing is extra.
    reply, _ = critique_tree(client(), instruction, opened, guarded_open, 1, 2)
    assert reply.verdict == "ACCEPT" and reply.errors == [], reply.questions
    unguarded = doc(act("NAVIGATE_TO", "drawer") + act("OPEN", "drawer") + rest)
    reply, _ = critique_tree(client(), instruction, opened, unguarded, 1, 2)
    assert [(e.label, e.critical) for e in reply.errors] == [("extra_step", False)]
    # Nothing says the drawer is open (the world's default "closed" is no evidence): OPEN runs.
    reply, _ = critique_tree(client(), instruction, report, guarded_open, 1, 2)
    assert reply.verdict == "ACCEPT" and reply.errors == [], reply.questions
    # A guard that skips the grasp while the hand is empty: the grasp is never done.
    wrong_guard = doc(act("NAVIGATE_TO", "drawer") + act("OPEN", "drawer") + act("NAVIGATE_TO", "red_cup")
                      + '<Fallback><Inverter><Condition ID="IsHolding" obj="red_cup"/></Inverter>'
                      + act("GRASP", "red_cup") + "</Fallback>" + act("NAVIGATE_TO", "drawer")
                      + act("PLACE_INSIDE", "drawer") + act("CLOSE", "drawer"))
    reply, _ = critique_tree(client(), instruction, report, wrong_guard, 1, 2)
    assert error_labels(reply.errors) == ["missing_step"]
    assert any("task needs GRASP red_cup but the tree never does it" in i for i in reply.critical_issues)
    # A guard asking about an object the episode lacks is a made-up object as well.
    made_up_guard = doc(act("NAVIGATE_TO", "drawer") + '<Fallback><IsOpen obj="cabinet"/>' + act("OPEN", "drawer")
                        + "</Fallback>" + rest)
    reply, _ = critique_tree(client(), instruction, report, made_up_guard, 1, 2)
    assert error_labels(reply.errors) == ["hallucinated_object"]
    assert any("guard IsOpen(cabinet)" in i for i in reply.critical_issues)


# --------------------------------------------------------------------------- fault injection
TASKS = {
    "Pick up the red cup and place it on the tray.": ["red_cup", "tray", "table"],
    "Open the drawer, put the red block inside, then close the drawer.": ["drawer", "red_block", "blue_block"],
    "Turn on the desk lamp.": ["lamp", "table"],
    "Take the lid off the pot.": ["lid", "pot", "table"],
    "Put the green apple into the blue bowl.": ["green_apple", "blue_bowl", "red_bowl", "table"],
    "Place the pan next to the heating element of the stove.": ["stove", "pan"],
    "Pick up the ball and drop it.": ["ball"],
    "Wipe the table with the cloth.": ["cloth", "table", "cup"],
    "Cut the bread with the knife.": ["knife", "bread", "table"],
}


@pytest.fixture(scope="module")
def drafts(tmp_path_factory):
    """Sound drafts from the offline architect (the critic accepts each without any error)."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHGEN_DATASETS", str(tmp_path_factory.mktemp("datasets")))
        for instruction, objects in TASKS.items():
            report = report_for(instruction, objects)
            design = design_tree(client(), instruction, report)
            assert design.final_verdict == "ACCEPT" and design.dialogue[1].critique.errors == []
            out[instruction] = (report, design.bt_xml)
    return out


@pytest.mark.parametrize("kind", INJECTABLE)
def test_the_critic_catches_each_injected_error_with_its_label(datasets_dir, drafts, kind):
    applicable = 0
    for instruction, (report, xml) in drafts.items():
        for seed in range(2):
            faulty = inject_fault(xml, kind, scene_objects=report.entities, seed=seed)
            if faulty is None:
                continue
            applicable += 1
            assert faulty != xml
            reply, _ = critique_tree(client(), instruction, report, faulty, 1, 2)
            labels = error_labels(reply.errors)
            assert reply.verdict == "CONCERNS" and kind in labels, (instruction, kind, labels, reply.critical_issues)
            assert any(i.startswith(f"[{kind}]") for i in reply.critical_issues)
    assert applicable >= 2, f"{kind}: too few trees allow it"


def test_tool_use_faults_are_judged_by_the_worlds_wipe_and_cut_rules(datasets_dir, drafts):
    """WIPE / CUT on what cannot be wiped or cut is an affordance violation; a made-up tool is only a
    made-up object (what it affords is unknown, so the WIPE it is used for is not blamed too)."""
    for instruction, action in (("Wipe the table with the cloth.", "WIPE"), ("Cut the bread with the knife.", "CUT")):
        report, xml = drafts[instruction]
        faulty = inject_fault(xml, "affordance_violation", scene_objects=report.entities)
        reply, _ = critique_tree(client(), instruction, report, faulty, 1, 2)
        assert error_labels(reply.errors) == ["affordance_violation"], reply.critical_issues
        assert f"({action} " in reply.critical_issues[0] and ("not_wipeable" if action == "WIPE" else "not_cuttable") \
            in reply.critical_issues[0]
        tool = next(a.obj for a in read_tree(xml).actions if a.action == "GRASP")
        made_up = xml.replace(f'obj="{tool}"', 'obj="glass_vase"')
        reply, _ = critique_tree(client(), instruction, report, made_up, 1, 2)
        assert error_labels(reply.errors) == ["hallucinated_object"], reply.critical_issues


def test_single_label_for_the_basic_kinds(datasets_dir, drafts):
    """On a two-object pick-and-place, each basic fault gets exactly its own label."""
    report, xml = drafts["Pick up the red cup and place it on the tray."]
    for kind in ("hallucinated_object", "wrong_order", "missing_step", "affordance_violation", "extra_step",
                 "hallucinated_action", "arity_error", "parse_error"):
        faulty = inject_fault(xml, kind, scene_objects=report.entities, seed=0)
        reply, _ = critique_tree(client(), "Pick up the red cup and place it on the tray.", report, faulty, 1, 2)
        assert error_labels(reply.errors) == [kind], (kind, reply.critical_issues)


def test_what_each_injection_does(drafts):
    report, xml = drafts["Open the drawer, put the red block inside, then close the drawer."]
    steps = lambda x: [(a.action, a.obj) for a in read_tree(x).actions if a.action != "NAVIGATE_TO"]  # noqa: E731
    assert steps(xml) == [("OPEN", "drawer"), ("GRASP", "red_block"), ("PLACE_INSIDE", "drawer"), ("CLOSE", "drawer")]
    assert steps(inject_fault(xml, "wrong_relation", scene_objects=report.entities)) == [
        ("OPEN", "drawer"), ("GRASP", "red_block"), ("PLACE_ON_TOP", "drawer"), ("CLOSE", "drawer")]
    dropped = steps(inject_fault(xml, "missing_step", scene_objects=report.entities))
    assert ("PLACE_INSIDE", "drawer") not in dropped and len(dropped) == 3  # the set-down goes first
    swapped = steps(inject_fault(xml, "wrong_order", scene_objects=report.entities, seed=0))
    assert sorted(swapped) == sorted(steps(xml)) and swapped != steps(xml)
    assert inject_fault(xml, "wrong_relation", scene_objects=report.entities, seed=3) is not None
    assert inject_fault(tree(("NAVIGATE_TO", "lamp"), ("TOGGLE_ON", "lamp")), "wrong_relation") is None
    with pytest.raises(ValueError, match="unknown fault kind"):
        inject_fault(xml, "typo")
    with pytest.raises(ValueError, match="not a readable BehaviorTree document"):
        inject_fault("<root><Sequence>", "missing_step")
    assert set(INJECTABLE) <= set(ERROR_LABELS)


def test_injection_into_a_hardened_tree_reads_past_guards_and_moves_them_with_the_step(drafts):
    from lxml import etree

    from teacher_assets.bt.model import parse_bt_xml, to_bt_xml
    from teacher_assets.bt.transforms import add_robustness

    report, xml = drafts["Open the drawer, put the red block inside, then close the drawer."]
    hardened = to_bt_xml(add_robustness(parse_bt_xml(xml)))
    assert '<Condition ID="IsHolding" obj="red_block"/>' in hardened

    def grasps_and_guards(x):
        root = etree.fromstring(x.encode())
        return ({a.get("obj") for a in root.iter("Action") if a.get("ID") == "GRASP" and a.get("obj")},
                {c.get("obj") for c in root.iter("Condition") if c.get("ID") == "IsHolding" and c.get("obj")})

    for seed in range(4):
        faulty = inject_fault(hardened, "wrong_object", scene_objects=report.entities, seed=seed)
        grasped, guarded = grasps_and_guards(faulty)
        if grasped != {"red_block"}:  # the grasp got another object: so did its guard and recovery branch
            assert guarded == grasped and len(grasped) == 1, faulty
            break
    else:
        pytest.fail("no seed changed the grasped object")
    # A made-up name replaces the object in actions and guards alike: the old name is gone.
    names = lambda x: set(re.findall(r'obj="([^"{]+)"', x))  # noqa: E731
    renamed = inject_fault(hardened, "hallucinated_object", scene_objects=report.entities, seed=1)
    assert len(names(hardened) - names(renamed)) == 1 and len(names(renamed) - names(hardened)) == 1


def test_the_scorer_labels_what_keeps_a_final_tree_from_the_task(datasets_dir, drafts):
    from teacher_assets.bt.model import parse_bt_xml, to_bt_xml
    from teacher_assets.bt.transforms import add_robustness

    instruction = "Put the green apple into the blue bowl."
    report, xml = drafts[instruction]
    hardened = to_bt_xml(add_robustness(parse_bt_xml(xml)))
    sound = judge_tree(client(), instruction, report, hardened, [])
    assert sound.accepted and sound.score.errors == []
    for kind in ("wrong_relation", "missing_step", "hallucinated_object", "wrong_object"):
        faulty = inject_fault(hardened, kind, scene_objects=report.entities)
        judged = judge_tree(client(), instruction, report, faulty, [])
        assert not judged.accepted and kind in error_labels(judged.score.errors), (kind, judged.score.rationale)
        assert judged.score.grounding < 6 and kind in judged.score.rationale


def test_labels_reach_the_audit_log_and_the_dataset_rows(datasets_dir, tmp_path):
    """A faulty architect's first draft is caught, the revision fixes it: raised and fixed labels are
    recorded per episode in audit_log.json and in the proposer table."""
    from teacher_assets import pipeline as p

    instruction = "Pick up the red cup and place it on the tray."
    report = report_for(instruction, ["red_cup", "tray"])
    for seed in range(40):
        c = client(seed=seed, domain=0.3)
        state = p.EpisodeState(episode_id=f"ep{seed}", episode_path=str(tmp_path), instruction=instruction,
                               scene_report=report)
        state = p.design_stage(c, state)
        first = state.design.dialogue[1].critique
        if state.running and first.errors and state.design.revisions:
            break
    else:
        pytest.fail("no seed gave a caught and fixed draft")
    for stage in (p.refine_stage, p.conformance_stage, p.score_stage):
        state = stage(client(), state)
    assert state.status == "accepted", state.reason
    p.write_outputs(state, tmp_path / "proposer")
    audit = json.loads((tmp_path / "proposer" / state.episode_id / "audit_log.json").read_text())
    taxonomy = audit["error_taxonomy"]
    assert taxonomy["raised"] == error_labels(first.errors) and taxonomy["fixed"] == taxonomy["raised"]
    assert taxonomy["remaining"] == [] and taxonomy["scorer"] == []
    assert taxonomy["critic_reviews"][0] == taxonomy["raised"]
    rows, _ = p.build_proposer_dataset(tmp_path / "proposer")
    assert rows[0]["critic_error_labels"] == taxonomy["raised"]
    assert rows[0]["critic_error_labels_fixed"] == taxonomy["raised"]
