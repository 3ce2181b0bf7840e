"""The offline author: a deterministic litellm custom provider (model ``offline/<name>``).

Registered with litellm so offline calls take the very same ``litellm.completion`` path as hosted
models. It dispatches on the agent role (sent as call metadata), and can inject faults.
Imported lazily by the client: importing it imports litellm.
"""

from __future__ import annotations

import hashlib
import json
import random
import time

from . import litellm_env  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm loads)
import litellm
from litellm import CustomLLM, ModelResponse

from .messages import extract_input
from .models import FaultConfig, OfflineRequest, content_text
from .roles import handler_for

PROVIDER = "offline"


def _approx_tokens(text: str) -> int:
    # The offline author has no tokenizer of its own; ~4 characters a token, like most BPEs.
    return max(1, len(text) // 4)


def fault_draw(faults: FaultConfig, messages: list[dict], salt: str) -> random.Random:
    """Reproducible randomness per (seed, request): a retry with other messages draws again."""
    digest = hashlib.sha256(json.dumps([faults.seed, salt, messages], sort_keys=True, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class OfflineAuthor(CustomLLM):
    def completion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose,
                   encoding, api_key, logging_obj, optional_params, acompletion=None, litellm_params=None,
                   logger_fn=None, headers=None, timeout=None, client=None):
        meta = (litellm_params or {}).get("metadata") or {}
        role = meta.get("agent_role") or "unknown"
        faults = FaultConfig.model_validate(meta.get("faults") or {})
        attempt = int(meta.get("attempt", 0))
        rng = fault_draw(faults, messages, f"{role}:{attempt}")
        if rng.random() < faults.timeout:
            raise litellm.Timeout(message=f"offline author: injected timeout ({role})", model=model, llm_provider=PROVIDER)
        if rng.random() < faults.rate_limit:
            raise litellm.RateLimitError(message=f"offline author: injected rate limit ({role})", model=model, llm_provider=PROVIDER)
        malformed = rng.random() < faults.malformed
        domain = rng.random() < faults.domain

        request = OfflineRequest(
            role=role,
            messages=messages,
            input=_latest_input(messages),
            response_schema=meta.get("response_schema"),
            inject_domain_fault=domain,
            seed=rng.randrange(2**31),
        )
        try:
            reply = handler_for(role)(request)
        except Exception as exc:  # a handler bug is not a provider hiccup: never retried
            raise litellm.BadRequestError(
                message=f"offline author: handler for role {role!r} failed: {type(exc).__name__}: {exc}",
                model=model, llm_provider=PROVIDER,
            ) from exc
        if malformed:
            reply = reply[: max(1, len(reply) // 2)] + "\n<<truncated: injected malformed reply>>"

        prompt_text = json.dumps(messages, default=str)
        model_response.choices[0].message.content = reply
        model_response.model = f"{PROVIDER}/{model}"
        model_response.created = int(time.time())
        p, c = _approx_tokens(prompt_text), _approx_tokens(reply)
        model_response.usage = litellm.Usage(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)
        return model_response


def _latest_input(messages: list[dict]):
    """The newest input block among user messages (feedback turns after a parse error carry none)."""
    for m in reversed(messages):
        if m.get("role") == "user" and (found := extract_input(content_text(m.get("content")))) is not None:
            return found
    return None


_registered = False


def register() -> None:
    """Add the offline provider to litellm once per process."""
    global _registered
    if _registered:
        return
    if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
        litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": OfflineAuthor()})
    _registered = True
