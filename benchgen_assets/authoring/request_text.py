"""Reading a free-text generation request such as "10 levers, tier 2" or "a drawer with a
peg-in-hole on top".

Deterministic: the CLI uses it for the count and tier, the offline planner for the families the
prompt names. A leading number in digits is the batch size ("10 levers": ten scenarios); a number
word before a mechanism is how many of it one scene holds ("two levers": one scene, two levers).
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
    count = int(count_m.group(1)) if count_m else None
    return ParsedRequest(count=count, tier=int(tier_m.group(1)) if tier_m else None, words=words)


# Words too generic to identify a family.
_STOP = {"a", "an", "and", "in", "of", "on", "the", "with", "to", "into", "tier", "scenario", "benchmark"}


# Words that say nothing about what to build (or only how to place it): never "unknown".
_GENERIC = _STOP | set(_NUMBER_WORDS) | {
    "scene", "scenario", "task", "robot", "arm", "gripper", "setup", "set", "simple", "small", "large", "big",
    "tiny", "wide", "narrow", "tall", "short", "easy", "hard", "difficult", "new", "random", "different",
    "some", "next", "beside", "side", "by", "near", "behind", "left", "right", "top", "above", "onto", "atop",
    "upon", "plus", "both", "each", "please", "make", "build", "create", "generate", "give", "me", "i", "want",
    "need", "for", "it", "that", "which", "where", "ha", "have", "can", "must", "should", "is", "are", "be",
    "one", "variant", "level", "red", "green", "blue", "yellow", "white", "black", "wooden", "metal", "plastic",
    # what a robot does in a scene (the task comes from the families named)
    "put", "place", "insert", "open", "close", "pull", "push", "lift", "raise", "lower", "turn", "rotate", "move",
    "pick", "grasp", "hold", "drop", "remove", "take", "use", "solve", "learn", "practice", "then", "so", "up",
    "out", "down", "off", "from"}
_ON_TOP = {"top", "above", "onto", "atop", "upon"}
MAX_COPIES = 3


@dataclass(frozen=True)
class KnownFamily:
    name: str
    tier: int
    title: str
    description: str = ""

    def name_words(self) -> set[str]:
        """The words that name the family (name and title)."""
        return {_singular(w) for w in _WORD.findall(f"{self.name.replace('_', ' ')} {self.title}".lower())} - _STOP

    def known_words(self) -> set[str]:
        return self.name_words() | {_singular(w) for w in _WORD.findall(self.description.lower())}


def known_families(catalog: Iterable[dict]) -> list[KnownFamily]:
    """From the family catalog the planner gets (``FamilyInfo`` dumps)."""
    return [KnownFamily(f["name"], f["tier"], f["title"], f.get("description", "")) for f in catalog]


@dataclass(frozen=True)
class Mention:
    family: str
    copies: int
    position: int  # index of its first word in the prompt


@dataclass(frozen=True)
class PromptReading:
    """The families a prompt names (in the order it names them), which one goes on top of which
    (indices into ``mentions``), and the words no known family explains."""

    mentions: tuple[Mention, ...]
    on_top: Optional[tuple[int, int]] = None  # (top, support)
    unknown: tuple[str, ...] = ()


def read_prompt(text: str, families: Iterable[KnownFamily], tier: Optional[int] = None) -> PromptReading:
    """Which known families ``text`` names. A word that names several families counts for the one
    the prompt names with most words (then whose description it echoes most, then the requested
    tier, then the name order)."""
    families = list(families)
    words = list(parse_request_text(text).words)
    vocab = {f.name: f.name_words() for f in families}
    hits = {f.name: sum(w in vocab[f.name] for w in set(words)) for f in families}
    described = {f.name: sum(w in f.known_words() for w in set(words)) for f in families}
    rank = {f.name: (-hits[f.name], -described[f.name], int(tier is None or f.tier != tier), f.name)
            for f in families}
    owner: dict[int, str] = {}
    for i, w in enumerate(words):
        named = [f.name for f in families if w in vocab[f.name]]
        if named:
            owner[i] = min(named, key=rank.__getitem__)
    tiers = {f.name: f.tier for f in families}
    mentions: dict[str, Mention] = {}
    for i, fam in sorted(owner.items()):
        # "two levers" counts; the "four" of "four-bar" names the family
        copies = _NUMBER_WORDS.get(words[i - 1], 1) if i and words[i - 1] not in vocab[fam] else 1
        # a number counts mechanisms (tier >= 2); in a tier-1 scene of loose objects it counts objects
        copies = min(copies, MAX_COPIES) if tiers[fam] >= 2 else 1
        old = mentions.get(fam)
        mentions[fam] = Mention(fam, max(copies, old.copies if old else 1), old.position if old else i)
    ordered = tuple(sorted(mentions.values(), key=lambda m: m.position))
    known = set().union(*(f.known_words() for f in families)) | _GENERIC if families else _GENERIC
    unknown = tuple(dict.fromkeys(w for w in words if w not in known and not w.isdigit()))
    return PromptReading(mentions=ordered, on_top=_on_top(words, ordered), unknown=unknown)


def _on_top(words: list[str], mentions: tuple[Mention, ...]) -> Optional[tuple[int, int]]:
    """"A on top of B" / "A above B": A on B; "B with A on top": A on the one named before it."""
    at = next((i for i, w in enumerate(words) if w in _ON_TOP), None)
    if at is None or len(mentions) < 2:
        return None
    before = [k for k, m in enumerate(mentions) if m.position < at]
    after = [k for k, m in enumerate(mentions) if m.position > at]
    if before and after:
        return before[-1], after[0]
    if len(before) >= 2:
        return before[-1], before[-2]
    return None


class UnservablePrompt(ValueError):
    """A prompt the offline author cannot build: the message names what it can build."""


def offline_capabilities(families: Iterable[KnownFamily]) -> str:
    listed = "; ".join(f"{f.name} ({f.title}, tier {f.tier})" for f in sorted(families, key=lambda f: (f.tier, f.name)))
    return (f"The offline author builds these families: {listed}; and scenes composed of them, e.g. "
            "\"a drawer with a peg-in-hole on top\", \"two levers\", \"a door and a drawer\". A hosted model "
            "(BENCHGEN_LLM_MODEL) can author new families.")


def check_servable(text: str, families: Iterable[KnownFamily], tier: Optional[int] = None) -> PromptReading:
    """What the offline author reads in ``text``; UnservablePrompt if it names something no known
    family builds (rather than a wrong scenario)."""
    families = list(families)
    reading = read_prompt(text, families, tier)
    if reading.unknown:
        raise UnservablePrompt(f"The offline author cannot build {text.strip()!r}: it knows no "
                               f"{', '.join(repr(w) for w in reading.unknown)}. " + offline_capabilities(families))
    return reading


def offline_refusal(prompt: str, tier: Optional[int]) -> Optional[str]:
    """Why the offline author cannot serve ``prompt`` (None if it can, or a hosted model is set),
    said before any partition is made (CLI, request inbox): the offline planner would refuse it the same way."""
    from benchgen_assets.families import FAMILIES
    from resources.llm import LLMSettings

    if not LLMSettings().is_offline:
        return None
    try:
        check_servable(prompt, known_families([f.model_dump() for f in FAMILIES.values()]), tier)
    except UnservablePrompt as e:
        return str(e)
    return None
