"""The instance's compute log manager: Dagster's local one (same files, same UI), whose echo of a step's
output to the terminal the CLIs turn off.

Dagster captures a step's stdout and stderr into files (what the UI shows) and echoes them back to the
process's terminal through a ``tail -F`` per stream, each watched by a Python process of its own: four
processes started and stopped per run, ~40 ms of CPU and ~25 ms of wall time. The CLIs print their own
progress line per partition, so they set ``$BENCHGEN_ECHO_STEP_OUTPUT=0`` (their forked workers
inherit it): their runs' output is captured into the same files, without the echo. Runs launched from
the UI, a sensor or a schedule echo as Dagster does.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from dagster import Field, StringSource
from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._serdes import ConfigurableClassData
from dagster._utils import ensure_file, touch_file

from resources.instance_settings import echo_step_output

class LocalComputeLogs(LocalComputeLogManager):
    """``compute_logs: {module: resources.dagster_compute_logs, class: LocalComputeLogs}``; ``base_dir``
    defaults to ``$DAGSTER_HOME/storage``, where Dagster's default puts them."""

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False), "polling_timeout": Field(float, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: Optional[ConfigurableClassData], config_value) -> "LocalComputeLogs":
        base_dir = config_value.get("base_dir") or os.path.join(os.environ["DAGSTER_HOME"], "storage")
        return cls(inst_data=inst_data, **{**config_value, "base_dir": base_dir})

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Iterator[CapturedLogContext]:
        if echo_step_output():
            with super().capture_logs(log_key) as context:
                yield context
            return
        # Dagster's capture, minus the echo: the streams go to the same files.
        outpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        errpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        ensure_file(outpath)
        ensure_file(errpath)
        with redirect_to_file(sys.stdout, outpath), redirect_to_file(sys.stderr, errpath):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))
