"""Reading a free-text generation request such as "10 levers, tier 2".

Deterministic: the CLI uses it for the count and tier, the offline planner for the family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

_TIER = re.compile(r"\btier[\s_-]*([123])\b", re.I)
_COUNT = re.compile(r"^\s*(\d{1,4})\b(?!\s*(?:mm|cm|m|kg|%))")
_WORD = re.compile(r"[a-z]+")
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "twenty": 20}


@dataclass(frozen=True)
class ParsedRequest:
    count: Optional[int]
    tier: Optional[int]
    words: tuple[str, ...] = field(default=())


def _singular(word: str) -> str:
    for suffix, repl in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            return word[: -len(suffix)] + repl
    return word


def parse_request_text(text: str) -> ParsedRequest:
    tier_m = _TIER.search(text)
    rest = _TIER.sub(" ", text)
    count_m = _COUNT.search(rest)
    words = tuple(_singular(w) for w in _WORD.findall(rest.lower()))
    count = int(count_m.group(1)) if count_m else (_NUMBER_WORDS.get(words[0]) if words else None)
    return ParsedRequest(count=count, tier=int(tier_m.group(1)) if tier_m else None, words=words)


def match_family(text: str, families: Iterable[tuple[str, int, str]], tier: Optional[int] = None) -> Optional[str]:
    """The family (name, tier, title) whose name/title words the text mentions most; ties go to
    the requested tier, then to the name order. None if no word matches."""
    words = set(parse_request_text(text).words)
    best: tuple[int, int, str] | None = None
    for name, fam_tier, title in families:
        vocab = {_singular(w) for w in _WORD.findall(f"{name.replace('_', ' ')} {title}".lower())} - _STOP
        hits = len(words & vocab)
        if not hits:
            continue
        key = (hits, int(tier is not None and fam_tier == tier), name)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


# Words too generic to identify a family.
_STOP = {"a", "an", "and", "in", "of", "on", "the", "with", "to", "into", "tier", "scenario", "benchmark"}
