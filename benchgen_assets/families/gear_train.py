"""Tier 3 — gear train: two or three spur gears with involute teeth lie flat on vertical axles above
a base plate, meshing in a row. Turning the input gear (by its knob) turns the others; the task is
to turn the output gear by at least a drawn angle."""

import math
import random

from build123d import Align, Box, Cylinder, Polygon, Pos, extrude
from benchgen_assets.scene import DriveJoint, JointAtLeast, JointCoupling, Part, Scene, Settle, Site, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
PRESSURE_ANGLE = math.radians(20.0)
BACKLASH = 0.04  # share of the tooth pitch left free between meshing teeth
GAP_MM = 1.0  # between a gear and its axle post
FLANK_POINTS = 5
COLORS = [(0.85, 0.55, 0.2, 1.0), (0.3, 0.55, 0.8, 1.0), (0.4, 0.7, 0.35, 1.0)]


def _involute(angle: float) -> float:
    return math.tan(angle) - angle


def gear_outline(teeth: int, module: float, phase: float) -> list[tuple[float, float]]:
    """Involute spur-gear outline (counter-clockwise), centred on the origin; tooth k is centred at
    angle ``phase + 2πk/teeth``."""
    pitch_r = module * teeth / 2
    base_r = pitch_r * math.cos(PRESSURE_ANGLE)
    tip_r = pitch_r + module
    root_r = pitch_r - 1.25 * module
    # half the tooth's angular thickness at the pitch circle, then along the involute to radius r
    half_pitch = (math.pi / 2 - BACKLASH * math.pi) / teeth
    inv_pitch = _involute(PRESSURE_ANGLE)

    def half_width(r: float) -> float:
        return half_pitch + inv_pitch - _involute(math.acos(min(1.0, base_r / r)))

    start = max(base_r, root_r)
    radii = [start + (tip_r - start) * i / (FLANK_POINTS - 1) for i in range(FLANK_POINTS)]
    flank = [(r, half_width(r)) for r in radii]
    if root_r < base_r:  # radial flank below the base circle
        flank.insert(0, (root_r, half_width(base_r)))
    points = []
    for k in range(teeth):
        centre = phase + 2 * math.pi * k / teeth
        rising = [(r, centre - w) for r, w in flank]
        falling = [(r, centre + w) for r, w in reversed(flank)]
        points += [(r * math.cos(a), r * math.sin(a)) for r, a in rising + falling]
    return points


def _tooth_phase(gear_phase: float, teeth: int, direction: float) -> float:
    """Where along its tooth pitch a gear is at ``direction`` (0: a tooth centre, 0.5: a gap centre)."""
    return ((direction - gear_phase) / (2 * math.pi / teeth)) % 1.0


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    s_plane = math.sqrt(sx * sy)  # gears stay round: a non-uniform scale stretches the plate, not the teeth
    count = rng.choice([2, 3])
    module = rng.uniform(1.6, 2.6) * s_plane
    teeth = [rng.randint(12, 30) for _ in range(count)]
    thickness = rng.uniform(7.0, 12.0) * sz
    plate_t = rng.uniform(5.0, 8.0) * sz
    post_h = rng.uniform(6.0, 12.0) * sz
    goal_deg = rng.uniform(60.0, 150.0)
    margin_x, margin_y = rng.uniform(12.0, 20.0) * sx, rng.uniform(12.0, 20.0) * sy

    pitch_r = [module * z / 2 for z in teeth]
    tip_r = [r + module for r in pitch_r]
    centres = [0.0]
    for i in range(1, count):
        centres.append(centres[-1] + pitch_r[i - 1] + pitch_r[i])
    shift = (centres[0] - tip_r[0] + centres[-1] + tip_r[-1]) / 2
    centres = [c - shift for c in centres]

    plate_len = centres[-1] + tip_r[-1] - (centres[0] - tip_r[0]) + 2 * margin_x
    plate_w = 2 * max(tip_r) + 2 * margin_y
    gear_z = plate_t + post_h + GAP_MM
    plate = Box(plate_len, plate_w, plate_t, align=BOTTOM)
    for c in centres:  # axle posts under the gears
        plate += Pos(c, 0, plate_t) * Cylinder(max(3.0, module * 2.5), post_h, align=BOTTOM)

    parts = [Part("base", plate, role="fixture", joint="fixed", rgba=(0.4, 0.4, 0.45, 1.0))]
    sites = []
    # Teeth of neighbours interleave where they meet on the x axis: gear i faces +x (angle 0),
    # gear i+1 faces it at angle π, and meshing needs their tooth phases there to sum to ½.
    phase = rng.uniform(0.0, 2 * math.pi / teeth[0])
    knob_r = max(3.0, module * 1.5)
    for i in range(count):
        if i > 0:
            facing = _tooth_phase(prev_phase, teeth[i - 1], 0.0)
            phase = math.pi - ((0.5 - facing) % 1.0) * (2 * math.pi / teeth[i])
        prev_phase = phase
        gear = Pos(centres[i], 0, gear_z) * extrude(Polygon(*gear_outline(teeth[i], module, phase), align=None),
                                                    amount=thickness)
        hub_r = max(4.0, module * 3.0)
        gear += Pos(centres[i], 0, gear_z + thickness) * Cylinder(hub_r, 3.0 * sz, align=BOTTOM)
        if i == 0:  # the input gear's knob, off the axle, to turn it by
            knob_at = (centres[0] + 0.6 * (pitch_r[0] - 1.25 * module), 0.0)
            gear += Pos(knob_at[0], knob_at[1], gear_z + thickness) * Cylinder(knob_r, 14.0 * sz, align=BOTTOM)
            sites.append(Site("input_knob", "gear_1", (knob_at[0], knob_at[1], gear_z + thickness + 14.0 * sz)))
        parts.append(Part(f"gear_{i + 1}", gear, role="link", joint="hinge", parent="base",
                          joint_axis=(0.0, 0.0, 1.0), joint_pos_mm=(centres[i], 0.0, gear_z),
                          density_kg_m3=2700.0, rgba=COLORS[i]))

    # q(gear i+1) = -r_i / r_(i+1) × q(gear i): the output turns by the product of the ratios
    couplings = [JointCoupling(f"gear_{i}", f"gear_{i + 1}", -pitch_r[i - 1] / pitch_r[i]) for i in range(1, count)]
    total_ratio = 1.0
    for coupling in couplings:
        total_ratio *= coupling.ratio
    goal = math.radians(goal_deg)
    # drive the input past the goal by a third of it, so the output clears its threshold with room to spare
    input_target = goal * 4 / 3 / total_ratio
    for i, part in enumerate(parts[1:]):
        reach = abs(input_target * (pitch_r[0] / pitch_r[i]))
        part.joint_range = (-(reach + math.pi), reach + math.pi)
    output = f"gear_{count}"
    direction = "counter-clockwise" if total_ratio > 0 else "clockwise"
    task = Task(
        instruction=(f"Turn the input gear by its knob ({direction} seen from above) until the output gear "
                     f"has turned at least {goal_deg:.0f}° counter-clockwise."),
        goal=[JointAtLeast(output, goal)],
        oracle=[DriveJoint("gear_1", input_target, duration_s=2.5), Settle(0.5)],
        time_limit_s=10.0,
    )
    return Scene(
        name="gear_train",
        description=(f"A train of {count} meshing spur gears ({' : '.join(str(z) for z in teeth)} teeth); "
                     f"turn the input gear to turn the output gear ≥ {goal_deg:.0f}°."),
        parts=parts,
        sites=sites,
        couplings=couplings,
        task=task,
        parameters={"gear_count": count, "teeth": teeth, "module_mm": round(module, 3),
                    "pitch_radii_mm": [round(r, 3) for r in pitch_r], "thickness_mm": round(thickness, 3),
                    "total_ratio": round(total_ratio, 6), "goal_output_deg": round(goal_deg, 3),
                    "input_target_rad": round(input_target, 6)},
    )
