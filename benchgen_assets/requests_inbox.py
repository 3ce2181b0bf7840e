"""The generation-request inbox: YAML files dropped in a folder become scenario requests.

A file holds one request, e.g. ``{tier: 2, family: lever, count: 10, seed: 7, variants: 3}`` or
``{prompt: "10 levers, tier 2", count: 10}`` (count and tier may come from the prompt, like the
CLI's ``--prompt``). The folder is ``$BENCHGEN_REQUESTS_DIR``, else ``<datasets>/requests/``.

Files stay where they are: the sensor's cursor remembers each file's content hash and outcome, so a
file is looked at again only when its content changes. A rejected file gets a ``<file>.error.txt``
beside it with the reason (removed once the file is fixed). Scenario ids are minted from the
request's content, so the same request (in any file, any number of times) names the same scenarios.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from benchgen_assets.authoring.request_text import offline_refusal, parse_request_text
from benchgen_assets.families import FAMILIES
from benchgen_assets.manager import make_requests
from benchgen_assets.records import GenerationRequest
from resources.atomic import atomic_write_text
from resources.paths import datasets_root

REQUESTS_DIR_ENV = "BENCHGEN_REQUESTS_DIR"
PER_TICK_ENV = "BENCHGEN_REQUESTS_PER_TICK"  # scenario runs one tick may request
SETTLE_SECONDS_ENV = "BENCHGEN_REQUESTS_SETTLE_SECONDS"
DEFAULT_PER_TICK = 50
DEFAULT_SETTLE_SECONDS = 5.0
MAX_COUNT = 100  # scenarios one file may ask for; more is almost surely a typo (split it into files)
MAX_FILES_PER_TICK = 20  # files read per tick, rejected ones included
MAX_FILE_BYTES = 64 * 1024
SUFFIXES = (".yaml", ".yml")
ERROR_SUFFIX = ".error.txt"


def requests_dir() -> Path:
    return Path(os.environ.get(REQUESTS_DIR_ENV) or datasets_root() / "requests").resolve()


def per_tick_limit() -> int:
    return max(1, int(os.environ.get(PER_TICK_ENV) or DEFAULT_PER_TICK))


def settle_seconds() -> float:
    return float(os.environ.get(SETTLE_SECONDS_ENV) or DEFAULT_SETTLE_SECONDS)


class RequestFileError(ValueError):
    """Why a request file was rejected (the text the user reads)."""


class RequestFile(BaseModel):
    """What a request file may say. Strict: ``count: "10"`` or an unknown key is an error, not a guess."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tier: Optional[int] = Field(None, ge=1, le=3)
    family: Optional[str] = None
    prompt: Optional[str] = Field(None, min_length=1, max_length=1000)
    count: Optional[int] = Field(None, ge=1, le=MAX_COUNT)
    seed: int = Field(0, ge=0)
    variants: int = Field(3, ge=1, le=64)

    @model_validator(mode="after")
    def _consistent(self) -> "RequestFile":
        if not (self.tier or self.family or self.prompt):
            raise ValueError("give at least one of tier, family, prompt")
        if self.family is not None:
            info = FAMILIES.get(self.family)
            if info is None:
                raise ValueError(f"unknown family {self.family!r}; known: {', '.join(sorted(FAMILIES))}")
            if self.tier is not None and info.tier != self.tier:
                raise ValueError(f"family {self.family!r} is tier {info.tier}, not tier {self.tier}")
        return self

    def resolved(self) -> "RequestFile":
        """Count and tier filled from the prompt when the file leaves them out (as the CLI does)."""
        parsed = parse_request_text(self.prompt) if self.prompt else None
        count = self.count or (parsed.count if parsed else None) or 1
        if count > MAX_COUNT:
            raise RequestFileError(f"count {count} (from the prompt) is over the limit of {MAX_COUNT} per file")
        refusal = offline_refusal(self.prompt, self.tier or parsed.tier) if self.prompt and not self.family else None
        if refusal:
            raise RequestFileError(refusal)
        return self.model_copy(update={"count": count, "tier": self.tier or (parsed.tier if parsed else None)})


class AcceptedFile(BaseModel):
    name: str
    sha256: str  # of the file's bytes: what the cursor compares
    request_hash: str  # of the resolved request: what scenario ids and run keys are minted from
    requests: list[GenerationRequest]


class RejectedFile(BaseModel):
    name: str
    sha256: str
    reason: str


class FileState(BaseModel):
    sha256: str
    status: Literal["requested", "rejected"]
    detail: str = ""


class InboxCursor(BaseModel):
    """The sensor cursor: file name → content hash → outcome."""

    files: dict[str, FileState] = Field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Optional[str]) -> "InboxCursor":
        # An unreadable cursor starts over: run keys still keep already requested runs from repeating.
        try:
            return cls.model_validate_json(raw) if raw else cls()
        except ValidationError:
            return cls()


class TickPlan(BaseModel):
    accepted: list[AcceptedFile] = Field(default_factory=list)
    rejected: list[RejectedFile] = Field(default_factory=list)
    unsettled: list[str] = Field(default_factory=list)  # modified too recently: maybe still being written
    deferred: list[str] = Field(default_factory=list)  # over this tick's bound: next tick
    cursor: InboxCursor


def _format_validation_error(error: ValidationError) -> str:
    parts = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else e["msg"].removeprefix("Value error, "))
    return "; ".join(parts)


def request_hash(spec: RequestFile) -> str:
    return hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def parse_request_file(data: bytes) -> tuple[str, list[GenerationRequest]]:
    """(request hash, one GenerationRequest per scenario) of a file's content; RequestFileError if unusable."""
    if len(data) > MAX_FILE_BYTES:
        raise RequestFileError(f"file is {len(data)} bytes; a request file is at most {MAX_FILE_BYTES}")
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RequestFileError(f"not UTF-8 text: {e}") from None
    except yaml.YAMLError as e:
        raise RequestFileError(f"not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise RequestFileError(f"expected a YAML mapping like {{tier: 2, family: lever, count: 10}}, "
                               f"got {type(doc).__name__}")
    try:
        spec = RequestFile.model_validate(doc).resolved()
    except ValidationError as e:
        raise RequestFileError(_format_validation_error(e)) from None
    digest = request_hash(spec)
    # The CLI's ids (<what>-s<seed>-<i>) plus the request hash: readable, and stable for this content only.
    requests = [r.model_copy(update={"scenario_id": f"{r.scenario_id}-{digest[:8]}"})
                for r in make_requests(tier=spec.tier, family=spec.family, prompt=spec.prompt, count=spec.count,
                                       seed=spec.seed, variants=spec.variants)]
    return digest, requests


def _candidates(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in SUFFIXES and not p.name.startswith(".") and p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))  # oldest first


def plan_tick(folder: Path, cursor: InboxCursor, *, now: float, settle_s: float, budget: int) -> TickPlan:
    """What one tick does: which files are new or changed, their requests or rejection, the next cursor.

    At most ``budget`` scenarios (a file bigger than the budget still goes, alone in its tick) and
    ``MAX_FILES_PER_TICK`` files; the rest wait for the next tick.
    """
    present = _candidates(folder)
    plan = TickPlan(cursor=InboxCursor(files={name: state for name, state in cursor.files.items()
                                              if (folder / name).exists()}))  # deleted files are forgotten
    files = plan.cursor.files
    scenarios = handled = 0
    full = False
    for path in present:
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except OSError:  # removed or replaced meanwhile: next tick
            continue
        sha = hashlib.sha256(data).hexdigest()
        known = files.get(path.name)
        if known is not None and known.sha256 == sha:
            continue
        if mtime > now - settle_s:
            plan.unsettled.append(path.name)
            continue
        if full or handled >= MAX_FILES_PER_TICK:
            plan.deferred.append(path.name)
            continue
        try:
            digest, requests = parse_request_file(data)
        except RequestFileError as e:
            handled += 1
            plan.rejected.append(RejectedFile(name=path.name, sha256=sha, reason=str(e)))
            files[path.name] = FileState(sha256=sha, status="rejected", detail=str(e))
            continue
        if scenarios and scenarios + len(requests) > budget:
            full = True  # oldest first: later files wait too, so a big file is not starved by small ones
            plan.deferred.append(path.name)
            continue
        handled += 1
        scenarios += len(requests)
        plan.accepted.append(AcceptedFile(name=path.name, sha256=sha, request_hash=digest, requests=requests))
        files[path.name] = FileState(sha256=sha, status="requested",
                                     detail=f"{len(requests)} scenario(s), request {digest[:8]}")
    return plan


def error_sidecar(folder: Path, name: str) -> Path:
    return folder / f"{name}{ERROR_SUFFIX}"


def write_rejection(folder: Path, rejected: RejectedFile) -> Path:
    return atomic_write_text(error_sidecar(folder, rejected.name),
                             f"{rejected.name} was rejected (content sha256 {rejected.sha256[:12]}):\n"
                             f"{rejected.reason}\n\nFix the file; it is read again as soon as its content changes.\n")


def clear_rejection(folder: Path, name: str) -> None:
    error_sidecar(folder, name).unlink(missing_ok=True)


def clear_orphan_rejections(folder: Path) -> None:
    """Drop the error notes of request files that were removed."""
    for note in folder.glob(f"*{ERROR_SUFFIX}"):
        if not (folder / note.name.removesuffix(ERROR_SUFFIX)).exists():
            note.unlink(missing_ok=True)
