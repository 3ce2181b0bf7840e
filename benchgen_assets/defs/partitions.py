from dagster import DynamicPartitionsDefinition

SCENARIOS = "scenarios"
GROUP = "scenario_generator"

# One partition per scenario id; added by the CLI (manager.py) or from the UI.
scenario_partitions = DynamicPartitionsDefinition(name=SCENARIOS)
