"""The scripted oracle: proves a variant's task can be solved, in MuJoCo, within its time limit.

The variant's scene.xml is loaded into an ``MjSpec`` and extended in memory only (the exported
scene stays what a policy gets): a mocap body welded to each part a ``CarryPart`` step moves
(weld off until the step grasps it) and a position servo on each joint a ``DriveJoint`` step turns.
Steps run in order; the goal is scored (``benchgen_assets.tasks.score_state``) every
``CHECK_EVERY_S`` and the run stops the first moment it holds, or at the task's time limit.

CarryPart waypoints are displacements of the part from its as-built position (scene.xml); the
path starts wherever the part is when grasped and stops at each waypoint (smoothstep per segment,
segment times proportional to their lengths). DriveJoint ramps the servo target from the joint's
current value to ``target`` (smoothstep) and holds it until the oracle ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import mujoco
import numpy as np

from benchgen_assets.records import CarryPartStep, DriveJointStep, OracleReport, OracleStepRun, TaskSpec
from benchgen_assets.tasks import MM_PER_M, describe_failures, score_state

CHECK_EVERY_S = 0.01
WELD_SOLREF = (0.01, 1.0)  # stiffer than MuJoCo's 0.02 s so a carried part follows its gripper closely
SERVO_HZ = 10.0  # position servo bandwidth; gains scale with the joint's own inertia
GRIP_PREFIX = "oracle_grip_"
_DIVERGED = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQACC)


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _oracle_model(xml_path: Path, task: TaskSpec):
    """Scene + a welded mocap gripper per carried part + a position servo per driven joint."""
    spec = mujoco.MjSpec.from_file(str(xml_path))
    carried = list(dict.fromkeys(s.part for s in task.oracle if isinstance(s, CarryPartStep)))
    driven = list(dict.fromkeys(s.part for s in task.oracle if isinstance(s, DriveJointStep)))
    for part in carried:
        body = spec.body(part)
        if body is None:
            raise ValueError(f"the oracle carries {part!r}, which scene.xml does not have")
        spec.worldbody.add_body(name=GRIP_PREFIX + part, mocap=True, pos=body.pos, quat=body.quat)
        weld = spec.add_equality(name=GRIP_PREFIX + part, type=mujoco.mjtEq.mjEQ_WELD, objtype=mujoco.mjtObj.mjOBJ_BODY,
                                 name1=GRIP_PREFIX + part, name2=part, active=False)
        weld.data = np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0], dtype=float)  # identity relative pose, torquescale 1
        weld.solref = WELD_SOLREF
    joints = {}
    for part in driven:
        body = spec.body(part)
        joint = next((j for j in (body.joints if body is not None else [])
                      if j.type in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)), None)
        if joint is None:
            raise ValueError(f"the oracle drives {part!r}, which has no hinge or slide joint in scene.xml")
        joints[part] = (joint.name, joint.type == mujoco.mjtJoint.mjJNT_SLIDE)
        actuator = spec.add_actuator(name=GRIP_PREFIX + part, target=joint.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_position(kp=0.0, kv=0.0)  # off until its DriveJoint step; gains from the compiled inertia
    model = spec.compile()
    data = mujoco.MjData(model)
    if model.nkey > 0:
        mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    return model, data, joints


def run_oracle(xml_path: Path, task: TaskSpec) -> OracleReport:
    model, data, joints = _oracle_model(Path(xml_path), task)
    dt = model.opt.timestep
    limit_steps = int(round(task.time_limit_s / dt))
    check_every = max(1, int(round(CHECK_EVERY_S / dt)))
    steps_run: list[OracleStepRun] = []
    result = score_state(model, data, task)
    taken = 0
    success_at: Optional[float] = None if not result.success else float(data.time)

    def advance(control) -> bool:
        """One physics step under ``control(t)``; True once the goal holds or time is up."""
        nonlocal taken, result, success_at
        control(data.time)
        mujoco.mj_step(model, data)
        taken += 1
        if taken % check_every == 0 or taken >= limit_steps:
            result = score_state(model, data, task)
            if result.success:
                success_at = float(data.time)
        return success_at is not None or taken >= limit_steps

    for step in task.oracle:
        if success_at is not None or taken >= limit_steps:
            break
        start = float(data.time)
        n = max(1, int(round(step.duration_s / dt)))
        control = _controller(model, data, step, joints, start)
        done = any(advance(control) for _ in range(n))  # any() stops at the first True
        if isinstance(step, CarryPartStep) and step.release and not done:
            data.eq_active[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_EQUALITY, GRIP_PREFIX + step.part)] = 0
        steps_run.append(OracleStepRun(name=step.describe(), kind=step.kind, start_s=round(start, 4),
                                       end_s=round(float(data.time), 4), completed=not done))
    while success_at is None and taken < limit_steps:  # servos hold, released parts settle
        advance(lambda _t: None)

    # MuJoCo resets a diverged simulation to its initial state and carries on: never a success
    diverged = [w.name for w in _DIVERGED if data.warning[w].number > 0]
    solved = success_at is not None and not diverged
    message = (f"the simulation diverged during the oracle ({', '.join(diverged)}): {describe_failures(result)}" if diverged
               else f"goal reached at {success_at:.3f} s (time limit {task.time_limit_s:g} s)" if solved else
               f"the oracle did not solve the task within time_limit_s={task.time_limit_s:g} s: {describe_failures(result)}")
    return OracleReport(solved=solved, time_to_success_s=round(success_at, 4) if solved else None,
                        time_limit_s=task.time_limit_s, simulated_s=round(float(data.time), 4), steps=steps_run,
                        final=result, final_qpos=[float(x) for x in data.qpos], message=message)


def _controller(model, data, step, joints: dict, start: float):
    """A function of simulation time that sets the mocap pose or the servo target for ``step``."""
    if isinstance(step, CarryPartStep):
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, step.part)
        grip = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, GRIP_PREFIX + step.part)
        mocap = int(model.body_mocapid[grip])
        # grasp where the part is now, keeping its orientation
        data.mocap_pos[mocap] = data.xpos[body]
        data.mocap_quat[mocap] = data.xquat[body]
        data.eq_active[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_EQUALITY, GRIP_PREFIX + step.part)] = 1
        built = np.asarray(model.body_pos[body], dtype=float)
        points = [data.xpos[body].copy()] + [built + np.asarray(w, dtype=float) / MM_PER_M for w in step.waypoints_mm]
        lengths = np.array([np.linalg.norm(b - a) for a, b in zip(points, points[1:])])
        total = float(lengths.sum())
        # time per segment proportional to its length (a zero-length path just holds the grasp)
        bounds = np.concatenate([[0.0], np.cumsum(lengths) / total]) if total > 0 else np.linspace(0, 1, len(points))

        def carry(t: float) -> None:
            x = min(max((t - start) / step.duration_s, 0.0), 1.0)
            i = min(int(np.searchsorted(bounds, x, side="right")) - 1, len(points) - 2)
            span = bounds[i + 1] - bounds[i]
            s = _smoothstep((x - bounds[i]) / span) if span > 0 else 1.0
            data.mocap_pos[mocap] = points[i] + (points[i + 1] - points[i]) * s

        return carry
    if isinstance(step, DriveJointStep):
        joint_name, slide = joints[step.part]
        act = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, GRIP_PREFIX + step.part)
        joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint_name)
        q0 = float(data.qpos[model.jnt_qposadr[joint]])
        target = step.target / MM_PER_M if slide else step.target
        # switch the servo on: a critically damped SERVO_HZ loop for the joint's own inertia
        omega = 2 * np.pi * SERVO_HZ
        mass_matrix = np.zeros((model.nv, model.nv))
        mujoco.mj_fullM(model, data, mass_matrix)
        dof = int(model.jnt_dofadr[joint])
        inertia = float(mass_matrix[dof, dof])
        model.actuator_gainprm[act, 0] = inertia * omega ** 2
        model.actuator_biasprm[act, 1:3] = (-inertia * omega ** 2, -2.0 * inertia * omega)

        def drive(t: float) -> None:
            data.ctrl[act] = q0 + (target - q0) * _smoothstep((t - start) / step.duration_s)

        return drive
    return lambda _t: None  # Settle
