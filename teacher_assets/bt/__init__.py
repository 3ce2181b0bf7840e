"""BehaviorTree.CPP v4 + PAL v1 domain library of the agentic teacher (plain Python, no Dagster).

Modules: ``pal`` (the 14 primitives, affordance lexicon), ``model`` (parse / canonical
serialize), ``conformance`` (structure, PAL, parameter flow), ``btcpp`` (load and tick in
BehaviorTree.CPP via behaviortreepy), ``executor`` (symbolic world + execution), ``transforms``
(robustness, subtrees, deterministic node ids). Each module's docstring documents its contract.
"""

from .btcpp import BTLoadResult, load_in_btcpp
from .conformance import ConformanceIssue, ConformanceReport, check_conformance
from .executor import (ExecutionResult, SymbolicWorld, execute_symbolic, guarded_action_paths, world_for_objects,
                       world_for_tree)
from .model import BTDocument, BTNode, BTParseError, BehaviorTree, parse_bt_xml, to_bt_xml
from .pal import PAL_ACTIONS, PAL_V1, infer_affordances
from .transforms import SubtreeMap, add_robustness, assign_node_ids, extract_subtrees

__all__ = [
    "BTDocument", "BTLoadResult", "BTNode", "BTParseError", "BehaviorTree", "ConformanceIssue", "ConformanceReport",
    "ExecutionResult", "PAL_ACTIONS", "PAL_V1", "SubtreeMap", "SymbolicWorld", "add_robustness", "assign_node_ids",
    "check_conformance", "execute_symbolic", "extract_subtrees", "guarded_action_paths", "infer_affordances",
    "load_in_btcpp", "parse_bt_xml", "to_bt_xml", "world_for_objects", "world_for_tree",
]
