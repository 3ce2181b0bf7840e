"""Blocking asset checks on ``bt_xml``: a failing check stops the score and the dataset for that episode.

For an episode that stopped before ``bt_xml`` there is no tree to check: the check passes as not
applicable and says why (the stop itself is visible on the asset that stopped it).

In a run over one partition a failed check blocks ``bt_score`` the Dagster way (the step is
skipped). In a run over a range each episode gets its own evaluation event and a failure must block
only that episode: the check step succeeds, and ``bt_score`` skips the episodes whose blocking
checks failed in the run (``assets.failed_blocking_checks``).
"""

import warnings

from dagster import AssetCheckEvaluation, AssetCheckExecutionContext, AssetCheckResult, PreviewWarning, asset_check

from .assets import bt_xml, episodes_partitions

# Partitioned asset checks are "preview" in Dagster 1.13; they are what lets a check see one episode.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning)


def _evaluate(context: AssetCheckExecutionContext, states, run):
    """The check's result for one partition; for a range, one evaluation event per partition."""
    keys = context.partition_keys if context.has_partition_key_range else []
    if len(keys) <= 1:
        return _result(states, run)
    check_key = context.check_specs[0].key
    evaluations = []
    for key in keys:
        try:
            result = _result(states[key], run)
        except Exception as exc:  # noqa: BLE001 — a check that cannot judge a tree fails it, for that episode only
            result = AssetCheckResult(passed=False, description=f"the check raised {type(exc).__name__}: {exc}"[:1000],
                                      metadata={"applicable": True, "error": f"{type(exc).__name__}: {exc}"[:2000]})
        evaluations.append(AssetCheckEvaluation(
            asset_key=check_key.asset_key, check_name=check_key.name, passed=result.passed, partition=key,
            metadata=result.metadata, description=result.description, blocking=True))
    # Logged, not returned: a returned failure would fail the step, i.e. block every episode of the run.
    _log_as_one_batch(context, evaluations)
    return None


def _log_as_one_batch(context: AssetCheckExecutionContext, evaluations: list[AssetCheckEvaluation]) -> None:
    """``log_event`` for each evaluation, the events handed to the storage as one batch, as Dagster hands
    it a range step's materializations (``log_event`` has no batch: a write per event, 4 per episode)."""
    from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata, DagsterEventType, generate_event_batch_id

    op_context, batch_id = context.op_execution_context, generate_event_batch_id()
    for i, evaluation in enumerate(evaluations):
        outcome = "passed." if evaluation.passed else "did not pass."
        op_context._events.append(DagsterEvent.from_step(  # what log_event appends, with the batch's metadata
            event_type=DagsterEventType.ASSET_CHECK_EVALUATION, step_context=op_context._step_execution_context,
            event_specific_data=evaluation,
            message=f"Asset check '{evaluation.check_name}' on '{evaluation.asset_key.to_user_string()}' {outcome} "
                    f"Description: '{evaluation.description}'",
            batch_metadata=DagsterEventBatchMetadata(batch_id, i == len(evaluations) - 1)))


def _result(state, run) -> AssetCheckResult:
    if state.bt_xml is None:
        return AssetCheckResult(passed=True, description="not applicable: the episode has no tree", metadata={
            "applicable": False, "reason": f"no tree: episode {state.status} at {state.stopped_at}: {state.reason}"})
    verdict = run(state)
    return AssetCheckResult(passed=verdict.passed, description=verdict.description[:1000],
                            metadata={"applicable": True, "result": verdict.description[:2000], **verdict.details})


@asset_check(asset=bt_xml, blocking=True, partitions_def=episodes_partitions, description="XML well-formed; BehaviorTree.CPP v4 structure (format 4, main tree, subtrees, TreeNodesModel).")
def bt_schema_check(context: AssetCheckExecutionContext, bt_xml):
    from teacher_assets.tree_checks import schema_check

    return _evaluate(context, bt_xml, lambda s: schema_check(s.bt_xml))


@asset_check(asset=bt_xml, blocking=True, partitions_def=episodes_partitions, description="The tree loads in BehaviorTree.CPP with the 14 PAL actions registered.")
def btcpp_load_check(context: AssetCheckExecutionContext, bt_xml):
    from teacher_assets.tree_checks import btcpp_load_check as check

    return _evaluate(context, bt_xml, lambda s: check(s.bt_xml))


@asset_check(asset=bt_xml, blocking=True, partitions_def=episodes_partitions, description="Only PAL v1 actions; obj on all but RELEASE; no timeout_ms; every {var} bound.")
def pal_compliance_check(context: AssetCheckExecutionContext, bt_xml):
    from teacher_assets.tree_checks import pal_check

    return _evaluate(context, bt_xml, lambda s: pal_check(s.bt_xml))


@asset_check(asset=bt_xml, blocking=True, partitions_def=episodes_partitions, description="Ticks to SUCCESS in the episode's symbolic world (its objects only, NAVIGATE_TO before acting), also with each guarded step failing in turn.")
def executability_check(context: AssetCheckExecutionContext, bt_xml):
    from teacher_assets.tree_checks import episode_world, executability_check as check

    def run(s):
        objects, report = s.metadata.get("objects"), s.scene_report
        world = episode_world(s.instruction, objects if isinstance(objects, list) else [],
                              scene_entities=report.entities if report else [],
                              object_states=report.object_states if report else {})
        return check(s.bt_xml, world)

    return _evaluate(context, bt_xml, run)


TEACHER_CHECKS = [bt_schema_check, btcpp_load_check, pal_compliance_check, executability_check]
