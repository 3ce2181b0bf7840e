"""The generation loop: Coder ⇄ Internal Reviewer ⇄ validator, up to ``max_attempts`` rounds.

A reviewer's "revise" or a failed validation goes back to the coder with the exact issues; every
round is kept. The validator is the real one: the sandbox build of a probe variant, then the
geometry and physics validation (``benchgen_assets.variant_runner.run_variant``).
"""

from __future__ import annotations

import time
from pathlib import Path

from benchgen_assets.records import CoderAttempt, ScenarioPlan, ScenarioScript, VariantSpec
from benchgen_assets.variant_runner import code_sha256, run_variant
from resources.llm import LLMClient

from .agents import add_feedback, coder_messages, review_script, validator_feedback, write_script
from .library import examples_for

DEFAULT_MAX_ATTEMPTS = 4


def generate_script(client: LLMClient, plan: ScenarioPlan, probe: VariantSpec, *, scenario_id: str,
                    work_dir: Path, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> ScenarioScript:
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    messages = coder_messages(plan, examples_for(plan, exclude_scenario=scenario_id))
    attempts: list[CoderAttempt] = []
    for n in range(1, max_attempts + 1):
        t0 = time.monotonic()
        reply, coder_step = write_script(client, messages)
        verdict, reviewer_step = review_script(client, plan, reply.code)
        attempt = CoderAttempt(attempt=n, source="coder", code=reply.code, notes=reply.notes, coder=coder_step,
                               review=verdict, reviewer=reviewer_step)
        # A script the reviewer sent back is not worth a sandbox run, except on the last round,
        # which is validated anyway so the result says what is actually wrong with it.
        if verdict.decision == "approve" or n == max_attempts:
            attempt.validation = run_variant(reply.code, scenario_id, probe, work_dir / f"attempt_{n:02d}").report
        if attempt.accepted:
            attempt.seconds = round(time.monotonic() - t0, 3)
            attempts.append(attempt)
            break
        if verdict.decision == "revise":
            source, text = "internal reviewer", "\n".join(f"- {issue}" for issue in verdict.issues)
        else:
            source, text = "validator", validator_feedback(attempt.validation)
        attempt.feedback = text
        attempt.seconds = round(time.monotonic() - t0, 3)
        attempts.append(attempt)
        messages = add_feedback(messages, coder_step.reply, attempt=n + 1, family=plan.family, source=source,
                                feedback=text)
    final = attempts[-1]
    return ScenarioScript(scenario_id=scenario_id, code=final.code, accepted=final.accepted, source="coder",
                          attempts=attempts, code_sha256=code_sha256(final.code))


def override_script(code: str, probe: VariantSpec, *, scenario_id: str, work_dir: Path) -> ScenarioScript:
    """A human's code override: taken as is, validated once on the probe so its report is kept."""
    t0 = time.monotonic()
    report = run_variant(code, scenario_id, probe, work_dir / "override").report
    attempt = CoderAttempt(attempt=1, source="override", code=code, notes="code override from run config",
                           validation=report, feedback=None if report.passed else validator_feedback(report),
                           seconds=round(time.monotonic() - t0, 3))
    return ScenarioScript(scenario_id=scenario_id, code=code, accepted=report.passed, source="override",
                          attempts=[attempt], code_sha256=code_sha256(code))
