"""BehaviorTree.CPP v4 + PAL v1 domain library of the agentic teacher (plain Python, no Dagster).

Modules: ``pal`` (the 14 primitives, affordance lexicon), ``conditions`` (guard conditions
``IsHolding``/``IsOpen``/``IsReachable``/``IsToggledOn``), ``model`` (parse / canonical
serialize), ``conformance`` (structure, PAL, parameter flow), ``btcpp`` (load and tick in
BehaviorTree.CPP via behaviortreepy), ``world`` (the episode's symbolic world and the PAL rules),
``executor`` (execution, failure injection, recovery checks), ``transforms`` (robustness,
subtrees, deterministic node ids). Each module's docstring documents its contract.
"""

from .btcpp import BTLoadResult, load_in_btcpp
from .conditions import CONDITIONS
from .conformance import ConformanceIssue, ConformanceReport, check_conformance
from .executor import ExecutionResult, RecoveryReport, StepFailure, check_recoveries, execute_symbolic
from .model import BTDocument, BTNode, BTParseError, BehaviorTree, parse_bt_xml, to_bt_xml
from .pal import PAL_ACTIONS, PAL_V1, infer_affordances
from .transforms import SubtreeMap, add_robustness, assign_node_ids, extract_subtrees
from .world import SymbolicWorld, world_for_episode, world_for_objects

__all__ = [
    "BTDocument", "BTLoadResult", "BTNode", "BTParseError", "BehaviorTree", "CONDITIONS", "ConformanceIssue",
    "ConformanceReport", "ExecutionResult", "PAL_ACTIONS", "PAL_V1", "RecoveryReport", "StepFailure", "SubtreeMap",
    "SymbolicWorld", "add_robustness", "assign_node_ids", "check_conformance", "check_recoveries", "execute_symbolic",
    "extract_subtrees", "infer_affordances", "load_in_btcpp", "parse_bt_xml",
    "to_bt_xml", "world_for_episode", "world_for_objects",
]
