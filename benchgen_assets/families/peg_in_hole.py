"""Tier 1 — peg in hole: a fixed block with a round or square hole (through or blind) and a free
peg standing on the table beside it, sized to the hole with a small clearance. Task: the peg's tip
within 1 mm of the hole's floor; the oracle carries the peg up, over the hole and down in."""

import random

from build123d import Align, Box, Cylinder, Pos
from benchgen_assets.scene import CarryPart, Part, Scene, Settle, Site, SiteInBox, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
DROP_MM = 0.5  # free parts start this far above their support
# Radial clearance range. The collision pieces of the block follow its exported mesh, whose polygon
# lies at most 0.1 mm inside the CAD circle (and the peg's inside its own), so 0.3 mm still leaves
# the peg ≥ 0.2 mm of play in the simulator.
CLEARANCE_MM = (0.3, 1.2)
MIN_STICK_OUT_MM = 8.0  # the inserted peg stays graspable above the block
# Goal: the peg's tip within this much of the hole's floor (the table, for a through hole): the CAD
# depth, not what a coarse collision model lets through. Sideways the hole itself bounds the tip.
FLOOR_TOLERANCE_MM = 1.0
CARRY_CLEARANCE_MM = 10.0  # the oracle lifts the peg's tip this far above the block top


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    square = rng.random() < 0.4
    through = rng.random() < 0.6
    # Hole and peg take the smaller footprint scale, so under a non-uniform scale both stay round
    # (or square) and the clearance stays what was drawn; the block's walls take the full scale.
    hole_r = rng.uniform(9.0, 15.0) * min(sx, sy)
    wall = rng.uniform(6.0, 12.0)
    length = 2 * hole_r + 2 * wall * sx
    width = 2 * hole_r + 2 * wall * sy
    height = rng.uniform(25.0, 45.0) * sz
    depth_fraction = 1.0 if through else rng.uniform(0.75, 0.9)
    clearance = rng.uniform(*CLEARANCE_MM)
    stick_out = rng.uniform(10.0, 25.0) * sz
    peg_r = hole_r - clearance
    # The peg is at most 3 diameters tall (so it stands without toppling) and sticks out of the
    # hole: a tall, narrow scale lowers the block instead of burying the peg.
    peg_h = min(height * depth_fraction + stick_out, 6 * peg_r)
    height = min(height, (peg_h - MIN_STICK_OUT_MM) / depth_fraction)
    depth = height * depth_fraction

    # the cutter overshoots the faces it opens by 1 mm so no zero-thickness skin remains
    cut_bottom = -1.0 if through else height - depth
    cut_height = height + 1.0 - cut_bottom
    if square:
        cutter = Box(2 * hole_r, 2 * hole_r, cut_height, align=BOTTOM)
    else:
        cutter = Cylinder(hole_r, cut_height, align=BOTTOM)
    block = Box(length, width, height, align=BOTTOM) - Pos(0, 0, cut_bottom) * cutter

    peg_x = length / 2 + rng.uniform(15.0, 40.0) + peg_r
    peg_y = rng.uniform(-0.3, 0.3) * width
    if square:
        peg = Pos(peg_x, peg_y, DROP_MM) * Box(2 * peg_r, 2 * peg_r, peg_h, align=BOTTOM)
    else:
        peg = Pos(peg_x, peg_y, DROP_MM) * Cylinder(peg_r, peg_h, align=BOTTOM)

    # the peg's tip (bottom centre) must go below the rim (top centre of the hole) to near the floor
    sites = [Site("peg_tip", "peg", (peg_x, peg_y, DROP_MM)), Site("hole_rim", "block", (0.0, 0.0, height))]
    side = clearance + 1.0
    goal = [SiteInBox("peg_tip", "hole_rim", (-side, -side, -depth - 5.0), (side, side, -(depth - FLOOR_TOLERANCE_MM)))]
    # waypoints: displacements of the peg from where it was built (tip at z = DROP_MM)
    lift = height + CARRY_CLEARANCE_MM - DROP_MM
    seat = height - depth - 0.3 - DROP_MM  # a little below the floor: the grip presses the peg home
    oracle = [CarryPart("peg", [(0.0, 0.0, lift), (-peg_x, -peg_y, lift), (-peg_x, -peg_y, height + 1.0 - DROP_MM),
                                (-peg_x, -peg_y, seat)], duration_s=3.0),
              Settle(0.5)]
    task = Task(instruction=f"Insert the {'square' if square else 'round'} peg into the hole of the block, all the way down.",
                goal=goal, oracle=oracle, time_limit_s=8.0)

    parameters = {
        "hole_shape": "square" if square else "round", "through_hole": through,
        "hole_radius_mm": round(hole_r, 3), "hole_depth_mm": round(depth, 3),
        "block_mm": [round(length, 3), round(width, 3), round(height, 3)],
        "clearance_mm": round(clearance, 3), "peg_length_mm": round(peg_h, 3),
        "peg_offset_mm": [round(peg_x, 3), round(peg_y, 3)],
    }
    return Scene(
        name="peg_in_hole",
        description=("Insert the free {} peg into the {} hole of the fixed block ({:.2f} mm clearance)."
                     .format(parameters["hole_shape"], "through" if through else "blind", clearance)),
        parts=[
            Part("block", block, role="fixture", joint="fixed", density_kg_m3=700.0,
                 rgba=(0.55, 0.42, 0.3, 1.0)),
            Part("peg", peg, role="object", joint="free", density_kg_m3=2700.0,
                 rgba=(0.75, 0.75, 0.8, 1.0), friction=0.6),
        ],
        parameters=parameters,
        task=task,
        sites=sites,
    )
