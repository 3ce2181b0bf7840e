"""Parametric scenario families: real scenario scripts the offline author hands to the sandbox.

Each ``<name>.py`` here is a self-contained script (imports only build123d, math, random and
``benchgen_assets.scene``) defining ``build(seed, scale) -> Scene``. They are read as text and run
in the sandbox like any generated script, so this module never imports build123d.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from benchgen_assets.records import Vec3

FAMILY_DIR = Path(__file__).resolve().parent


class FamilyInfo(BaseModel):
    name: str
    tier: int
    title: str
    description: str
    learning_objective: str
    scale_min: Vec3 = (0.5, 0.5, 0.5)  # per-axis limits the planner may draw scale vectors from
    scale_max: Vec3 = (2.0, 2.0, 2.0)


FAMILIES: dict[str, FamilyInfo] = {info.name: info for info in [
    FamilyInfo(
        name="peg_in_hole", tier=1, title="Peg in hole",
        description="A fixed block with a round or square, through or blind hole; a free peg stands beside it "
                    "with 0.3–1.2 mm radial clearance.",
        learning_objective="Precise alignment and insertion under tight clearance.",
    ),
    FamilyInfo(
        name="block_stacking", tier=1, title="Block stacking",
        description="Two to four free blocks of different sizes on a base plate and a target pad to stack them on.",
        learning_objective="Pick-and-place ordering and stable stacking (largest first).",
    ),
    FamilyInfo(
        name="block_in_bin", tier=1, title="Block in bin",
        description="An open tray fixed on the table and a free block beside it, with 8–20 mm (× scale) to spare "
                    "on each side once inside.",
        learning_objective="Lifting an object over obstacles and placing it inside a container.",
    ),
    FamilyInfo(
        name="lever", tier=2, title="Lever on a fulcrum",
        description="A beam balanced on a hinge between the cheeks of a fulcrum stand, plus a free load block.",
        learning_objective="Using a hinged mechanism: loading one arm to raise the other.",
    ),
    FamilyInfo(
        name="hinged_door", tier=2, title="Hinged door",
        description="An upright frame on a foot with a door panel on a vertical hinge (left or right), with a handle.",
        learning_objective="Opening an articulated object along its hinge arc by the handle.",
        scale_min=(0.5, 0.6, 0.5),
    ),
    FamilyInfo(
        name="drawer_slide", tier=2, title="Drawer slide",
        description="A cabinet with a front cavity and a drawer (tray with handle) on a slide joint.",
        learning_objective="Pulling along a prismatic joint to its travel limit.",
    ),
    FamilyInfo(
        name="latched_box", tier=3, title="Latched box",
        description="A box with a lid hinged at the back and a front latch hooked over the lid's catch.",
        learning_objective="Multi-step manipulation of coupled mechanisms: release the latch, then open the lid.",
    ),
    FamilyInfo(
        name="gear_train", tier=3, title="Gear train",
        description="Two or three meshing involute spur gears lying flat on axles above a base plate; the input gear "
                    "has a knob. Turn it until the output gear has turned a given angle.",
        learning_objective="Driving a coupled mechanism through a transmission ratio (and reversal of direction).",
        scale_min=(0.7, 0.7, 0.6), scale_max=(1.6, 1.6, 2.0),
    ),
    FamilyInfo(
        name="four_bar", tier=3, title="Four-bar linkage",
        description="A flat crank-rocker four-bar linkage (Grashof proportions) on two pivot posts of a base plate; "
                    "turn the crank until the rocker has swung a given angle.",
        learning_objective="Operating a closed kinematic chain: input rotation to a non-linear output swing.",
    ),
    FamilyInfo(
        name="cam_follower", tier=3, title="Cam and follower",
        description="A pear-shaped cam on a horizontal axle in front of a stand and a flat-footed follower on a "
                    "vertical slide resting on it; turn the cam until the follower has risen a given height.",
        learning_objective="Using a cam profile to convert rotation into a lift.",
    ),
]}


def family_source(name: str) -> str:
    """The scenario script of a family, as text (what the offline coder answers)."""
    if name not in FAMILIES:
        raise KeyError(f"unknown scenario family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return (FAMILY_DIR / f"{name}.py").read_text()
