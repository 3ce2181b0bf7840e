"""Physics half of the generator: STL → convex pieces (exact prisms / CoACD) → MJCF → schema / compile / stability → preview.

Inputs are made here: closed meshes with trimesh (manifold3d booleans), written as the sandbox
would (binary STL, mm, world frame) and described by hand-built BuildOutput records.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import mujoco
import numpy as np
import pytest
import trimesh
from PIL import Image

from benchgen_assets.physics import (CoacdParams, compose_mjcf, decompose_convex, mjcf_schema_errors, render_preview,
                                     stability_check, validate_variant)
from benchgen_assets.records import BuildOutput, BuiltPart, GeometryReport, SiteSpec, TaskSpec

BLOCK = (80.0, 80.0, 40.0)  # tier-1 peg-in-hole block, mm
HOLE_R, PEG_R, PEG_H = 12.0, 10.0, 30.0


def _part(out_dir: Path, name: str, mesh: trimesh.Trimesh, *, joint="fixed", density=1000.0, **extra) -> BuiltPart:
    stl = mesh.export(file_type="stl")
    (out_dir / f"{name}.stl").write_bytes(stl)
    lo, hi = mesh.bounds
    return BuiltPart(
        name=name, role="object" if joint == "free" else "fixture", joint=joint, density_kg_m3=density,
        mass_kg=density * mesh.volume * 1e-9, volume_mm3=mesh.volume, bbox_min_mm=tuple(lo), bbox_max_mm=tuple(hi),
        center_of_mass_mm=tuple(mesh.center_mass), convex_hull_volume_mm3=mesh.convex_hull.volume,
        stl_file=f"{name}.stl", stl_sha256=hashlib.sha256(stl).hexdigest(),
        geometry=GeometryReport(brep_valid=True, manifold=True, watertight=mesh.is_watertight,
                                winding_consistent=mesh.is_winding_consistent, self_intersecting=False),
        **extra)


def _build(out_dir: Path, parts: list[BuiltPart], name="test_scene") -> BuildOutput:
    return BuildOutput(scene_name=name, seed=0, scale=(1.0, 1.0, 1.0), out_dir=str(out_dir), parts=parts)


def _box(size, center) -> trimesh.Trimesh:
    return trimesh.creation.box(size, trimesh.transformations.translation_matrix(center))


def _block_with_hole() -> trimesh.Trimesh:
    block = _box(BLOCK, (0, 0, BLOCK[2] / 2))
    hole = trimesh.creation.cylinder(radius=HOLE_R, height=3 * BLOCK[2], sections=64)
    return block.difference(hole)


def _peg_in_hole(src: Path) -> BuildOutput:
    src.mkdir(parents=True, exist_ok=True)
    peg = trimesh.creation.cylinder(radius=PEG_R, height=PEG_H, sections=48)
    peg.apply_translation((0, 0, BLOCK[2] + 5 + PEG_H / 2))  # 5 mm above the block, over the hole
    return _build(src, [_part(src, "block", _block_with_hole(), density=2700.0),
                        _part(src, "peg", peg, joint="free", rgba=(0.8, 0.3, 0.2, 1.0))], "peg_in_hole")


def _final_z(xml_path: Path, body: str, seconds=1.0) -> float:
    model = mujoco.MjModel.from_xml_path(str(xml_path))
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data, nstep=int(seconds / model.opt.timestep))
    return float(data.body(body).xpos[2])


@pytest.fixture(scope="module")
def coacd_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("coacd_cache")


def test_peg_drops_into_decomposed_hole_but_rests_on_hull(tmp_path, coacd_cache):
    build = _peg_in_hole(tmp_path / "src")
    with_pieces = compose_mjcf(build, tmp_path / "decomposed", cache_dir=coacd_cache)
    hull_only = compose_mjcf(build, tmp_path / "hull", decompose=False, cache_dir=coacd_cache)

    xml = with_pieces.read_text()
    assert len(re.findall(r'name="block_col\d\d"', xml)) >= 4
    assert re.search(r'name="block_visual"[^>]*contype="0" conaffinity="0" group="2"', xml)

    top_m = BLOCK[2] / 1000
    sunk = _final_z(with_pieces, "peg")
    held = _final_z(hull_only, "peg")
    assert sunk < top_m - 0.01, f"peg centre at {sunk:.4f} m should be well inside the hole (block top {top_m} m)"
    assert abs(held - (top_m + PEG_H / 2000)) < 0.003, f"without decomposition the peg rests on the hull, got {held:.4f}"


def test_compose_is_byte_deterministic_and_decomposition_is_cached(tmp_path, coacd_cache):
    build = _peg_in_hole(tmp_path / "src")
    fresh_cache = tmp_path / "fresh_cache"
    first = compose_mjcf(build, tmp_path / "a", cache_dir=fresh_cache)
    cached = sorted(fresh_cache.rglob("*.npz"))
    assert len(cached) == 1  # the block; the convex peg is not decomposed
    stamp = cached[0].stat().st_mtime_ns

    second = compose_mjcf(build, tmp_path / "b", cache_dir=fresh_cache)
    again = decompose_convex(Path(build.out_dir) / "block.stl", cache_dir=fresh_cache)
    assert again.cache_hit and sorted(fresh_cache.rglob("*.npz")) == cached and cached[0].stat().st_mtime_ns == stamp

    def files(xml: Path) -> dict[str, bytes]:
        return {str(p.relative_to(xml.parent)): p.read_bytes() for p in sorted(xml.parent.rglob("*")) if p.is_file()}

    assert files(first) == files(second)
    # The decomposition itself is deterministic: one from another, cold cache matches too.
    third = compose_mjcf(build, tmp_path / "c", cache_dir=coacd_cache)
    assert files(third) == files(first)


def test_units_mass_and_inertia_in_compiled_model(tmp_path, coacd_cache):
    src = tmp_path / "src"
    src.mkdir()
    cube = _box((100, 100, 100), (0, 0, 50))
    holed = _block_with_hole()
    holed.apply_translation((200, 0, 0))
    drawer = _box((60, 40, 20), (0, 200, 10))
    build = _build(src, [_part(src, "cube", cube, joint="free"), _part(src, "holed", holed, joint="free"),
                         _part(src, "cabinet", _box((80, 60, 60), (0, 300, 30))),
                         _part(src, "drawer", drawer, joint="slide", parent="cabinet", joint_axis=(0, -2, 0),
                               joint_pos_mm=(0, 200, 10), joint_range=(0, 50))])
    model = mujoco.MjModel.from_xml_path(str(compose_mjcf(build, tmp_path / "out", cache_dir=coacd_cache)))

    cube_id = model.body("cube").id
    assert model.body_mass[cube_id] == pytest.approx(1.0, rel=1e-6)
    assert model.body_inertia[cube_id] == pytest.approx([1 * (0.1**2 + 0.1**2) / 12] * 3, rel=1e-5)
    assert model.body_pos[cube_id] == pytest.approx([0, 0, 0.05], abs=1e-9)
    assert model.geom_rbound[model.geom("cube_geom").id] == pytest.approx(0.05 * 3**0.5, rel=1e-4)

    # The holed block's inertia is that of the block minus the hole, with the record's mass,
    # not what overlapping convex pieces would give.
    hid = model.body("holed").id
    mass = 1000 * holed.volume * 1e-9
    a, h, r = BLOCK[0] / 1000, BLOCK[2] / 1000, HOLE_R / 1000
    box_m, cyl_m = mass * a * a * h / holed.volume / 1e-9, None
    cyl_m = box_m - mass
    izz = box_m * (a * a + a * a) / 12 - cyl_m * r * r / 2
    assert model.body_mass[hid] == pytest.approx(mass, rel=1e-6)
    assert sorted(model.body_inertia[hid])[2] == pytest.approx(izz, rel=0.01)
    assert sum(model.geom_bodyid == hid) > 4  # visual + convex pieces

    # Slide range mm → m, axis normalised, child nested under its parent, joint placed in world.
    jid = model.joint("drawer_slide").id
    assert model.jnt_range[jid] == pytest.approx([0, 0.05])
    assert model.jnt_axis[jid] == pytest.approx([0, -1, 0])
    assert model.body_parentid[model.body("drawer").id] == model.body("cabinet").id
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    assert data.xanchor[jid] == pytest.approx([0, 0.2, 0.01], abs=1e-6)


def test_schema_accepts_composed_scene_and_names_each_violation(tmp_path, coacd_cache):
    build = _peg_in_hole(tmp_path / "src")
    xml = compose_mjcf(build, tmp_path / "out", decompose=False, cache_dir=coacd_cache).read_text()
    assert mjcf_schema_errors(xml) == []

    broken = (xml.replace("<freejoint", '<wobble spin="3"/><freejoint', 1)
                 .replace('name="peg_geom"', 'name="peg_geom" bouncy="yes"', 1)
                 .replace('<body name="peg" pos="', '<body name="peg" pos="0.1 ', 1)
                 .replace('type="plane"', 'type="slab"', 1)
                 .replace('timestep="0.002"', 'timestep="fast"', 1)
                 .replace("<visual>", "<visual><global fovy='45'/>", 1))
    errors = mjcf_schema_errors(broken)
    text = "\n".join(errors)
    assert "<wobble> is not allowed inside <body>" in text
    assert "<geom> has unknown attribute 'bouncy'" in text
    assert re.search(r"<body> attribute pos='0\.1 [^']*': needs 3 real value\(s\), got 4", text)
    assert "<geom> attribute type='slab': must be one of" in text
    assert "<global> may appear at most once inside <visual>" in text
    assert "<option> attribute timestep='fast': 'fast' is not a number" in text
    assert len(errors) == 6
    assert any(e.startswith("not well-formed XML") for e in mjcf_schema_errors("<mujoco><worldbody></mujoco>"))
    assert "root element is <robot>" in mjcf_schema_errors("<robot/>")[0]


def _free_boxes(tmp_path: Path, boxes: list[tuple[tuple, tuple]]) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    parts = [_part(src, f"box{i}", _box(size, center), joint="free") for i, (size, center) in enumerate(boxes)]
    return compose_mjcf(_build(src, parts), tmp_path / "out", cache_dir=tmp_path / "cache")


def _with_keyframe(xml_path: Path, qvel: list[float]) -> Path:
    text = xml_path.read_text().replace("</mujoco>", f'  <keyframe><key qvel="{" ".join(map(str, qvel))}"/></keyframe>\n</mujoco>')
    xml_path.write_text(text)
    return xml_path


def test_resting_stack_is_stable(tmp_path):
    xml = _free_boxes(tmp_path, [((120, 120, 40), (0, 0, 20)), ((80, 80, 40), (5, 0, 60)), ((40, 40, 40), (0, 5, 100))])
    result = stability_check(xml)
    assert result.passed, result.message
    assert result.finite and not result.warnings
    assert result.max_velocity < 0.05 and result.max_penetration_m < 0.001


def test_interpenetrating_boxes_fail_on_penetration(tmp_path):
    xml = _free_boxes(tmp_path, [((60, 60, 60), (0, 0, 30)), ((60, 60, 60), (0, 30, 30))])  # half inside each other
    result = stability_check(xml)
    assert not result.passed
    assert "penetration" in result.message and result.max_penetration_m > 0.02


def test_launched_box_fails_still_moving(tmp_path):
    xml = _with_keyframe(_free_boxes(tmp_path, [((50, 50, 50), (0, 0, 25))]), [0, 0, 4.0, 0, 0, 0])
    result = stability_check(xml)
    assert not result.passed and result.finite
    assert "still moving" in result.message and "box0_free" in result.message
    assert result.peak_velocity > 3.0 and "peak" in result.message


def test_blow_up_is_caught_as_non_finite(tmp_path):
    xml = _with_keyframe(_free_boxes(tmp_path, [((50, 50, 50), (0, 0, 25))]), [0, 0, 1e12, 0, 0, 0])
    result = stability_check(xml)
    assert not result.passed and not result.finite
    assert "blew up" in result.message and any("BADQVEL" in w or "BADQACC" in w for w in result.warnings)


def test_render_preview_png(tmp_path, coacd_cache):
    xml = compose_mjcf(_peg_in_hole(tmp_path / "src"), tmp_path / "out", cache_dir=coacd_cache)
    png = render_preview(xml, width=320, height=240)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (320, 240)
    pixels = np.asarray(image).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50
    # the peg (reddish) is in view of the preview camera
    assert ((pixels[:, 0] > 120) & (pixels[:, 0] > pixels[:, 1] + 50)).sum() > 200


def test_validate_variant_reports_stages_in_order(tmp_path, coacd_cache):
    src = tmp_path / "src"
    src.mkdir()
    peg = trimesh.creation.cylinder(radius=PEG_R, height=PEG_H, sections=48)
    peg.apply_translation((80, 0, PEG_H / 2 + 0.5))  # standing beside the block, 0.5 mm up
    build = _build(src, [_part(src, "block", _block_with_hole()), _part(src, "peg", peg, joint="free")])
    # the task: the peg's tip 30 of the hole's 40 mm deep; the oracle lifts it over and lowers it in
    build.sites = [SiteSpec(name="tip", part="peg", pos_mm=(80, 0, 0.5)), SiteSpec(name="rim", part="block", pos_mm=(0, 0, 40))]
    build.task = TaskSpec.model_validate({
        "instruction": "Insert the peg.", "time_limit_s": 5.0,
        "goal": [{"kind": "site_in_box", "site": "tip", "relative_to": "rim", "min_mm": (-3, -3, -41), "max_mm": (3, 3, -30)}],
        "oracle": [{"kind": "carry_part", "part": "peg", "waypoints_mm": [(0, 0, 50), (-80, 0, 50), (-80, 0, -0.8)]}]})
    report = validate_variant(build, tmp_path / "ok", scenario_id="s1", variant_id="v00", cache_dir=coacd_cache)
    assert report.passed, report.first_failure()
    assert [s.name for s in report.stages] == ["geometry", "mjcf_compose", "mjcf_schema", "mjcf_compile", "stability",
                                               "solvability"]
    assert report.oracle.solved and report.oracle.final.predicates[0].offset_mm[2] <= -30
    assert report.max_velocity is not None and report.max_penetration_m is not None
    assert set(report.timings_s) == {s.name for s in report.stages}
    assert (tmp_path / "ok" / "scene.xml").exists()

    leaky = build.model_copy(deep=True)
    leaky.parts[0].geometry.watertight = False
    leaky.parts[0].geometry.issues = ["open boundary: 3 edges"]
    report = validate_variant(leaky, tmp_path / "leaky", scenario_id="s1", variant_id="v01", cache_dir=coacd_cache)
    assert not report.passed and [s.name for s in report.stages] == ["geometry"]
    assert "block: open boundary" in report.stages[0].message

    orphan = build.model_copy(deep=True)
    orphan.parts[1] = orphan.parts[1].model_copy(update={"joint": "hinge", "parent": "table_leg"})
    report = validate_variant(orphan, tmp_path / "orphan", scenario_id="s1", variant_id="v02", cache_dir=coacd_cache)
    assert report.first_failure().name == "mjcf_compose" and "unknown parent 'table_leg'" in report.first_failure().message


# (seed, scale) of the peg_in_hole family: seed 1 square; 2 and 5 round (0.90 and 0.33 mm clearance,
# the tight one jammed on CoACD's chords); seed 0 at a tall, narrow scale is a blind round hole.
SANDBOX_PEGS = ((1, (1.0, 1.0, 1.0)), (2, (1.0, 1.0, 1.0)), (5, (1.0, 1.0, 1.0)), (5, (2.0, 0.5, 0.5)),
                (0, (0.5, 1.5, 2.0)))


def _drop_peg_over_hole(xml_path: Path, build: BuildOutput) -> tuple[float, float]:
    """Hold the peg upright 2 mm over the hole, let go for 2 s: (its rest height on top, final height), m."""
    model = mujoco.MjModel.from_xml_path(str(xml_path))
    data = mujoco.MjData(model)
    block = next(p for p in build.parts if p.name == "block")
    peg = next(p for p in build.parts if p.name == "peg")
    rest_z = block.bbox_max_mm[2] / 1000 + (peg.bbox_max_mm[2] - peg.bbox_min_mm[2]) / 2000
    centre = (np.asarray(block.bbox_min_mm) + np.asarray(block.bbox_max_mm)) / 2000
    adr = model.joint("peg_free").qposadr[0]
    data.qpos[adr:adr + 7] = [centre[0], centre[1], rest_z + 0.002, 1, 0, 0, 0]
    mujoco.mj_step(model, data, nstep=1000)
    return rest_z, float(data.body("peg").xpos[2])


def test_sandbox_built_pegs_go_into_their_holes_only_with_decomposition(tmp_path, monkeypatch, coacd_cache):
    from benchgen_assets.families import family_source
    from benchgen_assets.sandbox import run_build, shutdown_server

    monkeypatch.setenv("BENCHGEN_SANDBOX_DIR", str(tmp_path / "sandbox"))  # our own build server
    try:
        builds = [run_build(family_source("peg_in_hole"), seed, scale, tmp_path / f"{seed}-{scale}" / "cad")
                  for seed, scale in SANDBOX_PEGS]
    finally:
        shutdown_server()
    assert {b.parameters["hole_shape"] for b in builds} == {"round", "square"}
    for (seed, scale), build in zip(SANDBOX_PEGS, builds):
        assert isinstance(build, BuildOutput), build
        case = f"seed {seed} scale {scale}: {build.parameters['hole_shape']} hole, clearance {build.parameters['clearance_mm']} mm"
        out = tmp_path / f"{seed}-{scale}"
        report = validate_variant(build, out, scenario_id="peg_in_hole", variant_id="v00", cache_dir=coacd_cache)
        assert report.passed, (case, report.first_failure())
        block = next(p for p in build.parts if p.name == "block")
        assert decompose_convex(Path(build.out_dir) / block.stl_file, cache_dir=coacd_cache).method == "prism", case

        rest_z, z = _drop_peg_over_hole(out / "scene.xml", build)
        depth_m = build.parameters["hole_depth_mm"] / 1000
        assert z < rest_z - depth_m + 0.001, f"{case}: peg jammed {(rest_z - z) * 1000:.1f} mm down a {depth_m * 1000:.1f} mm hole"
        assert build.parameters["peg_length_mm"] - build.parameters["hole_depth_mm"] >= 8.0 - 1e-6, case  # sticks out

        hull = compose_mjcf(build, tmp_path / f"hull-{seed}-{scale}", decompose=False, cache_dir=coacd_cache)
        rest_z, z = _drop_peg_over_hole(hull, build)
        assert abs(z - rest_z) < 0.003, f"{case}: without decomposition the peg rests on the block, got {z:.4f} m"


def _box_with_x_hole() -> trimesh.Trimesh:
    """A block with a round hole along x and a step on top: a stepped prism along x only."""
    block = _box((60, 50, 40), (0, 0, 20)).union(_box((60, 20, 10), (0, 15, 45)))
    hole = trimesh.creation.cylinder(radius=10, height=100, sections=40,
                                     transform=trimesh.transformations.rotation_matrix(np.pi / 2, (0, 1, 0)))
    hole.apply_translation((0, -5, 20))
    return block.difference(hole)


def test_prism_decomposition_tiles_the_part_and_keeps_the_hole_open(tmp_path):
    from scipy.spatial import ConvexHull

    mesh = _box_with_x_hole()
    (tmp_path / "part.stl").write_bytes(mesh.export(file_type="stl"))
    result = decompose_convex(tmp_path / "part.stl", cache_dir=tmp_path / "cache")
    assert result.method == "prism" and not result.cache_hit and result.seconds < 1.0
    solids = [trimesh.Trimesh(p.vertices, p.faces) for p in result.pieces]
    assert all(s.is_volume and s.is_convex and s.volume > 0 for s in solids)
    assert sum(s.volume for s in solids) == pytest.approx(mesh.volume, rel=1e-6)  # tiles: no gap, no overlap
    assert np.all(np.isclose(np.abs(np.concatenate([s.face_normals for s in solids])[:, 0]), 0, atol=1e-6)
                  | np.isclose(np.abs(np.concatenate([s.face_normals for s in solids])[:, 0]), 1, atol=1e-6))

    # Points just inside the hole's polygon (radius 10·cos(π/40)) lie in no piece …
    angles = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    open_r = 10 * np.cos(np.pi / 40) - 0.01
    hole_points = np.array([(x, -5 + open_r * np.cos(a), 20 + open_r * np.sin(a)) for x in (-25, 0, 25) for a in angles])
    halfspaces = [ConvexHull(p.vertices).equations for p in result.pieces]

    def inside_any(points):
        return np.array([any(np.all(h[:, :3] @ q + h[:, 3] <= 1e-9) for h in halfspaces) for q in points])

    assert not inside_any(hole_points).any()
    # … and material points (on a ring 1 mm outside the hole, and in the step) are covered.
    solid_points = np.array([(x, -5 + 11 * np.cos(a), 20 + 11 * np.sin(a)) for x in (-25, 25) for a in angles[::5]]
                            + [(0, 15, 45), (29, 24, 49)])
    assert inside_any(solid_points).all()


def test_non_prismatic_part_falls_back_to_coacd_and_is_cached(tmp_path):
    dimpled = _box((60, 60, 30), (0, 0, 15)).difference(trimesh.creation.icosphere(subdivisions=2, radius=18).apply_translation((0, 0, 30)))
    (tmp_path / "dimpled.stl").write_bytes(dimpled.export(file_type="stl"))
    quick = CoacdParams(threshold=0.2, resolution=300, mcts_nodes=4, mcts_iterations=10, mcts_max_depth=1)  # test speed
    first = decompose_convex(tmp_path / "dimpled.stl", cache_dir=tmp_path / "cache", params=quick)
    assert first.method == "coacd" and len(first.pieces) >= 2 and not first.cache_hit
    again = decompose_convex(tmp_path / "dimpled.stl", cache_dir=tmp_path / "cache", params=quick)
    assert again.cache_hit and again.method == "coacd" and again.seconds < 0.5
    assert [p.vertices.tobytes() for p in again.pieces] == [p.vertices.tobytes() for p in first.pieces]
