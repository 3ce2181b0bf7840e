"""Phase 3 — refinement: D robustness (guards, retries, recovery) and E subtree enablement."""

from __future__ import annotations

from resources.llm import LLMClient

from .calling import call_agent
from .schemas import AgentCallRecord, SubtreeReply, TreeEditReply


def harden_tree(client: LLMClient, bt_xml: str) -> tuple[TreeEditReply, AgentCallRecord]:
    return call_agent(client, agent="D robustness", prompt_name="robustness", role="teacher.robustness",
                      task="Harden this behavior tree against runtime failure.",
                      payload={"bt_xml": bt_xml}, schema=TreeEditReply)


def modularize_tree(client: LLMClient, bt_xml: str) -> tuple[SubtreeReply, AgentCallRecord]:
    return call_agent(client, agent="E subtrees", prompt_name="subtrees", role="teacher.subtrees",
                      task="Refactor this behavior tree into standard subtrees.",
                      payload={"bt_xml": bt_xml}, schema=SubtreeReply)
