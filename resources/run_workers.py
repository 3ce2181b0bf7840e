"""The CLIs' worker processes: a pool in which one worker's death (kill -9, OOM) fails only the batch
it was running, the run tags that name a run's worker, and the clean-up after a worker that died.

Plain Python; Dagster is imported inside the functions that use an instance.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from contextlib import contextmanager
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from resources.atomic import HOST, process_alive, remove_stale_scratch
from resources.paths import datasets_root

WORKER_PID_TAG, WORKER_HOST_TAG = "benchgen/worker_pid", "benchgen/worker_host"


def worker_tags() -> dict[str, str]:
    """Tags for a run executed in this process: whom to ask, later, whether it is still running."""
    return {WORKER_PID_TAG: str(os.getpid()), WORKER_HOST_TAG: HOST}


_instances: dict = {}  # (process id, DAGSTER_HOME) → its DagsterInstance


def process_instance():
    """This process's instance of $DAGSTER_HOME, opened once: a forked worker opens its own (no SQLite
    handle crosses a fork) and keeps it for all its runs instead of opening one per run (~30 ms of
    schema checks each)."""
    from dagster import DagsterInstance

    from resources.paths import ensure_dagster_home

    key = (os.getpid(), str(ensure_dagster_home()))
    if key not in _instances:
        _instances[key] = DagsterInstance.get()
    return _instances[key]


def _not_range_check_notice(record: logging.LogRecord) -> bool:
    return "emitted no result" not in record.getMessage()


def quiet_range_check_notices() -> None:
    """A range run's checks log one evaluation per partition instead of returning results (both
    factories' ``defs/checks.py``), so Dagster notes in every run that they "emitted no result": not news."""
    logging.getLogger("dagster._core.execution.plan.active").addFilter(_not_range_check_notice)  # idempotent


@contextmanager
def loaded_for_life() -> Iterator[None]:
    """Around a warm-up: what it loads (the heavy imports) stays until the process ends. The collector
    is off meanwhile, as all of it survives (its passes over Dagster's and litellm's modules were a
    fifth of a 2.3 s warm-up); then it is frozen, out of later passes and of copy-on-write faults."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def preload_table_libraries() -> None:
    """Import what the CLIs' final tables need (pandas, pyarrow), in the parent while it waits for its
    workers, instead of after them (the workers never use them)."""
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def worker_died_message(pid: int, exitcode: Optional[int] = None) -> str:
    if exitcode is None:  # found dead later, by another process: how it ended is not known
        how = "killed?"
    else:
        how = f"killed by {signal.Signals(-exitcode).name}" if exitcode < 0 else f"exit code {exitcode}"
    return f"worker pid {pid} died ({how})"


def fail_runs_of_dead_workers(instance) -> list[tuple[str, str]]:
    """Mark FAILED the runs still STARTED whose worker process (by its tags, on this host) is gone or a
    zombie, free the concurrency slots they held, close their captured logs and remove the temp files
    they left in the instance's storage and the datasets (the pickles of the steps they finished are
    outputs Dagster recorded, and stay). Runs of live workers, of other hosts, or launched by Dagster itself (no worker tags: the
    daemon's run monitoring watches those) are left alone. Returns (run id, message) per run marked."""
    from dagster import DagsterRunStatus, RunsFilter

    marked = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED],
                                                      tags={WORKER_HOST_TAG: HOST})):
        run = record.dagster_run
        pid = run.tags.get(WORKER_PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        message = f"{worker_died_message(int(pid))} — its partitions are re-run"
        instance.report_run_failed(run, message)
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        _close_captured_logs(instance, run.run_id)
        marked.append((run.run_id, message))
    if marked:  # a pickle, LLM reply or dataset file the killed worker was writing (all go to a temp file first)
        for root in (Path(instance.storage_directory()), datasets_root()):
            remove_stale_scratch(root)
    return marked


def _close_captured_logs(instance, run_id: str) -> None:
    """Mark the step output a dead worker was capturing as complete, as its own exit would have: the logs
    stay (what it printed before it died), and the UI stops waiting for more of them."""
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

    manager = instance.compute_log_manager
    if not isinstance(manager, LocalComputeLogManager):
        return
    logs = Path(manager.get_captured_local_path([run_id, "compute_logs", "_"], "out")).parent
    for captured in logs.glob("*.out"):
        Path(manager.complete_artifact_path([run_id, "compute_logs", captured.stem])).touch()


def _die_with_parent() -> bool:
    """Have the kernel SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``): a CLI
    killed alone takes its workers with it, instead of leaving them writing on beside a rerun."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) == 0  # 1: PR_SET_PDEATHSIG
    except (AttributeError, OSError):  # not Linux
        return False


def _serve(conn) -> None:
    """A worker: run each task the parent sends, send back (result, None) or (None, error text)."""
    parent = os.getppid()
    watch_parent = not _die_with_parent()
    if os.getppid() != parent:  # the parent died before the kernel was told to kill us with it
        return
    while True:
        # Elsewhere: forked workers hold copies of the parent's pipe ends, so a dead parent is not an EOF.
        while watch_parent and not conn.poll(1.0):
            if os.getppid() != parent:
                return
        try:
            task = conn.recv()
        except EOFError:  # the parent is gone
            return
        if task is None:
            return
        fn, arg = task
        try:
            conn.send((fn(arg), None))
        except Exception as exc:  # noqa: BLE001 — the parent reports it with the batch; the worker goes on
            conn.send((None, f"{type(exc).__name__}: {exc}"))


def report_dead_worker_runs(instance, out=None) -> None:
    """``fail_runs_of_dead_workers``, each run it marks said on ``out`` (standard output by default)."""
    for run_id, message in fail_runs_of_dead_workers(instance):
        print(f"run {run_id} marked FAILED: {message}", file=out or sys.stdout, flush=True)


class WorkerPool:
    """``workers`` processes (of the ``multiprocessing`` context given), each running one task at a time.

    Unlike ``ProcessPoolExecutor``, whose every pending task fails and every worker is terminated when
    one worker dies, a dead worker here fails only the task it had, and a new worker takes its place
    for the tasks still waiting. Workers start when the pool is made (a fork start method copies the
    parent as it is then)."""

    def __init__(self, workers: int, context):
        self.context = context
        self.workers = [self._start() for _ in range(max(1, workers))]

    def _start(self):
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(child,), daemon=True)
        process.start()
        child.close()
        return process, parent

    def map_unordered(self, fn: Callable[[Any], Any], items: list) -> Iterator[tuple[Any, Any, Optional[str]]]:
        """``(item, fn(item), None)`` as each finishes, or ``(item, None, why)`` when it raised or its worker died."""
        waiting = list(items)
        busy: dict[int, tuple[Any, Any]] = {}  # worker index → (item, its connection)
        while waiting or busy:
            for index, (process, conn) in enumerate(self.workers):
                if waiting and index not in busy:
                    if not process.is_alive():  # a worker that died: a new one takes its place
                        conn.close()
                        self.workers[index] = process, conn = self._start()
                    item = waiting.pop(0)
                    conn.send((fn, item))
                    busy[index] = item, conn
            ready = wait([conn for _, conn in busy.values()] + [self.workers[i][0].sentinel for i in busy])
            for index in [i for i in busy if busy[i][1] in ready or self.workers[i][0].sentinel in ready]:
                item, conn = busy.pop(index)
                try:
                    result, error = conn.recv()
                except EOFError:  # it died before answering
                    process = self.workers[index][0]
                    process.join()  # reaped: no zombie left to look alive
                    result, error = None, (f"{worker_died_message(process.pid, process.exitcode)} before its run "
                                           "finished; run the same command again to redo it (finished stages "
                                           "come from the LLM cache)")
                yield item, result, error

    def close(self) -> None:
        for process, conn in self.workers:
            if process.is_alive():
                conn.send(None)
        for process, conn in self.workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_DONE = "benchgen/run_workers/done"  # the forker's answer once every item of a map is sent back


def _forker(conn, warm_up: Callable[[], None], context) -> None:
    """The pool's first process: warm up (the heavy imports) while the parent does its own start-up,
    then, when the parent sends the work, fork the workers from that warm state and relay their
    results; ``None``: close the workers and end."""
    _die_with_parent()  # a CLI killed alone takes this process, and so its workers, with it
    warm_up()
    pool = None
    try:
        while (message := conn.recv()) is not None:
            workers, fn, items = message
            pool = pool or WorkerPool(workers, context)
            for result in pool.map_unordered(fn, items):
                conn.send(result)
            conn.send(_DONE)
    except EOFError:  # the parent is gone
        pass
    finally:
        if pool is not None:
            pool.close()


class PreforkedPool:
    """A ``WorkerPool`` whose workers are forked from a process started first, before the heavy imports:
    it pays them (``warm_up``) while the caller does its own start-up (Dagster's import, the instance,
    the partitions), instead of after it. The workers inherit its warm state, as they would the
    caller's. ``map_unordered`` as ``WorkerPool``'s, with the number of workers given then."""

    def __init__(self, warm_up: Callable[[], None], context):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_forker, args=(child, warm_up, context), daemon=False)
        self.process.start()
        child.close()

    def map_unordered(self, workers: int, fn: Callable[[Any], Any], items: list) -> Iterator[tuple[Any, Any, Optional[str]]]:
        left = list(items)
        try:
            self.conn.send((workers, fn, items))
            while (message := self.conn.recv()) != _DONE:
                left.remove(message[0])
                yield message
        except (EOFError, OSError):  # the workers' parent died (killed), and its workers with it
            self.process.join()
            why = (f"{worker_died_message(self.process.pid, self.process.exitcode)} (the workers' parent) "
                   "before its runs finished; run the same command again to redo them")
            for item in left:
                yield item, None, why

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=60)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()

    def __enter__(self) -> "PreforkedPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
