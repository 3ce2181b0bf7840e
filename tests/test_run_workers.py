"""The CLIs' worker processes (resources/run_workers.py), with real forked processes."""

import multiprocessing
import os
import signal

from resources.run_workers import PreforkedPool, WorkerPool

WARMED = {"by": None}


def _warm_up() -> None:
    WARMED["by"] = os.getpid()


def _who(item):
    """The item, the worker's pid, its parent's pid, and who warmed up the state it inherited."""
    return item, os.getpid(), os.getppid(), WARMED["by"]


def _die_on(item):
    if item == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    return item


FORK = multiprocessing.get_context("fork")


def test_workers_fork_from_the_preforked_process_after_its_warm_up_not_from_the_caller():
    with PreforkedPool(_warm_up, FORK) as pool:
        assert WARMED["by"] is None  # the caller never pays the warm-up
        forker = pool.process.pid
        done = {item: result for item, result, error in pool.map_unordered(2, _who, ["a", "b", "c"]) if not error}
    assert sorted(done) == ["a", "b", "c"]
    for item, pid, parent, warmed_by in done.values():
        assert parent == forker and warmed_by == forker and pid != forker
    assert not pool.process.is_alive()


def test_a_dead_worker_fails_only_its_item_and_the_rest_finish():
    with WorkerPool(2, FORK) as pool:
        results = {item: (result, error) for item, result, error in pool.map_unordered(_die_on, ["a", "die", "b", "c"])}
    assert {k: v for k, v in results.items() if k != "die"} == {"a": ("a", None), "b": ("b", None), "c": ("c", None)}
    assert results["die"][0] is None and "killed by SIGKILL" in results["die"][1]


def test_when_the_preforked_process_dies_every_unfinished_item_fails_with_the_reason():
    with PreforkedPool(_warm_up, FORK) as pool:
        os.kill(pool.process.pid, signal.SIGKILL)  # its workers, not started yet, never run
        results = list(pool.map_unordered(2, _who, ["a", "b"]))
    assert [item for item, _, _ in results] == ["a", "b"]
    assert all(result is None and "died (killed by SIGKILL)" in error and "run the same command again" in error
               for _, result, error in results)


def test_what_a_warm_up_loads_is_frozen_and_the_collector_is_off_only_meanwhile():
    import gc

    from resources.run_workers import loaded_for_life

    gc.unfreeze()
    try:
        with loaded_for_life():
            inside = gc.isenabled()
            kept = [{"module": i} for i in range(1000)]
        assert not inside and gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
        gc.disable()
        with loaded_for_life():
            pass
        assert not gc.isenabled()  # a caller's own setting is left as it was
    finally:
        gc.enable()
        gc.unfreeze()
