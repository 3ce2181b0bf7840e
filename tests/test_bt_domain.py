"""BT domain library: canonical XML, conformance codes, real BehaviorTree.CPP loading, symbolic execution, transforms."""

import pytest

from teacher_assets.bt import (PAL_ACTIONS, add_robustness, assign_node_ids, check_conformance, check_recoveries,
                               execute_symbolic, extract_subtrees, load_in_btcpp, parse_bt_xml, to_bt_xml,
                               world_for_objects)
from teacher_assets.bt.model import BTParseError
from tests.bt_trees import bt_doc as _doc, pal_sequence


CUP_TRAY = world_for_objects(["cup_1", "tray"])
PICK_PLACE = _doc(
    "<Sequence><Script code=\"cup:='cup_1'\"/>"
    '<Action ID="NAVIGATE_TO" obj="{cup}"/><GRASP obj="{cup}"/>'
    '<Action ID="NAVIGATE_TO" obj="tray"/><SubTree ID="T_Place" target="tray"/></Sequence>',
    '<BehaviorTree ID="T_Place"><Action ID="PLACE_ON_TOP" obj="{target}"/></BehaviorTree>')


def test_round_trip_is_canonical_and_normalizes_compact_leaves():
    doc = parse_bt_xml(PICK_PLACE)
    assert to_bt_xml(doc) == PICK_PLACE
    assert to_bt_xml(parse_bt_xml(to_bt_xml(doc))) == PICK_PLACE
    assert '<Action ID="GRASP" obj="{cup}"/>' in PICK_PLACE  # compact <GRASP/> written in Action form
    assert 'BTCPP_format="4" main_tree_to_execute="Main"' in PICK_PLACE
    assert [m.id for m in doc.node_models if m.kind == "Action"] == list(PAL_ACTIONS)
    assert "&lt;" in to_bt_xml(parse_bt_xml(_doc('<Script code="a:=1 &lt; 2"/>', models=False)))
    with pytest.raises(BTParseError, match="xml_malformed"):
        parse_bt_xml("<root><BehaviorTree ID='Main'><Sequence></root>")


def test_good_tree_is_conformant():
    report = check_conformance(PICK_PLACE)
    assert report.ok, report.summary()
    assert report.actions_used == ["GRASP", "NAVIGATE_TO", "PLACE_ON_TOP"]


@pytest.mark.parametrize("xml, code", [
    (_doc('<Sequence><Action ID="PickUp" obj="cup"/><GRASP obj="cup"/></Sequence>'), "non_pal_action"),
    (_doc('<Sequence><MoveTo obj="cup"/><GRASP obj="cup"/></Sequence>'), "unknown_node"),
    (_doc('<Action ID="GRASP"/>'), "missing_obj"),
    (_doc('<Action ID="GRASP" obj="cup" timeout_ms="500"/>'), "timeout_ms"),
    (_doc('<Action ID="GRASP" obj="{cup}"/>'), "unbound_variable"),
    (_doc('<Sequence><GRASP obj="{cup}"/><Script code="cup:=\'cup_1\'"/></Sequence>'), "unbound_variable"),
    (_doc('<SubTree ID="T_Grasp" target="cup"/>', '<BehaviorTree ID="T_Grasp"><GRASP obj="{item}"/></BehaviorTree>'),
     "unbound_variable"),
    (_doc('<SubTree ID="T_Missing" target="cup"/>'), "missing_subtree"),
    (_doc('<GRASP obj="cup"/>', fmt="3"), "bad_format"),
    (_doc('<GRASP obj="cup"/>', main="Nope"), "unknown_main_tree"),
    (_doc('<GRASP obj="cup"/>', models=False), "missing_node_model"),
    ("<root BTCPP_format='4'><BehaviorTree ID='Main'><GRASP obj='cup'/></root>", "xml_malformed"),
    (_doc('<Timeout msec="100"><GRASP obj="cup"/></Timeout>'), "forbidden_node"),
    (_doc('<RetryUntilSuccessful num_attempts="-1"><GRASP obj="cup"/></RetryUntilSuccessful>'), "unbounded_loop"),
    (_doc('<RetryUntilSuccessful><GRASP obj="cup"/></RetryUntilSuccessful>'), "missing_attribute"),
    (_doc('<Action ID="RELEASE" obj="cup"/>'), "unexpected_port"),
    (_doc('<SubTree ID="Helper"/>', '<BehaviorTree ID="Helper"><GRASP obj="cup"/></BehaviorTree>'), "subtree_naming"),
])
def test_conformance_catches_each_violation(xml, code):
    report = check_conformance(xml)
    assert not report.ok
    assert code in report.codes(), report.summary()
    assert all(i.message for i in report.issues)


def test_parameter_flow_accepts_set_blackboard_remapping_and_autoremap():
    xml = _doc('<Sequence><SetBlackboard value="cup_1" output_key="cup"/>'
               '<SubTree ID="T_Grasp" item="{cup}"/><SubTree ID="T_Release" _autoremap="true"/></Sequence>',
               '<BehaviorTree ID="T_Grasp"><Sequence><NAVIGATE_TO obj="{item}"/><GRASP obj="{item}"/></Sequence>'
               '</BehaviorTree>'
               '<BehaviorTree ID="T_Release"><Sequence><NAVIGATE_TO obj="{cup}"/><RELEASE/></Sequence></BehaviorTree>')
    assert check_conformance(xml).ok, check_conformance(xml).summary()
    assert load_in_btcpp(xml).ok
    assert execute_symbolic(xml, world_for_objects(["cup_1"])).status == "SUCCESS"


def test_good_tree_loads_in_behaviortree_cpp_and_unregistered_node_does_not():
    assert load_in_btcpp(PICK_PLACE).ok, load_in_btcpp(PICK_PLACE).error
    bad = _doc('<Sequence><Action ID="PickUp" obj="cup"/></Sequence>')
    result = load_in_btcpp(bad)
    assert not result.ok and "PickUp" in result.error and "BehaviorTree.CPP" in result.error
    missing = load_in_btcpp(_doc('<SubTree ID="T_Missing"/>'))
    assert not missing.ok and "T_Missing" in missing.error
    port = load_in_btcpp(_doc('<Action ID="GRASP" obj="cup" timeout_ms="5"/>'))
    assert not port.ok and "timeout_ms" in port.error


def test_pick_and_place_succeeds_and_moves_the_cup():
    result = execute_symbolic(PICK_PLACE, CUP_TRAY)
    assert result.status == "SUCCESS", result.violations
    assert [(r.action, r.obj) for r in result.trace] == [
        ("NAVIGATE_TO", "cup_1"), ("GRASP", "cup_1"), ("NAVIGATE_TO", "tray"), ("PLACE_ON_TOP", "tray")]
    cup = result.final_world.objects["cup_1"]
    assert (cup.relation, cup.relation_target) == ("on_top", "tray") and result.final_world.held is None


def test_place_before_grasp_fails_with_precondition_violation():
    xml = _doc('<Sequence><PLACE_ON_TOP obj="tray"/><GRASP obj="cup"/></Sequence>')
    result = execute_symbolic(xml, world_for_objects(["cup", "tray"]))
    assert result.status == "FAILURE"
    assert [v.code for v in result.violations] == ["hand_empty"]
    assert result.violations[0].path == "Main/Sequence/PLACE_ON_TOP[0]"


@pytest.mark.parametrize("body, world_kwargs, code", [
    (pal_sequence("GRASP:cup", "OPEN:drawer", navigate=True), {}, "hand_not_empty"),
    (pal_sequence("GRASP:cup", "PLACE_INSIDE:drawer", navigate=True), {}, "container_closed"),
    (pal_sequence("GRASP:sponge", "SOAK_UNDER:faucet", navigate=True), {}, "source_off"),
    (pal_sequence("GRASP:bread", "CUT:apple", navigate=True), {}, "held_not_slicer"),
    (pal_sequence("GRASP:table", navigate=True), {}, "not_graspable"),
    (pal_sequence("GRASP:cup", navigate=True), {"inside": {"cup": "drawer"}}, "inside_closed_container"),
])
def test_world_enforces_pal_preconditions(body, world_kwargs, code):
    xml = _doc(body)
    world = world_for_objects(["cup", "drawer", "sponge", "faucet", "bread", "apple", "table"], **world_kwargs)
    result = execute_symbolic(xml, world)
    assert result.status == "FAILURE" and code in [v.code for v in result.violations]


def test_every_primitive_runs_in_a_plausible_plan():
    xml = _doc(pal_sequence("OPEN:drawer", "GRASP:cup", "PLACE_INSIDE:drawer", "CLOSE:drawer",
                            "TOGGLE_ON:faucet", "GRASP:sponge", "SOAK_UNDER:faucet", "WIPE:table",
                            "SOAK_INSIDE:bowl", "RELEASE", "TOGGLE_OFF:faucet",
                            "GRASP:knife", "CUT:bread", "PLACE_ON_TOP:board",
                            "GRASP:pan", "PLACE_NEAR_HEATING_ELEMENT:stove", navigate=True))
    world = world_for_objects(["drawer", "cup", "faucet", "sponge", "table", "bowl", "knife", "bread", "board", "pan",
                               "stove"])
    result = execute_symbolic(xml, world)
    assert result.status == "SUCCESS", result.violations
    assert {r.action for r in result.trace} == set(PAL_ACTIONS)
    w = result.final_world.objects
    assert w["table"].wiped and w["bread"].cut and w["sponge"].soaked and not w["drawer"].is_open
    assert (w["cup"].relation, w["cup"].relation_target) == ("inside", "drawer")


def test_recovery_branch_survives_a_failed_grasp_but_bare_tree_does_not():
    bare = execute_symbolic(PICK_PLACE, CUP_TRAY, fail_once="GRASP")
    assert bare.status == "FAILURE" and bare.injected == ["GRASP"]
    robust = to_bt_xml(add_robustness(parse_bt_xml(PICK_PLACE)))
    result = execute_symbolic(robust, CUP_TRAY, fail_once="GRASP")
    assert result.status == "SUCCESS", result.violations
    assert [r.reason for r in result.trace if r.action == "GRASP"] == ["injected_failure", ""]
    # A failure at every guarded step still recovers.
    report = check_recoveries(robust, CUP_TRAY)
    assert report.ok and len(report.runs) == 4, report.failed_runs


def test_executor_refuses_unbounded_loops_and_stops_running_trees():
    loop = _doc('<RetryUntilSuccessful num_attempts="-1"><GRASP obj="cup"/></RetryUntilSuccessful>')
    assert [v.code for v in execute_symbolic(loop, CUP_TRAY).violations] == ["unbounded_loop"]
    forever = _doc('<KeepRunningUntilFailure><AlwaysSuccess/></KeepRunningUntilFailure>')
    result = execute_symbolic(forever, CUP_TRAY, max_ticks=5)
    assert result.status == "FAILURE" and [v.code for v in result.violations] == ["max_ticks_exceeded"]


def test_transforms_keep_conformance_loadability_and_success():
    robust = add_robustness(parse_bt_xml(PICK_PLACE))
    assert to_bt_xml(add_robustness(robust)) == to_bt_xml(robust)  # idempotent
    modular, mapping = extract_subtrees(robust)
    xml = to_bt_xml(modular)
    for text in (to_bt_xml(robust), xml):
        assert check_conformance(text).ok, check_conformance(text).summary()
        assert load_in_btcpp(text).ok
        assert execute_symbolic(text, CUP_TRAY, fail_once={"GRASP", "PLACE_ON_TOP"}).status == "SUCCESS"
    ids = {s.id for s in mapping.subtrees}
    assert {"T_Navigate", "T_Manipulate_Grasp"} <= ids
    assert modular.tree("T_Place") is not None  # only the main tree is modularized; T_Place stays
    grasp_use = next(u for u in mapping.uses if u.subtree_id == "T_Manipulate_Grasp")
    assert grasp_use.remapping == {"target": "{cup}"} and grasp_use.replaced_path == "Main/Sequence/Fallback[2]"
    assert '<SubTree ID="T_Navigate" target="{cup}"/>' in xml
    assert xml.count('<BehaviorTree ID="T_Navigate">') == 1  # both navigations share one subtree


def test_assign_node_ids_is_deterministic_idempotent_and_loadable():
    modular, _ = extract_subtrees(add_robustness(parse_bt_xml(PICK_PLACE)))
    once = assign_node_ids(to_bt_xml(modular))
    assert assign_node_ids(once) == once
    assert assign_node_ids(to_bt_xml(modular)) == once
    doc = parse_bt_xml(once)
    names = [n.attrs["name"] for t in doc.trees for n in _preorder(t.root)]
    assert names == [f"node_{i:02d}" for i in range(1, len(names) + 1)]
    assert load_in_btcpp(once).ok and check_conformance(once).ok
    retry = next(n for t in doc.trees for n in _preorder(t.root) if n.tag == "RetryUntilSuccessful"
                 and n.children[0].attrs.get("ID") == "GRASP")
    grasp_name = retry.children[0].attrs["name"]
    result = execute_symbolic(once, CUP_TRAY, fail_once=grasp_name)
    assert result.status == "SUCCESS" and result.injected == [grasp_name]


def _preorder(node):
    yield node
    for c in node.children:
        yield from _preorder(c)
