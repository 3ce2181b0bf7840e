"""Shared resources for both code locations.

Plain modules (``paths``, ``atomic``, ``llm``) import no Dagster so domain code can use them;
``dagster_resources`` is the thin Dagster layer over them.
"""
