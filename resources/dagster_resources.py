"""Dagster resources shared by both code locations (thin wrappers over the plain modules)."""

from __future__ import annotations

from typing import Optional

from dagster import ConfigurableResource, MetadataValue
from pydantic import Field

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
            faults=FaultConfig(seed=self.fault_seed, malformed=self.fault_malformed, timeout=self.fault_timeout,
                               rate_limit=self.fault_rate_limit, domain=self.fault_domain),
            **extra,
        )

    def client_for(self, context) -> LLMClient:
        """A client whose traces and errors name the asset and partition being materialized."""
        try:
            asset = context.asset_key.to_user_string()
        except Exception:  # noqa: BLE001 — multi-asset or op context: fall back to the op name
            asset = context.op.name if hasattr(context, "op") else "adhoc"
        partition = context.partition_key if getattr(context, "has_partition_key", False) else None
        return LLMClient(self.settings(), asset=asset, partition=partition)


def llm_metadata(client: LLMClient) -> dict:
    """Asset metadata of a step's LLM calls: usage totals, and where to follow a result back to
    the prompts (versions) and the trace of every call (prompt hash, reply, tokens, errors)."""
    meta = {k: v for k, v in client.usage_totals().items() if v is not None}
    if client.calls:
        meta["llm_prompts"] = ", ".join(sorted({c.prompt_version for c in client.calls}))
        meta["llm_trace"] = MetadataValue.path(str(client.trace_path))
    return meta


def shared_resources() -> dict:
    return {"llm": LLMResource()}


__all__ = ["LLM_POOL", "LLMResource", "llm_metadata", "shared_resources"]
