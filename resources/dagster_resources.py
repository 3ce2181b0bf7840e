"""Dagster resources shared by both code locations (thin wrappers over the plain modules)."""

from __future__ import annotations

from typing import Optional

import pickle
from pathlib import Path
from typing import Any

from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, MetadataValue, OutputContext
from pydantic import Field

from resources.atomic import atomic_write_bytes

from resources.llm import FaultConfig, LLMClient, LLMSettings
from resources.llm.models import default_model


# Steps that call an LLM share this concurrency pool: its limit (dagster.yaml, or
# `dagster instance concurrency set llm N`) caps in-flight provider calls across all runs.
LLM_POOL = "llm"


class LLMResource(ConfigurableResource):
    """Every agent call goes through here. ``model`` unset: ``$BENCHGEN_LLM_MODEL`` or the offline
    author. Provider keys are never config: litellm reads them from the environment."""

    model: Optional[str] = Field(None, description="litellm model string, e.g. 'openai/gpt-4o-mini', 'ollama/llama3'")
    temperature: float = 0.0
    max_tokens: int = 4096
    timeout_s: float = 120.0
    max_retries: int = Field(4, description="retries on timeouts, rate limits, 5xx, connection errors")
    backoff_s: float = 1.0
    max_parse_attempts: int = 3
    api_base: Optional[str] = Field(None, description="local servers (Ollama, vLLM); else $BENCHGEN_LLM_API_BASE")
    use_cache: bool = True
    fault_seed: int = 0
    fault_malformed: float = Field(0.0, description="offline author only: share of unparseable replies")
    fault_timeout: float = 0.0
    fault_rate_limit: float = 0.0
    fault_domain: float = Field(0.0, description="offline author only: share of wrong answers (bad code, bad XML …)")
    max_rpm: Optional[float] = Field(None, gt=0, description="provider requests per minute, shared by every thread "
                                                             "and process on this datasets root; empty: no cap")
    calls_in_flight: int = Field(1, ge=1, le=64, description=(
        "in a run over many partitions, how many of them an LLM step works on at once (threads), i.e. calls "
        "in flight per step: raise it for a hosted model whose calls wait on the network; the offline "
        "author is CPU-bound and gains nothing. The `llm` pool still caps LLM steps across runs."))

    def settings(self) -> LLMSettings:
        extra = {"api_base": self.api_base} if self.api_base else {}
        return LLMSettings(
            model=self.model or default_model(),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            max_parse_attempts=self.max_parse_attempts,
            use_cache=self.use_cache,
            max_rpm=self.max_rpm,
            faults=FaultConfig(seed=self.fault_seed, malformed=self.fault_malformed, timeout=self.fault_timeout,
                               rate_limit=self.fault_rate_limit, domain=self.fault_domain),
            **extra,
        )

    def client_for(self, context, partition: Optional[str] = None) -> LLMClient:
        """A client whose traces and errors name the asset and partition being materialized
        (``partition``: the one being worked on, in a run over a partition range)."""
        try:
            asset = context.asset_key.to_user_string()
        except Exception:  # noqa: BLE001 — multi-asset or op context: fall back to the op name
            asset = context.op.name if hasattr(context, "op") else "adhoc"
        if partition is None and getattr(context, "has_partition_key", False):
            partition = context.partition_key
        return LLMClient(self.settings(), asset=asset, partition=partition)


def llm_metadata(client: LLMClient) -> dict:
    """Asset metadata of a step's LLM calls: usage totals, and where to follow a result back to
    the prompts (versions) and the trace of every call (prompt hash, reply, tokens, errors)."""
    meta = {k: v for k, v in client.usage_totals().items() if v is not None}
    if client.calls:
        meta["llm_prompts"] = ", ".join(sorted({c.prompt_version for c in client.calls}))
        meta["llm_trace"] = MetadataValue.path(str(client.trace_path))
    return meta


PARTITIONS_IO_MANAGER = "partitions_io_manager"


class PartitionsIOManager(ConfigurableIOManager):
    """Pickles one file per asset partition, also for a run over a partition range (Dagster's
    ``fs_io_manager`` refuses those): there the asset returns, and its downstream loads,
    ``{partition key: value}``; a single-partition run passes the value itself. Files are written
    atomically, so a killed run never leaves half a pickle behind. Layout as ``fs_io_manager``'s:
    ``<base_dir or the instance's storage dir>/<asset key path>/<partition>``."""

    base_dir: Optional[str] = Field(None, description="empty: the Dagster instance's storage directory")

    def _path(self, context, partition: str) -> Path:
        base = Path(self.base_dir) if self.base_dir else Path(context.step_context.instance.storage_directory())
        return base.joinpath(*context.asset_key.path, partition)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        keys = context.asset_partition_keys
        values = obj if len(keys) > 1 else {keys[0]: obj}
        missing = set(keys) - set(values)
        if missing:
            raise ValueError(f"{context.asset_key.to_user_string()}: no value for partitions {sorted(missing)}")
        for key in keys:
            # No fsync: the event log is the durable record; a lost pickle only means re-running the step.
            atomic_write_bytes(self._path(context, key), pickle.dumps(values[key], protocol=pickle.HIGHEST_PROTOCOL),
                               durable=False)

    def load_input(self, context: InputContext) -> Any:
        keys = context.asset_partition_keys
        values = {key: pickle.loads(self._path(context, key).read_bytes()) for key in keys}
        return values if len(keys) > 1 else values[keys[0]]


def shared_resources() -> dict:
    return {"llm": LLMResource(), PARTITIONS_IO_MANAGER: PartitionsIOManager()}


__all__ = ["LLM_POOL", "LLMResource", "PARTITIONS_IO_MANAGER", "PartitionsIOManager", "llm_metadata",
           "shared_resources"]
