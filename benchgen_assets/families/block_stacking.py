"""Tier 1 — block stacking: two to four free blocks of different sizes lie side by side on a base
plate; a target pad marks where the stack has to be built. Task: the largest block centred on the
pad, each next one on the previous, all at rest; the oracle carries them there one by one."""

import random

from build123d import Align, Box, Pos
from benchgen_assets.scene import CarryPart, Part, PartAtRest, Scene, Settle, Site, SiteInBox, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
DROP_MM = 0.5
PAD_T = 2.0
PLACE_ABOVE_MM = 3.0  # the oracle lets go this far above the support: a held block is not yet "stacked"
LIFT_CLEARANCE_MM = 10.0
COLORS = [(0.85, 0.3, 0.25, 1.0), (0.25, 0.55, 0.85, 1.0), (0.3, 0.75, 0.35, 1.0), (0.9, 0.75, 0.2, 1.0)]


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    count = rng.randint(2, 4)
    plate_t = rng.uniform(4.0, 8.0) * sz
    gap = rng.uniform(10.0, 25.0) * sx
    sizes = [(rng.uniform(25.0, 50.0) * sx, rng.uniform(25.0, 50.0) * sy, rng.uniform(15.0, 35.0) * sz)
             for _ in range(count)]
    sizes.sort(key=lambda s: -s[0] * s[1])  # biggest first: the natural base of the stack
    row = sum(s[0] for s in sizes) + gap * (count - 1)
    pad_size = (max(s[0] for s in sizes) + 10.0 * sx, max(s[1] for s in sizes) + 10.0 * sy)
    margin = 15.0
    plate_len = row + pad_size[0] + gap + 2 * margin
    plate_w = max(s[1] for s in sizes) + 2 * margin + 10.0 * sy
    plate = Box(plate_len, plate_w, plate_t, align=BOTTOM)
    pad_x = plate_len / 2 - margin - pad_size[0] / 2
    pad = Pos(pad_x, 0, plate_t) * Box(pad_size[0], pad_size[1], PAD_T, align=BOTTOM)

    parts = [
        Part("base_plate", plate, role="fixture", joint="fixed", rgba=(0.45, 0.45, 0.5, 1.0)),
        Part("target_pad", pad, role="target", joint="fixed", rgba=(0.2, 0.8, 0.3, 0.6)),
    ]
    pad_top = plate_t + PAD_T
    sites = [Site("pad_top", "target_pad", (pad_x, 0.0, pad_top))]
    goal, oracle = [], []
    stack_top = pad_top + sum(s[2] for s in sizes)
    support, support_size, support_z = "pad_top", pad_size, pad_top
    x = -plate_len / 2 + margin
    for i, (bx, by, bz) in enumerate(sizes):
        y = rng.uniform(-1.0, 1.0) * (plate_w / 2 - margin - by / 2)
        name = f"block_{i + 1}"
        cx, z0 = x + bx / 2, plate_t + DROP_MM
        block = Pos(cx, y, z0) * Box(bx, by, bz, align=BOTTOM)
        parts.append(Part(name, block, role="object", joint="free", density_kg_m3=650.0, rgba=COLORS[i]))
        sites += [Site(f"{name}_bottom", name, (cx, y, z0)), Site(f"{name}_top", name, (cx, y, z0 + bz))]
        # centred on its support within a fifth of the support's smaller side, resting on it
        side = max(3.0, 0.2 * min(support_size))
        goal += [SiteInBox(f"{name}_bottom", support, (-side, -side, -1.0), (side, side, 1.0)), PartAtRest(name)]
        lift = stack_top + LIFT_CLEARANCE_MM - z0  # over every block, stacked or not
        oracle += [CarryPart(name, [(0.0, 0.0, lift), (pad_x - cx, -y, lift),
                                    (pad_x - cx, -y, support_z + PLACE_ABOVE_MM - z0)], duration_s=2.5),
                   Settle(0.3)]
        support, support_size, support_z = f"{name}_top", (bx, by), support_z + bz
        x += bx + gap

    return Scene(
        name="block_stacking",
        description=f"Stack the {count} blocks on the green target pad, largest at the bottom.",
        parts=parts,
        parameters={"block_count": count, "block_sizes_mm": [[round(v, 3) for v in s] for s in sizes],
                    "gap_mm": round(gap, 3), "plate_thickness_mm": round(plate_t, 3),
                    "pad_mm": [round(v, 3) for v in pad_size]},
        task=Task(instruction=f"Stack the {count} blocks on the green target pad, largest at the bottom.",
                  goal=goal, oracle=oracle, time_limit_s=3.0 * count + 3.0),
        sites=sites,
    )
