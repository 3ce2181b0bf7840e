"""Tier 2 — lever: a beam balanced on a hinge between the two cheeks of a fulcrum stand, and a free
load block on the table to be placed on one arm so the other arm lifts."""

import math
import random

from build123d import Align, Box, Pos
from benchgen_assets.scene import Part, Scene

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
DROP_MM = 0.5
SIDE_GAP_MM = 1.0  # between the beam and each cheek of the fulcrum


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
    load_block = Pos(load_x, rng.uniform(-20.0, 20.0) * sy, DROP_MM) * Box(load * sx, load * sy, load * sz, align=BOTTOM)

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
                    "load_edge_mm": round(load, 3), "load_side": load_side},
    )
