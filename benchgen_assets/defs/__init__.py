"""Dagster layer of the scenario generator: partitions, assets, asset checks (thin over the
plain modules; heavy libraries are imported inside asset bodies)."""
