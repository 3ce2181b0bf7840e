"""The mechanism families (gear train, four-bar, cam and follower) and block-in-bin: real builds in the
sandbox, strict validation with the solvability stage (real MuJoCo oracle), and ``tasks.evaluate``
on hand-made solved and unsolved states."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from benchgen_assets.families import FAMILIES, family_source
from benchgen_assets.physics import validate_variant
from benchgen_assets.records import BuildOutput
from benchgen_assets.sandbox import run_build
from benchgen_assets.tasks import evaluate

NEW_FAMILIES = ("gear_train", "four_bar", "cam_follower", "block_in_bin")

pytestmark = pytest.mark.usefixtures("private_build_server")


def _cases(name: str) -> list[tuple[int, tuple]]:
    """The nominal scale and the two extreme corners of the family's declared scale limits."""
    info = FAMILIES[name]
    return [(0, (1.0, 1.0, 1.0)), (1, tuple(info.scale_min)), (2, tuple(info.scale_max))]


@pytest.fixture(scope="module")
def validated(tmp_path_factory) -> dict:
    """(family, seed, scale) -> (BuildOutput, ValidationReport, variant dir)."""
    root = tmp_path_factory.mktemp("tier3")
    out = {}
    for name in NEW_FAMILIES:
        for seed, scale in _cases(name):
            work = root / f"{name}-{seed}-{'x'.join(map(str, scale))}"
            build = run_build(family_source(name), seed, scale, work / "cad")
            assert isinstance(build, BuildOutput), (name, seed, scale, build)
            report = validate_variant(build, work, scenario_id=name, variant_id=f"s{seed}", cache_dir=root / "coacd")
            out[(name, seed, scale)] = (build, report, work)
    return out


def test_registered_with_tier_and_limits():
    assert {FAMILIES[n].tier for n in ("gear_train", "four_bar", "cam_follower")} == {3}
    assert FAMILIES["block_in_bin"].tier == 1
    assert len([f for f in FAMILIES.values() if f.tier == 1]) >= 3  # a tier-1 batch can span three families


def test_offline_author_picks_them_by_name_and_a_tier1_batch_spans_three_families():
    from benchgen_assets.authoring.offline_author import choose_family
    from benchgen_assets.manager import make_requests

    known = [info.model_dump() for info in FAMILIES.values()]
    for prompt, name in [("a tier 3 gear train", "gear_train"), ("a four-bar linkage", "four_bar"),
                         ("cam and follower, tier 3", "cam_follower"), ("put a block in a bin", "block_in_bin")]:
        assert choose_family({"prompt": prompt}, known)["name"] == name, prompt
    batch = make_requests(tier=1, family=None, prompt=None, count=10, seed=0, variants=1)
    assert len({choose_family(r.model_dump(), known)["name"] for r in batch}) >= 3


@pytest.mark.parametrize("name", NEW_FAMILIES)
def test_same_seed_and_scale_build_the_same_scene(name, tmp_path):
    scale = (1.2, 0.9, 1.1)
    first, again, other = (run_build(family_source(name), seed, scale, tmp_path / str(i))
                           for i, seed in enumerate((3, 3, 4)))
    assert [p.stl_sha256 for p in first.parts] == [p.stl_sha256 for p in again.parts]
    assert (first.parameters, first.task, first.sites, first.couplings, first.pins) == \
        (again.parameters, again.task, again.sites, again.couplings, again.pins)
    assert first.parameters != other.parameters and first.task != other.task


@pytest.mark.parametrize("name", NEW_FAMILIES)
def test_variants_validate_and_the_oracle_solves_them_in_time(validated, name):
    for seed, scale in _cases(name):
        build, report, _ = validated[(name, seed, scale)]
        assert report.passed, (seed, scale, report.first_failure())
        assert [s.name for s in report.stages][-1] == "solvability"
        oracle = report.oracle
        assert oracle.solved and 0 < oracle.time_to_success_s < build.task.time_limit_s, (seed, scale, oracle.message)
        assert report.max_penetration_m < 0.001, (seed, scale, report.max_penetration_m)


def test_goal_thresholds_come_from_the_drawn_parameters(validated):
    for (name, _seed, _scale), (build, _report, _dir) in validated.items():
        goal, params = build.task.goal[0], build.parameters
        if name == "gear_train":
            assert goal.part == f"gear_{params['gear_count']}"
            assert goal.value == pytest.approx(math.radians(params["goal_output_deg"]), abs=1e-4)
            assert params["total_ratio"] == pytest.approx(
                math.prod(-a / b for a, b in zip(params["pitch_radii_mm"], params["pitch_radii_mm"][1:])), rel=1e-3)
        elif name == "four_bar":
            a, b, c, d = (params[k] for k in ("crank_mm", "coupler_mm", "rocker_mm", "ground_mm"))
            assert a + d <= b + c and a + b <= c + d and a < min(b, c, d)  # Grashof crank-rocker
            assert goal.value == pytest.approx(math.radians(params["goal_rocker_deg"]), abs=1e-4)
            assert goal.value < math.radians(params["rocker_swing_deg"])
        elif name == "cam_follower":
            assert goal.value == pytest.approx(params["goal_rise_mm"], abs=1e-3) and goal.value < params["lift_mm"]
        else:
            box = build.task.goal[0]
            inner = params["tray_inner_mm"]
            assert box.max_mm[0] - box.min_mm[0] <= inner[0] - params["block_mm"][0] + 2.0 + 2e-3  # µm rounding


def _qpos_index(model, joint: str) -> int:
    return int(model.joint(joint).qposadr[0])


def _equality_residual(model, data) -> float:
    mujoco.mj_forward(model, data)
    rows = [i for i in range(data.nefc) if data.efc_type[i] == mujoco.mjtConstraint.mjCNSTR_EQUALITY]
    return float(np.abs(data.efc_pos[rows]).max()) if rows else 0.0


def _scene(validated, name):
    build, _report, scene_dir = validated[(name, 0, (1.0, 1.0, 1.0))]
    model = mujoco.MjModel.from_xml_path(str(scene_dir / "scene.xml"))
    return build, scene_dir, model, mujoco.MjData(model)


def _scores(scene_dir, data) -> bool:
    return evaluate(scene_dir, (data.qpos.copy(), data.qvel.copy())).success


def test_evaluate_gear_train(validated):
    build, scene_dir, model, data = _scene(validated, "gear_train")
    text = (scene_dir / "scene.xml").read_text()
    for c in build.couplings:  # meshing gears do not collide: the coupling carries the motion
        assert f'body1="{c.leader}" body2="{c.follower}"' in text

    def turn_input(angle: float) -> None:
        data.qpos[_qpos_index(model, "gear_1_hinge")] = angle
        for c in build.couplings:
            data.qpos[_qpos_index(model, f"{c.follower}_hinge")] = c.ratio * data.qpos[_qpos_index(model, f"{c.leader}_hinge")]

    assert not _scores(scene_dir, data)
    target = build.parameters["input_target_rad"]
    turn_input(target)
    assert _equality_residual(model, data) < 1e-6  # a state the couplings allow (MJCF keeps 7 digits of a ratio)
    assert _scores(scene_dir, data)
    turn_input(0.6 * target)  # the output short of its goal (0.6 × 4/3 of it)
    assert not _scores(scene_dir, data)
    for angle in np.linspace(0.0, 2 * math.pi, 73):  # a whole turn of the input touches nothing
        turn_input(angle)
        mujoco.mj_forward(model, data)
        assert data.ncon == 0, (angle, data.ncon)


def _rocker_pin(crank: float, a: float, b: float, c: float, d: float, branch: int) -> np.ndarray:
    """Where the coupler (length b, from the crank pin) meets the rocker (length c, pivot at (d, 0))."""
    p = np.array([a * math.cos(crank), a * math.sin(crank)])
    pivot = np.array([d, 0.0])
    gap = np.linalg.norm(pivot - p)
    along = (b * b - c * c + gap * gap) / (2 * gap)
    unit = (pivot - p) / gap
    return p + along * unit + branch * math.sqrt(b * b - along * along) * np.array([-unit[1], unit[0]])


def test_evaluate_four_bar_on_states_the_loop_allows(validated):
    build, scene_dir, model, data = _scene(validated, "four_bar")
    params = build.parameters
    a, b, c, d = (params[k] for k in ("crank_mm", "coupler_mm", "rocker_mm", "ground_mm"))
    start, turn = math.radians(params["crank_start_deg"]), math.radians(params["crank_turn_deg"])
    mujoco.mj_forward(model, data)
    pivot = data.xanchor[model.joint("rocker_hinge").id][:2]
    tip = data.site("rocker_tip").xpos[:2]
    built_rocker = math.atan2(tip[1] - pivot[1], tip[0] - pivot[0])
    # the assembly branch the linkage was built in: the one whose rocker points where the model's does
    branch = min((1, -1), key=lambda s: abs(math.remainder(
        math.atan2(*(_rocker_pin(start, a, b, c, d, s) - [d, 0.0])[::-1]) - built_rocker, 2 * math.pi)))

    def crank_to(turned: float) -> None:
        q0, q1 = (_rocker_pin(start + t, a, b, c, d, branch) for t in (0.0, turned))
        p0, p1 = (a * np.array([math.cos(start + t), math.sin(start + t)]) for t in (0.0, turned))
        angle = lambda v: math.atan2(v[1], v[0])  # noqa: E731
        data.qpos[_qpos_index(model, "crank_hinge")] = turned
        data.qpos[_qpos_index(model, "rocker_hinge")] = math.remainder(angle(q1 - [d, 0]) - angle(q0 - [d, 0]), 2 * math.pi)
        data.qpos[_qpos_index(model, "coupler_hinge")] = math.remainder(angle(q1 - p1) - angle(q0 - p0), 2 * math.pi) - turned

    assert not _scores(scene_dir, data)
    crank_to(turn)
    assert _equality_residual(model, data) < 2e-5  # the pin stays closed (parameters are rounded to µm)
    assert data.qpos[_qpos_index(model, "rocker_hinge")] == pytest.approx(math.radians(params["rocker_swing_deg"]), abs=0.01)
    assert _scores(scene_dir, data)
    crank_to(0.1)  # barely turned: the rocker is still near its start
    assert _equality_residual(model, data) < 2e-5
    assert not _scores(scene_dir, data)
    for turned in np.linspace(0.0, 2 * math.pi, 145):  # a whole crank turn: no link touches another or the base
        crank_to(turned)
        assert _equality_residual(model, data) < 2e-5 and data.ncon == 0, (turned, data.ncon)


def test_evaluate_cam_follower(validated):
    build, scene_dir, model, data = _scene(validated, "cam_follower")
    params = build.parameters
    assert not _scores(scene_dir, data)
    data.qpos[_qpos_index(model, "cam_hinge")] = math.pi  # lobe up, the follower on its tip
    data.qpos[_qpos_index(model, "follower_slide")] = (params["lift_mm"] - 0.3) / 1000
    assert _scores(scene_dir, data)
    data.qpos[_qpos_index(model, "follower_slide")] = (params["goal_rise_mm"] - 0.5) / 1000
    assert not _scores(scene_dir, data)


def test_evaluate_block_in_bin(validated):
    build, scene_dir, model, data = _scene(validated, "block_in_bin")
    assert not _scores(scene_dir, data)
    mujoco.mj_forward(model, data)
    adr = _qpos_index(model, "block_free")
    floor = data.site("tray_floor").xpos.copy()
    height = build.parameters["block_mm"][2] / 1000
    data.qpos[adr:adr + 3] = floor + [0.0, 0.0, height / 2 + 0.0002]  # lying on the tray floor
    assert _scores(scene_dir, data)
    dof = int(model.joint("block_free").dofadr[0])
    data.qvel[dof + 2] = -0.3  # inside but still falling
    assert not _scores(scene_dir, data)
    data.qvel[:] = 0.0
    data.qpos[adr + 2] += 0.03  # held 30 mm above the floor
    assert not _scores(scene_dir, data)
