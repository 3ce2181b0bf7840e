"""One scenario partition through real ``dagster.materialize`` on an ephemeral instance."""

from dagster import DagsterInstance, materialize

from benchgen_assets.records import GenerationRequest

THROUGH_VALIDATION = ["generation_request", "scenario_plan", "scenario_script", "validated_scenario"]


def materialize_scenario(request: GenerationRequest, selection=THROUGH_VALIDATION):
    """Save ``request``, add its partition, run ``selection`` for it (resources from the environment)."""
    from benchgen_assets.definitions import materializable
    from benchgen_assets.pipeline import save_request
    from resources.dagster_resources import shared_resources

    save_request(request)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("scenarios", [request.scenario_id])
    return materialize(materializable, instance=instance, partition_key=request.scenario_id,
                       resources=shared_resources(), selection=selection, raise_on_error=False)
