"""Code location definitions (kept light: heavy libraries load inside asset bodies)."""

from dagster import Definitions, in_process_executor

from resources.dagster_resources import shared_resources
from teacher_assets.defs.assets import PROMPT_SPECS, TEACHER_ASSETS
from teacher_assets.defs.checks import TEACHER_CHECKS
from teacher_assets.defs.jobs import teacher_job
from teacher_assets.defs.schedules import nightly_teacher_refresh
from teacher_assets.defs.sensors import episode_folder_sensor

# A partition's chain is sequential and parallelism comes from partition runs (run queue), so
# each run executes in one process: a process per step would re-pay the heavy imports per step.
defs = Definitions(assets=[*TEACHER_ASSETS, *PROMPT_SPECS], asset_checks=TEACHER_CHECKS, jobs=[teacher_job],
                   sensors=[episode_folder_sensor], schedules=[nightly_teacher_refresh], resources=shared_resources(),
                   executor=in_process_executor)
