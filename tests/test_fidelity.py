"""Fidelity the oracle relies on: blind-hole floors where the CAD puts them, and hinged / sliding
parts free over their whole range (``physics/joint_sweep.py``). Real sandbox, real MuJoCo."""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import pytest

from benchgen_assets.families import family_source
from benchgen_assets.physics import compose_mjcf, validate_variant
from benchgen_assets.physics.joint_sweep import sweep_joints
from benchgen_assets.records import BuildOutput
from benchgen_assets.sandbox import run_build

FLOOR_TOLERANCE_MM = 0.5

# peg_in_hole's own blind holes: seed 0 round, seed 1 square, seed 6 round at a tall, narrow scale
SHIPPED_BLIND = [(0, (1.0, 1.0, 1.0)), (1, (2.0, 0.5, 0.5)), (6, (0.5, 1.5, 2.0))]

# A blind hole with a chamfered rim: not a stepped prism. Decomposed by CoACD alone, its pieces
# bridged the bore (the peg stopped 0.3–9 mm short, or did not go in at all).
CHAMFERED_BLIND_HOLE = '''
import random

from build123d import Align, Axis, Box, Cylinder, Pos, chamfer
from benchgen_assets.scene import Part, Scene

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)


def build(seed, scale):
    rng = random.Random(seed)
    sx, sy, sz = scale
    hole_r = rng.uniform(9.0, 15.0) * min(sx, sy)
    height = rng.uniform(25.0, 45.0) * sz
    depth = height * rng.uniform(0.75, 0.9)
    block = Box(2 * hole_r + 20 * sx, 2 * hole_r + 20 * sy, height, align=BOTTOM)
    block -= Pos(0, 0, height - depth) * Cylinder(hole_r, depth + 1.0, align=BOTTOM)
    rim = block.edges().group_by(Axis.Z)[-1].filter_by(lambda e: e.center().X ** 2 + e.center().Y ** 2 < (1.5 * hole_r) ** 2)
    block = chamfer(rim, 1.5)
    peg_r = hole_r - rng.uniform(0.3, 0.8)
    peg = Pos(2 * hole_r + 30, 0, 0.5) * Cylinder(peg_r, depth + 10.0, align=BOTTOM)
    return Scene(name="chamfered_blind_hole", parts=[
        Part("block", block, role="fixture"),
        Part("peg", peg, role="object", joint="free", density_kg_m3=2700.0, friction=0.6)],
        parameters={"hole_depth_mm": depth})
'''
CHAMFERED = [(0, (1.0, 1.0, 1.0)), (2, (2.0, 2.0, 2.0)), (3, (2.0, 0.5, 0.5))]


def _peg_rest_above_floor_mm(xml_path: Path, build: BuildOutput) -> float:
    """Let the peg go upright 2 mm over the hole's centre: where its bottom rests after 2 s, above the CAD floor."""
    model = mujoco.MjModel.from_xml_path(str(xml_path))
    data = mujoco.MjData(model)
    block = next(p for p in build.parts if p.name == "block")
    peg = next(p for p in build.parts if p.name == "peg")
    com_above_bottom = peg.center_of_mass_mm[2] - peg.bbox_min_mm[2]
    top = block.bbox_max_mm[2]
    adr = model.joint("peg_free").qposadr[0]
    data.qpos[adr:adr + 7] = [0.0, 0.0, (top + 2.0 + com_above_bottom) / 1000, 1, 0, 0, 0]
    mujoco.mj_step(model, data, nstep=int(2.0 / model.opt.timestep))
    return float(data.body("peg").xpos[2] * 1000 - com_above_bottom - (top - build.parameters["hole_depth_mm"]))


@pytest.mark.usefixtures("private_build_server")
@pytest.mark.parametrize("kind", ["shipped", "chamfered"])
def test_dropped_peg_reaches_the_blind_hole_floor(tmp_path, kind):
    source = family_source("peg_in_hole") if kind == "shipped" else CHAMFERED_BLIND_HOLE
    for seed, scale in SHIPPED_BLIND if kind == "shipped" else CHAMFERED:
        build = run_build(source, seed, scale, tmp_path / f"{seed}-{scale}" / "cad")
        assert isinstance(build, BuildOutput), build
        assert build.parameters.get("through_hole", False) is False, "the case must be a blind hole"
        xml = compose_mjcf(build, tmp_path / f"{seed}-{scale}", cache_dir=tmp_path / "cache")
        above = _peg_rest_above_floor_mm(xml, build)
        assert abs(above) <= FLOOR_TOLERANCE_MM, (f"{kind} seed {seed} scale {scale}: the peg rests {above:.2f} mm "
                                                  f"above the {build.parameters['hole_depth_mm']:.1f} mm deep hole's floor")


# A wall, and a panel on a vertical hinge at its left edge: turning it positive swings its free end
# (0.1 m out) into the wall near 56°. A post touches the panel's back face as built (0.1 mm deep),
# so a negative turn pushes the panel into it. A drawer slides along +x, 40 mm short of a stop.
PANEL_AND_WALL = """
<mujoco>
  <compiler angle="radian"/>
  <worldbody>
    <geom name="table" type="plane" size="0 0 0.05"/>
    <geom name="wall" type="box" pos="0.05 0.0866 0.05" size="0.05 0.002 0.05"/>
    <body name="stop_post" pos="-0.01 -0.0039 0.05"><geom name="post" type="box" size="0.002 0.002 0.03"/></body>
    <body name="panel" pos="0 0 0.05">
      <joint name="panel_hinge" type="hinge" axis="0 0 1" pos="-0.05 0 0" range="{lo} {hi}"/>
      <geom name="panel_geom" type="box" size="0.05 0.002 0.03"/>
    </body>
    <body name="drawer" pos="0.3 0 0.02">
      <joint name="drawer_slide" type="slide" axis="1 0 0" range="0 {travel}"/>
      <geom name="drawer_geom" type="box" size="0.02 0.02 0.01"/>
    </body>
    <geom name="drawer_stop" type="box" pos="0.365 0 0.02" size="0.005 0.03 0.02"/>
  </worldbody>
</mujoco>
"""


def _model(lo=0.0, hi=0.8, travel=0.03) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(PANEL_AND_WALL.format(lo=lo, hi=hi, travel=travel))


def test_joint_sweep_catches_a_panel_swung_into_a_wall_and_a_drawer_into_its_stop():
    clear = sweep_joints(_model())
    assert clear.passed and clear.swept == ["panel_hinge", "drawer_slide"], clear.message()

    result = sweep_joints(_model(hi=1.5, travel=0.06))
    by_joint = {b.joint: b for b in result.blocks}
    assert not result.passed and set(by_joint) == {"panel_hinge", "drawer_slide"}, result.message()
    panel = by_joint["panel_hinge"]
    assert panel.direction == "high" and panel.geoms == ("panel_geom", "wall") and 54 < math.degrees(panel.at) < 60
    drawer = by_joint["drawer_slide"]
    assert drawer.kind == "slide" and drawer.geoms == ("drawer_geom", "drawer_stop") and 40.0 <= drawer.at <= 41.0
    assert "panel (hinge) runs into wall" in result.message() and "drawer (slide) runs into drawer_stop" in result.message()


def test_joint_sweep_lets_a_part_leave_what_it_rests_on_but_not_push_into_it():
    result = sweep_joints(_model(lo=-0.3, hi=0.8))
    assert [(b.direction, b.geoms) for b in result.blocks] == [("low", ("panel_geom", "post"))], result.message()


@pytest.mark.usefixtures("private_build_server")
def test_validation_rejects_a_door_that_swings_into_its_frame(tmp_path):
    source = family_source("hinged_door").replace("max_open = math.radians(rng.uniform(90.0, 120.0))",
                                                  "max_open = math.radians(rng.uniform(185.0, 190.0))")
    assert source != family_source("hinged_door"), "hinged_door.py changed: update this test's range edit"
    build = run_build(source, 0, (1.0, 1.0, 1.0), tmp_path / "cad")
    assert isinstance(build, BuildOutput), build
    report = validate_variant(build, tmp_path / "v", scenario_id="door", variant_id="v", cache_dir=tmp_path / "cache")
    failure = report.first_failure()
    assert failure is not None and failure.name == "solvability", failure
    assert "cannot move through its whole joint range" in failure.message and "door (hinge) runs into frame" in failure.message
