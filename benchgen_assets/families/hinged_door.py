"""Tier 2 — hinged door: an upright frame on a foot, and a door panel with a handle that swings
out of the frame's opening on a vertical hinge at one side. Task: open the door to at least a set
angle; the oracle drives the hinge past it."""

import math
import random

from build123d import Align, Box, Pos
from benchgen_assets.scene import DriveJoint, JointAtLeast, JointAtMost, Part, Scene, Settle, Task

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)
GAP_MM = 1.5  # between the door and the frame opening
SWING_MARGIN_MM = 0.3  # the door's back free corner passes the far jamb this close at the most
GOAL_FRACTION = 0.6  # of the opening range: the door counts as open from here
ORACLE_FRACTION = 0.85


def build(seed: int, scale: tuple[float, float, float]) -> Scene:
    rng = random.Random(seed)
    sx, sy, sz = scale
    open_w = rng.uniform(80.0, 140.0) * sx
    open_h = rng.uniform(100.0, 180.0) * sz
    bar = rng.uniform(10.0, 18.0)
    depth = rng.uniform(20.0, 35.0) * sy
    foot_h = rng.uniform(6.0, 10.0) * sz
    foot_d = depth + rng.uniform(60.0, 100.0) * sy
    hinge_left = rng.random() < 0.5
    max_open = math.radians(rng.uniform(90.0, 120.0))

    frame_w = open_w + 2 * bar * sx
    frame_h = open_h + 2 * bar * sz
    frame = Box(frame_w + 40.0 * sx, foot_d, foot_h, align=BOTTOM)
    frame += Pos(0, 0, foot_h) * (Box(frame_w, depth, frame_h, align=BOTTOM)
                                  - Pos(0, 0, bar * sz) * Box(open_w, depth + 2.0, open_h, align=BOTTOM))

    door_w = open_w - 2 * GAP_MM
    door_h = open_h - 2 * GAP_MM
    # The door turns about its front edge, so its back free corner swings out to sqrt(w² + t²) from
    # the hinge: a door thicker than this would jam against the far jamb as it starts to open.
    door_t = min(depth * rng.uniform(0.4, 0.7), math.sqrt((door_w + GAP_MM - SWING_MARGIN_MM) ** 2 - door_w ** 2))
    door_bottom = foot_h + bar * sz + GAP_MM
    # flush with the frame's front face: past 90° the door swings over that face instead of into the jamb
    door_y = depth / 2 - door_t / 2
    door = Pos(0, door_y, door_bottom) * Box(door_w, door_t, door_h, align=BOTTOM)
    side = -1 if hinge_left else 1  # the hinge side
    handle_x = -side * (door_w / 2 - rng.uniform(12.0, 20.0) * sx)
    handle_len = min(30.0 * sz, door_h / 3)
    door += Pos(handle_x, depth / 2, door_bottom + door_h / 2) * Box(8.0, 12.0, handle_len,
                                                                     align=(Align.CENTER, Align.MIN, Align.CENTER))

    # The hinge runs along the door's outer edge on the front face; opening swings the free edge to +y,
    # which is a positive angle about +z for a left hinge and a negative one for a right hinge.
    hinge = (side * door_w / 2, depth / 2, door_bottom)
    swing = (0.0, max_open) if hinge_left else (-max_open, 0.0)
    goal_angle = GOAL_FRACTION * max_open
    goal = JointAtLeast("door", goal_angle) if hinge_left else JointAtMost("door", -goal_angle)
    task = Task(instruction=f"Open the door by its handle to at least {math.degrees(goal_angle):.0f}°.",
                goal=[goal],
                oracle=[DriveJoint("door", -side * ORACLE_FRACTION * max_open, duration_s=1.5), Settle(0.3)],
                time_limit_s=5.0)
    return Scene(
        name="hinged_door",
        description=(f"Open the door (hinged on the {'left' if hinge_left else 'right'}) by its handle, "
                     f"up to {math.degrees(max_open):.0f}°."),
        parts=[
            Part("frame", frame, role="fixture", joint="fixed", rgba=(0.5, 0.35, 0.25, 1.0)),
            Part("door", door, role="link", joint="hinge", parent="frame", joint_axis=(0.0, 0.0, 1.0),
                 joint_pos_mm=hinge, joint_range=swing, density_kg_m3=600.0, rgba=(0.85, 0.75, 0.55, 1.0)),
        ],
        parameters={"opening_mm": [round(open_w, 3), round(open_h, 3)], "frame_depth_mm": round(depth, 3),
                    "door_thickness_mm": round(door_t, 3), "hinge_side": "left" if hinge_left else "right",
                    "max_open_deg": round(math.degrees(max_open), 3),
                    "goal_open_deg": round(math.degrees(goal_angle), 3)},
        task=task,
    )
