"""Code location definitions (kept light: heavy libraries load inside asset bodies)."""

from dagster import Definitions

from resources.dagster_resources import shared_resources
from teacher_assets.defs.assets import TEACHER_ASSETS
from teacher_assets.defs.checks import TEACHER_CHECKS

defs = Definitions(assets=TEACHER_ASSETS, asset_checks=TEACHER_CHECKS, resources=shared_resources())
