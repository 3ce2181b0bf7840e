"""One agent call: real messages from the agent's prompt file, a typed reply, an audit record."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence, Type, TypeVar

from pydantic import BaseModel

from resources.llm import LLMClient, image_part, input_block, text_part

from .prompts import load_prompt
from .schemas import AgentCallRecord

T = TypeVar("T", bound=BaseModel)


def input_digest(payload: Any, images: Sequence[bytes] = ()) -> str:
    h = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    for png in images:
        h.update(hashlib.sha256(png).digest())
    return h.hexdigest()


def call_agent(
    client: LLMClient,
    *,
    agent: str,
    prompt_name: str,
    role: str,
    task: str,
    payload: dict,
    schema: Type[T],
    images: Sequence[bytes] = (),
    verdict_of=None,
) -> tuple[T, AgentCallRecord]:
    """Call ``role`` with the system prompt ``prompt_name``, ``task`` and ``payload`` as the input block."""
    prompt = load_prompt(prompt_name)
    user_text = f"{task}\n\n{input_block(payload)}"
    content: Any = [text_part(user_text), *(image_part(png) for png in images)] if images else user_text
    messages = [{"role": "system", "content": prompt.text}, {"role": "user", "content": content}]
    result = client.complete(role=role, messages=messages, schema=schema, prompt_version=prompt.prompt_version)
    usage = result.usage
    value: T = result.value
    record = AgentCallRecord(
        agent=agent,
        role=role,
        prompt_version=prompt.prompt_version,
        input_digest=input_digest(payload, images),
        output=value.model_dump(mode="json"),
        verdict=verdict_of(value) if verdict_of else None,
        model=usage.model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=usage.cost_usd,
        cache_hit=usage.cache_hit,
        latency_s=usage.latency_s,
    )
    return value, record
