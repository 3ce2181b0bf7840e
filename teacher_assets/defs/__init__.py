"""Dagster definitions of the agentic teacher (thin: the work is in ``teacher_assets.pipeline``)."""
