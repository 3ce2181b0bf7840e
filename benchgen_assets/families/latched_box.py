"""Tier 3 — latched box: an open box, a lid hinged along its back top edge, and a latch hanging on a
hinge at the front that hooks over the lid's catch. Unlatch (swing the latch out), then open the lid."""

import math
import random

from build123d import Align, Box, Pos
from benchgen_assets.scene import Part, Scene

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
GAP_MM = 0.5  # the lid rests this far above the rim; the latch hangs this far off the box front


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
    catch_w = rng.uniform(14.0, 24.0) * sx
    lid = Pos(0, 0, lid_z) * Box(box_w, box_d, lid_t, align=BOTTOM)
    # The catch: a tab on the lid's front face that the latch hook grips, as thick as the lid. The
    # lid is nearly convex, so it collides as its convex hull: a tab lower than the lid's top face
    # would put a hull wedge above it, right where the hook rests, and start the latch in contact.
    lid += Pos(0, box_d / 2, lid_z) * Box(catch_w, 5.0, lid_t, align=(Align.CENTER, Align.MIN, Align.MIN))
    hinge_y = -box_d / 2  # along the lid's back bottom edge

    # Latch: a plate hanging from a pivot on the box front, 0.5 mm off it, with a hook on top
    latch_w = catch_w + 10.0 * sx
    latch_t = 4.0
    pivot_z = max(box_h - rng.uniform(18.0, 28.0) * sz, 12.0)
    latch_y = box_d / 2 + 5.0 + GAP_MM  # clear of the catch tab
    plate_top = lid_z + lid_t + 5.0
    plate_bottom = max(pivot_z - rng.uniform(8.0, 15.0) * sz, 2.0)
    latch = Pos(0, latch_y, plate_bottom) * Box(latch_w, latch_t, plate_top - plate_bottom,
                                                align=(Align.CENTER, Align.MIN, Align.MIN))
    # hook lip reaching back over the catch, above it by GAP_MM
    hook_z = lid_z + lid_t + GAP_MM
    latch += Pos(0, box_d / 2 + GAP_MM, hook_z) * Box(latch_w, latch_y - box_d / 2 - GAP_MM, plate_top - hook_z,
                                                      align=(Align.CENTER, Align.MIN, Align.MIN))

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
            # +angle about -x swings the latch top outward; gravity leans it onto the catch (lower limit)
            Part("latch", latch, role="link", joint="hinge", parent="box", joint_axis=(-1.0, 0.0, 0.0),
                 joint_pos_mm=(0.0, latch_y + latch_t / 2, pivot_z), joint_range=(0.0, 1.6),
                 density_kg_m3=7800.0, rgba=(0.7, 0.7, 0.75, 1.0)),
        ],
        parameters={"box_mm": [round(box_w, 3), round(box_d, 3), round(box_h, 3)], "wall_mm": round(wall, 3),
                    "lid_thickness_mm": round(lid_t, 3), "catch_width_mm": round(catch_w, 3),
                    "latch_pivot_z_mm": round(pivot_z, 3), "lid_open_deg": round(math.degrees(lid_open), 3)},
    )
