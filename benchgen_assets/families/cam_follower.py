"""Tier 3 — cam and follower: a pear-shaped cam on a horizontal axle in front of an upright stand, and
a flat-footed follower on a vertical slide resting on it by gravity. Turning the cam half a turn
brings its lobe up under the follower and lifts it; the task is to lift the follower by a drawn height.

The cam is built with its lobe hanging straight down (its centre of mass under the axle) and the
follower on its round top (the contact normal through the axle), so the scene is at rest as built."""

import math
import random

from build123d import Align, Box, Cylinder, Polygon, Pos, Rot, extrude
from benchgen_assets.scene import DriveJoint, JointAtLeast, Part, Scene, Settle, Site, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
GAP_MM = 1.0  # between the moving parts and the stand / base
DROP_MM = 0.3  # the follower starts this far above the cam and settles onto it


def cam_profile(base_r: float, lobe_r: float, offset: float, thickness: float):
    """The convex hull of the base circle (centre at the origin) and the lobe circle (centre ``offset``
    below it) in the xy plane, extruded along +z; the lobe points to -y."""
    # outer tangent lines of the two circles touch both at the same normal angle off the centre line
    off_axis = math.acos((base_r - lobe_r) / offset)
    normals = [(math.sin(sign * off_axis), -math.cos(sign * off_axis)) for sign in (1, -1)]
    quad = [(n[0] * base_r, n[1] * base_r) for n in normals]
    quad = [quad[0], (normals[0][0] * lobe_r, -offset + normals[0][1] * lobe_r),
            (normals[1][0] * lobe_r, -offset + normals[1][1] * lobe_r), quad[1]]
    cam = Cylinder(base_r, thickness, align=BOTTOM) + Pos(0, -offset, 0) * Cylinder(lobe_r, thickness, align=BOTTOM)
    return cam + extrude(Polygon(*reversed(quad), align=None), amount=thickness)  # counter-clockwise: extrudes to +z


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    s_round = math.sqrt(sx * sz)  # the cam lies in the xz plane and stays round
    base_r = rng.uniform(20.0, 32.0) * s_round
    lobe_r = rng.uniform(0.35, 0.55) * base_r
    lift = rng.uniform(0.3, 0.6) * base_r
    offset = lift + base_r - lobe_r  # lobe tip = offset + lobe_r = base_r + lift from the axle
    cam_t = rng.uniform(10.0, 16.0) * sy
    plate_t = rng.uniform(5.0, 8.0) * sz
    clearance = rng.uniform(5.0, 12.0) * sz  # under the cam's lobe, above the base plate
    goal_share = rng.uniform(0.6, 0.8)
    foot_t = rng.uniform(4.0, 7.0) * sz
    rod_w = rng.uniform(8.0, 12.0) * sx
    rod_h = rng.uniform(40.0, 70.0) * sz

    axle_z = plate_t + clearance + offset + lobe_r
    stand_t = rng.uniform(8.0, 14.0) * sy
    stand_w = 2 * base_r + rng.uniform(20.0, 40.0) * sx
    stand_h = axle_z + base_r + rng.uniform(10.0, 25.0) * sz
    cam_front = -GAP_MM - cam_t  # the stand's front face is the plane y = 0; the cam and follower are in front of it (-y)

    base_front, base_back = cam_front - 30.0 * sy, stand_t + 10.0 * sy
    base = Pos(0, (base_back + base_front) / 2, 0) * Box(stand_w + 40.0 * sx, base_back - base_front, plate_t, align=BOTTOM)
    stand = Pos(0, stand_t / 2, plate_t) * Box(stand_w, stand_t, stand_h - plate_t, align=BOTTOM)

    # the cam: profile in xy (lobe to -y), turned so the lobe hangs down and the disc faces -y; no knob
    # on it, so it stays convex and collides as its exact shape (a decomposed cam would bump the follower)
    cam = Pos(0, -GAP_MM, axle_z) * Rot(90, 0, 0) * cam_profile(base_r, lobe_r, offset, cam_t)

    foot_w = 2 * base_r + 10.0 * sx  # wider than the cam: the contact wanders sideways as the lobe passes
    foot_z = axle_z + base_r + DROP_MM
    follower = Pos(0, cam_front + cam_t / 2, foot_z) * Box(foot_w, cam_t, foot_t, align=BOTTOM)
    follower += Pos(0, cam_front + cam_t / 2, foot_z + foot_t) * Box(rod_w, cam_t, rod_h, align=BOTTOM)

    goal = goal_share * lift
    task = Task(
        instruction=f"Turn the cam on its axle until the follower has risen at least {goal:.0f} mm.",
        goal=[JointAtLeast("follower", goal)],
        oracle=[DriveJoint("cam", math.pi, duration_s=2.5), Settle(0.5)],
        time_limit_s=10.0,
    )
    return Scene(
        name="cam_follower",
        description=(f"A pear-shaped cam (base radius {base_r:.0f} mm, lift {lift:.0f} mm) under a flat-footed "
                     f"follower on a vertical slide; turn the cam to raise the follower ≥ {goal:.0f} mm."),
        parts=[
            Part("base", base, role="fixture", joint="fixed", rgba=(0.4, 0.4, 0.45, 1.0)),
            Part("stand", stand, role="fixture", joint="fixed", rgba=(0.5, 0.5, 0.55, 1.0)),
            Part("cam", cam, role="link", joint="hinge", parent="stand", joint_axis=(0.0, 1.0, 0.0),
                 joint_pos_mm=(0.0, cam_front, axle_z), joint_range=(-2 * math.pi, 2 * math.pi),
                 density_kg_m3=2700.0, rgba=(0.85, 0.45, 0.2, 1.0)),
            # gravity holds the follower on the cam; it can rise a little past the lobe's tip
            Part("follower", follower, role="link", joint="slide", parent="stand", joint_axis=(0.0, 0.0, 1.0),
                 joint_pos_mm=(0.0, cam_front + cam_t / 2, foot_z), joint_range=(-DROP_MM - 2.0, lift + 5.0),
                 density_kg_m3=2700.0, rgba=(0.3, 0.55, 0.8, 1.0)),
        ],
        sites=[Site("cam_face", "cam", (0.0, cam_front, axle_z)),
               Site("follower_top", "follower", (0.0, cam_front + cam_t / 2, foot_z + foot_t + rod_h))],
        task=task,
        parameters={"base_radius_mm": round(base_r, 3), "lobe_radius_mm": round(lobe_r, 3),
                    "lobe_offset_mm": round(offset, 3), "lift_mm": round(lift, 3), "cam_thickness_mm": round(cam_t, 3),
                    "axle_height_mm": round(axle_z, 3), "goal_rise_mm": round(goal, 3)},
    )
