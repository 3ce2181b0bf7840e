"""The offline author's scenario families, built in the real sandbox across seeds and scale vectors."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import trimesh

from benchgen_assets.families import FAMILIES, family_source
from benchgen_assets.physics import validate_variant
from benchgen_assets.records import BuildOutput
from benchgen_assets.sandbox import check_source, run_build

SEEDS = (0, 1, 2)
SCALES = ((1.0, 1.0, 1.0), (0.5, 1.5, 2.0), (2.0, 0.5, 0.5))


pytestmark = pytest.mark.usefixtures("private_build_server")


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[tuple[str, int, tuple], BuildOutput]:
    root = tmp_path_factory.mktemp("family-builds")
    out = {}
    for name, seed, scale in itertools.product(FAMILIES, SEEDS, SCALES):
        result = run_build(family_source(name), seed, scale, root / f"{name}-{seed}-{'x'.join(map(str, scale))}")
        assert isinstance(result, BuildOutput), f"{name} seed={seed} scale={scale}: {result}"
        out[(name, seed, scale)] = result
    return out


def test_registry_covers_three_tiers_and_scripts_pass_the_static_check():
    assert len(FAMILIES) >= 6 and {info.tier for info in FAMILIES.values()} == {1, 2, 3}
    for name, info in FAMILIES.items():
        assert info.name == name and info.learning_objective and info.description
        assert all(0 < lo <= hi for lo, hi in zip(info.scale_min, info.scale_max))
        assert check_source(family_source(name)) is None, name
    with pytest.raises(KeyError, match="unknown scenario family"):
        family_source("perpetual_motion")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_builds_valid_geometry_for_every_seed_and_scale(builds, name):
    for seed, scale in itertools.product(SEEDS, SCALES):
        out = builds[(name, seed, scale)]
        assert out.scene_name == name and out.parts
        for part in out.parts:
            assert part.geometry.ok, (name, seed, scale, part.name, part.geometry.issues)
            extent = [hi - lo for lo, hi in zip(part.bbox_min_mm, part.bbox_max_mm)]
            assert 1.0 <= max(extent) <= 700.0, (name, part.name, extent)  # tens to hundreds of mm
            assert 0.001 <= part.mass_kg <= 5.0, (name, part.name, part.mass_kg)
            assert part.bbox_min_mm[2] >= -1e-6, (name, part.name, "below the table")
            if part.joint in ("hinge", "slide"):
                assert part.parent in {p.name for p in out.parts} and part.joint_range is not None
        free = [p for p in out.parts if p.joint == "free"]
        for part in free:  # resting with a small gap, not sunk into its support
            assert part.bbox_min_mm[2] > 0.0


# trimesh divides by the volume of an empty intersection (the passing case) for its centre of mass.
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_parts_do_not_interpenetrate(builds, name):
    for scale in SCALES:
        out = builds[(name, 1, scale)]
        meshes = {p.name: trimesh.load_mesh(Path(out.out_dir) / p.stl_file) for p in out.parts}
        for a, b in itertools.combinations(out.parts, 2):
            overlap = trimesh.boolean.intersection([meshes[a.name], meshes[b.name]], engine="manifold")
            assert overlap.volume < 1.0, (name, scale, a.name, b.name, overlap.volume)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_parameters_differ_across_seeds(builds, name):
    params = [builds[(name, seed, (1.0, 1.0, 1.0))].parameters for seed in SEEDS]
    assert params[0] != params[1] != params[2] != params[0]
    hashes = {builds[(name, seed, (1.0, 1.0, 1.0))].parts[0].stl_sha256 for seed in SEEDS}
    assert len(hashes) == len(SEEDS)


def test_peg_in_hole_block_is_non_convex_and_peg_fits(builds):
    for seed, scale in itertools.product(SEEDS, SCALES):
        out = builds[("peg_in_hole", seed, scale)]
        block, peg = (next(p for p in out.parts if p.name == n) for n in ("block", "peg"))
        assert block.volume_mm3 / block.convex_hull_volume_mm3 < 0.95, (seed, scale)
        peg_width = peg.bbox_max_mm[0] - peg.bbox_min_mm[0]
        # a non-uniform scale keeps hole and peg round (or square): the clearance holds in x and y
        assert peg.bbox_max_mm[1] - peg.bbox_min_mm[1] == pytest.approx(peg_width, abs=0.01), (seed, scale)
        assert 2 * out.parameters["hole_radius_mm"] - peg_width == pytest.approx(
            2 * out.parameters["clearance_mm"], abs=0.01)
        assert 0.3 <= out.parameters["clearance_mm"] <= 1.2
        # the peg is no taller than 3 diameters and sticks out of the hole, even on a tall narrow scale
        assert peg.bbox_max_mm[2] - peg.bbox_min_mm[2] <= 3 * peg_width + 0.01, (seed, scale)
        assert out.parameters["peg_length_mm"] - out.parameters["hole_depth_mm"] >= 8.0 - 1e-3, (seed, scale)
        assert out.parameters["hole_depth_mm"] <= out.parameters["block_mm"][2] + 1e-6
        assert peg.joint == "free" and block.joint == "fixed"


def test_scale_vector_stretches_the_scene(builds):
    for name in FAMILIES:
        plain = builds[(name, 0, (1.0, 1.0, 1.0))].parts[0]
        wide = builds[(name, 0, (2.0, 0.5, 0.5))].parts[0]
        assert (wide.bbox_max_mm[0] - wide.bbox_min_mm[0]) > (plain.bbox_max_mm[0] - plain.bbox_min_mm[0])
        assert (wide.bbox_max_mm[1] - wide.bbox_min_mm[1]) < (plain.bbox_max_mm[1] - plain.bbox_min_mm[1])


def test_latched_box_latch_rests_clear_of_the_lid_and_validates(builds, tmp_path):
    """Regression: seed 2 at (0.5, 1.5, 2.0) failed stability (latch kicked to 8.95 rad/s). The lid
    collides as its convex hull, and a catch lower than the lid's top face put a hull wedge into the
    hook; the catch is now as thick as the lid, so the hook starts clear of it at every scale."""
    for seed, scale in [(2, (0.5, 1.5, 2.0)), (1, (1.0, 1.0, 1.0))]:
        out = builds[("latched_box", seed, scale)]
        report = validate_variant(out, tmp_path / f"{seed}", scenario_id="latched_box", variant_id=f"s{seed}")
        # the regression is about stability (solvability needs the latched box's task, a separate matter)
        stages = {s.name: s for s in report.stages}
        assert stages["stability"].passed, [(s.name, s.message) for s in report.stages if not s.passed]
        assert report.max_penetration_m < 0.0005, report.max_penetration_m  # no part starts inside another
