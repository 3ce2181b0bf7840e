"""The agents A–G of the agentic teacher (plain Python; Dagster assets call them).

Every agent builds real messages (system prompt from ``teacher_assets/prompts/<agent>.md`` plus the
structured input block) and calls ``LLMClient.complete`` with its own reply schema.
"""
