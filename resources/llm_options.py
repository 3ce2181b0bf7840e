"""The LLM options both CLIs take from their command line, and the ``llm`` resource they make."""

from __future__ import annotations

import argparse
from typing import Optional

from pydantic import BaseModel, Field


class LLMOptions(BaseModel):
    """Fault injection (offline author only) and retry settings of a CLI run; None: the resource's default."""

    faults: float = Field(0.0, ge=0, le=1, description="share of calls that get an injected malformed reply, "
                                                       "timeout or rate limit (429), about a third each")
    fault_domain: float = Field(0.0, ge=0, le=1, description="share of well-formed but wrong answers")
    fault_seed: int = 0
    max_retries: Optional[int] = Field(None, ge=0)
    backoff_s: Optional[float] = Field(None, ge=0)

    def resource_fields(self) -> dict:
        """``LLMResource`` fields for these options (only those set, so the resource keeps its defaults)."""
        from resources.llm import FaultConfig

        share = FaultConfig.share_per_kind(self.faults)
        fields = {"fault_seed": self.fault_seed, "fault_domain": self.fault_domain,
                  "fault_malformed": share, "fault_timeout": share, "fault_rate_limit": share}
        if self.max_retries is not None:
            fields["max_retries"] = self.max_retries
        if self.backoff_s is not None:
            fields["backoff_s"] = self.backoff_s
        return fields


def add_llm_arguments(parser: argparse.ArgumentParser, *, domain_help: str) -> None:
    parser.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                        help="offline author only: RATE of the LLM calls (e.g. 0.3) get an injected fault, a malformed "
                             "reply, a timeout or a rate limit (429) in about equal shares; the client retries them "
                             "(see --llm-retries, --llm-backoff-s) and a partition whose call still fails is reported "
                             "failed with the cause")
    parser.add_argument("--fault-domain", type=float, default=0.0, metavar="RATE", help=domain_help)
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the injected faults")
    parser.add_argument("--llm-retries", type=int, default=None, metavar="N",
                        help="retries of a call after a timeout, rate limit or server error (default 4)")
    parser.add_argument("--llm-backoff-s", type=float, default=None, metavar="S",
                        help="first wait before such a retry, doubling each time (default 1 s; e.g. 0.05 for a "
                             "batch with injected faults)")


def llm_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> LLMOptions:
    """The options ``add_llm_arguments`` read; an out-of-range value is a usage error, not a traceback."""
    from pydantic import ValidationError

    try:
        return LLMOptions(faults=args.faults, fault_domain=args.fault_domain, fault_seed=args.fault_seed,
                          max_retries=args.llm_retries, backoff_s=args.llm_backoff_s)
    except ValidationError as exc:
        parser.error("; ".join(f"--{e['loc'][0]}: {e['msg']}".replace("_", "-") for e in exc.errors()))
