"""The task contract end to end: sandbox records → MJCF sites / equalities → oracle → solvability → evaluate.

Real build server and build123d for the scripts, real MuJoCo for the oracle and the scoring.
"""

from __future__ import annotations

import hashlib
import io
import json
import textwrap
from pathlib import Path

import mujoco
import numpy as np
import pytest
import trimesh

from benchgen_assets.authoring.agents import validator_feedback
from benchgen_assets.families import family_source
from benchgen_assets.physics import compose_mjcf, mjcf_schema_errors, validate_variant
from benchgen_assets.records import (BuildOutput, BuiltPart, GeometryReport, JointCouplingSpec, PinSpec, SandboxError,
                                     SiteSpec, TaskSpec)
from benchgen_assets.sandbox import run_build
from benchgen_assets.tasks import TaskError, evaluate, load_task

pytestmark = pytest.mark.usefixtures("private_build_server")


@pytest.fixture(scope="module")
def coacd_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("coacd_cache")


def _built(tmp_path: Path, source: str, seed: int = 0, scale=(1.0, 1.0, 1.0), name: str = "v") -> BuildOutput:
    result = run_build(source, seed, scale, tmp_path / name / "cad")
    assert isinstance(result, BuildOutput), result
    return result


def _validated(tmp_path: Path, source: str, coacd_cache, seed: int = 0, scale=(1.0, 1.0, 1.0), name: str = "v"):
    build = _built(tmp_path, source, seed, scale, name)
    report = validate_variant(build, tmp_path / name, scenario_id="t", variant_id=name, cache_dir=coacd_cache)
    return build, report


# -- hand-made scenes for the MJCF and oracle mechanics (meshes as the sandbox writes them) -------

def _part(out_dir: Path, name: str, mesh: trimesh.Trimesh, joint="fixed", **extra) -> BuiltPart:
    stl = mesh.export(file_type="stl")
    (out_dir / f"{name}.stl").write_bytes(stl)
    lo, hi = mesh.bounds
    return BuiltPart(name=name, role="object", joint=joint, density_kg_m3=700.0, mass_kg=700.0 * mesh.volume * 1e-9,
                     volume_mm3=mesh.volume, bbox_min_mm=tuple(lo), bbox_max_mm=tuple(hi),
                     center_of_mass_mm=tuple(mesh.center_mass), convex_hull_volume_mm3=mesh.convex_hull.volume,
                     stl_file=f"{name}.stl", stl_sha256=hashlib.sha256(stl).hexdigest(),
                     geometry=GeometryReport(brep_valid=True, manifold=True, watertight=True, winding_consistent=True,
                                             self_intersecting=False), **extra)


def _box(size, center) -> trimesh.Trimesh:
    return trimesh.creation.box(size, trimesh.transformations.translation_matrix(center))


def _mechanism(src: Path, task: dict | None = None, **extra) -> BuildOutput:
    """A base, a wheel on a vertical hinge, a second wheel and a slider on the base, 60 mm apart."""
    src.mkdir(parents=True, exist_ok=True)
    parts = [
        _part(src, "base", _box((200, 60, 10), (0, 0, 5))),
        _part(src, "wheel", _box((40, 8, 8), (-60, 0, 20)), joint="hinge", joint_pos_mm=(-60, 0, 20), parent="base"),
        _part(src, "gear", _box((20, 8, 8), (0, 0, 20)), joint="hinge", joint_pos_mm=(0, 0, 20), parent="base"),
        _part(src, "slider", _box((20, 20, 8), (60, 0, 20)), joint="slide", joint_axis=(1, 0, 0),
              joint_range=(-10.0, 40.0), parent="base"),
    ]
    return BuildOutput(scene_name="mechanism", seed=0, scale=(1, 1, 1), out_dir=str(src), parts=parts,
                       task=TaskSpec.model_validate(task) if task else None, **extra)


def test_mjcf_gets_sites_couplings_and_pins_in_the_contract_units(tmp_path):
    build = _mechanism(tmp_path / "src", sites=[SiteSpec(name="tip", part="wheel", pos_mm=(-40, 0, 20))],
                       couplings=[JointCouplingSpec(leader="wheel", follower="gear", ratio=-2.0),
                                  JointCouplingSpec(leader="wheel", follower="slider", ratio=10.0)],
                       pins=[PinSpec(part_a="gear", part_b="slider", pos_mm=(10, 0, 20))])
    xml = compose_mjcf(build, tmp_path / "a", decompose=False)
    text = xml.read_text()
    assert mjcf_schema_errors(text) == []
    assert compose_mjcf(build, tmp_path / "b", decompose=False).read_text() == text  # deterministic
    # site relative to the wheel's body (its centre of mass, -60 0 20 mm), in metres
    assert '<site name="tip" pos="0.02 0 0"' in text
    # a slide follower in mm per rad of a hinge leader: 10 mm/rad = 0.01 m/rad
    assert 'joint1="gear_hinge" joint2="wheel_hinge" polycoef="0 -2 0 0 0"' in text
    assert 'joint1="slider_slide" joint2="wheel_hinge" polycoef="0 0.01 0 0 0"' in text
    assert '<connect name="pin00_gear_slider" body1="gear" body2="slider" anchor="0.01 0 0"/>' in text

    model = mujoco.MjModel.from_xml_path(str(xml))
    assert model.neq == 3 and model.nsite == 1
    data = mujoco.MjData(model)
    data.qpos[model.joint("wheel_hinge").qposadr[0]] = 0.3
    mujoco.mj_forward(model, data)
    # the equality residuals vanish exactly when gear = -2 × wheel and slider = 0.01 m/rad × wheel
    data.qpos[model.joint("gear_hinge").qposadr[0]] = -0.6
    data.qpos[model.joint("slider_slide").qposadr[0]] = 0.003
    mujoco.mj_forward(model, data)
    joint_rows = [i for i in range(data.nefc) if data.efc_type[i] == mujoco.mjtConstraint.mjCNSTR_EQUALITY][:2]
    assert np.allclose(data.efc_pos[joint_rows], 0.0, atol=1e-9)


def test_oracle_drives_hinge_and_slide_joints_and_evaluate_scores_them(tmp_path):
    task = {"instruction": "Turn the wheel and push the slider out.",
            "goal": [{"kind": "joint_at_least", "part": "wheel", "value": 0.8},
                     {"kind": "joint_at_least", "part": "slider", "value": 25.0}],
            "oracle": [{"kind": "drive_joint", "part": "wheel", "target": 1.0, "duration_s": 0.6},
                       {"kind": "drive_joint", "part": "slider", "target": 30.0, "duration_s": 0.6}],
            "time_limit_s": 3.0}
    build = _mechanism(tmp_path / "src", task)
    report = validate_variant(build, tmp_path / "out", scenario_id="m", variant_id="v00", decompose=False)
    assert report.passed, report.first_failure()
    assert [s.name for s in report.stages][-1] == "solvability"
    oracle = report.oracle
    assert oracle.solved and 0.6 < oracle.time_to_success_s < 3.0
    assert [s.kind for s in oracle.steps] == ["drive_joint", "drive_joint"]
    assert oracle.steps[0].completed and oracle.steps[1].start_s == pytest.approx(0.6, abs=0.005)
    wheel, slider = oracle.final.predicates
    assert wheel.unit == "rad" and wheel.value >= 0.8 and slider.unit == "mm" and slider.value >= 25.0

    scene = tmp_path / "out"
    assert load_task(scene) == build.task
    model = mujoco.MjModel.from_xml_path(str(scene / "scene.xml"))
    data = mujoco.MjData(model)
    unsolved = evaluate(scene, data)
    assert not unsolved.success and [p.holds for p in unsolved.predicates] == [False, False]
    data.qpos[model.joint("wheel_hinge").qposadr[0]] = 0.9
    data.qpos[model.joint("slider_slide").qposadr[0]] = 0.020  # 20 mm: still short of 25
    half = evaluate(scene, (data.qpos.copy(), data.qvel.copy()))
    assert [p.holds for p in half.predicates] == [True, False]
    assert half.predicates[1].value == pytest.approx(20.0) and half.predicates[1].threshold == 25.0
    data.qpos[model.joint("slider_slide").qposadr[0]] = 0.026
    assert evaluate(scene, data).success
    with pytest.raises(TaskError, match="nq="):
        evaluate(scene, (np.zeros(1), np.zeros(1)))


def test_a_task_that_starts_solved_is_rejected(tmp_path):
    task = {"instruction": "Keep the wheel shut.", "goal": [{"kind": "joint_at_most", "part": "wheel", "value": 0.5}],
            "oracle": [{"kind": "settle", "duration_s": 0.5}], "time_limit_s": 2.0}
    report = validate_variant(_mechanism(tmp_path / "src", task), tmp_path / "out", scenario_id="m", variant_id="v00",
                              decompose=False)
    failed = report.first_failure()
    assert not report.passed and failed.name == "solvability"
    assert "starts solved" in failed.message and "joint of wheel <= 0.5 rad" in failed.message
    assert report.oracle is None


def test_a_scene_without_task_fails_solvability_with_what_to_add(tmp_path):
    report = validate_variant(_mechanism(tmp_path / "src"), tmp_path / "out", scenario_id="m", variant_id="v00",
                              decompose=False)
    failed = report.first_failure()
    assert failed.name == "solvability" and failed.message.startswith("build() returned no Scene.task")
    assert [s.passed for s in report.stages[:-1]] == [True] * 5
    assert not (tmp_path / "out" / "task.json").exists()


# -- the families: peg_in_hole and block_stacking through the real sandbox ----------------------

def test_peg_in_hole_task_is_solvable_and_evaluate_scores_hand_made_states(tmp_path, coacd_cache):
    build, report = _validated(tmp_path, family_source("peg_in_hole"), coacd_cache, seed=0)
    assert report.passed, report.first_failure()
    assert not build.parameters["through_hole"]  # seed 0: a blind hole, judged against its CAD depth
    assert report.oracle.solved and report.oracle.time_to_success_s <= build.task.time_limit_s
    scene = tmp_path / "v"
    task = json.loads((scene / "task.json").read_text())
    assert task["schema_version"] == 1 and task["goal"][0]["kind"] == "site_in_box"

    model = mujoco.MjModel.from_xml_path(str(scene / "scene.xml"))
    data = mujoco.MjData(model)
    start = evaluate(scene, data)
    assert not start.success and start.predicates[0].value > 10  # beside the block: far outside the box
    # hand-made: the peg seated on the floor of the hole (tip at rim - depth), then 3 mm higher (not home)
    peg = model.joint("peg_free").qposadr[0]
    tip = np.asarray(model.site("peg_tip").pos)  # in the peg's body frame
    rim = model.body("block").pos + model.site("hole_rim").pos  # the block is fixed to the world
    depth_mm = build.parameters["hole_depth_mm"]
    for lift_mm, solved in ((0.0, True), (3.0, False)):
        seated = rim - tip + (0.0, 0.0, (lift_mm - depth_mm) / 1000)
        data.qpos[peg:peg + 7] = [*seated, 1, 0, 0, 0]
        result = evaluate(scene, data)
        assert result.success is solved, (lift_mm, result)
        assert result.predicates[0].offset_mm == pytest.approx((0.0, 0.0, lift_mm - depth_mm), abs=1e-3)


def test_block_stacking_task_is_solvable_and_evaluate_scores_a_hand_made_stack(tmp_path, coacd_cache):
    build, report = _validated(tmp_path, family_source("block_stacking"), coacd_cache, seed=3)
    assert report.passed, report.first_failure()
    count = build.parameters["block_count"]
    assert [s.kind for s in report.oracle.steps] == ["carry_part", "settle"] * count
    scene = tmp_path / "v"
    model = mujoco.MjModel.from_xml_path(str(scene / "scene.xml"))
    data = mujoco.MjData(model)
    assert not evaluate(scene, data).success
    # hand-made: each block's bottom centre on the top centre of the one below, starting at the pad
    mujoco.mj_forward(model, data)
    below = data.site("pad_top").xpos.copy()
    for i in range(1, count + 1):
        adr = model.joint(f"block_{i}_free").qposadr[0]
        bottom = np.asarray(model.site(f"block_{i}_bottom").pos)
        data.qpos[adr:adr + 7] = [*(below - bottom), 1, 0, 0, 0]
        mujoco.mj_forward(model, data)
        below = data.site(f"block_{i}_top").xpos.copy()
    assert evaluate(scene, data).success
    data.qvel[model.joint("block_1_free").dofadr[0]] = 0.5  # the stack's base still sliding: not at rest
    moving = evaluate(scene, data)
    assert not moving.success and [p.predicate for p in moving.failing()] == ["block_1 at rest (centre of mass speed <= 0.02 m/s)"]


def test_a_peg_too_fat_for_its_hole_fails_solvability_and_the_coder_is_told_why(tmp_path, coacd_cache):
    fat = family_source("peg_in_hole").replace("peg_r = hole_r - clearance", "peg_r = hole_r + 1.0")
    assert fat != family_source("peg_in_hole")
    build, report = _validated(tmp_path, fat, coacd_cache, seed=3)
    failed = report.first_failure()
    assert failed is not None and failed.name == "solvability", report.stages
    assert "oracle did not solve the task within time_limit_s=8 s" in failed.message
    assert "site peg_tip relative to site hole_rim" in failed.message and "offset" in failed.message
    assert report.oracle is not None and not report.oracle.solved and report.oracle.time_to_success_s is None
    assert report.oracle.final.predicates[0].value > 5  # stuck on the rim, millimetres above the floor
    assert failed.message in validator_feedback(report)


BAD_TASK = '''
from build123d import Box, Pos
from benchgen_assets.scene import *

def build(seed, scale):
    parts = [Part("base", Box(100, 100, 10)), Part("lid", Pos(0, 0, 20) * Box(40, 40, 4), joint="hinge"),
             Part("cube", Pos(60, 0, 30) * Box(10, 10, 10), joint="free")]
    sites = [Site("mark", "cube", (60, 0, 25)), Site("spot", "base", (0, 0, 5))]
    goal = [SiteInBox("mark", "spot", (-1, -1, -1), (1, 1, 1))]
    oracle = [CarryPart("cube", [(0, 0, 10)])]
    couplings, pins, time_limit = [], [], 5.0
    {edit}
    return Scene("bad", parts, task=Task("Do it.", goal, oracle, time_limit), sites=sites, couplings=couplings, pins=pins)
'''


@pytest.mark.parametrize("edit, expected", [
    ("sites[0] = Site('mark', 'ghost', (0, 0, 0))", "site 'mark': part 'ghost' is not a part of the scene"),
    ("goal[0] = SiteInBox('mark', 'nowhere', (-1, -1, -1), (1, 1, 1))", "site 'nowhere' is not in Scene.sites"),
    ("goal.append(JointAtLeast('base', 0.5))", "part 'base' has joint 'fixed'; it needs a hinge or slide joint"),
    ("oracle[0] = CarryPart('lid', [(0, 0, 5)])", "part 'lid' has joint 'hinge'; it needs a free joint"),
    ("oracle[0] = CarryPart('cube', [])", "waypoints_mm must be a non-empty list"),
    ("oracle.append(Settle(0.0))", "Task.oracle[1] (Settle): duration_s must be a positive number"),
    ("time_limit = -1", "Task.time_limit_s must be a positive number"),
    ("goal.clear()", "Task.goal must be a non-empty list"),
    ("couplings.append(JointCoupling('base', 'lid', 2.0))", "part 'base' has joint 'fixed'"),
    ("pins.append(PinConnection('lid', 'lid', (0, 0, 20)))", "a pin joins two different parts"),
    ("goal[0] = SiteInBox('mark', 'spot', (1, -1, -1), (-1, 1, 1))", "must not exceed max_mm"),
])
def test_bad_task_references_are_refused_with_a_clear_message(tmp_path, edit, expected):
    result = run_build(textwrap.dedent(BAD_TASK).replace("{edit}", edit), 0, (1.0, 1.0, 1.0), tmp_path / "cad")
    assert isinstance(result, SandboxError) and result.kind == "bad_return", result
    assert expected in result.message, result.message


def test_a_good_task_crosses_the_sandbox_as_versioned_records(tmp_path):
    build = _built(tmp_path, textwrap.dedent(BAD_TASK).replace("{edit}", "pass"))
    assert build.task.schema_version == 1 and build.task.instruction == "Do it."
    assert build.task.goal[0].kind == "site_in_box" and build.task.oracle[0].waypoints_mm == [(0.0, 0.0, 10.0)]
    assert [s.name for s in build.sites] == ["mark", "spot"] and build.sites[0].pos_mm == (60.0, 0.0, 25.0)
    assert TaskSpec.model_validate_json(build.task.model_dump_json()) == build.task


# -- through Dagster: the blocking solvability check, task.json and the manifest ---------------

@pytest.mark.slow
def test_unsolvable_variant_fails_the_blocking_solvability_check_and_is_staged_with_its_reason(datasets_dir):
    import pandas as pd
    from dagster import DagsterInstance, materialize

    from benchgen_assets.definitions import materializable
    from benchgen_assets.pipeline import save_request
    from benchgen_assets.records import GenerationRequest
    from resources.dagster_resources import shared_resources

    instance = DagsterInstance.ephemeral()
    save_request(GenerationRequest(scenario_id="fat", family="peg_in_hole", seed=1, variants=1))
    instance.add_dynamic_partitions("scenarios", ["fat"])
    fat = family_source("peg_in_hole").replace("peg_r = hole_r - clearance", "peg_r = hole_r + 1.0")
    result = materialize(materializable, instance=instance, partition_key="fat", resources=shared_resources(),
                         selection=["generation_request", "scenario_plan", "scenario_script", "validated_scenario",
                                    "scenario_preview"],
                         run_config={"ops": {"scenario_script": {"config": {"code_override": fat}}}}, raise_on_error=False)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert [name for name, e in checks.items() if not e.passed] == ["solvability_check"]
    assert "oracle did not solve the task" in checks["solvability_check"].description
    assert not result.asset_materializations_for_node("scenario_preview")  # blocked
    staged = datasets_dir / "benchmarks" / "staging" / "fat" / "v00"
    report = json.loads((staged / "validation.json").read_text())
    assert report["oracle"]["solved"] is False and (staged / "task.json").exists()

    assert materialize(materializable, instance=instance, resources=shared_resources(),
                       selection=["benchmark_manifest"]).success
    row = pd.read_parquet(datasets_dir / "benchmarks" / "manifest.parquet").iloc[0]
    assert row["status"] == "rejected" and row["failed_stage"] == "solvability"
    assert row["instruction"].startswith("Insert the") and row["oracle_time_s"] is None and row["time_limit_s"] == 8.0
    assert row["success_metric"].endswith(" mm")  # where the oracle got stuck


def test_preview_shows_the_start_and_the_oracle_success_side_by_side(tmp_path, coacd_cache):
    from PIL import Image

    from benchgen_assets.physics import render_preview

    _, report = _validated(tmp_path, family_source("peg_in_hole"), coacd_cache, seed=1)
    xml = tmp_path / "v" / "scene.xml"
    pair = np.asarray(Image.open(io.BytesIO(render_preview(xml, width=160, height=120,
                                                            success_qpos=report.oracle.final_qpos))).convert("RGB"))
    single = np.asarray(Image.open(io.BytesIO(render_preview(xml, width=160, height=120))).convert("RGB"))
    assert pair.shape == (120, 320, 3)
    assert np.array_equal(pair[:, :160], single)  # left: the start
    assert np.abs(pair[:, 160:].astype(int) - single.astype(int)).mean() > 1.0  # right: the peg has moved
    with pytest.raises(ValueError, match="nq"):
        render_preview(xml, success_qpos=[0.0])
