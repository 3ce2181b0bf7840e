"""Preview image of a composed scene: MuJoCo's offscreen renderer on the CPU (OSMesa)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import mujoco
from PIL import Image


def render_preview(xml_path: Path, *, width: int = 480, height: int = 360, camera: str = "preview") -> bytes:
    """PNG of the scene's initial state (keyframe 0 if any) seen from ``camera`` (free camera if absent)."""
    _require_offscreen_gl()
    model = mujoco.MjModel.from_xml_path(str(xml_path))
    # The offscreen buffer must be at least as large as the image.
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    data = mujoco.MjData(model)
    if model.nkey > 0:
        mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    with mujoco.Renderer(model, height=height, width=width) as renderer:
        renderer.update_scene(data, camera=camera_id if camera_id >= 0 else -1)
        pixels = renderer.render()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _require_offscreen_gl() -> None:
    """MuJoCo fixes its GL backend when first imported; without a display only OSMesa/EGL work."""
    from mujoco.rendering.classic import gl_context

    backend = getattr(gl_context.GLContext, "__module__", "")
    if backend not in ("mujoco.osmesa", "mujoco.egl") and not os.environ.get("DISPLAY"):
        raise RuntimeError(f"MuJoCo was imported with GL backend {backend or 'none'!r} and there is no display: set "
                           "MUJOCO_GL=osmesa (and PYOPENGL_PLATFORM=osmesa) before mujoco is first imported, e.g. "
                           "import benchgen_assets.physics before mujoco")
