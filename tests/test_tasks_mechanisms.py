"""Tasks of the mechanism families (lever, hinged_door, drawer_slide, latched_box), end to end.

Each variant is built by the real sandbox, validated (joint sweep, oracle in MuJoCo) and then scored
by ``benchgen_assets.tasks.evaluate`` on hand-made states: one that solves the task and ones that
just miss it (short of the threshold, the wrong way, the load off the beam).
"""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pytest

from benchgen_assets.families import family_source
from benchgen_assets.physics import validate_variant
from benchgen_assets.physics.oracle import run_oracle
from benchgen_assets.records import BuildOutput
from benchgen_assets.sandbox import run_build
from benchgen_assets.tasks import evaluate, load_task

pytestmark = pytest.mark.usefixtures("private_build_server")

# (family, seed, scale): lever seed 0 loads the +x arm, seed 1 the -x arm; hinged_door seed 0 is
# hinged on the right (opens to negative angles), seed 3 on the left.
CASES = [("lever", 0, (1.0, 1.0, 1.0)), ("lever", 1, (0.5, 2.0, 2.0)), ("hinged_door", 0, (1.0, 1.0, 1.0)),
         ("hinged_door", 3, (2.0, 0.6, 0.5)), ("drawer_slide", 2, (0.5, 2.0, 0.5)), ("latched_box", 0, (1.0, 1.0, 1.0)),
         ("latched_box", 1, (0.5, 2.0, 0.5))]


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """Each case built and validated once: (build, scene folder)."""
    root = tmp_path_factory.mktemp("mechanisms")
    out = {}
    for family, seed, scale in CASES:
        name = f"{family}-{seed}"
        build = run_build(family_source(family), seed, scale, root / name / "cad")
        assert isinstance(build, BuildOutput), (name, build)
        report = validate_variant(build, root / name, scenario_id=family, variant_id=name, cache_dir=root / "cache")
        assert report.passed, (name, report.first_failure())
        assert report.oracle.solved and report.oracle.time_to_success_s <= build.task.time_limit_s
        out[(family, seed)] = (build, root / name)
    return out


def _state(scene_dir: Path, joints: dict[str, float] | None = None, free: dict[str, tuple] | None = None):
    """(qpos, qvel) of the scene as built with some joints set (rad, or m for slides) and free bodies placed."""
    model = mujoco.MjModel.from_xml_path(str(scene_dir / "scene.xml"))
    qpos = model.qpos0.copy()
    for name, value in (joints or {}).items():
        qpos[model.joint(name).qposadr[0]] = value
    for name, pose in (free or {}).items():
        adr = model.joint(name).qposadr[0]
        qpos[adr:adr + 7] = pose
    return qpos, np.zeros(model.nv)


def _goal(build: BuildOutput, kind: str):
    return next(p for p in build.task.goal if p.kind == kind)


def test_tasks_record_their_thresholds_and_do_not_start_solved(variants):
    for (family, seed), (build, scene_dir) in variants.items():
        task = load_task(scene_dir)
        assert task.instruction and task.oracle and task.goal, family
        assert not evaluate(scene_dir, _state(scene_dir)).success, (family, seed)
        goal_key = {"lever": "goal_tilt_deg", "hinged_door": "goal_open_deg", "drawer_slide": "goal_pull_mm",
                    "latched_box": "goal_open_deg"}[family]
        threshold = abs(next(p for p in build.task.goal if p.kind.startswith("joint")).value)
        recorded = build.parameters[goal_key]
        assert recorded == pytest.approx(threshold if family == "drawer_slide" else math.degrees(threshold), abs=1e-3)


@pytest.mark.parametrize("seed", [0, 3])
def test_hinged_door_opened_past_the_threshold_the_right_way(variants, seed):
    build, scene_dir = variants[("hinged_door", seed)]
    goal = _goal(build, "joint_at_least" if build.parameters["hinge_side"] == "left" else "joint_at_most")
    sign = 1.0 if goal.kind == "joint_at_least" else -1.0
    opened = abs(goal.value)
    assert evaluate(scene_dir, _state(scene_dir, {"door_hinge": sign * (opened + 0.05)})).success
    assert not evaluate(scene_dir, _state(scene_dir, {"door_hinge": sign * (opened - 0.05)})).success
    assert not evaluate(scene_dir, _state(scene_dir, {"door_hinge": -sign * (opened + 0.05)})).success


def test_drawer_pulled_out_past_the_threshold(variants):
    build, scene_dir = variants[("drawer_slide", 2)]
    pull_m = _goal(build, "joint_at_least").value / 1000
    assert evaluate(scene_dir, _state(scene_dir, {"drawer_slide": pull_m + 0.002})).success
    result = evaluate(scene_dir, _state(scene_dir, {"drawer_slide": pull_m - 0.002}))
    assert not result.success and result.predicates[0].value == pytest.approx(_goal(build, "joint_at_least").value - 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_lever_solved_with_the_load_resting_on_its_lowered_arm(variants, seed):
    build, scene_dir = variants[("lever", seed)]
    side = build.parameters["load_side"]
    tilt = math.radians(build.parameters["tilt_range_deg"])
    model = mujoco.MjModel.from_xml_path(str(scene_dir / "scene.xml"))
    data = mujoco.MjData(model)
    load_half_h = build.parameters["load_height_mm"] / 2000

    def load_on_seat(beam_angle: float) -> tuple:
        """The load's pose resting on the beam's seat with the beam at ``beam_angle`` (its bottom face on the beam)."""
        data.qpos[:] = model.qpos0
        data.qpos[model.joint("beam_hinge").qposadr[0]] = beam_angle
        mujoco.mj_forward(model, data)
        beam_rot = data.xmat[model.body("beam").id].reshape(3, 3)
        centre = data.site("beam_seat").xpos + beam_rot @ np.array([0.0, 0.0, load_half_h])
        return (*centre, *data.xquat[model.body("beam").id])

    # solved: the loaded arm down at the range limit (positive angle for the +x arm), the load on it
    solved = evaluate(scene_dir, _state(scene_dir, {"beam_hinge": side * tilt}, {"load_free": load_on_seat(side * tilt)}))
    assert solved.success, solved.predicates
    # the same load on its arm but that arm up: the sign of the goal matters
    wrong_way = evaluate(scene_dir, _state(scene_dir, {"beam_hinge": -side * tilt}, {"load_free": load_on_seat(-side * tilt)}))
    assert not wrong_way.success
    assert [r.holds for r in wrong_way.predicates] == [False, True, True]
    # the arm down but the load still on the table
    no_load = evaluate(scene_dir, _state(scene_dir, {"beam_hinge": side * tilt}))
    assert not no_load.success and [r.holds for r in no_load.predicates] == [True, False, True]


@pytest.mark.parametrize("seed", [0, 1])
def test_latched_box_opens_only_after_the_latch(variants, seed):
    build, scene_dir = variants[("latched_box", seed)]
    goal = _goal(build, "joint_at_least").value
    assert evaluate(scene_dir, _state(scene_dir, {"lid_hinge": goal + 0.05, "latch_hinge": 1.2})).success
    assert not evaluate(scene_dir, _state(scene_dir, {"lid_hinge": goal - 0.05, "latch_hinge": 1.2})).success

    # the oracle's two steps in order solve it (validation above); the lid step alone does not:
    # the catch lifts into the hook and stops there
    task = load_task(scene_dir)
    assert [s.part for s in task.oracle if s.kind == "drive_joint"] == ["latch", "lid"]
    lid_only = task.model_copy(update={"oracle": [s for s in task.oracle if getattr(s, "part", None) != "latch"]})
    report = run_oracle(scene_dir / "scene.xml", lid_only)
    assert not report.solved
    model = mujoco.MjModel.from_xml_path(str(scene_dir / "scene.xml"))
    lid_angle = report.final_qpos[model.joint("lid_hinge").qposadr[0]]
    assert 0.0 <= lid_angle < 0.05, f"the latched lid opened to {math.degrees(lid_angle):.1f}°"
