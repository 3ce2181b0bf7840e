"""Tier 2 — drawer slide: a cabinet with a front opening and a drawer (a tray with a handle) that
slides out along +y on a slide joint. Task: pull the drawer out at least a set distance; the oracle
drives the slide past it."""

import random

from build123d import Align, Box, Pos
from benchgen_assets.scene import DriveJoint, JointAtLeast, Part, Scene, Settle, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
GAP_MM = 1.0  # drawer to cavity, every side
GOAL_FRACTION = 0.6  # of the travel: the drawer counts as open from here
ORACLE_FRACTION = 0.85  # where the oracle pulls it to


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    cav_w = rng.uniform(90.0, 160.0) * sx
    cav_d = rng.uniform(110.0, 180.0) * sy
    cav_h = rng.uniform(40.0, 80.0) * sz
    wall = rng.uniform(8.0, 14.0)
    travel_frac = rng.uniform(0.5, 0.8)

    body_w = cav_w + 2 * wall * sx
    body_d = cav_d + wall * sy  # open at the front (+y)
    body_h = cav_h + 2 * wall * sz
    cabinet = Box(body_w, body_d, body_h, align=BOTTOM) - Pos(0, wall * sy / 2 + 1.0, wall * sz) * Box(
        cav_w, cav_d + 2.0, cav_h, align=BOTTOM)

    drawer_w = cav_w - 2 * GAP_MM
    drawer_d = cav_d - GAP_MM
    drawer_h = cav_h - 2 * GAP_MM
    side = rng.uniform(4.0, 7.0)
    drawer_y = wall * sy / 2 + GAP_MM / 2  # flush with the cabinet front, GAP_MM from its back wall
    floor_z = wall * sz + GAP_MM
    tray = Box(drawer_w, drawer_d, drawer_h, align=BOTTOM) - Pos(0, 0, side) * Box(
        drawer_w - 2 * side, drawer_d - 2 * side, drawer_h, align=BOTTOM)
    handle_w = min(50.0 * sx, drawer_w / 2)
    handle = Pos(0, drawer_d / 2, drawer_h / 2) * Box(handle_w, 12.0, 10.0, align=(Align.CENTER, Align.MIN, Align.CENTER))
    drawer = Pos(0, drawer_y, floor_z) * (tray + handle)
    travel = travel_frac * drawer_d
    goal_mm = GOAL_FRACTION * travel

    task = Task(instruction=f"Pull the drawer out of the cabinet by its handle, at least {goal_mm:.0f} mm.",
                goal=[JointAtLeast("drawer", goal_mm)],
                oracle=[DriveJoint("drawer", ORACLE_FRACTION * travel, duration_s=1.5), Settle(0.3)],
                time_limit_s=5.0)
    return Scene(
        name="drawer_slide",
        description=f"Pull the drawer out of the cabinet by its handle (up to {travel:.0f} mm).",
        parts=[
            Part("cabinet", cabinet, role="fixture", joint="fixed", rgba=(0.6, 0.5, 0.4, 1.0)),
            Part("drawer", drawer, role="link", joint="slide", parent="cabinet", joint_axis=(0.0, 1.0, 0.0),
                 joint_pos_mm=(0.0, drawer_y, floor_z), joint_range=(0.0, travel), density_kg_m3=600.0,
                 rgba=(0.85, 0.8, 0.65, 1.0)),
        ],
        parameters={"cavity_mm": [round(cav_w, 3), round(cav_d, 3), round(cav_h, 3)],
                    "wall_mm": round(wall, 3), "travel_mm": round(travel, 3), "tray_wall_mm": round(side, 3),
                    "goal_pull_mm": round(goal_mm, 3)},
        task=task,
    )
