"""Kinematic sweep of every hinge/slide joint over its range: what would block the part on the way.

Each joint is set step by step from its built value (0) to each end of its range, the others held
as built (a coupled follower moved with it), and collision detection runs at every step. A contact
between the moving part (with what it carries) and the fixed scene (fixtures, the table) that
sinks deeper than ``tolerance_mm`` blocks the joint there. Contacts with other movable parts are
the mechanism's intended interactions (a latch holding a lid, a load on a beam) and are left to
the oracle; so are contacts already present as built (a latch resting on its stop).
Plain Python over MuJoCo, no Dagster.
"""

from __future__ import annotations

from typing import Literal

import mujoco
import numpy as np
from pydantic import BaseModel

MM = 0.001
MAX_STEP_MM = 0.5  # the farthest any point of the moving part travels between two collision checks
# MuJoCo's enums as plain ints: the model's type arrays hold ints, which pybind enums do not equal
_HINGE, _SLIDE = int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)
_EQ_JOINT, _EQ_CONNECT = int(mujoco.mjtEq.mjEQ_JOINT), int(mujoco.mjtEq.mjEQ_CONNECT)


class JointBlock(BaseModel):
    """The first place a joint's sweep runs a part into the fixed scene."""

    part: str  # the body the joint moves
    joint: str
    kind: Literal["hinge", "slide"]
    direction: Literal["low", "high"]  # towards which end of its range
    at: float  # joint value where the collision starts: rad (hinge) or mm (slide)
    limit: float  # the end of the range it was heading for, same unit
    geoms: tuple[str, str]  # (moving geom, fixed geom)
    depth_mm: float


class JointSweep(BaseModel):
    swept: list[str]  # joint names
    skipped: dict[str, str] = {}  # joint → why it was not swept
    blocks: list[JointBlock] = []

    @property
    def passed(self) -> bool:
        return not self.blocks

    def message(self) -> str:
        return "; ".join(
            f"{b.part} ({b.kind}) runs into {b.geoms[1]} at {_fmt(b.at, b.kind)} on its way to {_fmt(b.limit, b.kind)} "
            f"({b.depth_mm:.1f} mm deep)" for b in self.blocks) or "ok"


def sweep_joints(model: mujoco.MjModel, *, tolerance_mm: float = 0.2) -> JointSweep:
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    fixed_body = model.body_weldid == 0  # welded to the world: fixtures and the table
    followers = _joint_followers(model)
    looped = _bodies_in_loops(model)
    result = JointSweep(swept=[])
    for j in range(model.njnt):
        if model.jnt_type[j] not in (_HINGE, _SLIDE):
            continue
        name = model.joint(j).name
        body = int(model.jnt_bodyid[j])
        if body in looped:
            result.skipped[name] = "closes a kinematic loop (a connect equality): moved only by the oracle"
            continue
        if not model.jnt_limited[j]:
            result.skipped[name] = "no range"
            continue
        moving = _subtree(model, body)
        for f, _ratio in followers[j]:
            moving |= _subtree(model, int(model.jnt_bodyid[f]))
        start = _touching(model, data, moving, fixed_body)  # as built: intended resting contacts
        result.swept.append(name)
        lo, hi = model.jnt_range[j]
        for direction, end in (("low", lo), ("high", hi)):
            block = _sweep_one(model, j, followers[j], moving, fixed_body, start, float(end), tolerance_mm)
            if block is not None:
                result.blocks.append(block.model_copy(update={"direction": direction}))
    return result


def _sweep_one(model, j, followers, moving, fixed_body, start, end, tolerance_mm) -> JointBlock | None:
    data = mujoco.MjData(model)
    q0 = data.qpos.copy()
    adr = model.jnt_qposadr[j]
    slide = model.jnt_type[j] == _SLIDE
    reach = 1.0 if slide else max(_radius(model, data, j, moving), MM)  # metres moved per unit of q
    steps = max(1, int(np.ceil(abs(end - q0[adr]) * reach / (MAX_STEP_MM * MM))))
    for q in np.linspace(q0[adr], end, steps + 1)[1:]:
        data.qpos[:] = q0
        data.qpos[adr] = q
        for f, ratio in followers:
            data.qpos[model.jnt_qposadr[f]] = ratio * q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_collision(model, data)
        for c in data.contact[:data.ncon]:
            pair = _moving_fixed(model, c.geom1, c.geom2, moving, fixed_body)
            if pair is None or -c.dist <= start.get(pair, 0.0) + tolerance_mm * MM:
                continue
            unit = 1 / MM if slide else 1.0
            return JointBlock(part=model.body(model.jnt_bodyid[j]).name, joint=model.joint(j).name,
                              kind="slide" if slide else "hinge", direction="high",
                              at=round(float(q) * unit, 4), limit=round(end * unit, 4),
                              geoms=(model.geom(pair[0]).name, model.geom(pair[1]).name),
                              depth_mm=round(float(-c.dist) / MM, 3))
    return None


def _moving_fixed(model, g1, g2, moving, fixed_body) -> tuple[int, int] | None:
    b1, b2 = model.geom_bodyid[g1], model.geom_bodyid[g2]
    if b1 in moving and fixed_body[b2]:
        return int(g1), int(g2)
    if b2 in moving and fixed_body[b1]:
        return int(g2), int(g1)
    return None


def _touching(model, data, moving, fixed_body) -> dict[tuple[int, int], float]:
    """Moving-to-fixed contacts as built and how deep they are (m): a resting contact may stay, not deepen."""
    mujoco.mj_kinematics(model, data)
    mujoco.mj_collision(model, data)
    depths: dict[tuple[int, int], float] = {}
    for c in data.contact[:data.ncon]:
        pair = _moving_fixed(model, c.geom1, c.geom2, moving, fixed_body)
        if pair is not None:
            depths[pair] = max(depths.get(pair, 0.0), float(-c.dist))
    return depths


def _subtree(model, body: int) -> set[int]:
    inside = {body}
    for b in range(body + 1, model.nbody):  # MuJoCo numbers bodies depth-first: children follow their parent
        if model.body_parentid[b] in inside:
            inside.add(b)
    return inside


def _radius(model, data, j, moving) -> float:
    """How far from the hinge axis the moving geoms reach (m)."""
    anchor, axis = data.xanchor[j], data.xaxis[j]
    far = 0.0
    for g in range(model.ngeom):
        if model.geom_bodyid[g] in moving:
            offset = data.geom_xpos[g] - anchor
            far = max(far, float(np.linalg.norm(offset - axis * (offset @ axis))) + float(model.geom_rbound[g]))
    return far


def _joint_followers(model) -> dict[int, list[tuple[int, float]]]:
    """Every joint → the joints coupled to it (gear trains transitively) and q(other) / q(joint)."""
    links: dict[int, list[tuple[int, float]]] = {j: [] for j in range(model.njnt)}
    for e in range(model.neq):
        ratio = float(model.eq_data[e][1])  # MuJoCo's joint equality: q1 = polycoef · (1, q2, q2², …)
        if model.eq_type[e] == _EQ_JOINT and model.eq_active0[e] and model.eq_obj2id[e] >= 0 and ratio:
            a, b = int(model.eq_obj1id[e]), int(model.eq_obj2id[e])
            links[b].append((a, ratio))
            links[a].append((b, 1 / ratio))
    followers: dict[int, list[tuple[int, float]]] = {}
    for j in links:
        seen, todo = {j: 1.0}, [j]
        while todo:
            k = todo.pop()
            for other, ratio in links[k]:
                if other not in seen:
                    seen[other] = seen[k] * ratio
                    todo.append(other)
        followers[j] = [(k, r) for k, r in seen.items() if k != j]
    return followers


def _bodies_in_loops(model) -> set[int]:
    """Bodies whose joint moves a body pinned by a connect equality (it and its ancestors): a kinematic
    sweep of one joint cannot keep that pin."""
    looped: set[int] = set()
    for e in range(model.neq):
        if model.eq_type[e] == _EQ_CONNECT and model.eq_active0[e]:
            for body in (int(model.eq_obj1id[e]), int(model.eq_obj2id[e])):
                while body > 0:
                    looped.add(body)
                    body = int(model.body_parentid[body])
    return looped


def _fmt(value: float, kind: str) -> str:
    return f"{value:g} mm" if kind == "slide" else f"{np.degrees(value):.1f}°"
