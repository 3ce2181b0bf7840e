"""Generate the shipped sample episodes: simple MuJoCo tabletop scenes rendered offscreen.

``python -m teacher_assets.episodes.samples --out datasets/oxe [--only ID …]``

Each sample is a table with a few primitive shapes (boxes, cylinders, spheres) standing for a cup,
tray, drawer, lamp, stove …; one object follows a scripted straight-line motion (or an appliance
changes colour) across the 9 frames, rendered at 160×120 by MuJoCo (``MUJOCO_GL=osmesa`` when no
display). No physics is stepped: every frame is a kinematic pose, so output is deterministic —
the same code gives the same PNG bytes. Instructions cover every PAL primitive family plus three
tasks a PAL robot cannot do (cook, fold, screw), which the feasibility agent must reject.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

from pydantic import BaseModel, Field

from resources.atomic import atomic_write_bytes, atomic_write_text, replace_dir

from .loader import FRAME_COUNT

WIDTH, HEIGHT = 160, 120

Vec = tuple[float, float, float]


class Shape(BaseModel):
    name: str
    kind: str  # box | cylinder | sphere (MuJoCo geom type)
    size: tuple[float, ...]  # MuJoCo geom size (half extents / radius, half height)
    pos: Vec
    rgba: tuple[float, float, float, float]
    end_pos: Vec | None = None  # moves linearly pos → end_pos over the frames
    end_rgba: tuple[float, float, float, float] | None = None  # colour change (a toggle) over the frames


class SampleSpec(BaseModel):
    id: str
    instruction: str
    task: str  # task family, e.g. pick_place, open_close, toggle, wipe, cut, soak, heat, infeasible
    expected_feasible: bool
    shapes: list[Shape]
    notes: str = ""
    objects: list[str] = Field(default_factory=list)  # filled from shapes


RED, GREEN, BLUE = (0.85, 0.15, 0.15, 1), (0.2, 0.7, 0.25, 1), (0.2, 0.35, 0.85, 1)
WOOD, GREY, DARK = (0.65, 0.45, 0.25, 1), (0.6, 0.6, 0.62, 1), (0.15, 0.15, 0.17, 1)
YELLOW, WHITE, TAN = (0.95, 0.85, 0.2, 1), (0.92, 0.92, 0.9, 1), (0.85, 0.7, 0.45, 1)
TABLE_TOP = 0.40


def _on_table(h: float) -> float:
    return TABLE_TOP + h


def _table() -> Shape:
    return Shape(name="table", kind="box", size=(0.5, 0.35, 0.02), pos=(0, 0, TABLE_TOP - 0.02), rgba=WOOD)


def _specs() -> list[SampleSpec]:
    t = _table()
    drawer_closed, drawer_open = (0.25, 0.0, _on_table(0.06)), (0.25, -0.16, _on_table(0.06))
    return [
        SampleSpec(id="pick_cup_place_tray", task="pick_place", expected_feasible=True,
                   instruction="Pick up the red cup and place it on the tray.",
                   shapes=[t, Shape(name="tray", kind="box", size=(0.12, 0.09, 0.01), pos=(0.2, 0.05, _on_table(0.01)), rgba=GREY),
                           Shape(name="red_cup", kind="cylinder", size=(0.03, 0.05), pos=(-0.2, -0.05, _on_table(0.05)),
                                 end_pos=(0.2, 0.05, _on_table(0.07)), rgba=RED)]),
        SampleSpec(id="apple_into_bowl", task="pick_place", expected_feasible=True,
                   instruction="Put the green apple into the blue bowl.",
                   shapes=[t, Shape(name="blue_bowl", kind="cylinder", size=(0.08, 0.03), pos=(0.18, 0.0, _on_table(0.03)), rgba=BLUE),
                           Shape(name="green_apple", kind="sphere", size=(0.035,), pos=(-0.22, 0.05, _on_table(0.035)),
                                 end_pos=(0.18, 0.0, _on_table(0.07)), rgba=GREEN)]),
        SampleSpec(id="block_into_drawer", task="place_inside", expected_feasible=True,
                   instruction="Open the drawer, put the red block inside, then close the drawer.",
                   shapes=[t, Shape(name="cabinet", kind="box", size=(0.14, 0.12, 0.1), pos=(0.25, 0.1, _on_table(0.1)), rgba=WOOD),
                           Shape(name="drawer", kind="box", size=(0.12, 0.1, 0.04), pos=drawer_closed, end_pos=drawer_open, rgba=TAN),
                           Shape(name="red_block", kind="box", size=(0.03, 0.03, 0.03), pos=(-0.2, -0.1, _on_table(0.03)),
                                 end_pos=(0.25, -0.16, _on_table(0.13)), rgba=RED)],
                   notes="The drawer slides open while the block travels towards it."),
        SampleSpec(id="open_drawer", task="open_close", expected_feasible=True,
                   instruction="Open the top drawer of the cabinet.",
                   shapes=[t, Shape(name="cabinet", kind="box", size=(0.14, 0.12, 0.1), pos=(0.0, 0.1, _on_table(0.1)), rgba=WOOD),
                           Shape(name="drawer", kind="box", size=(0.12, 0.1, 0.04), pos=(0.0, 0.0, _on_table(0.14)),
                                 end_pos=(0.0, -0.16, _on_table(0.14)), rgba=TAN)]),
        SampleSpec(id="close_cabinet_door", task="open_close", expected_feasible=True,
                   instruction="Close the cabinet door.",
                   shapes=[t, Shape(name="cabinet", kind="box", size=(0.14, 0.12, 0.12), pos=(0.0, 0.12, _on_table(0.12)), rgba=WOOD),
                           Shape(name="cabinet_door", kind="box", size=(0.14, 0.01, 0.12), pos=(0.0, -0.12, _on_table(0.12)),
                                 end_pos=(0.0, -0.01, _on_table(0.12)), rgba=TAN)],
                   notes="The door panel moves from ajar to flush with the cabinet front."),
        SampleSpec(id="lamp_on", task="toggle", expected_feasible=True,
                   instruction="Turn on the desk lamp.",
                   shapes=[t, Shape(name="lamp_base", kind="cylinder", size=(0.06, 0.01), pos=(0.0, 0.05, _on_table(0.01)), rgba=DARK),
                           Shape(name="lamp_pole", kind="cylinder", size=(0.01, 0.12), pos=(0.0, 0.05, _on_table(0.13)), rgba=DARK),
                           Shape(name="lamp", kind="sphere", size=(0.05,), pos=(0.0, 0.05, _on_table(0.27)), rgba=GREY, end_rgba=YELLOW)],
                   notes="The lamp shade turns from grey (off) to bright yellow (on)."),
        SampleSpec(id="stove_off", task="toggle", expected_feasible=True,
                   instruction="Turn off the stove burner.",
                   shapes=[t, Shape(name="stove", kind="box", size=(0.2, 0.15, 0.03), pos=(0.0, 0.05, _on_table(0.03)), rgba=DARK),
                           Shape(name="burner", kind="cylinder", size=(0.06, 0.005), pos=(-0.08, 0.05, _on_table(0.065)),
                                 rgba=(0.95, 0.25, 0.05, 1), end_rgba=(0.3, 0.3, 0.3, 1))],
                   notes="The burner fades from glowing red (on) to grey (off)."),
        SampleSpec(id="wipe_table_sponge", task="wipe", expected_feasible=True,
                   instruction="Wipe the table with the yellow sponge.",
                   shapes=[t, Shape(name="spill", kind="cylinder", size=(0.07, 0.001), pos=(0.05, 0.0, _on_table(0.001)), rgba=(0.45, 0.3, 0.15, 1)),
                           Shape(name="yellow_sponge", kind="box", size=(0.05, 0.03, 0.015), pos=(-0.25, 0.0, _on_table(0.015)),
                                 end_pos=(0.15, 0.0, _on_table(0.015)), rgba=YELLOW)]),
        SampleSpec(id="cut_bread_knife", task="cut", expected_feasible=True,
                   instruction="Cut the bread on the cutting board with the knife.",
                   shapes=[t, Shape(name="cutting_board", kind="box", size=(0.15, 0.1, 0.01), pos=(0.0, 0.0, _on_table(0.01)), rgba=TAN),
                           Shape(name="bread", kind="box", size=(0.08, 0.04, 0.035), pos=(0.0, 0.0, _on_table(0.055)), rgba=(0.8, 0.55, 0.25, 1)),
                           Shape(name="knife", kind="box", size=(0.005, 0.07, 0.015), pos=(0.25, -0.15, _on_table(0.02)),
                                 end_pos=(0.0, 0.0, _on_table(0.1)), rgba=(0.8, 0.8, 0.85, 1))]),
        SampleSpec(id="soak_sponge_faucet", task="soak", expected_feasible=True,
                   instruction="Turn on the faucet and soak the sponge under the running water.",
                   shapes=[t, Shape(name="sink", kind="box", size=(0.15, 0.12, 0.01), pos=(0.1, 0.05, _on_table(0.01)), rgba=WHITE),
                           Shape(name="faucet", kind="cylinder", size=(0.012, 0.1), pos=(0.1, 0.15, _on_table(0.1)), rgba=GREY),
                           Shape(name="sponge", kind="box", size=(0.05, 0.03, 0.015), pos=(-0.25, -0.05, _on_table(0.015)),
                                 end_pos=(0.1, 0.1, _on_table(0.08)), rgba=YELLOW)]),
        SampleSpec(id="pan_near_stove", task="heat", expected_feasible=True,
                   instruction="Place the pan next to the heating element of the stove.",
                   shapes=[t, Shape(name="stove", kind="box", size=(0.15, 0.12, 0.03), pos=(0.15, 0.05, _on_table(0.03)), rgba=DARK),
                           Shape(name="pan", kind="cylinder", size=(0.07, 0.015), pos=(-0.25, -0.05, _on_table(0.015)),
                                 end_pos=(0.15, 0.05, _on_table(0.075)), rgba=GREY)]),
        SampleSpec(id="cook_pasta", task="infeasible", expected_feasible=False,
                   instruction="Cook the pasta in the pot until it is al dente.",
                   shapes=[t, Shape(name="stove", kind="box", size=(0.2, 0.15, 0.03), pos=(0.0, 0.05, _on_table(0.03)), rgba=DARK),
                           Shape(name="pot", kind="cylinder", size=(0.08, 0.06), pos=(-0.05, 0.05, _on_table(0.12)), rgba=GREY)],
                   notes="Cooking needs a heating process control PAL v1 does not offer."),
        SampleSpec(id="fold_towel", task="infeasible", expected_feasible=False,
                   instruction="Fold the towel neatly in half.",
                   shapes=[t, Shape(name="towel", kind="box", size=(0.16, 0.1, 0.004), pos=(0.0, 0.0, _on_table(0.004)),
                                    end_pos=(0.0, 0.0, _on_table(0.008)), rgba=BLUE)],
                   notes="Folding deformable cloth is not a PAL v1 primitive."),
        SampleSpec(id="screw_light_bulb", task="infeasible", expected_feasible=False,
                   instruction="Screw the light bulb into the lamp socket.",
                   shapes=[t, Shape(name="lamp_base", kind="cylinder", size=(0.06, 0.01), pos=(0.1, 0.05, _on_table(0.01)), rgba=DARK),
                           Shape(name="socket", kind="cylinder", size=(0.02, 0.1), pos=(0.1, 0.05, _on_table(0.1)), rgba=DARK),
                           Shape(name="light_bulb", kind="sphere", size=(0.03,), pos=(-0.2, 0.0, _on_table(0.03)),
                                 end_pos=(0.1, 0.05, _on_table(0.23)), rgba=WHITE)],
                   notes="Screwing needs a rotation primitive PAL v1 does not have."),
    ]


def sample_specs() -> list[SampleSpec]:
    specs = _specs()
    for s in specs:
        s.objects = [sh.name for sh in s.shapes]
    return specs


def _lerp(a, b, u: float):
    return tuple(round(x + (y - x) * u, 5) for x, y in zip(a, b))


def _mjcf(spec: SampleSpec, u: float) -> str:
    geoms = []
    for sh in spec.shapes:
        pos = _lerp(sh.pos, sh.end_pos, u) if sh.end_pos else sh.pos
        rgba = _lerp(sh.rgba, sh.end_rgba, u) if sh.end_rgba else sh.rgba
        geoms.append(f'<geom name="{sh.name}" type="{sh.kind}" size="{" ".join(map(str, sh.size))}" '
                     f'pos="{" ".join(map(str, pos))}" rgba="{" ".join(map(str, rgba))}"/>')
    legs = "".join(f'<geom type="box" size="0.02 0.02 0.19" pos="{x} {y} 0.19" rgba="0.4 0.28 0.15 1"/>'
                   for x in (-0.45, 0.45) for y in (-0.3, 0.3))
    return f"""<mujoco model="{spec.id}">
  <visual><global offwidth="{WIDTH}" offheight="{HEIGHT}"/><quality shadowsize="0"/></visual>
  <worldbody>
    <light pos="0 -0.4 1.6" dir="0 0.3 -1" diffuse="0.8 0.8 0.8" castshadow="false"/>
    <geom type="plane" size="2 2 0.1" rgba="0.75 0.78 0.8 1"/>
    {legs}
    {''.join(geoms)}
    <camera name="front" pos="0 -0.95 1.05" xyaxes="1 0 0 0 0.6 0.8" fovy="50"/>
  </worldbody>
</mujoco>"""


def render_frames(spec: SampleSpec) -> list[bytes]:
    """The 9 frames as PNG bytes."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "osmesa")
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    import mujoco
    from PIL import Image

    frames = []
    for i in range(FRAME_COUNT):
        model = mujoco.MjModel.from_xml_string(_mjcf(spec, i / (FRAME_COUNT - 1)))
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        with mujoco.Renderer(model, height=HEIGHT, width=WIDTH) as renderer:
            renderer.update_scene(data, camera="front")
            pixels = renderer.render()
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="PNG", optimize=True)
        frames.append(out.getvalue())
    return frames


def write_sample(spec: SampleSpec, out_root: Path) -> Path:
    """Write one episode folder (replaced whole, atomically)."""
    frames = render_frames(spec)
    metadata = {
        "source_dataset": "benchgen-synthetic-mujoco",
        "generator": "teacher_assets.episodes.samples",
        "robot": "none (scripted kinematic motion)",
        "task_family": spec.task,
        "expected_feasible": spec.expected_feasible,
        "objects": spec.objects,
        "scene_notes": spec.notes or "Tabletop scene of primitive shapes; one object moves along a straight line.",
        "frame_size": [WIDTH, HEIGHT],
    }

    def build(tmp: Path) -> None:
        atomic_write_text(tmp / "instruction.txt", spec.instruction + "\n")
        atomic_write_text(tmp / "metadata.json", json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        for i, png in enumerate(frames):
            atomic_write_bytes(tmp / "frames" / f"frame_{i:02d}.png", png)

    return replace_dir(out_root / spec.id, build)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="datasets/oxe", help="folder to write episodes into")
    parser.add_argument("--only", nargs="*", help="episode ids to (re)generate")
    args = parser.parse_args(argv)
    out = Path(args.out)
    for spec in sample_specs():
        if args.only and spec.id not in args.only:
            continue
        path = write_sample(spec, out)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
