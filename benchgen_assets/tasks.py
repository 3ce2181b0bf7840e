"""Score a rollout against a benchmark variant's task (no Dagster; mujoco is imported lazily).

A variant folder (``datasets/benchmarks/<scenario>/<variant>/``) holds ``scene.xml`` and
``task.json`` (a versioned :class:`TaskSpec`)::

    from benchgen_assets.tasks import evaluate, load_task
    task = load_task(scene_dir)            # instruction, goal predicates, oracle, time limit
    result = evaluate(scene_dir, data)     # data: mujoco.MjData of the scene, or (qpos, qvel)
    result.success, result.predicates      # each: readable predicate, value, threshold, holds

``score_state`` is the one goal evaluation: the oracle runner and the validator use it too.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Union

from benchgen_assets.records import (JointAtLeastSpec, JointAtMostSpec, PartAtRestSpec, PredicateResult,
                                     SiteInBoxSpec, TaskResult, TaskSpec)

TASK_FILE = "task.json"
SCENE_FILE = "scene.xml"
MM_PER_M = 1000.0


class TaskError(ValueError):
    """The variant has no usable task, or the state does not fit its model."""


def load_task(scene_dir: Union[str, Path]) -> TaskSpec:
    path = Path(scene_dir) / TASK_FILE
    if not path.is_file():
        raise TaskError(f"{path} does not exist: this variant has no task (was it built before tasks existed?)")
    return TaskSpec.model_validate_json(path.read_text(encoding="utf-8"))


# evaluate() is called every step of a rollout: the task and model are read once per file version
@lru_cache(maxsize=16)
def _cached_task(scene_dir: str, mtime_ns: int) -> TaskSpec:
    return load_task(scene_dir)


@lru_cache(maxsize=16)
def _model(xml_path: str, mtime_ns: int):
    import mujoco

    return mujoco.MjModel.from_xml_path(xml_path)


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1  # load_task / MuJoCo then say what is missing


def evaluate(scene_dir: Union[str, Path], state: Any) -> TaskResult:
    """Score ``state`` (an ``mujoco.MjData`` of the scene's model, or a ``(qpos, qvel)`` pair) on the task.

    An MjData is scored with its own model (so a scene extended with a robot works as long as the
    part, joint and site names are kept); mj_forward refreshes its derived quantities, not its state."""
    import mujoco
    import numpy as np

    task = _cached_task(str(scene_dir), _mtime_ns(Path(scene_dir) / TASK_FILE))
    if isinstance(state, mujoco.MjData):
        return score_state(state.model, state, task)
    try:
        qpos, qvel = state
    except (TypeError, ValueError) as exc:
        raise TaskError("state must be a mujoco.MjData or a (qpos, qvel) pair of arrays") from exc
    xml = Path(scene_dir) / SCENE_FILE
    model = _model(str(xml), _mtime_ns(xml))
    qpos, qvel = np.asarray(qpos, dtype=float).ravel(), np.asarray(qvel, dtype=float).ravel()
    if qpos.shape != (model.nq,) or qvel.shape != (model.nv,):
        raise TaskError(f"the scene has nq={model.nq}, nv={model.nv}; got qpos of {qpos.size} and qvel of {qvel.size} values")
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = qpos, qvel
    return score_state(model, data, task)


def _id(model, kind, name: str, what: str) -> int:
    import mujoco

    index = mujoco.mj_name2id(model, kind, name)
    if index < 0:
        raise TaskError(f"the task refers to {what} {name!r}, which the model does not have")
    return index


def _joint(model, part: str) -> tuple[int, str]:
    """The qpos address of a hinge/slide part's joint (named ``<part>_hinge`` / ``<part>_slide``) and its unit."""
    import mujoco

    for suffix, unit in (("hinge", "rad"), ("slide", "mm")):
        index = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"{part}_{suffix}")
        if index >= 0:
            return int(model.jnt_qposadr[index]), unit
    raise TaskError(f"the task refers to the joint of {part!r}, but the model has no {part}_hinge or {part}_slide joint")


def score_state(model, data, task: TaskSpec) -> TaskResult:
    """Every goal predicate of ``task`` on ``data`` (after mj_forward): value, threshold and whether it holds."""
    import mujoco
    import numpy as np

    mujoco.mj_forward(model, data)
    results = []
    for pred in task.goal:
        if isinstance(pred, (JointAtLeastSpec, JointAtMostSpec)):
            adr, unit = _joint(model, pred.part)
            value = float(data.qpos[adr]) * (MM_PER_M if unit == "mm" else 1.0)
            holds = value >= pred.value if isinstance(pred, JointAtLeastSpec) else value <= pred.value
            results.append(PredicateResult(predicate=pred.describe(unit), kind=pred.kind, value=value,
                                           threshold=pred.value, unit=unit, holds=holds))
        elif isinstance(pred, SiteInBoxSpec):
            site = _id(model, mujoco.mjtObj.mjOBJ_SITE, pred.site, "site")
            reference = _id(model, mujoco.mjtObj.mjOBJ_SITE, pred.relative_to, "site")
            offset = (data.site_xpos[site] - data.site_xpos[reference]) * MM_PER_M
            # signed distance outside the box along the worst axis: <= 0 inside (its margin), > 0 outside
            outside = float(np.max(np.maximum(np.asarray(pred.min_mm) - offset, offset - np.asarray(pred.max_mm))))
            results.append(PredicateResult(predicate=pred.describe(), kind=pred.kind, value=outside, threshold=0.0,
                                           unit="mm", holds=outside <= 0.0,
                                           offset_mm=tuple(round(float(x), 4) for x in offset)))
        elif isinstance(pred, PartAtRestSpec):
            body = _id(model, mujoco.mjtObj.mjOBJ_BODY, pred.part, "part")
            velocity = np.zeros(6)
            # body frames sit at each part's centre of mass; [3:] is the linear velocity in world axes
            mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, body, velocity, 0)
            speed = float(np.linalg.norm(velocity[3:]))
            results.append(PredicateResult(predicate=pred.describe(), kind=pred.kind, value=speed,
                                           threshold=pred.max_speed_m_s, unit="m/s", holds=speed <= pred.max_speed_m_s))
    return TaskResult(success=all(r.holds for r in results), time_s=float(data.time), predicates=results)


def describe_failures(result: TaskResult) -> str:
    """The predicates that do not hold, each with its value against its threshold."""
    return "; ".join(f"{r.predicate}: value {r.value:.4g} {r.unit} vs threshold {r.threshold:.4g}"
                     + (f" (offset {r.offset_mm} mm)" if r.offset_mm is not None else "")
                     for r in result.failing()) or "all predicates hold"
