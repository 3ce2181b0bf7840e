"""Code location definitions (kept light: heavy libraries load inside asset bodies)."""

from dagster import Definitions

from benchgen_assets.defs.assets import scenario_assets, table_assets
from benchgen_assets.defs.checks import scenario_checks
from resources.dagster_resources import shared_resources

# Everything ``dagster.materialize`` needs to run any selection of the generator (CLI, tests).
materializable = [*scenario_assets, *table_assets, *scenario_checks]

defs = Definitions(assets=[*scenario_assets, *table_assets], asset_checks=scenario_checks,
                   resources=shared_resources())
