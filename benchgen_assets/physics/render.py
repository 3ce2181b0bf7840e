"""Preview image of a composed scene: MuJoCo's offscreen renderer on the CPU (OSMesa).

Creating a GL context is the slow part of a render on OSMesa (llvmpipe compiles its shaders per
context), so each process keeps one context and renders every preview in it; only the model's
own MjrContext (meshes, textures, an offscreen buffer the size of the image) is made per scene.
"""

from __future__ import annotations

import atexit
import io
import os
import threading
from pathlib import Path
from typing import Optional, Sequence

import mujoco
import numpy as np
from PIL import Image

PREVIEW_SHADOW_SIZE = 1024  # the scene asks for 2048; a 480 px preview cannot show the difference

_gl_lock = threading.Lock()  # one thread at a time may make the shared context current
# Per process id: a forked child makes its own and leaves the inherited one alone (never freed there).
_gl_contexts: dict = {}


def render_preview(xml_path: Path, *, width: int = 480, height: int = 360, camera: str = "preview",
                   success_qpos: Optional[Sequence[float]] = None) -> bytes:
    """PNG of the scene's initial state (keyframe 0 if any) seen from ``camera`` (free camera if absent).

    With ``success_qpos`` (the oracle's state at success) the PNG shows the start and that state
    side by side, each ``width`` × ``height``."""
    _require_offscreen_gl()
    model = mujoco.MjModel.from_xml_path(str(xml_path))
    # The model's visual settings only size GPU buffers; the scene file stays as it is.
    model.vis.global_.offwidth, model.vis.global_.offheight = width, height
    model.vis.quality.shadowsize = min(int(model.vis.quality.shadowsize), PREVIEW_SHADOW_SIZE)
    data = mujoco.MjData(model)
    if model.nkey > 0:
        mujoco.mj_resetDataKeyframe(model, data, 0)
    states = [data.qpos.copy()]
    if success_qpos is not None:
        if len(success_qpos) != model.nq:
            raise ValueError(f"success_qpos has {len(success_qpos)} values, the scene's nq is {model.nq}")
        states.append(np.asarray(success_qpos, dtype=float))

    view = mujoco.MjvCamera()
    camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if camera_id >= 0:
        view.type, view.fixedcamid = mujoco.mjtCamera.mjCAMERA_FIXED, camera_id
    else:
        mujoco.mjv_defaultFreeCamera(model, view)
    scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom))
    viewport = mujoco.MjrRect(0, 0, width, height)
    frames = []
    with _gl_lock:
        _current_gl_context().make_current()
        context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)  # no text is drawn
        try:
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, context)
            for qpos in states:
                data.qpos[:] = qpos
                mujoco.mj_forward(model, data)
                mujoco.mjv_updateScene(model, data, mujoco.MjvOption(), None, view, mujoco.mjtCatBit.mjCAT_ALL, scene)
                pixels = np.empty((height, width, 3), dtype=np.uint8)
                mujoco.mjr_render(viewport, scene, context)
                mujoco.mjr_readPixels(pixels, None, viewport, context)
                frames.append(np.flipud(pixels))  # OpenGL rows run bottom-up
        finally:
            context.free()
    buffer = io.BytesIO()
    # Fast zlib level: a preview is written once and rarely read.
    Image.fromarray(np.concatenate(frames, axis=1)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _current_gl_context():
    """This process's GL context, created on first use (under ``_gl_lock``)."""
    pid = os.getpid()
    if pid not in _gl_contexts:
        from mujoco.rendering.classic import gl_context

        # Its own framebuffer is never drawn to (renders go to the model's offscreen buffer).
        _gl_contexts[pid] = gl_context.GLContext(64, 64)
        atexit.register(_free_gl_context, pid)  # before interpreter teardown breaks PyOpenGL's __del__
    return _gl_contexts[pid]


def _free_gl_context(pid: int) -> None:
    if os.getpid() == pid:
        with _gl_lock:
            _gl_contexts.pop(pid).free()


def _require_offscreen_gl() -> None:
    """MuJoCo fixes its GL backend when first imported; without a display only OSMesa/EGL work."""
    from mujoco.rendering.classic import gl_context

    backend = getattr(gl_context.GLContext, "__module__", "")
    if backend not in ("mujoco.osmesa", "mujoco.egl") and not os.environ.get("DISPLAY"):
        raise RuntimeError(f"MuJoCo was imported with GL backend {backend or 'none'!r} and there is no display: set "
                           "MUJOCO_GL=osmesa (and PYOPENGL_PLATFORM=osmesa) before mujoco is first imported, e.g. "
                           "import benchgen_assets.physics before mujoco")
