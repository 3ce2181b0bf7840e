"""Records that cross the LLM boundary: settings, fault plan, per-call usage, trace record."""

from __future__ import annotations

import os
from typing import Any, Generic, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T", bound=BaseModel)

OFFLINE_MODEL = "offline/author"
MODEL_ENV = "BENCHGEN_LLM_MODEL"
API_BASE_ENV = "BENCHGEN_LLM_API_BASE"


def default_model() -> str:
    return os.environ.get(MODEL_ENV) or OFFLINE_MODEL


class FaultConfig(BaseModel):
    """Faults the offline author injects, each a probability per call, drawn from ``seed``.

    ``malformed``: an unparseable reply; ``timeout`` / ``rate_limit``: provider errors that the
    client retries; ``domain``: a well-formed but wrong answer from the role handler (broken
    script, invalid XML, non-PAL primitive …) so repair and critique loops get exercised.
    """

    model_config = ConfigDict(frozen=True)

    seed: int = 0
    malformed: float = Field(0.0, ge=0, le=1)
    timeout: float = Field(0.0, ge=0, le=1)
    rate_limit: float = Field(0.0, ge=0, le=1)
    domain: float = Field(0.0, ge=0, le=1)

    @property
    def active(self) -> bool:
        return any((self.malformed, self.timeout, self.rate_limit, self.domain))

    @staticmethod
    def share_per_kind(rate: float) -> float:
        """The probability for each of ``timeout``, ``rate_limit`` and ``malformed`` that makes
        ``rate`` of all calls get one of them: the offline author draws the three in turn, so
        1 - (1 - p)^3 = rate, about a third of the faults each."""
        return 1 - (1 - rate) ** (1 / 3)


class LLMSettings(BaseModel):
    """Everything that configures calls; the Dagster resource builds one of these."""

    model: str = Field(default_factory=default_model)
    temperature: float = 0.0
    max_tokens: int = 4096
    timeout_s: float = 120.0
    max_retries: int = 4  # provider errors: timeouts, rate limits, 5xx, connection
    backoff_s: float = 1.0  # first wait; doubles each retry, capped at backoff_max_s
    backoff_max_s: float = 30.0
    max_parse_attempts: int = 3  # unparseable replies, each retried with the parse error
    api_base: Optional[str] = Field(default_factory=lambda: os.environ.get(API_BASE_ENV) or None)
    cache_dir: Optional[str] = None  # None: <datasets>/cache/llm
    traces_dir: Optional[str] = None  # None: <datasets>/traces/llm
    use_cache: bool = True
    faults: FaultConfig = FaultConfig()
    # Provider requests per minute, over every thread and process sharing the datasets root; None: no cap.
    max_rpm: Optional[float] = Field(None, gt=0)

    @property
    def is_offline(self) -> bool:
        return self.model.startswith("offline/")


class CallUsage(BaseModel):
    """Accounting of one agent call (all attempts included)."""

    role: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Optional[float] = None  # None where litellm does not know the model's price
    latency_s: float = 0.0
    cache_hit: bool = False
    attempts: int = 0
    prompt_hash: str = ""
    prompt_version: str = ""


class LLMResult(BaseModel, Generic[T]):
    value: T
    raw: str
    usage: CallUsage


class TraceRecord(BaseModel):
    """One line of ``datasets/traces/llm/<asset>/<partition>.jsonl``."""

    ts: str
    asset: str
    partition: Optional[str]
    role: str
    model: str
    prompt_version: str
    prompt_hash: str
    attempt: int
    outcome: str  # ok | cache_hit | parse_error | provider_error | error
    reply: Optional[str] = None
    error: Optional[str] = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Optional[float] = None
    latency_s: float = 0.0


class OfflineRequest(BaseModel):
    """What a role handler of the offline author receives."""

    role: str
    messages: list[dict[str, Any]]
    input: Any = None  # the JSON block the agent put in its last user message, parsed
    response_schema: Optional[dict[str, Any]] = None
    inject_domain_fault: bool = False
    seed: int = 0  # derived from fault seed + request, for reproducible variety

    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return content_text(m.get("content"))
        return ""


def content_text(content: Any) -> str:
    """Text of a message content (a string, or OpenAI-style parts with images skipped)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
