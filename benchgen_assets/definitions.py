"""Code location definitions (kept light: heavy libraries load inside asset bodies)."""

from dagster import Definitions, in_process_executor

from benchgen_assets.defs.assets import prompt_specs, scenario_assets, table_assets
from benchgen_assets.defs.checks import scenario_checks
from benchgen_assets.defs.jobs import scenario_job
from benchgen_assets.defs.schedules import nightly_scenario_refresh
from benchgen_assets.defs.sensors import generation_request_sensor
from resources.dagster_resources import shared_resources

# Everything ``dagster.materialize`` needs to run any selection of the generator (CLI, tests).
materializable = [*scenario_assets, *table_assets, *scenario_checks]

# A partition's chain is sequential and parallelism comes from partition runs (run queue), so
# each run executes in one process: a process per step would re-pay the heavy imports per step.
defs = Definitions(assets=[*scenario_assets, *table_assets, *prompt_specs], asset_checks=scenario_checks, jobs=[scenario_job],
                   sensors=[generation_request_sensor], schedules=[nightly_scenario_refresh],
                   resources=shared_resources(),
                   executor=in_process_executor)
