"""Tier 2 — lever: a beam balanced on a hinge between the two cheeks of a fulcrum stand, and a free
load block on the table to be placed on one arm so the other arm lifts. Task: the load rests on the
arm on its own side and that arm is down (the other one up) by at least a set angle; the oracle
carries the load onto the arm and lets go."""

import math
import random

from build123d import Align, Box, Pos
from benchgen_assets.scene import (CarryPart, JointAtLeast, JointAtMost, Part, PartAtRest, Scene, Settle, Site,
                                   SiteInBox, Task)

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
DROP_MM = 0.5
SIDE_GAP_MM = 1.0  # between the beam and each cheek of the fulcrum
GOAL_FRACTION = 0.8  # of the hinge range: the loaded arm must be down at least this far
CARRY_CLEARANCE_MM = 10.0  # the oracle carries the load this far above the beam's highest tip
PLACE_ABOVE_MM = 3.0  # and lets go this far above the level beam


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    beam_len = rng.uniform(160.0, 260.0) * sx
    beam_w = rng.uniform(18.0, 30.0) * sy
    beam_t = rng.uniform(6.0, 12.0) * sz
    tilt = math.radians(rng.uniform(12.0, 25.0))  # hinge range either way
    cheek_t = rng.uniform(6.0, 10.0) * sy
    base_t = rng.uniform(6.0, 10.0) * sz
    # pivot high enough that the beam's tips clear the base plate over the whole range
    pivot_z = base_t + beam_len / 2 * math.sin(tilt) + beam_t / 2 * math.cos(tilt) + 5.0
    cheek_len = rng.uniform(30.0, 50.0) * sx
    base_len = cheek_len + 30.0 * sx
    base_w = beam_w + 2 * (SIDE_GAP_MM + cheek_t) + 20.0 * sy

    stand = Box(base_len, base_w, base_t, align=BOTTOM)
    cheek_h = pivot_z + beam_t - base_t
    for side in (-1, 1):
        y = side * (beam_w / 2 + SIDE_GAP_MM + cheek_t / 2)
        stand += Pos(0, y, base_t) * Box(cheek_len, cheek_t, cheek_h, align=BOTTOM)

    beam = Pos(0, 0, pivot_z) * Box(beam_len, beam_w, beam_t)
    load = rng.uniform(25.0, 40.0)
    load_side = rng.choice((-1, 1))
    load_x = load_side * (beam_len / 2 + load * sx / 2 + rng.uniform(15.0, 40.0))
    load_y = rng.uniform(-20.0, 20.0) * sy
    # no taller than its base is wide, so it stays upright on the tilted beam
    load_h = min(load * sz, load * min(sx, sy))
    load_block = Pos(load_x, load_y, DROP_MM) * Box(load * sx, load * sy, load_h, align=BOTTOM)

    # The load's seat: on its own arm, clear of the cheeks, its far edge a little in from the tip.
    beam_top = pivot_z + beam_t / 2
    seat_x = load_side * max(beam_len / 2 - load * sx / 2 - 5.0, cheek_len / 2 + load * sx / 2 + 5.0)
    sites = [Site("load_bottom", "load", (load_x, load_y, DROP_MM)), Site("beam_seat", "beam", (seat_x, 0.0, beam_top))]
    # A hinge about +y turns +x down for a positive angle: the loaded arm goes down, the other one rises.
    goal_angle = GOAL_FRACTION * tilt
    arm_down = JointAtLeast("beam", goal_angle) if load_side > 0 else JointAtMost("beam", -goal_angle)
    # the load's bottom sits on the beam around the seat (it may slide a little along the tilted beam)
    reach = beam_len / 4
    on_beam = SiteInBox("load_bottom", "beam_seat", (-reach, -beam_w / 2, -reach * math.sin(tilt) - 3.0),
                        (reach, beam_w / 2, reach * math.sin(tilt) + 3.0))
    lift = pivot_z + beam_len / 2 * math.sin(tilt) + beam_t + CARRY_CLEARANCE_MM - DROP_MM
    over = (seat_x - load_x, -load_y)
    task = Task(instruction="Put the load block on the lever's arm on its side so that arm goes down and the other rises.",
                goal=[arm_down, on_beam, PartAtRest("load")],
                oracle=[CarryPart("load", [(0.0, 0.0, lift), (*over, lift), (*over, beam_top + PLACE_ABOVE_MM - DROP_MM)],
                                  duration_s=2.5),
                        Settle(1.0)],
                time_limit_s=8.0)

    return Scene(
        name="lever",
        description=("Put the load block on one end of the balanced beam; the other end rises "
                     f"(hinge range ±{math.degrees(tilt):.0f}°)."),
        parts=[
            Part("fulcrum_stand", stand, role="fixture", joint="fixed", rgba=(0.4, 0.4, 0.45, 1.0)),
            Part("beam", beam, role="link", joint="hinge", parent="fulcrum_stand", joint_axis=(0.0, 1.0, 0.0),
                 joint_pos_mm=(0.0, 0.0, pivot_z), joint_range=(-tilt, tilt), density_kg_m3=700.0,
                 rgba=(0.8, 0.6, 0.3, 1.0)),
            Part("load", load_block, role="object", joint="free", density_kg_m3=2000.0,
                 rgba=(0.3, 0.5, 0.8, 1.0)),
        ],
        parameters={"beam_mm": [round(beam_len, 3), round(beam_w, 3), round(beam_t, 3)],
                    "pivot_height_mm": round(pivot_z, 3), "tilt_range_deg": round(math.degrees(tilt), 3),
                    "load_edge_mm": round(load, 3), "load_height_mm": round(load_h, 3), "load_side": load_side,
                    "goal_tilt_deg": round(math.degrees(goal_angle), 3), "seat_x_mm": round(seat_x, 3)},
        task=task,
        sites=sites,
    )
