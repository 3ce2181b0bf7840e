"""The four gates on a finished tree (run as blocking asset checks before the dataset)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional, Sequence

from pydantic import BaseModel

if TYPE_CHECKING:
    from teacher_assets.bt.world import SymbolicWorld

STRUCTURE_CODES = {"xml_malformed", "bad_root", "no_trees", "tree_without_id", "tree_root_count", "duplicate_tree_id",
                   "unknown_element", "bad_format", "missing_main_tree", "unknown_main_tree", "missing_subtree",
                   "recursive_subtree", "subtree_naming", "missing_node_model", "node_model_ports", "child_count",
                   "missing_attribute"}
PAL_CODES = {"unknown_node", "forbidden_node", "non_pal_action", "unknown_condition", "missing_obj", "timeout_ms",
             "unexpected_port", "unbound_variable", "unbounded_loop"}


class CheckVerdict(BaseModel):
    passed: bool
    description: str
    details: dict = {}


def _issues(xml: str, codes: set[str]):
    from teacher_assets.bt.conformance import check_conformance

    report = check_conformance(xml)
    return report, [i for i in report.issues if i.code in codes]


def schema_check(xml: str) -> CheckVerdict:
    """Well-formed XML in BehaviorTree.CPP v4 structure (format 4, main tree, subtrees, TreeNodesModel)."""
    _, bad = _issues(xml, STRUCTURE_CODES)
    return CheckVerdict(passed=not bad, description="; ".join(f"[{i.code}] {i.message}" for i in bad) or
                        "well-formed BTCPP_format=4 with main tree, subtrees and TreeNodesModel")


def btcpp_load_check(xml: str) -> CheckVerdict:
    from teacher_assets.bt.btcpp import load_in_btcpp

    loaded = load_in_btcpp(xml)
    return CheckVerdict(passed=loaded.ok, description=loaded.error or f"loaded in BehaviorTree.CPP: trees {', '.join(loaded.trees)}",
                        details={"trees": ", ".join(loaded.trees)})


def pal_check(xml: str) -> CheckVerdict:
    report, bad = _issues(xml, PAL_CODES)
    return CheckVerdict(passed=not bad, description="; ".join(f"[{i.code}] {i.path}: {i.message}" for i in bad)
                        or "PAL v1 only, obj everywhere but RELEASE, no timeout_ms, every {var} bound",
                        details={"actions_used": ", ".join(report.actions_used)})


def episode_world(instruction: str, metadata_objects: Sequence[str] = (), *, scene_entities: Sequence[str] = (),
                  object_states: Optional[Mapping[str, str]] = None) -> SymbolicWorld:
    """The symbolic world of one episode: its scene's objects, checked against the instruction parse.

    The scene is the metadata ``objects`` list, or the scene report's entities when the episode
    has none (``world_for_episode``; a model's "the red cup" becomes ``red_cup``). Start states:
    ``object_states`` (scene report / metadata), else what the instruction presupposes — the first
    thing it does to an object is CLOSE (it starts open) or TOGGLE_OFF (it starts on).
    """
    from teacher_assets.agents.instruction_parser import parse_instruction, snake
    from teacher_assets.bt.world import world_for_episode

    scene = [str(o) for o in metadata_objects] or [snake(str(o)) for o in scene_entities]
    parsed = parse_instruction(instruction, known_objects=tuple(scene))
    states = dict(object_states or {})
    first_goal: dict[str, str] = {}
    for goal in parsed.goals:
        first_goal.setdefault(goal.obj, goal.kind)
    for obj, kind in first_goal.items():
        presupposed = {"close": "open", "toggle_off": "on"}.get(kind)
        if presupposed and obj not in states:
            states[obj] = presupposed
    return world_for_episode(scene, parsed.entities(), object_states=states)


def executability_check(xml: str, world: SymbolicWorld) -> CheckVerdict:
    """Ticks to SUCCESS in the episode's symbolic world; and again with each guarded step the run
    reaches failing in turn (persistently where a Fallback branch must take over, once under a retry)."""
    from teacher_assets.bt.executor import check_recoveries

    report = check_recoveries(xml, world)
    nominal = report.nominal
    if not nominal.ok:
        why = "; ".join(f"[{v.code}] {v.path}: {v.message}" for v in nominal.violations) or "FAILURE"
        return CheckVerdict(passed=False, description=f"nominal run did not succeed: {why}")
    if not report.runs:
        return CheckVerdict(passed=False, description="no guarded step: the tree has no retry or fallback recovery")
    fallbacks = [r for r in report.runs if r.recovery == "fallback"]
    details = {"nominal_actions": len(nominal.trace), "guarded_steps_failed": len(report.runs),
               "fallback_recoveries": len(fallbacks), "failed_recoveries": len(report.failed_runs)}
    if report.failed_runs:
        first = report.failed_runs[0]
        why = "; ".join(f"[{v.code}] {v.path}: {v.message}" for v in first.violations) or "FAILURE"
        return CheckVerdict(passed=False, details=details, description=(
            f"{len(report.failed_runs)} of {len(report.runs)} guarded steps do not recover: with {first.path} "
            f"({first.action} {first.obj or ''}) failing the tree ends {first.status}: {why}"))
    return CheckVerdict(passed=True, details=details, description=(
        f"SUCCESS in {len(nominal.trace)} actions; with each of {len(report.runs)} guarded steps failing in turn "
        f"({len(fallbacks)} through a Fallback recovery branch) the recovery still succeeds"))
