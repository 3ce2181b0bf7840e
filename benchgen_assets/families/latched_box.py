"""Tier 3 — latched box: an open box, a lid hinged along its back top edge, and a latch on the box
front that turns about a vertical pivot, its hook lip over the lid's catch (its front overhang). Task: lift the lid to at
least a set angle. The lid cannot open while latched (the catch lifts straight into the hook, which
only turns sideways), so the oracle first swings the latch off the catch, then lifts the lid."""

import math
import random

from build123d import Align, Box, Pos
from benchgen_assets.scene import DriveJoint, JointAtLeast, Part, Scene, Settle, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
GAP_MM = 0.5  # the lid rests this far above the rim; the latch hangs this far off the catch
HOOK_GAP_MM = 1.0  # the hook lip over the catch: the latched lid lifts this much, then stops
LATCH_OPEN = 1.5  # rad: the latch's range, and where the oracle swings it to
LATCH_SWUNG = 1.2
GOAL_FRACTION = 0.6  # of the lid's range: the lid counts as open from here
ORACLE_FRACTION = 0.85


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    box_w = rng.uniform(90.0, 150.0) * sx
    box_d = rng.uniform(70.0, 120.0) * sy
    box_h = rng.uniform(45.0, 80.0) * sz
    wall = rng.uniform(5.0, 9.0)
    lid_t = rng.uniform(6.0, 10.0) * sz
    lid_open = math.radians(rng.uniform(95.0, 115.0))

    box = Box(box_w, box_d, box_h, align=BOTTOM) - Pos(0, 0, wall * sz) * Box(
        box_w - 2 * wall * sx, box_d - 2 * wall * sy, box_h, align=BOTTOM)

    lid_z = box_h + GAP_MM
    catch_w = rng.uniform(14.0, 24.0) * sx  # the width the hook grips
    # The catch: the lid overhangs the box front by catch_d along its whole width, so the lid stays
    # a box. (A narrower tab makes it nearly convex, and MuJoCo collides it as its convex hull: wedges
    # from the tab to the lid's corners, in the way of the latch turning beside it.)
    catch_d = 5.0
    lid = Pos(0, catch_d / 2, lid_z) * Box(box_w, box_d + catch_d, lid_t, align=BOTTOM)
    hinge_y = -box_d / 2  # along the lid's back bottom edge

    # Latch: an upright plate in front of the catch, pivoting about a vertical axis at its own left
    # edge; its hook lip reaches back over the catch. Turning it (+ about z) swings the hook out to
    # the front, and every part of it moves away from the box (nothing of it lies behind the pivot).
    latch_t = 4.0
    latch_y = box_d / 2 + catch_d + GAP_MM
    pivot_x = -catch_w / 2 - rng.uniform(5.0, 8.0) * sx
    latch_x1 = catch_w / 2 + rng.uniform(3.0, 6.0) * sx
    plate_top = lid_z + lid_t + HOOK_GAP_MM + rng.uniform(4.0, 7.0)
    plate_bottom = lid_z - rng.uniform(8.0, 14.0) * sz
    latch = Pos(pivot_x, latch_y, plate_bottom) * Box(latch_x1 - pivot_x, latch_t, plate_top - plate_bottom,
                                                     align=(Align.MIN, Align.MIN, Align.MIN))
    # the hook lip spans the gripped width (+1 mm): near the pivot it would barely move off the catch
    hook_z = lid_z + lid_t + HOOK_GAP_MM
    hook_x0 = -catch_w / 2 - 1.0
    latch += Pos(hook_x0, box_d / 2 + GAP_MM, hook_z) * Box(latch_x1 - hook_x0, latch_y - box_d / 2 - GAP_MM,
                                                           plate_top - hook_z, align=(Align.MIN, Align.MIN, Align.MIN))

    goal_angle = GOAL_FRACTION * lid_open
    task = Task(instruction=(f"Open the box: swing the front latch off the catch, then lift the lid to at least "
                             f"{math.degrees(goal_angle):.0f}°."),
                goal=[JointAtLeast("lid", goal_angle)],
                oracle=[DriveJoint("latch", LATCH_SWUNG, duration_s=1.0),
                        DriveJoint("lid", ORACLE_FRACTION * lid_open, duration_s=1.5), Settle(0.3)],
                time_limit_s=6.0)
    return Scene(
        name="latched_box",
        description=("Swing the front latch off the catch, then lift the lid on its back hinge "
                     f"(opens up to {math.degrees(lid_open):.0f}°)."),
        parts=[
            Part("box", box, role="fixture", joint="fixed", rgba=(0.45, 0.3, 0.2, 1.0)),
            # +angle about +x lifts the lid; gravity holds it on the rim at the lower limit
            Part("lid", lid, role="link", joint="hinge", parent="box", joint_axis=(1.0, 0.0, 0.0),
                 joint_pos_mm=(0.0, hinge_y, lid_z), joint_range=(0.0, lid_open), density_kg_m3=600.0,
                 rgba=(0.65, 0.45, 0.3, 1.0)),
            # a vertical pivot: gravity does not turn the latch, and a lid pushing up on the hook cannot either
            Part("latch", latch, role="link", joint="hinge", parent="box", joint_axis=(0.0, 0.0, 1.0),
                 joint_pos_mm=(pivot_x, latch_y + latch_t / 2, plate_bottom), joint_range=(0.0, LATCH_OPEN),
                 density_kg_m3=7800.0, rgba=(0.7, 0.7, 0.75, 1.0)),
        ],
        parameters={"box_mm": [round(box_w, 3), round(box_d, 3), round(box_h, 3)], "wall_mm": round(wall, 3),
                    "lid_thickness_mm": round(lid_t, 3), "catch_width_mm": round(catch_w, 3),
                    "latch_pivot_x_mm": round(pivot_x, 3), "lid_open_deg": round(math.degrees(lid_open), 3),
                    "goal_open_deg": round(math.degrees(goal_angle), 3)},
        task=task,
    )
