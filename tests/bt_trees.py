"""Small builders of BehaviorTree.CPP test documents (shared by the BT domain and symbolic world tests)."""

from teacher_assets.bt import parse_bt_xml, to_bt_xml


def bt_doc(main_body: str, extra: str = "", fmt: str = "4", main: str = "Main", models: bool = True) -> str:
    """A document with the standard PAL TreeNodesModel (via a canonical round trip) unless models=False."""
    text = (f'<root BTCPP_format="{fmt}" main_tree_to_execute="{main}">'
            f'<BehaviorTree ID="Main">{main_body}</BehaviorTree>{extra}</root>')
    return to_bt_xml(parse_bt_xml(text)) if models else text


def pal_sequence(*steps: str, navigate: bool = False) -> str:
    """A Sequence of ``"ACTION:obj"`` / ``"RELEASE"`` steps; ``navigate`` puts NAVIGATE_TO obj before each."""
    leaves = []
    for step in steps:
        action, _, obj = step.partition(":")
        approach = f'<NAVIGATE_TO obj="{obj}"/>' if navigate and obj else ""
        leaves.append(approach + (f'<{action} obj="{obj}"/>' if obj else f"<{action}/>"))
    return "<Sequence>" + "".join(leaves) + "</Sequence>"
