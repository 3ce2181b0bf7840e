"""What the nightly refresh re-runs: scenarios never finished, failed, or whose inputs changed.

``validated_scenario`` records ``input_fingerprint`` (and the plan's ``family``) in its metadata;
the schedule recomputes the fingerprint from today's inputs and compares. The fingerprint covers
the saved GenerationRequest, the family's scenario script, the agents' prompt versions and
``PIPELINE_VERSION`` (bump it when validation changes in a way that should re-run everything).
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional

from pydantic import BaseModel, Field

from benchgen_assets.authoring import prompts
from benchgen_assets.families import FAMILIES, family_source
from benchgen_assets.records import GenerationRequest
from resources.llm.prompts import prompt_versions

PIPELINE_VERSION = "1"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def input_fingerprint(request: GenerationRequest, family: Optional[str]) -> str:
    """Hash of what a scenario's outputs are made from (same inputs → same outputs, given the LLM cache)."""
    parts = {
        "version": PIPELINE_VERSION,
        "request": request.model_dump(mode="json"),
        "family_script": _sha(family_source(family)) if family in FAMILIES else None,
        "prompts": prompt_versions(prompts.PROMPTS_DIR),
    }
    return _sha(json.dumps(parts, sort_keys=True))


class PartitionHistory(BaseModel):
    """What the instance knows about one scenario partition (gathered by the schedule)."""

    scenario_id: str
    stage_storage_ids: dict[str, int] = Field(default_factory=dict)  # chain asset → latest materialization
    preview_storage_id: Optional[int] = None
    failed_checks: list[str] = Field(default_factory=list)  # blocking checks whose latest evaluation failed
    last_run_failed: bool = False  # a finished run planned a stage of it and failed before materializing it
    recorded_fingerprint: Optional[str] = None
    recorded_family: Optional[str] = None


def refresh_reason(history: PartitionHistory, current_fingerprint: str) -> Optional[str]:
    """Why the partition should run again tonight, or None if it is up to date."""
    if history.last_run_failed:
        return "last run failed"
    if not history.stage_storage_ids:
        return "never materialized"
    if history.failed_checks:
        return f"blocking check(s) failed: {', '.join(sorted(history.failed_checks))}"
    if history.preview_storage_id is None or history.preview_storage_id < max(history.stage_storage_ids.values()):
        return "chain incomplete: no preview after the latest stage"
    if history.recorded_fingerprint != current_fingerprint:
        return "inputs changed (request, family script or prompt versions)"
    return None
