"""Blocking asset checks on ``bt_xml``: a failing check stops the score and the dataset for that episode.

Four checks (schema, BehaviorTree.CPP load, PAL compliance, executability), run as one step: the
tree is loaded once, and a range run has one check step instead of four. Each check is its own
check in the UI, with its own evaluations, and can be run alone.

For an episode that stopped before ``bt_xml`` there is no tree to check: the check passes as not
applicable and says why (the stop itself is visible on the asset that stopped it).

In a run over one partition a failed check blocks ``bt_score`` the Dagster way (the step is
skipped). In a run over a range each episode gets its own evaluation event and a failure must block
only that episode: the check step succeeds, and ``bt_score`` skips the episodes whose blocking
checks failed in the run (``assets.failed_blocking_checks``).
"""

import warnings
from typing import Callable

from dagster import (AssetCheckEvaluation, AssetCheckExecutionContext, AssetCheckResult, AssetCheckSpec, PreviewWarning,
                     multi_asset_check)

from .assets import bt_xml, episodes_partitions

# Partitioned asset checks are "preview" in Dagster 1.13; they are what lets a check see one episode.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning)


def _schema(state):
    from teacher_assets.tree_checks import schema_check

    return schema_check(state.bt_xml)


def _btcpp_load(state):
    from teacher_assets.tree_checks import btcpp_load_check

    return btcpp_load_check(state.bt_xml)


def _pal(state):
    from teacher_assets.tree_checks import pal_check

    return pal_check(state.bt_xml)


def _executability(state):
    from teacher_assets.tree_checks import episode_world, executability_check

    objects, report = state.metadata.get("objects"), state.scene_report
    world = episode_world(state.instruction, objects if isinstance(objects, list) else [],
                          scene_entities=report.entities if report else [],
                          object_states=report.object_states if report else {})
    return executability_check(state.bt_xml, world)


# name: (description, the check on an episode state that has a tree)
CHECKS: dict[str, tuple[str, Callable]] = {
    "bt_schema_check": ("XML well-formed; BehaviorTree.CPP v4 structure (format 4, main tree, subtrees, TreeNodesModel).",
                        _schema),
    "btcpp_load_check": ("The tree loads in BehaviorTree.CPP with the 14 PAL actions registered.", _btcpp_load),
    "pal_compliance_check": ("Only PAL v1 actions; obj on all but RELEASE; no timeout_ms; every {var} bound.", _pal),
    "executability_check": ("Ticks to SUCCESS in the episode's symbolic world (its objects only, NAVIGATE_TO before "
                            "acting), also with each guarded step failing in turn.", _executability),
}


@multi_asset_check(
    specs=[AssetCheckSpec(name, asset=bt_xml, blocking=True, partitions_def=episodes_partitions, description=description)
           for name, (description, _) in CHECKS.items()],
    can_subset=True, description="The four blocking checks of an episode's tree, in one step (the tree is loaded once).")
def bt_xml_checks(context: AssetCheckExecutionContext, bt_xml):
    selected = [key.name for key in context.selected_asset_check_keys]
    keys = context.partition_keys if context.has_partition_key_range else []
    if len(keys) <= 1:
        for name in selected:
            yield _result(name, bt_xml)
        return
    # A range: one evaluation per check and episode, logged rather than returned (a returned failure
    # would fail the step, i.e. block every episode of the run); bt_score reads them back.
    _log_as_one_batch(context, [
        AssetCheckEvaluation(asset_key=context.check_specs[0].asset_key, check_name=name,
                             passed=result.passed, partition=key, metadata=result.metadata,
                             description=result.description, blocking=True)
        for key in keys for name in selected for result in [_result(name, bt_xml[key])]])


def _result(name: str, state) -> AssetCheckResult:
    if state.bt_xml is None:
        return AssetCheckResult(check_name=name, passed=True, description="not applicable: the episode has no tree",
                                metadata={"applicable": False,
                                          "reason": f"no tree: episode {state.status} at {state.stopped_at}: {state.reason}"})
    try:
        verdict = CHECKS[name][1](state)
    except Exception as exc:  # noqa: BLE001 — a check that cannot judge a tree fails it, for that episode only
        return AssetCheckResult(check_name=name, passed=False,
                                description=f"the check raised {type(exc).__name__}: {exc}"[:1000],
                                metadata={"applicable": True, "error": f"{type(exc).__name__}: {exc}"[:2000]})
    return AssetCheckResult(check_name=name, passed=verdict.passed, description=verdict.description[:1000],
                            metadata={"applicable": True, "result": verdict.description[:2000], **verdict.details})


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


TEACHER_CHECKS = [bt_xml_checks]
