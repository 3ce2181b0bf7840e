"""The one path every agent call takes: ``LLMClient.complete`` over ``litellm.completion``.

Structured replies (a pydantic schema per agent), a persistent cache, retries with backoff on
provider errors, parse-error feedback, token/cost/latency accounting and a trace record per call.
Plain Python: the Dagster resource builds a client bound to an asset and partition.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from pathlib import Path
from typing import Optional, Type, TypeVar

from pydantic import BaseModel, ValidationError

from resources.paths import datasets_root

from .cache import ResponseCache, cache_key
from .messages import extract_json_text, format_instruction, hashed_messages
from .models import CallUsage, LLMResult, LLMSettings, TraceRecord
from .traces import TraceWriter, redact

T = TypeVar("T", bound=BaseModel)


class LLMCallError(RuntimeError):
    """An agent call that could not produce a valid reply; the message names agent and partition."""

    def __init__(self, message: str, *, role: str, asset: str, partition: Optional[str]):
        super().__init__(redact(message))
        self.role, self.asset, self.partition = role, asset, partition


RATE_LIMIT_METADATA = "benchgen_rate_limit"


def _litellm():
    from . import litellm_env  # noqa: F401

    import litellm

    litellm.suppress_debug_info = True
    if not any(getattr(c, "is_benchgen_rate_limit", False) for c in litellm.callbacks):
        litellm.callbacks.append(_rate_limit_hook(litellm))
    return litellm


def warm_up_litellm() -> None:
    """Import litellm with what its completion path loads, so that processes forked afterwards
    inherit it instead of each paying 2-6 s (their first call then costs ~0.3 s). No call is made:
    litellm logs every call from a background thread, and a fork while that thread holds a lock
    (seen: pydantic-core's) leaves the child deadlocked."""
    _litellm()
    import litellm.main  # noqa: F401
    import litellm.utils  # noqa: F401

    from .offline import register

    register()  # the offline author (the default model)


def _rate_limit_hook(litellm):
    """A litellm callback that waits for a request's rate-limit slot right before it is sent: after
    litellm's own set-up (the first call of a process can spend a second in it), so the provider
    sees the spacing the limiter promised."""
    from litellm.integrations.custom_logger import CustomLogger

    class RateLimitHook(CustomLogger):
        is_benchgen_rate_limit = True

        def log_pre_api_call(self, model, messages, kwargs):
            meta = (kwargs.get("litellm_params") or {}).get("metadata") or {}
            if limit := meta.get(RATE_LIMIT_METADATA):
                RateLimiter(Path(limit["path"]), limit["max_rpm"]).acquire()

    return RateLimitHook()


def _retryable(litellm, exc: BaseException) -> bool:
    kinds = (
        litellm.Timeout,
        litellm.RateLimitError,
        litellm.APIConnectionError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
    )
    return isinstance(exc, kinds)


class RateLimiter:
    """At most ``max_rpm`` requests per minute to one provider endpoint, across threads and processes.

    The schedule is one timestamp in a small file under ``<cache>/rate/``, read and advanced under
    an exclusive ``flock``: each request takes the next free slot ``60 / max_rpm`` s after the
    previous one and sleeps until it (no bursts, so any 60 s window holds at most ``max_rpm``).
    """

    def __init__(self, path: Path, max_rpm: float):
        self.path, self.interval = path, 60.0 / max_rpm

    def acquire(self) -> float:
        """Wait for this request's slot; returns the seconds waited."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0)
                text = f.read().strip()
                now = time.time()
                slot = max(now, float(text) if text else 0.0)
                f.seek(0)
                f.truncate()
                f.write(repr(slot + self.interval))
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return max(0.0, wait)


class LLMClient:
    def __init__(self, settings: LLMSettings, *, asset: str = "adhoc", partition: Optional[str] = None):
        self.settings = settings
        self.asset = asset
        self.partition = partition
        root = datasets_root()
        self.cache = ResponseCache(Path(settings.cache_dir) if settings.cache_dir else root / "cache" / "llm")
        self.traces = TraceWriter(Path(settings.traces_dir) if settings.traces_dir else root / "traces" / "llm")
        self.calls: list[CallUsage] = []
        self.rate_limit = None  # handed to the litellm hook that waits for each request's slot
        if settings.max_rpm:
            endpoint = cache_key({"model": settings.model, "api_base": settings.api_base})[:16]
            self.rate_limit = {"path": str(self.cache.root.parent / "rate" / f"{endpoint}.next"),
                               "max_rpm": settings.max_rpm}

    def bind(self, *, asset: str, partition: Optional[str]) -> "LLMClient":
        return LLMClient(self.settings, asset=asset, partition=partition)

    # -- the call ---------------------------------------------------------------------------
    def complete(self, *, role: str, messages: list[dict], schema: Type[T], prompt_version: str) -> LLMResult[T]:
        s = self.settings
        json_schema, instruction = _reply_format(schema)
        convo = _with_format(messages, instruction)
        key_payload = {
            "model": s.model,
            "messages": hashed_messages(convo),
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
            "schema": json_schema,
            "prompt_version": prompt_version,
            "role": role,
            "api_base": s.api_base,
            "faults": s.faults.model_dump() if s.is_offline and s.faults.active else None,
        }
        key = cache_key(key_payload)
        prompt_hash = key[:16]

        if s.use_cache and (hit := self.cache.get(key)) is not None:
            try:
                value = schema.model_validate(hit["value"])
            except ValidationError:
                value = None  # schema changed under the same key: treat as a miss
            if value is not None:
                usage = CallUsage(role=role, model=s.model, cache_hit=True, prompt_hash=prompt_hash,
                                  prompt_version=prompt_version)
                self._trace(role, prompt_version, prompt_hash, 0, "cache_hit", reply=hit["raw"])
                self.calls.append(usage)
                return LLMResult(value=value, raw=hit["raw"], usage=usage)

        usage = CallUsage(role=role, model=s.model, prompt_hash=prompt_hash, prompt_version=prompt_version)
        started = time.monotonic()
        try:
            return self._complete_uncached(role, convo, schema, prompt_version, prompt_hash, key, usage)
        finally:  # failed calls are accounted too: their tokens were spent
            usage.latency_s = round(time.monotonic() - started, 4)
            self.calls.append(usage)

    def _complete_uncached(self, role, convo, schema: Type[T], prompt_version, prompt_hash, key, usage) -> LLMResult[T]:
        s = self.settings
        last_error = ""
        for _ in range(s.max_parse_attempts):
            raw, paid = self._call_with_retries(role, convo, prompt_version, prompt_hash, usage)
            try:
                value = schema.model_validate_json(extract_json_text(raw))
            except ValidationError as e:
                last_error = _short_validation_error(e)
                self._trace(role, prompt_version, prompt_hash, usage.attempts, "ok", reply=raw, **paid)
                self._trace(role, prompt_version, prompt_hash, usage.attempts, "parse_error", reply=raw, error=last_error)
                convo = [
                    *convo,
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": (
                        f"Your reply could not be parsed: {last_error}\n"
                        "Answer again with one JSON object matching the schema, nothing else."
                    )},
                ]
                continue
            # The cache first, then the "ok" trace: a kill -9 between the two keeps the paid reply (the
            # rerun takes it from the cache instead of paying for it again); the entry keeps what it cost.
            if s.use_cache:
                self.cache.put(key, {"value": value.model_dump(mode="json"), "raw": raw, "model": s.model,
                                     "prompt_version": prompt_version, "role": role, "paid": paid})
            self._trace(role, prompt_version, prompt_hash, usage.attempts, "ok", reply=raw, **paid)
            return LLMResult(value=value, raw=raw, usage=usage)
        raise LLMCallError(
            f"agent {role!r} (asset {self.asset}, partition {self.partition}) gave no valid "
            f"{schema.__name__} after {s.max_parse_attempts} replies; last parse error: {last_error}",
            role=role, asset=self.asset, partition=self.partition,
        )

    def _call_with_retries(self, role, convo, prompt_version, prompt_hash, usage: CallUsage) -> tuple[str, dict]:
        """The provider's reply, and what it cost (tokens, cost, latency) for its "ok" trace record, which
        the caller writes once the reply is safe in the cache."""
        s = self.settings
        litellm = _litellm()
        if s.is_offline:
            from .offline import register

            register()
        kwargs = dict(model=s.model, messages=convo, temperature=s.temperature, max_tokens=s.max_tokens,
                      timeout=s.timeout_s, num_retries=0)
        if s.api_base:
            kwargs["api_base"] = s.api_base
        for retry in range(s.max_retries + 1):
            usage.attempts += 1
            metadata = {"agent_role": role, "attempt": usage.attempts}
            if s.is_offline:
                metadata["faults"] = s.faults.model_dump()
            if self.rate_limit:  # every attempt is a request the provider counts
                metadata[RATE_LIMIT_METADATA] = self.rate_limit
            t0 = time.monotonic()
            try:
                resp = litellm.completion(**kwargs, metadata=metadata)
            except Exception as exc:  # noqa: BLE001 — classified below, never swallowed
                latency = time.monotonic() - t0
                retryable = _retryable(litellm, exc)
                msg = f"{type(exc).__name__}: {exc}"
                self._trace(role, prompt_version, prompt_hash, usage.attempts,
                            "provider_error" if retryable else "error", error=msg, latency_s=latency)
                if retryable and retry < s.max_retries:
                    time.sleep(min(s.backoff_max_s, s.backoff_s * (2**retry)))
                    continue
                why = f"gave up after {usage.attempts} attempts" if retryable else "non-retryable error"
                raise LLMCallError(
                    f"agent {role!r} (asset {self.asset}, partition {self.partition}) failed, {why}: {msg}",
                    role=role, asset=self.asset, partition=self.partition,
                ) from None
            latency = time.monotonic() - t0
            raw = resp.choices[0].message.content or ""
            pt = int(getattr(resp.usage, "prompt_tokens", 0) or 0)
            ct = int(getattr(resp.usage, "completion_tokens", 0) or 0)
            cost = _cost(litellm, resp)
            usage.prompt_tokens += pt
            usage.completion_tokens += ct
            if cost is not None:
                usage.cost_usd = (usage.cost_usd or 0.0) + cost
            return raw, {"prompt_tokens": pt, "completion_tokens": ct, "cost_usd": cost, "latency_s": round(latency, 4)}
        raise AssertionError("unreachable")

    # -- accounting -------------------------------------------------------------------------
    def _trace(self, role, prompt_version, prompt_hash, attempt, outcome, **fields) -> None:
        self.traces.write(TraceRecord(
            ts=dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            asset=self.asset, partition=self.partition, role=role, model=self.settings.model,
            prompt_version=prompt_version, prompt_hash=prompt_hash, attempt=attempt, outcome=outcome,
            **{k: (round(v, 4) if k == "latency_s" else v) for k, v in fields.items()},
        ))

    @property
    def trace_path(self) -> Path:
        """The JSONL file this client's trace records go to (one per asset and partition)."""
        return self.traces.path_for(self.asset, self.partition)

    def usage_totals(self) -> dict:
        """Sums over this client's calls, shaped for asset metadata."""
        return summarize_usage(self.calls)


def summarize_usage(calls: list[CallUsage]) -> dict:
    costs = [c.cost_usd for c in calls if c.cost_usd is not None]
    return {
        "llm_calls": len(calls),
        "llm_cache_hits": sum(c.cache_hit for c in calls),
        "llm_prompt_tokens": sum(c.prompt_tokens for c in calls),
        "llm_completion_tokens": sum(c.completion_tokens for c in calls),
        "llm_cost_usd": round(sum(costs), 6) if costs else None,
        "llm_latency_s": round(sum(c.latency_s for c in calls), 3),
    }


@functools.lru_cache(maxsize=None)
def _reply_format(schema: type) -> tuple[dict, str]:
    """A reply model's JSON schema and format instruction, built once per model (pydantic rebuilds the
    schema on every ``model_json_schema()``: ~2 ms, several times per episode). Read-only."""
    json_schema = schema.model_json_schema()
    return json_schema, format_instruction(json_schema)


def _with_format(messages: list[dict], instruction: str) -> list[dict]:
    """Append the reply-format instruction to the system message (adding one if there is none)."""
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        return [{**messages[0], "content": messages[0]["content"] + "\n\n" + instruction}, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def _cost(litellm, resp) -> Optional[float]:
    try:
        return float(litellm.completion_cost(completion_response=resp))
    except Exception:  # noqa: BLE001 — unknown model price: cost unknown, not an error
        return None


def _short_validation_error(e: ValidationError) -> str:
    errs = e.errors(include_url=False)[:3]
    return "; ".join(f"{'.'.join(map(str, x.get('loc', ()))) or '<root>'}: {x.get('msg')}" for x in errs)

