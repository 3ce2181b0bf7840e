"""Validation 4: does the scene stay put for one simulated second?

Policy (what "stable" means here):
- the scene starts from keyframe 0 if it has one, else from the compiled initial state;
- any MuJoCo warning during the run fails it (instability, bad qpos/qvel/qacc, contact or
  constraint buffer overflow …), and so does a non-finite qpos/qvel at any step;
- parts may drop a few millimetres onto their supports, so velocities are judged only after a
  short settling window (``settle_s``): max |qvel| over [settle_s, seconds] must stay below
  ``max_velocity`` (m/s for translations, rad/s for rotations, joint units for hinge/slide);
  over the whole run |qvel| must stay below ``max_peak_velocity`` (catches explosions that
  calm down again);
- the deepest contact penetration (-dist) at any step must stay below ``max_penetration_m``
  (catches parts built inside each other and parts sinking/tunnelling).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import mujoco
import numpy as np
from pydantic import BaseModel, Field

_NON_FINITE_WARNINGS = {"mjWARN_BADQPOS", "mjWARN_BADQVEL", "mjWARN_BADQACC"}


class StabilityResult(BaseModel):
    passed: bool
    max_velocity: float = 0.0  # max |qvel| after the settling window
    peak_velocity: float = 0.0  # max |qvel| over the whole run
    max_penetration_m: float = 0.0
    warnings: list[str] = Field(default_factory=list)
    finite: bool = True
    message: str = ""
    simulated_s: float = 0.0
    settle_s: float = 0.0
    worst_dof: Optional[str] = None  # the joint whose velocity was largest after settling


def stability_check(xml_path: Path, *, seconds: float = 1.0, max_velocity: float = 0.5, max_peak_velocity: float = 3.0,
                    max_penetration_m: float = 0.003, settle_s: float = 0.2,
                    model: Optional[mujoco.MjModel] = None) -> StabilityResult:
    """``model``: ``xml_path`` already compiled (the validator compiles each scene once); it is not changed."""
    model = model if model is not None else mujoco.MjModel.from_xml_path(str(xml_path))
    data = mujoco.MjData(model)
    if model.nkey > 0:
        mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)

    steps = max(1, int(round(seconds / model.opt.timestep)))
    settle_steps = int(round(settle_s / model.opt.timestep))
    settled_max, peak, deepest, worst_dof_index, finite = 0.0, 0.0, _penetration(data), None, True
    for step in range(steps):
        mujoco.mj_step(model, data)
        if not (np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all()):
            finite = False
            break
        speeds = np.abs(data.qvel)
        if speeds.size:
            top = float(speeds.max())
            peak = max(peak, top)
            if step >= settle_steps and top > settled_max:
                settled_max, worst_dof_index = top, int(speeds.argmax())
        deepest = max(deepest, _penetration(data))

    warnings = [f"{mujoco.mjtWarning(i).name}: {int(stat.number)}× (last info {int(stat.lastinfo)})"
                for i, stat in enumerate(data.warning) if stat.number > 0]
    finite = finite and not any(w.split(":")[0] in _NON_FINITE_WARNINGS for w in warnings)
    worst_dof = _dof_name(model, worst_dof_index) if worst_dof_index is not None else None

    reasons = []
    if not finite:
        reasons.append("state became non-finite or diverged (simulation blew up)")
    if warnings:
        reasons.append("MuJoCo warnings: " + "; ".join(warnings))
    if settled_max > max_velocity:
        reasons.append(f"still moving after {settle_s:g} s: |qvel| {settled_max:.3g} > {max_velocity:g} (dof {worst_dof})")
    if peak > max_peak_velocity:
        reasons.append(f"peak |qvel| {peak:.3g} > {max_peak_velocity:g}")
    if deepest > max_penetration_m:
        reasons.append(f"penetration {deepest * 1000:.2f} mm > {max_penetration_m * 1000:.2f} mm")
    return StabilityResult(passed=not reasons, max_velocity=settled_max, peak_velocity=peak, max_penetration_m=deepest,
                           warnings=warnings, finite=finite, message="; ".join(reasons) or "stable",
                           simulated_s=float(data.time), settle_s=settle_s, worst_dof=worst_dof)


def _penetration(data: mujoco.MjData) -> float:
    if data.ncon == 0:
        return 0.0
    depth = -float(np.min(data.contact.dist[: data.ncon]))
    return depth if np.isfinite(depth) else float("inf")


def _dof_name(model: mujoco.MjModel, dof: int) -> str:
    joint = int(model.dof_jntid[dof])
    name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, joint) or f"joint{joint}"
    return f"{name}[{dof - int(model.jnt_dofadr[joint])}]"
