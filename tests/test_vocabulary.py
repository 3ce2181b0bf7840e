"""The instruction vocabulary on Open X-Embodiment task families: a correct PAL plan or a precise skip."""

import pytest

from resources.llm import LLMClient, LLMSettings
from teacher_assets.agents.cognition import assess_feasibility
from teacher_assets.agents.instruction_parser import parse_instruction
from teacher_assets.agents.pal_planner import plan_task, steps_of


def key_steps(instruction: str, objects: tuple[str, ...] = ()) -> list[str]:
    """The plan's steps without NAVIGATE_TO (where to stand is checked by the critic tests)."""
    parsed = parse_instruction(instruction, known_objects=objects)
    assert parsed.feasible, (instruction, [s.reason for s in parsed.skips])
    return [f"{s.primitive} {s.obj}".strip() if s.obj else s.primitive
            for s in steps_of(plan_task(parsed)) if s.primitive != "NAVIGATE_TO"]


def skip_codes(instruction: str) -> list[str]:
    parsed = parse_instruction(instruction)
    assert not parsed.feasible and not parsed.goals, (instruction, parsed.goals)
    return parsed.reason_codes


def client() -> LLMClient:
    return LLMClient(LLMSettings(backoff_s=0.01, backoff_max_s=0.05), asset="test", partition="p")


# The four strings of issue 10, as a new user tried them.
def test_the_four_oxe_strings_of_the_issue():
    assert skip_codes("move the pepsi can near the orange") == ["unsupported_relation:near"]
    assert skip_codes("knock the can over") == ["unsupported_verb:knock_over"]
    assert key_steps("pick green jalapeno chip bag from middle drawer and place on counter") == [
        "OPEN middle_drawer", "GRASP green_jalapeno_chip_bag", "PLACE_ON_TOP counter"]
    assert skip_codes("place the brown chip bag upright") == ["unsupported_orientation:upright"]


FEASIBLE = {  # family: (instruction, key steps of a correct plan)
    "rt1 pick": ("pick coke can", ["GRASP coke_can"]),
    "rt1 pick from drawer": ("pick rxbar chocolate from bottom drawer", ["OPEN bottom_drawer", "GRASP rxbar_chocolate"]),
    "rt1 place into drawer": ("place coke can into bottom drawer",
                              ["OPEN bottom_drawer", "GRASP coke_can", "PLACE_INSIDE bottom_drawer"]),
    "rt1 open drawer": ("open top drawer", ["OPEN top_drawer"]),
    "rt1 close drawer": ("close middle drawer", ["CLOSE middle_drawer"]),
    "stack": ("stack the pink block on the blue block", ["GRASP pink_block", "PLACE_ON_TOP blue_block"]),
    "stack on top of": ("stack the red block on top of the yellow block", ["GRASP red_block", "PLACE_ON_TOP yellow_block"]),
    "pick and place in": ("pick up the green cup and put it in the bowl", ["GRASP green_cup", "PLACE_INSIDE bowl"]),
    "bridge put in pot": ("put corn in pot", ["GRASP corn", "PLACE_INSIDE pot"]),
    "bridge lid off, put down": ("take the lid off the pot and put it on the table", ["GRASP lid", "PLACE_ON_TOP table"]),
    "bridge on stove": ("put the pot on the stove", ["GRASP pot", "PLACE_NEAR_HEATING_ELEMENT stove"]),
    "move to a surface": ("move the cup to the table", ["GRASP cup", "PLACE_ON_TOP table"]),
    "taco push drawer closed": ("push the drawer closed", ["CLOSE drawer"]),
    "taco pull drawer open": ("pull the drawer open", ["OPEN drawer"]),
    "taco light": ("turn on the green light", ["TOGGLE_ON green_light"]),
    "taco led (lexicon)": ("turn off the led", ["TOGGLE_OFF led"]),
    "dish rack (lexicon)": ("put the cup in the dish rack", ["GRASP cup", "PLACE_INSIDE dish_rack"]),
    # a verb no primitive does, used as a noun, is an object
    "screw as object": ("pick up the screw and put it in the bowl", ["GRASP screw", "PLACE_INSIDE bowl"]),
    "hammer as object": ("put the hammer in the basket", ["GRASP hammer", "PLACE_INSIDE basket"]),
    "light over the sink": ("turn on the light over the sink", ["TOGGLE_ON light"]),
}

INFEASIBLE = {  # family: (instruction, reason code)
    "rt1 move near": ("move blue chip bag near pepsi can", "unsupported_relation:near"),
    "rt1 move to a non-surface": ("move the coke can to the apple", "unsupported_relation:near"),
    "rt1 knock over": ("knock over the water bottle", "unsupported_verb:knock_over"),
    "rt1 upright": ("place 7up can upright", "unsupported_orientation:upright"),
    "push": ("push the red block to the left", "unsupported_verb:push"),
    "push towards": ("push the yellow hexagon closer to the blue cube", "unsupported_verb:push"),
    "slide": ("slide the yellow heart towards the red star", "unsupported_verb:slide"),
    "sweep": ("sweep the beans into the dustpan", "unsupported_verb:sweep"),
    "flip": ("flip the pot upright", "unsupported_verb:flip"),
    "rotate": ("rotate the red block to the right", "unsupported_verb:rotate"),
    "turn a faucet sideways": ("turn faucet front to left", "unsupported_verb:rotate"),
    "left of": ("put the block on the left of the bowl", "unsupported_relation:left_of"),
    "right of": ("put the spoon to the right of the pot", "unsupported_relation:right_of"),
    "between": ("move the blue triangle between the red star and the green cube", "unsupported_relation:between"),
    "behind": ("place the can behind the bowl", "unsupported_relation:behind"),
    "region": ("move the red pentagon to the bottom right corner", "unsupported_relation:region"),
    "region center": ("put the blue moon in the center", "unsupported_relation:region"),
    "upside down": ("put the cup upside down on the table", "unsupported_orientation:upside_down"),
    "arrange": ("put the blocks in a line", "unsupported_verb:arrange"),
    "fold": ("fold the cloth", "unsupported_verb:fold"),
    "pour": ("pour the water into the bowl", "unsupported_verb:pour"),
    "unafforded open": ("open the can", "unafforded_object:openable"),
    "unafforded grasp": ("pick up the table", "unafforded_object:graspable"),
    "unknown verb": ("juggle three oranges", "unparsed_clause:juggle"),
    "turn over": ("turn the cup over", "unsupported_verb:flip"),
    "tip over": ("tip the bottle over", "unsupported_verb:knock_over"),
    "verb after to": ("use the knife to peel the apple", "unsupported_verb:peel"),
    "sliding door moved": ("move the sliding door to the right", "unsupported_relation:region"),
}


@pytest.mark.parametrize("family", sorted(FEASIBLE))
def test_feasible_families_map_to_the_correct_plan(family):
    instruction, expected = FEASIBLE[family]
    assert key_steps(instruction) == expected


@pytest.mark.parametrize("family", sorted(INFEASIBLE))
def test_infeasible_families_are_skipped_with_a_precise_reason(family):
    instruction, code = INFEASIBLE[family]
    parsed = parse_instruction(instruction)
    assert parsed.reason_codes[:1] == [code], [s.reason for s in parsed.skips]
    assert all(s.reason for s in parsed.skips)


def test_move_near_keeps_its_objects_and_says_why_place_on_top_is_wrong():
    parsed = parse_instruction("move the pepsi can near the orange")
    (skip,) = parsed.skips
    assert (skip.obj, skip.reference, skip.detail) == ("pepsi_can", "orange", "near")
    assert "PLACE_ON_TOP orange would be a different task" in skip.reason
    assert parsed.entities() == ["pepsi_can", "orange"]
    # "near" a heating element is the one "near" PAL v1 has.
    assert key_steps("place the pan next to the heating element of the stove") == [
        "GRASP pan", "PLACE_NEAR_HEATING_ELEMENT stove"]


def test_a_removed_lid_is_set_down_on_the_scene_surface_and_the_choice_is_noted():
    parsed = parse_instruction("take the lid off the pot", known_objects=("lid", "pot", "table"))
    assert [(g.kind, g.obj, g.target) for g in parsed.goals] == [("place_on_top", "lid", "table")]
    assert "set down on table" in parsed.notes[0]
    # No support surface in the scene: the plan ends holding it, and says so.
    bare = parse_instruction("take the lid off the pot", known_objects=("lid", "pot"))
    assert [g.kind for g in bare.goals] == ["pick"] and "ends holding it" in bare.notes[0]
    # A later clause says where it goes: no extra set-down.
    assert key_steps("take the lid off the pot and put it on the counter", ("lid", "pot", "table")) == [
        "GRASP lid", "PLACE_ON_TOP counter"]


def test_one_impossible_clause_skips_the_whole_instruction():
    parsed = parse_instruction("open the drawer and push the block inside")
    assert not parsed.feasible and parsed.reason_codes == ["unsupported_verb:push"]
    parsed = parse_instruction("pick up the coke can and move it near the apple")
    assert parsed.reason_codes == ["unsupported_relation:near"]
    assert (parsed.skips[0].obj, parsed.skips[0].reference) == ("coke_can", "apple")


def test_feasibility_agent_returns_reason_codes_and_notes(datasets_dir):
    c = client()
    reply, record = assess_feasibility(c, "move the pepsi can near the orange")
    assert not reply.feasible and record.verdict == "INFEASIBLE"
    assert reply.reason_codes == ["unsupported_relation:near"] and "[unsupported_relation:near]" in reply.reason
    reply, _ = assess_feasibility(c, "pick green jalapeno chip bag from middle drawer and place on counter")
    assert reply.feasible and reply.required_primitives == ["GRASP", "PLACE_ON_TOP", "OPEN", "NAVIGATE_TO"]


def test_an_oxe_episode_that_pal_cannot_do_stops_at_feasibility_with_its_code(datasets_dir, tmp_path):
    from teacher_assets.pipeline import EpisodeState, feasibility_stage

    state = EpisodeState(episode_id="rt1_move_near", episode_path=str(tmp_path),
                         instruction="move the pepsi can near the orange")
    after = feasibility_stage(client(), state)
    assert (after.status, after.stopped_at) == ("skipped", "feasibility")
    assert after.reason.startswith("infeasible: [unsupported_relation:near]")
    assert after.feasibility.reason_codes == ["unsupported_relation:near"] and len(after.audit) == 1
