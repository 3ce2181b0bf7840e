"""The four gates on a finished tree (run as blocking asset checks before the dataset)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel

STRUCTURE_CODES = {"xml_malformed", "bad_root", "no_trees", "tree_without_id", "tree_root_count", "duplicate_tree_id",
                   "unknown_element", "bad_format", "missing_main_tree", "unknown_main_tree", "missing_subtree",
                   "recursive_subtree", "subtree_naming", "missing_node_model", "node_model_ports", "child_count",
                   "missing_attribute"}
PAL_CODES = {"unknown_node", "forbidden_node", "non_pal_action", "missing_obj", "timeout_ms", "unexpected_port",
             "unbound_variable", "unbounded_loop"}


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


def executability_check(xml: str, object_states: Optional[dict[str, str]] = None) -> CheckVerdict:
    """Ticks to SUCCESS in a symbolic world; and again with a guarded primitive failing once."""
    from teacher_assets.bt.executor import execute_symbolic, guarded_action_paths, world_for_tree

    states = object_states or {}
    world = world_for_tree(xml, open=[o for o, s in states.items() if s == "open"],
                           on=[o for o, s in states.items() if s == "on"])
    nominal = execute_symbolic(xml, world)
    if nominal.status != "SUCCESS":
        why = "; ".join(f"[{v.code}] {v.path}: {v.message}" for v in nominal.violations) or "FAILURE"
        return CheckVerdict(passed=False, description=f"nominal run did not succeed: {why}")
    guarded = guarded_action_paths(xml)
    if not guarded:
        return CheckVerdict(passed=False, description="no guarded step: the tree has no retry or fallback recovery")
    # The first grasp if there is one (the step most likely to slip), else the first guarded step.
    step = next((p for p in guarded if p.endswith("]") and "/GRASP[" in p), guarded[0])
    perturbed = execute_symbolic(xml, world, fail_once=step)
    ok = perturbed.status == "SUCCESS" and bool(perturbed.injected)
    return CheckVerdict(
        passed=ok,
        description=(f"SUCCESS in {len(nominal.trace)} actions; with {step} failing once the recovery still succeeds"
                     if ok else f"with {step} failing once the tree ends {perturbed.status}"),
        details={"nominal_actions": len(nominal.trace), "perturbed_step": step,
                 "perturbed_actions": len(perturbed.trace), "warnings": len(nominal.warnings)},
    )
