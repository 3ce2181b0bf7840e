"""LLM access for every agent (plain Python; litellm is imported only when a call is made)."""

from .client import LLMCallError, LLMClient, summarize_usage
from .messages import image_part, input_block, text_part
from .models import OFFLINE_MODEL, CallUsage, FaultConfig, LLMResult, LLMSettings, OfflineRequest
from .roles import offline_role

__all__ = [
    "LLMCallError", "LLMClient", "summarize_usage", "image_part", "input_block", "text_part",
    "OFFLINE_MODEL", "CallUsage", "FaultConfig", "LLMResult", "LLMSettings", "OfflineRequest", "offline_role",
]
