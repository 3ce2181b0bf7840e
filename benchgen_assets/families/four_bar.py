"""Tier 3 — four-bar linkage: a crank and a rocker on vertical pivots of a fixed base, joined by a
coupler whose far pin closes the loop. Grashof proportions make the crank turn fully while the
rocker swings; the task is to turn the crank until the rocker has swung by a drawn angle.

The linkage lies flat (vertical pivot axes), so gravity puts no torque on it and it stands still
wherever it is built; the links sit in layers so they never touch through the motion: crank and
rocker in the lower layer (their pivots far enough apart that their swept discs never meet), the
coupler above them, the base's pivot posts below them."""

import math
import random

from build123d import Align, Box, Cylinder, Pos, Rot, SlotCenterToCenter, extrude
from benchgen_assets.scene import DriveJoint, JointAtLeast, Part, PinConnection, Scene, Settle, Site, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
GAP_MM = 1.0  # between layers, and between a link and the post under it
SAMPLES = 1440  # crank angles at which the loop is solved to find the rocker's extremes


def rocker_tip(crank: float, a: float, b: float, c: float, d: float) -> tuple[float, float]:
    """The coupler–rocker pin for crank angle ``crank`` (crank pivot at the origin, rocker pivot at
    (d, 0)), on the open branch (the pin above the line from the crank pin to the rocker pivot)."""
    px, py = a * math.cos(crank), a * math.sin(crank)
    dx, dy = d - px, -py
    dist = math.hypot(dx, dy)
    along = (b * b - c * c + dist * dist) / (2 * dist)
    up = math.sqrt(max(0.0, b * b - along * along))
    ux, uy = dx / dist, dy / dist
    return px + along * ux - up * uy, py + along * uy + up * ux


def link(length: float, width: float, thickness: float, x: float, y: float, z: float, angle: float):
    """A flat link with rounded ends, from pivot (x, y) along ``angle`` (rad), bottom at z."""
    slot = extrude(SlotCenterToCenter(length, width), amount=thickness)
    return Pos(x, y, z) * Rot(0, 0, math.degrees(angle)) * Pos(length / 2, 0, 0) * slot


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    s_plane = math.sqrt(sx * sy)  # link lengths must keep the Grashof proportions, so they scale together
    width = rng.uniform(8.0, 12.0) * s_plane
    a = rng.uniform(18.0, 30.0) * s_plane  # crank, the shortest link
    c = rng.uniform(40.0, 60.0) * s_plane  # rocker
    # ground: long enough that the crank's and rocker's swept discs stay apart in their shared layer
    d = a + c + width + rng.uniform(6.0, 20.0) * s_plane
    # coupler: inside the Grashof crank-rocker window (a + d <= b + c and a + b <= c + d), away from its edges
    b_lo, b_hi = a + d - c, c + d - a
    b = b_lo + (b_hi - b_lo) * rng.uniform(0.35, 0.65)
    thickness = rng.uniform(4.0, 7.0) * sz
    plate_t = rng.uniform(5.0, 8.0) * sz
    post_h = rng.uniform(6.0, 12.0) * sz
    goal_share = rng.uniform(0.6, 0.8)

    # rocker angles relative to its direction at crank angle 0, wrapped: the swing is under π, so no jumps
    angles = [math.atan2(y, x - d) for x, y in (rocker_tip(2 * math.pi * i / SAMPLES, a, b, c, d) for i in range(SAMPLES))]
    swing = [angles[0] + (t - angles[0] + math.pi) % (2 * math.pi) - math.pi for t in angles]
    i_min = min(range(SAMPLES), key=lambda i: swing[i])
    i_max = max(range(SAMPLES), key=lambda i: swing[i])
    crank0 = 2 * math.pi * i_min / SAMPLES  # built with the rocker at one end of its swing
    crank_turn = 2 * math.pi * ((i_max - i_min) % SAMPLES) / SAMPLES  # counter-clockwise to the other end
    rocker0 = swing[i_min]
    rocker_swing = swing[i_max] - swing[i_min]
    goal = goal_share * rocker_swing

    # world frame: the middle of the ground link at x = 0
    ax, bx = -d / 2, d / 2
    pin_c = (ax + a * math.cos(crank0), a * math.sin(crank0))
    tx, ty = rocker_tip(crank0, a, b, c, d)
    pin_r = (ax + tx, ty)
    coupler_angle = math.atan2(pin_r[1] - pin_c[1], pin_r[0] - pin_c[0])

    # the base spans everything the links sweep (the coupler stays between its two pins), plus a margin per axis
    reach_y = max(a, c) + width
    plate_len = d + a + c + 2 * width + 2 * rng.uniform(10.0, 20.0) * sx
    plate_w = 2 * reach_y + 2 * rng.uniform(10.0, 20.0) * sy
    base = Box(plate_len, plate_w, plate_t, align=BOTTOM)
    for px in (ax, bx):
        base += Pos(px, 0, plate_t) * Cylinder(width * 0.45, post_h, align=BOTTOM)

    z1 = plate_t + post_h + GAP_MM  # crank and rocker
    z2 = z1 + thickness + GAP_MM  # coupler
    crank = link(a, width, thickness, ax, 0.0, z1, crank0)
    rocker = link(c, width, thickness, bx, 0.0, z1, rocker0)
    coupler = link(b, width, thickness, pin_c[0], pin_c[1], z2, coupler_angle)
    rocker_end = (bx + c * math.cos(rocker0), c * math.sin(rocker0), z1 + thickness)

    parts = [
        Part("base", base, role="fixture", joint="fixed", rgba=(0.4, 0.4, 0.45, 1.0)),
        Part("crank", crank, role="link", joint="hinge", parent="base", joint_axis=(0.0, 0.0, 1.0),
             joint_pos_mm=(ax, 0.0, z1), joint_range=(-2 * math.pi, 2 * math.pi + crank_turn),
             density_kg_m3=7800.0, rgba=(0.85, 0.45, 0.2, 1.0)),  # steel: even small links weigh grams
        Part("coupler", coupler, role="link", joint="hinge", parent="crank", joint_axis=(0.0, 0.0, 1.0),
             joint_pos_mm=(pin_c[0], pin_c[1], z2), joint_range=(-2 * math.pi, 2 * math.pi),
             density_kg_m3=7800.0, rgba=(0.3, 0.55, 0.8, 1.0)),
        Part("rocker", rocker, role="link", joint="hinge", parent="base", joint_axis=(0.0, 0.0, 1.0),
             joint_pos_mm=(bx, 0.0, z1), joint_range=(-0.3, rocker_swing + 0.3),
             density_kg_m3=7800.0, rgba=(0.4, 0.7, 0.35, 1.0)),
    ]
    task = Task(
        instruction=(f"Turn the crank counter-clockwise (seen from above) until the rocker has swung at least "
                     f"{math.degrees(goal):.0f}°."),
        goal=[JointAtLeast("rocker", goal)],
        oracle=[DriveJoint("crank", crank_turn, duration_s=2.5), Settle(0.5)],
        time_limit_s=10.0,
    )
    return Scene(
        name="four_bar",
        description=(f"A crank-rocker four-bar linkage (links {a:.0f}, {b:.0f}, {c:.0f} mm on a {d:.0f} mm ground); "
                     f"turn the crank until the rocker swings ≥ {math.degrees(goal):.0f}°."),
        parts=parts,
        # no handle on the crank: the coupler passes over it, one layer up
        sites=[Site("crank_grip", "crank", (ax + 0.5 * a * math.cos(crank0), 0.5 * a * math.sin(crank0), z1 + thickness)),
               Site("rocker_tip", "rocker", rocker_end)],
        pins=[PinConnection("coupler", "rocker", (pin_r[0], pin_r[1], z2))],
        task=task,
        parameters={"crank_mm": round(a, 3), "coupler_mm": round(b, 3), "rocker_mm": round(c, 3),
                    "ground_mm": round(d, 3), "link_width_mm": round(width, 3), "link_thickness_mm": round(thickness, 3),
                    "crank_start_deg": round(math.degrees(crank0), 3),
                    "rocker_swing_deg": round(math.degrees(rocker_swing), 3), "crank_turn_deg": round(math.degrees(crank_turn), 3),
                    "goal_rocker_deg": round(math.degrees(goal), 3)},
    )
