"""The honest symbolic world (objects from the episode, reachability, WIPE/CUT affordances, failure
injection at every guarded step) and the guard condition nodes, run in real BehaviorTree.CPP."""

from pathlib import Path

import pytest

from resources.llm import LLMClient, LLMSettings
from resources.paths import PROJECT_ROOT
from teacher_assets import pipeline
from teacher_assets.bt import (add_robustness, check_conformance, check_recoveries, execute_symbolic, extract_subtrees,
                               load_in_btcpp, parse_bt_xml, to_bt_xml, world_for_episode,
                               world_for_objects)
from teacher_assets.bt.executor import StepFailure, local_recoveries
from teacher_assets.tree_checks import episode_world, executability_check, pal_check
from tests.bt_trees import bt_doc as _doc, pal_sequence as _seq

SAMPLES = PROJECT_ROOT / "datasets" / "oxe"


def _codes(result) -> list[str]:
    return [v.code for v in result.violations]


# ------------------------------------------------------------------------------ episode objects


def test_object_the_episode_lacks_fails_as_unknown_object():
    world = episode_world("Pick up the red cup and place it on the tray.", ["table", "tray", "red_cup"])
    assert sorted(world.objects) == ["red_cup", "table", "tray"] and world.absent == []
    good = _doc(_seq("NAVIGATE_TO:red_cup", "GRASP:red_cup", "NAVIGATE_TO:tray", "PLACE_ON_TOP:tray"))
    assert execute_symbolic(good, world).status == "SUCCESS"
    # The tree's own names do not make objects: a plausible cup the episode lacks is unknown.
    ghost = good.replace("red_cup", "blue_cup")
    result = execute_symbolic(ghost, world)
    assert result.status == "FAILURE" and _codes(result) == ["unknown_object"]
    assert result.violations[0].obj == "blue_cup" and result.trace[0].reason == "unknown_object"


def test_unknown_object_fails_even_behind_a_recovery_branch():
    world = world_for_objects(["cup", "table"])
    hidden = _doc('<Sequence><Fallback><Action ID="NAVIGATE_TO" obj="glass_vase"/><AlwaysSuccess/></Fallback>'
                  '<Action ID="NAVIGATE_TO" obj="cup"/></Sequence>')
    result = execute_symbolic(hidden, world)
    assert result.status == "FAILURE" and _codes(result) == ["unknown_object"]
    guard = _doc('<Sequence><Fallback><Condition ID="IsOpen" obj="glass_vase"/><AlwaysSuccess/></Fallback></Sequence>')
    assert _codes(execute_symbolic(guard, world)) == ["unknown_object"]


def test_instruction_objects_are_checked_against_the_scene():
    # The instruction names an apple; the episode's scene has none: the world leaves it out and says why.
    world = episode_world("Put the green apple into the blue bowl.", ["table", "blue_bowl"])
    assert "green_apple" not in world.objects and world.absent == ["green_apple"]
    tree = _doc(_seq("NAVIGATE_TO:green_apple", "GRASP:green_apple", "NAVIGATE_TO:blue_bowl", "PLACE_INSIDE:blue_bowl"))
    result = execute_symbolic(tree, world)
    assert _codes(result) == ["unknown_object"] and "the instruction names it" in result.violations[0].message
    # No metadata objects: the scene report's entities are the scene …
    from_report = episode_world("Put the green apple into the blue bowl.", [],
                                scene_entities=["green_apple", "the blue bowl", "table"])
    assert sorted(from_report.objects) == ["blue_bowl", "green_apple", "table"]
    # … and with neither, the instruction is the only evidence.
    alone = episode_world("Put the green apple into the blue bowl.")
    assert sorted(alone.objects) == ["blue_bowl", "green_apple"] and alone.absent == []
    assert execute_symbolic(tree, alone).status == "SUCCESS"


def test_start_states_come_from_the_report_or_what_the_instruction_presupposes():
    reported = episode_world("Open the drawer.", ["table", "drawer"], object_states={"drawer": "open", "ghost": "on"})
    assert reported.objects["drawer"].is_open and "ghost" not in reported.objects
    assert episode_world("Close the cabinet door.", ["cabinet", "cabinet_door"]).objects["cabinet_door"].is_open
    assert episode_world("Turn off the stove burner.", ["stove", "burner"]).objects["burner"].toggled_on
    assert not episode_world("Turn on the desk lamp.", ["lamp"]).objects["lamp"].toggled_on
    world = world_for_episode(["lamp", "table"], ["lamp"], object_states={"lamp": "on"})
    assert world.objects["lamp"].toggled_on and not world.objects["table"].toggled_on


# -------------------------------------------------------------------------------- reachability


def test_acting_without_navigate_to_fails_as_not_reachable():
    world = world_for_objects(["cup", "tray", "drawer"])
    result = execute_symbolic(_doc('<Action ID="GRASP" obj="cup"/>'), world)
    assert result.status == "FAILURE" and _codes(result) == ["not_reachable"]
    assert "NAVIGATE_TO cup first" in result.violations[0].message
    # Navigating to another object moves the base away from the first one.
    away = _doc(_seq("NAVIGATE_TO:cup", "NAVIGATE_TO:drawer", "GRASP:cup"))
    assert _codes(execute_symbolic(away, world)) == ["not_reachable"]
    # A PLACE needs its destination in reach; the held object moves with the robot.
    place = _doc(_seq("NAVIGATE_TO:cup", "GRASP:cup", "PLACE_ON_TOP:tray"))
    assert _codes(execute_symbolic(place, world)) == ["not_reachable"]
    ok = _doc(_seq("NAVIGATE_TO:cup", "GRASP:cup", "NAVIGATE_TO:tray", "PLACE_ON_TOP:tray"))
    assert execute_symbolic(ok, world).status == "SUCCESS"


def test_what_navigate_to_makes_reachable():
    # At the drawer the robot reaches what lies in it; at the cup on the tray, the tray too.
    world = world_for_objects(["drawer", "block", "cup", "tray"], open=["drawer"], inside={"block": "drawer"},
                              on_top={"cup": "tray"})
    assert execute_symbolic(_doc(_seq("NAVIGATE_TO:drawer", "GRASP:block")), world).status == "SUCCESS"
    at_cup = _doc(_seq("NAVIGATE_TO:cup", "GRASP:cup", "PLACE_ON_TOP:tray"))
    assert execute_symbolic(at_cup, world).status == "SUCCESS"
    # … but not an unrelated object standing elsewhere.
    assert _codes(execute_symbolic(_doc(_seq("NAVIGATE_TO:tray", "OPEN:drawer")), world)) == ["not_reachable"]


# ------------------------------------------------------------------------------ WIPE / CUT affordances


@pytest.mark.parametrize("steps, code", [
    (("NAVIGATE_TO:sponge", "GRASP:sponge", "NAVIGATE_TO:lamp", "WIPE:lamp"), "not_wipeable"),
    (("NAVIGATE_TO:knife", "GRASP:knife", "NAVIGATE_TO:table", "WIPE:table"), "held_not_wiper"),
    (("NAVIGATE_TO:sponge", "GRASP:sponge", "NAVIGATE_TO:bread", "CUT:bread"), "held_not_slicer"),
    (("NAVIGATE_TO:knife", "GRASP:knife", "NAVIGATE_TO:table", "CUT:table"), "not_cuttable"),
])
def test_wipe_and_cut_check_the_target_and_the_held_tool(steps, code):
    world = world_for_objects(["sponge", "knife", "table", "bread", "lamp"])
    result = execute_symbolic(_doc(_seq(*steps)), world)
    assert result.status == "FAILURE" and _codes(result) == [code]


def test_wipe_and_cut_with_the_right_tool_succeed():
    world = world_for_objects(["yellow_sponge", "knife", "table", "spill", "bread"])
    tree = _doc(_seq("NAVIGATE_TO:yellow_sponge", "GRASP:yellow_sponge", "NAVIGATE_TO:spill", "WIPE:spill",
                     "NAVIGATE_TO:table", "WIPE:table", "PLACE_ON_TOP:table",
                     "NAVIGATE_TO:knife", "GRASP:knife", "NAVIGATE_TO:bread", "CUT:bread"))
    result = execute_symbolic(tree, world)
    assert result.status == "SUCCESS", result.violations
    objects = result.final_world.objects
    assert objects["spill"].wiped and objects["table"].wiped and objects["bread"].cut


# ------------------------------------------------------------------------- failures at every guarded step

PICK_PLACE = _doc(_seq("NAVIGATE_TO:cup", "GRASP:cup", "NAVIGATE_TO:tray", "PLACE_ON_TOP:tray"))
CUP_TRAY = world_for_objects(["cup", "tray"])


def test_every_guarded_step_fails_in_turn_and_each_recovery_branch_runs():
    modular, _ = extract_subtrees(add_robustness(parse_bt_xml(PICK_PLACE)))
    xml = to_bt_xml(modular)
    report = check_recoveries(xml, CUP_TRAY)
    assert report.ok, [(r.path, r.status, r.violations) for r in report.failed_runs]
    # One run per guarded action tick: T_Navigate is called twice (cup, tray) and is failed at both calls.
    assert [(r.action, r.obj) for r in report.runs] == [
        ("NAVIGATE_TO", "cup"), ("GRASP", "cup"), ("NAVIGATE_TO", "tray"), ("PLACE_ON_TOP", "tray")]
    assert [r.path for r in report.runs][0] == [r.path for r in report.runs][2]
    by_action = {r.action: r for r in report.runs}
    # GRASP and PLACE fail persistently: only their Fallback recovery branch (re-approach, redo) can succeed.
    assert by_action["GRASP"].recovery == "fallback" and by_action["GRASP"].recovery_actions == [
        "NAVIGATE_TO(cup)", "GRASP(cup)"]
    assert by_action["PLACE_ON_TOP"].recovery_actions == ["NAVIGATE_TO(tray)", "PLACE_ON_TOP(tray)"]
    assert by_action["NAVIGATE_TO"].recovery == "retry"
    verdict = executability_check(xml, CUP_TRAY)
    assert verdict.passed and verdict.details["guarded_steps_failed"] == 4
    assert verdict.details["fallback_recoveries"] == 2


def test_a_persistent_failure_exhausts_the_retry_before_the_fallback_takes_over():
    robust = to_bt_xml(add_robustness(parse_bt_xml(PICK_PLACE)))
    grasp_tick = next(i for i, r in enumerate(execute_symbolic(robust, CUP_TRAY).trace) if r.action == "GRASP")
    result = execute_symbolic(robust, CUP_TRAY, fail_step=StepFailure(tick=grasp_tick, persistent=True))
    assert result.status == "SUCCESS"
    grasps = [(r.path.rsplit("/", 2)[-2], r.reason) for r in result.trace if r.action == "GRASP"]
    assert [reason for _, reason in grasps] == ["injected_failure"] * 3 + [""]  # 3 retries, then the recovery
    once = execute_symbolic(robust, CUP_TRAY, fail_step=StepFailure(tick=grasp_tick))
    assert once.status == "SUCCESS" and [r.reason for r in once.trace if r.action == "GRASP"] == ["injected_failure", ""]


@pytest.mark.parametrize("recovery, code", [
    ('<Action ID="NAVIGATE_TO" obj="cup"/>', "hand_empty"),  # "recovers" without grasping: PLACE has nothing
    ('<Sequence><Action ID="NAVIGATE_TO" obj="tray"/><Action ID="GRASP" obj="cup"/></Sequence>', "not_reachable"),
])
def test_a_broken_recovery_fails_for_its_step(recovery, code):
    xml = _doc('<Sequence><Action ID="NAVIGATE_TO" obj="cup"/>'
               f'<Fallback><RetryUntilSuccessful num_attempts="2"><Action ID="GRASP" obj="cup"/></RetryUntilSuccessful>'
               f'{recovery}</Fallback>'
               '<Action ID="NAVIGATE_TO" obj="tray"/><Action ID="PLACE_ON_TOP" obj="tray"/></Sequence>')
    report = check_recoveries(xml, CUP_TRAY)
    assert report.nominal.ok  # nothing is wrong until the grasp fails
    assert [(r.action, r.status) for r in report.runs] == [("GRASP", "FAILURE")]
    assert code in [v.code for v in report.runs[0].violations]
    verdict = executability_check(xml, CUP_TRAY)
    assert not verdict.passed and "1 of 1 guarded steps do not recover" in verdict.description and code in verdict.description


def test_a_fallback_around_a_subtree_call_guards_that_call_only():
    xml = _doc('<Sequence><Action ID="NAVIGATE_TO" obj="cup"/>'
               '<Fallback><SubTree ID="T_Grasp" target="cup"/>'
               '<Sequence><Action ID="NAVIGATE_TO" obj="cup"/><SubTree ID="T_Grasp" target="cup"/></Sequence></Fallback>'
               '<Action ID="NAVIGATE_TO" obj="tray"/><Action ID="PLACE_ON_TOP" obj="tray"/>'
               '<Action ID="NAVIGATE_TO" obj="bowl"/><SubTree ID="T_Grasp" target="bowl"/></Sequence>',
               '<BehaviorTree ID="T_Grasp"><RetryUntilSuccessful num_attempts="2"><Action ID="GRASP" obj="{target}"/>'
               '</RetryUntilSuccessful></BehaviorTree>')
    report = check_recoveries(xml, world_for_objects(["cup", "tray", "bowl"]))
    assert report.ok, [(r.path, r.violations) for r in report.failed_runs]
    # The same subtree node: guarded by the caller's Fallback for the cup, only by its own retry for the bowl.
    assert [(r.path, r.obj, r.recovery) for r in report.runs] == [
        ("T_Grasp/RetryUntilSuccessful/GRASP[0]", "cup", "fallback"),
        ("T_Grasp/RetryUntilSuccessful/GRASP[0]", "bowl", "retry")]
    assert report.runs[0].calls == ["Main/Sequence/Fallback[1]/SubTree:T_Grasp[0]"]
    # The grasp slips until the robot does something else; the recovery re-approaches and calls the subtree again.
    assert report.runs[0].recovery_actions == ["NAVIGATE_TO(cup)", "GRASP(cup)"]


def test_local_recoveries_name_each_guard():
    robust = to_bt_xml(add_robustness(parse_bt_xml(PICK_PLACE)))
    assert local_recoveries(robust) == {
        "Main/Sequence/Fallback[0]/RetryUntilSuccessful[1]/NAVIGATE_TO[0]": "retry",
        "Main/Sequence/Fallback[1]/RetryUntilSuccessful[1]/GRASP[0]": "fallback",
        "Main/Sequence/Fallback[2]/RetryUntilSuccessful[1]/NAVIGATE_TO[0]": "retry",
        "Main/Sequence/Fallback[3]/RetryUntilSuccessful[0]/PLACE_ON_TOP[0]": "fallback",
    }  # the recovery branches' own actions (last Fallback branch) are not guarded


@pytest.fixture
def offline_trees(datasets_dir):
    """The offline teacher's final tree (or stop) for each of the 14 shipped sample episodes."""
    states = {}
    for folder in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
        client = LLMClient(LLMSettings(), asset="test", partition=folder.name)
        state = pipeline.load_stage(Path(SAMPLES), folder.name)
        for stage in (pipeline.feasibility_stage, pipeline.scene_stage, pipeline.design_stage, pipeline.refine_stage,
                      pipeline.conformance_stage, pipeline.score_stage):
            state = stage(client, state)
        states[folder.name] = state
    return states


def test_offline_teacher_trees_for_the_shipped_samples_pass_in_their_episode_worlds(offline_trees):
    assert len(offline_trees) == 14
    accepted = {k: s for k, s in offline_trees.items() if s.status == "accepted"}
    assert sorted(set(offline_trees) - set(accepted)) == ["cook_pasta", "fold_towel", "screw_light_bulb"]
    for episode, state in accepted.items():
        report = state.scene_report
        world = episode_world(state.instruction, state.metadata["objects"], scene_entities=report.entities,
                              object_states=report.object_states)
        verdict = executability_check(state.bt_xml, world)
        assert verdict.passed, (episode, verdict.description)
        recoveries = check_recoveries(state.bt_xml, world)
        assert all(r.recovery_actions for r in recoveries.runs if r.recovery == "fallback"), episode
        # Navigation first: every manipulated object was approached (or is in the hand).
        assert recoveries.nominal.trace[0].action == "NAVIGATE_TO", episode


# ------------------------------------------------------------------------------------ condition nodes


def test_condition_nodes_load_in_behaviortree_cpp_and_are_declared_as_conditions():
    xml = _doc('<Sequence><Fallback><IsOpen obj="drawer"/><Action ID="OPEN" obj="drawer"/></Fallback>'
               '<Fallback><Condition ID="IsReachable" obj="drawer"/><Action ID="NAVIGATE_TO" obj="drawer"/></Fallback>'
               '</Sequence>')
    assert '<Condition ID="IsOpen" obj="drawer"/>' in xml  # compact form normalized
    assert '<Condition ID="IsOpen">' in xml and '<Condition ID="IsReachable">' in xml  # TreeNodesModel
    assert '<Condition ID="IsHolding">' not in xml  # only the conditions the tree uses
    assert to_bt_xml(parse_bt_xml(xml)) == xml
    report = check_conformance(xml)
    assert report.ok, report.summary()
    assert report.actions_used == ["NAVIGATE_TO", "OPEN"]  # a condition is never an action
    assert load_in_btcpp(xml).ok, load_in_btcpp(xml).error
    result = execute_symbolic(xml, world_for_objects(["drawer"], open=["drawer"]))
    # BT.CPP ticked them as CONDITION nodes (the kind comes from BT.CPP's node type).
    assert [(c.condition, c.obj) for c in result.conditions] == [("IsOpen", "drawer"), ("IsReachable", "drawer")]


@pytest.mark.parametrize("guard, world, expect_action", [
    ('<Condition ID="IsOpen" obj="drawer"/>', world_for_objects(["drawer", "cup"], open=["drawer"]), False),
    ('<Condition ID="IsOpen" obj="drawer"/>', world_for_objects(["drawer", "cup"]), True),
    ('<Inverter><Condition ID="IsOpen" obj="drawer"/></Inverter>', world_for_objects(["drawer", "cup"]), False),
    ('<Condition ID="IsHolding" obj="cup"/>', world_for_objects(["drawer", "cup"], held="cup"), False),
    ('<Condition ID="IsHolding" obj="cup"/>', world_for_objects(["drawer", "cup"]), True),
    ('<Condition ID="IsToggledOn" obj="drawer"/>', world_for_objects(["drawer", "cup"]), True),
])
def test_guards_are_evaluated_from_the_world(guard, world, expect_action):
    xml = _doc(f'<Sequence><Action ID="NAVIGATE_TO" obj="drawer"/><Fallback>{guard}'
               '<Action ID="NAVIGATE_TO" obj="cup"/></Fallback></Sequence>')
    result = execute_symbolic(xml, world)
    assert result.status == "SUCCESS"
    assert [r.obj for r in result.trace] == (["drawer", "cup"] if expect_action else ["drawer"])


def test_is_reachable_follows_navigation():
    xml = _doc('<Sequence><Inverter><Condition ID="IsReachable" obj="cup"/></Inverter>'
               '<Action ID="NAVIGATE_TO" obj="cup"/><Condition ID="IsReachable" obj="cup"/>'
               '<Action ID="NAVIGATE_TO" obj="tray"/><Inverter><Condition ID="IsReachable" obj="cup"/></Inverter>'
               '</Sequence>')
    result = execute_symbolic(xml, CUP_TRAY)
    assert result.status == "SUCCESS" and [c.value for c in result.conditions] == [False, True, False]


@pytest.mark.parametrize("body, code", [
    ('<Condition ID="IsFoo" obj="cup"/>', "unknown_condition"),
    ('<Condition ID="GRASP" obj="cup"/>', "unknown_condition"),  # a PAL action is never a condition
    ('<Action ID="IsOpen" obj="drawer"/>', "non_pal_action"),  # a condition is never an action
    ('<Condition ID="IsOpen"/>', "missing_obj"),
    ('<Condition ID="IsOpen" obj="drawer" side="left"/>', "unexpected_port"),
])
def test_conformance_rejects_unknown_or_misused_conditions(body, code):
    xml = _doc(body)
    report = check_conformance(xml)
    assert not report.ok and code in report.codes(), report.summary()
    if code in ("unknown_condition", "non_pal_action"):
        assert not pal_check(xml).passed and code in pal_check(xml).description


def test_unknown_condition_does_not_load_in_behaviortree_cpp():
    loaded = load_in_btcpp(_doc('<Condition ID="IsFoo" obj="cup"/>'))
    assert not loaded.ok and "IsFoo" in loaded.error and "BehaviorTree.CPP" in loaded.error


def test_condition_models_must_be_declared_with_their_ports():
    raw = ('<root BTCPP_format="4" main_tree_to_execute="Main"><BehaviorTree ID="Main">'
           '<Condition ID="IsOpen" obj="drawer"/></BehaviorTree><TreeNodesModel>{models}</TreeNodesModel></root>')
    assert "missing_node_model" in check_conformance(raw.format(models="")).codes()
    wrong = '<Condition ID="IsOpen"><input_port name="target"/></Condition>'
    assert "node_model_ports" in check_conformance(raw.format(models=wrong)).codes()
    unknown = '<Condition ID="IsOpen"><input_port name="obj"/></Condition><Condition ID="IsFoo"/>'
    assert check_conformance(raw.format(models=unknown)).codes() == {"unknown_condition"}


# -------------------------------------------------------------------------------- robustness guards


def test_robustness_guards_skip_what_is_already_done():
    xml = _doc(_seq("NAVIGATE_TO:drawer", "OPEN:drawer", "NAVIGATE_TO:cup", "GRASP:cup", "NAVIGATE_TO:drawer",
                    "PLACE_INSIDE:drawer", "CLOSE:drawer"))
    robust = to_bt_xml(add_robustness(parse_bt_xml(xml)))
    assert robust.count('<Condition ID="IsOpen" obj="drawer"/>') == 2  # OPEN guard, and CLOSE's (inverted)
    assert '<Condition ID="IsHolding" obj="cup"/>' in robust and '<Condition ID="IsReachable" obj="cup"/>' in robust
    assert check_conformance(robust).ok and load_in_btcpp(robust).ok
    world = world_for_objects(["drawer", "cup"])
    closed = execute_symbolic(robust, world)
    assert closed.status == "SUCCESS" and [r.action for r in closed.trace].count("OPEN") == 1
    # The drawer is already open: re-opening it is skipped, the rest runs.
    already = execute_symbolic(robust, world_for_objects(["drawer", "cup"], open=["drawer"]))
    assert already.status == "SUCCESS" and "OPEN" not in [r.action for r in already.trace]
    assert (already.final_world.objects["cup"].relation, already.final_world.objects["drawer"].is_open) == ("inside", False)
    # The second NAVIGATE_TO drawer is not skipped: at the cup, the drawer is out of reach.
    assert [r.obj for r in already.trace if r.action == "NAVIGATE_TO"] == ["drawer", "cup", "drawer"]


def test_subtrees_keep_the_guards_with_the_port():
    robust = add_robustness(parse_bt_xml(PICK_PLACE))
    modular, mapping = extract_subtrees(robust)
    xml = to_bt_xml(modular)
    assert '<SubTree ID="T_Navigate" target="cup"/>' in xml and '<SubTree ID="T_Navigate" target="tray"/>' in xml
    assert '<Condition ID="IsReachable" obj="{target}"/>' in xml and '<Condition ID="IsHolding" obj="{target}"/>' in xml
    assert xml.count('<BehaviorTree ID="T_Navigate">') == 1
    assert check_conformance(xml).ok and load_in_btcpp(xml).ok
    assert execute_symbolic(xml, CUP_TRAY).status == "SUCCESS"
    assert to_bt_xml(add_robustness(modular)) == xml  # idempotent
