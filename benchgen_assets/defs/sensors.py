"""Generation-request sensor: a YAML request file dropped in the requests folder becomes scenario runs."""

import time

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from .jobs import CHAIN_KEYS, SCENARIO_TAG, TABLE_KEYS, open_attempts, partitions_in_progress, scenario_job, tables_are_stale
from .partitions import scenario_partitions

LAUNCHED_BY = "benchgen/launched_by"


@sensor(
    name="generation_request_sensor", job=scenario_job, minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Watches the requests folder ($BENCHGEN_REQUESTS_DIR, default <datasets>/requests/) for YAML files such as "
        "`{tier: 2, family: lever, count: 10, seed: 7, variants: 3}` or `{prompt: \"10 levers, tier 2\"}`. A new or "
        "changed file gets `count` scenario partitions (ids minted from its content: the same request never makes "
        "new scenarios), their requests saved, and one run per scenario. Files stay in place; the cursor remembers "
        "each file's content hash. A malformed file is logged, gets a `<file>.error.txt` with the reason, and is "
        "read again only when its content changes. Files modified in the last $BENCHGEN_REQUESTS_SETTLE_SECONDS "
        "(default 5 s) wait; at most $BENCHGEN_REQUESTS_PER_TICK scenarios (default 50) per tick, the rest next "
        "tick. When scenario runs have finished and none is still running, the manifest and traces are rebuilt. "
        "Stopped by default: it spends LLM tokens; turn it on in the UI (Automation)."
    ),
)
def generation_request_sensor(context: SensorEvaluationContext):
    from benchgen_assets.pipeline import save_request
    from benchgen_assets.requests_inbox import (InboxCursor, clear_orphan_rejections, clear_rejection, per_tick_limit,
                                                plan_tick, requests_dir, settle_seconds, write_rejection)

    folder = requests_dir()
    before = InboxCursor.parse(context.cursor)
    plan = plan_tick(folder, before, now=time.time(), settle_s=settle_seconds(), budget=per_tick_limit())
    if plan.unsettled or plan.deferred:
        context.log.info(f"still being written: {plan.unsettled}; over this tick's bound: {plan.deferred}")
    clear_orphan_rejections(folder)
    for rejected in plan.rejected:
        context.log.error(f"rejected request file {folder / rejected.name}: {rejected.reason}")
        write_rejection(folder, rejected)
    run_requests, requested = [], set()
    for accepted in plan.accepted:
        clear_rejection(folder, accepted.name)
        for request in accepted.requests:
            save_request(request)  # idempotent: same id ⇒ same content
            if request.scenario_id in requested:
                continue  # the same request in two files of this tick
            requested.add(request.scenario_id)
            run_requests.append(RunRequest(
                run_key=f"{request.scenario_id}:{accepted.request_hash[:16]}", partition_key=request.scenario_id,
                asset_selection=CHAIN_KEYS,
                tags={SCENARIO_TAG: request.scenario_id, "benchgen/request_file": accepted.name,
                      "benchgen/request_hash": accepted.request_hash, LAUNCHED_BY: "generation_request_sensor"}))
        context.log.info(f"{accepted.name}: {len(accepted.requests)} scenario(s) "
                         f"{accepted.requests[0].scenario_id} …")
    known = set(context.instance.get_dynamic_partitions(scenario_partitions.name))
    new_partitions = [r.partition_key for r in run_requests if r.partition_key not in known]
    # The tables read every scenario from disk: rebuild them once the scenario runs are done.
    if not run_requests:
        stale, newest = tables_are_stale(context.instance)
        if stale and not partitions_in_progress(open_attempts(context.instance)):
            run_requests.append(RunRequest(run_key=f"tables@{newest}", asset_selection=TABLE_KEYS,
                                           tags={LAUNCHED_BY: "generation_request_sensor"}))
    rejected_note = "; ".join(f"rejected {r.name}: {r.reason}" for r in plan.rejected)
    if not run_requests and plan.cursor == before:
        return SkipReason(f"no new or changed request files in {folder}")
    return SensorResult(
        run_requests=run_requests, cursor=plan.cursor.model_dump_json(),
        skip_reason=(rejected_note or "nothing to run") if not run_requests else None,
        dynamic_partitions_requests=[scenario_partitions.build_add_request(new_partitions)] if new_partitions else [],
    )
