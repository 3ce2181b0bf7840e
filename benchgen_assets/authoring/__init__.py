"""Scenario authoring: the Planner, Coder and Internal Reviewer agents, the generation loop that
repairs scripts from validator feedback, and the offline author's scenario handlers.

Plain Python (no Dagster); every agent call goes through ``resources.llm.LLMClient``.
"""
