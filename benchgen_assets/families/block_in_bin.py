"""Tier 1 — block in bin: an open tray fixed on the table and a free block beside it; the block has
to end up lying inside the tray. The tray is non-convex, so it collides as its convex decomposition."""

import random

from build123d import Align, Box, Pos
from benchgen_assets.scene import CarryPart, Part, PartAtRest, Scene, Settle, Site, SiteInBox, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
DROP_MM = 0.5  # the block starts this far above the table
ABOVE_MM = 3.0  # the oracle lowers the block to this far above the tray floor before letting go


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    block = (rng.uniform(20.0, 35.0) * sx, rng.uniform(20.0, 35.0) * sy, rng.uniform(15.0, 30.0) * sz)
    clearance = (rng.uniform(8.0, 20.0) * sx, rng.uniform(8.0, 20.0) * sy)  # per side, around the block
    wall = rng.uniform(4.0, 7.0)
    floor_t = rng.uniform(3.0, 6.0) * sz
    wall_h = rng.uniform(20.0, 40.0) * sz
    inner = (block[0] + 2 * clearance[0], block[1] + 2 * clearance[1])
    outer = (inner[0] + 2 * wall * sx, inner[1] + 2 * wall * sy)
    gap = rng.uniform(20.0, 45.0) * sx
    on_left = rng.random() < 0.5

    tray = Box(outer[0], outer[1], floor_t + wall_h, align=BOTTOM) - Pos(0, 0, floor_t) * Box(
        inner[0], inner[1], wall_h + 1.0, align=BOTTOM)
    side = -1 if on_left else 1
    block_x = side * (outer[0] / 2 + gap + block[0] / 2)
    block_y = rng.uniform(-0.3, 0.3) * outer[1]
    cube = Pos(block_x, block_y, DROP_MM) * Box(*block, align=BOTTOM)

    # inside: the block's centre within the floor's free area, and no higher than resting on the floor (+ slack)
    slack_x, slack_y = clearance[0] + 1.0, clearance[1] + 1.0
    rest_z = block[2] / 2
    in_tray = SiteInBox("block_centre", "tray_floor", (-slack_x, -slack_y, rest_z - 2.0), (slack_x, slack_y, rest_z + 3.0))
    lift = floor_t + wall_h + 10.0  # the block's bottom clears the tray's rim by 10 mm on the way over
    lower = floor_t + ABOVE_MM - DROP_MM
    task = Task(
        instruction="Put the block into the tray.",
        goal=[in_tray, PartAtRest("block")],
        oracle=[CarryPart("block", [(0.0, 0.0, lift), (-block_x, -block_y, lift), (-block_x, -block_y, lower)],
                          duration_s=2.0),
                Settle(1.0)],
        time_limit_s=10.0,
    )
    return Scene(
        name="block_in_bin",
        description=(f"Lift the block ({block[0]:.0f}×{block[1]:.0f}×{block[2]:.0f} mm) over the tray's "
                     f"{wall_h:.0f} mm walls and set it down inside."),
        parts=[
            Part("tray", tray, role="target", joint="fixed", rgba=(0.35, 0.5, 0.7, 1.0)),
            Part("block", cube, role="object", joint="free", density_kg_m3=650.0, rgba=(0.85, 0.35, 0.25, 1.0)),
        ],
        sites=[Site("tray_floor", "tray", (0.0, 0.0, floor_t)),
               Site("block_centre", "block", (block_x, block_y, DROP_MM + block[2] / 2))],
        task=task,
        parameters={"block_mm": [round(v, 3) for v in block], "tray_inner_mm": [round(v, 3) for v in inner],
                    "wall_height_mm": round(wall_h, 3), "floor_mm": round(floor_t, 3),
                    "block_side": "left" if on_left else "right", "gap_mm": round(gap, 3)},
    )
