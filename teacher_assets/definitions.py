"""Code location definitions (kept light: heavy libraries load inside asset bodies)."""

from dagster import Definitions

from resources.dagster_resources import shared_resources

defs = Definitions(assets=[], resources=shared_resources())
