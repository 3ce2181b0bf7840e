"""Building agent messages: structured input blocks, images, the reply-format instruction."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

INPUT_FENCE = "```json input"
_INPUT_RE = re.compile(r"```json input\n(.*?)\n```", re.S)


def input_block(obj: Any) -> str:
    """The structured input of an agent call, as a fenced block a model (and the offline author) reads."""
    return f"{INPUT_FENCE}\n{json.dumps(obj, indent=1, sort_keys=True, default=str)}\n```"


def extract_input(text: str) -> Any:
    found = _INPUT_RE.findall(text)
    return json.loads(found[-1]) if found else None


def image_part(png: bytes, mime: str = "image/png") -> dict:
    """An OpenAI-style image content part (what litellm passes to vision models)."""
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{base64.b64encode(png).decode()}"}}


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def hashed_messages(messages: list[dict]) -> list[dict]:
    """Messages with inline images replaced by their sha256, for cache keys and traces."""
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            parts = []
            for p in content:
                if isinstance(p, dict) and p.get("type") == "image_url":
                    url = p.get("image_url", {}).get("url", "")
                    parts.append({"type": "image_sha256", "sha256": hashlib.sha256(url.encode()).hexdigest()})
                else:
                    parts.append(p)
            content = parts
        out.append({**m, "content": content})
    return out


def format_instruction(schema: dict) -> str:
    return (
        "Reply with exactly one JSON object (no prose around it) that validates against this JSON schema:\n"
        + json.dumps(schema, sort_keys=True)
    )


_FENCED_JSON = re.compile(r"```(?:json)?\s*\n(.*?)\n```", re.S)


def extract_json_text(reply: str) -> str:
    """The JSON object in a reply: the whole reply, a fenced block, or the outermost braces."""
    s = reply.strip()
    if s.startswith("{"):
        return s
    m = _FENCED_JSON.search(s)
    if m:
        return m.group(1).strip()
    start, end = s.find("{"), s.rfind("}")
    if start != -1 and end > start:
        return s[start : end + 1]
    return s
