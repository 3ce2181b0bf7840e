"""Evaluating a sensor tick by tick the way the daemon does, for sensor tests."""

from dagster import build_sensor_context


class Ticker:
    """Evaluates ``sensor`` with its cursor carried over and its partition requests applied."""

    def __init__(self, sensor, instance, definitions):
        self.sensor, self.instance, self.definitions, self.cursor = sensor, instance, definitions, None

    def __call__(self):
        data = self.sensor.evaluate_tick(
            build_sensor_context(instance=self.instance, instance_ref=self.instance.get_ref(), cursor=self.cursor,
                                 definitions=self.definitions))
        for request in data.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = data.cursor or self.cursor
        return data
