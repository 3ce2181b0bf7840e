"""The sandbox for untrusted scenario scripts: real build server, real build123d, real attacks."""

from __future__ import annotations

import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchgen_assets.records import BuildOutput, SandboxError, SandboxLimits
from benchgen_assets.sandbox import check_source, protocol, run_build, server_status, shutdown_server

VALID = textwrap.dedent('''
    import random
    from build123d import Box, Cylinder, Pos
    from benchgen_assets.scene import Part, Scene

    def build(seed, scale):
        rng = random.Random(seed)
        width = rng.uniform(40.0, 60.0) * scale[0]
        block = Pos(0, 0, 10 * scale[2]) * (Box(width, 50 * scale[1], 20 * scale[2]) - Cylinder(8, 20 * scale[2]))
        peg = Pos(width, 0, 15.5 * scale[2]) * Cylinder(5, 30 * scale[2])
        return Scene(name="probe", parts=[Part("block", block, role="fixture"),
                                          Part("peg", peg, joint="free", density_kg_m3=1000.0)],
                     parameters={"width": width})
''')

# A build that must still succeed after each attack (the server survives its jobs).
FAST = SandboxLimits(wall_timeout_s=20, cpu_time_s=15)


pytestmark = pytest.mark.usefixtures("private_build_server")


def build_ok(tmp_path: Path, seed: int = 1, scale=(1.0, 1.0, 1.0), name: str = "out") -> BuildOutput:
    result = run_build(VALID, seed, scale, tmp_path / name, FAST)
    assert isinstance(result, BuildOutput), result
    return result


def test_valid_script_builds_stl_with_sane_mass(tmp_path):
    out = build_ok(tmp_path)
    assert [p.name for p in out.parts] == ["block", "peg"]
    block, peg = out.parts
    width = out.parameters["width"]
    assert block.volume_mm3 == pytest.approx(width * 50 * 20 - 3.14159265 * 8 ** 2 * 20, rel=1e-3)
    assert peg.mass_kg == pytest.approx(1000.0 * 3.14159265 * 25 * 30 * 1e-9, rel=1e-3)
    assert block.mass_kg == pytest.approx(700.0 * block.volume_mm3 * 1e-9)
    assert block.volume_mm3 / block.convex_hull_volume_mm3 < 0.97  # the hole makes it non-convex
    assert block.bbox_min_mm[2] == pytest.approx(0.0, abs=1e-6) and peg.joint == "free"
    for part in out.parts:
        assert part.geometry.ok, part.geometry
        data = (Path(out.out_dir) / part.stl_file).read_bytes()
        n_triangles = int.from_bytes(data[80:84], "little")
        assert n_triangles > 10 and len(data) == 84 + 50 * n_triangles


def test_same_seed_and_scale_give_identical_stl_and_other_seeds_differ(tmp_path):
    first = build_ok(tmp_path, seed=7, scale=(1.5, 0.8, 1.2), name="a")
    second = build_ok(tmp_path, seed=7, scale=(1.5, 0.8, 1.2), name="b")
    other = build_ok(tmp_path, seed=8, scale=(1.5, 0.8, 1.2), name="c")
    for p1, p2 in zip(first.parts, second.parts):
        assert (tmp_path / "a" / p1.stl_file).read_bytes() == (tmp_path / "b" / p2.stl_file).read_bytes()
    assert first.parts[0].stl_sha256 != other.parts[0].stl_sha256
    assert first.parameters != other.parameters


def test_server_is_reused_across_builds(tmp_path):
    build_ok(tmp_path, name="first")
    before = server_status()
    build_ok(tmp_path, name="second")
    after = server_status()
    assert before and after and after["pid"] == before["pid"]
    assert after["jobs_started"] == before["jobs_started"] + 1


ATTACKS = {
    "read_passwd": ("forbidden_call", '''
        def build(seed, scale):
            return open("/etc/passwd").read()
    '''),
    "write_outside": ("forbidden_call", '''
        def build(seed, scale):
            with open("/tmp/benchgen-sandbox-escape.txt", "w") as f:
                f.write("owned")
    '''),
    "os_system": ("forbidden_import", '''
        import os
        def build(seed, scale):
            os.system("touch /tmp/benchgen-sandbox-escape.txt")
    '''),
    "subprocess": ("forbidden_import", '''
        import subprocess
        def build(seed, scale):
            subprocess.run(["id"])
    '''),
    "socket": ("forbidden_import", '''
        import socket
        def build(seed, scale):
            socket.create_connection(("127.0.0.1", 9))
    '''),
    "dunder_import": ("forbidden_call", '''
        def build(seed, scale):
            return __import__("os").system("id")
    '''),
    "subclasses_escape": ("forbidden_call", '''
        def build(seed, scale):
            for cls in ().__class__.__bases__[0].__subclasses__():
                if cls.__name__ == "Popen":
                    return cls(["id"])
    '''),
    "build123d_reexported_os": ("forbidden_call", '''
        import build123d
        def build(seed, scale):
            build123d.os.system("id")
    '''),
    "occt_file_export": ("forbidden_import", '''
        from build123d import Box, export_stl
        def build(seed, scale):
            export_stl(Box(1, 1, 1), "/tmp/benchgen-sandbox-escape.stl")
    '''),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attacks_are_refused_statically(name):
    kind, source = ATTACKS[name]
    error = check_source(textwrap.dedent(source))
    assert isinstance(error, SandboxError) and error.kind == kind, error
    assert "not allowed" in error.message or "no file import/export" in error.message


# The same attacks with the static check switched off: the runtime layers (restricted builtins,
# import hook, audit hook, chroot) must hold on their own, and the server must keep working.
RUNTIME_ATTACKS = {
    "read_passwd": '''
        import build123d
        def build(seed, scale):
            build123d.io.open("/etc/passwd").read()
    ''',
    "write_outside": '''
        import build123d
        def build(seed, scale):
            build123d.io.open("/tmp/benchgen-sandbox-escape.txt", "w").write("owned")
    ''',
    "os_system": '''
        import build123d
        def build(seed, scale):
            build123d.os.system("touch /tmp/benchgen-sandbox-escape.txt")
    ''',
    "subprocess": '''
        import build123d
        def build(seed, scale):
            build123d.webbrowser.subprocess.run(["touch", "/tmp/benchgen-sandbox-escape.txt"])
    ''',
    "socket": '''
        import build123d
        def build(seed, scale):
            build123d.requests.get("http://127.0.0.1:9/")
    ''',
    "import_os": '''
        import os
        def build(seed, scale):
            os.system("id")
    ''',
    "dunder_import": '''
        def build(seed, scale):
            __import__("os").system("id")
    ''',
    "subclasses_escape": '''
        def build(seed, scale):
            for cls in ().__class__.__bases__[0].__subclasses__():
                if cls.__name__ == "Popen":
                    cls(["touch", "/tmp/benchgen-sandbox-escape.txt"])
            raise RuntimeError("no Popen reachable")
    ''',
    "fork_bomb": '''
        import build123d
        def build(seed, scale):
            while True:
                build123d.os.fork()
    ''',
    "swallowed_refusal": '''
        import build123d
        from build123d import Box
        from benchgen_assets.scene import Part, Scene
        def build(seed, scale):
            try:
                build123d.os.system("id")
            except Exception:
                pass
            return Scene(name="sneaky", parts=[Part("box", Box(10, 10, 10))])
    ''',
    "occt_file_export": '''
        from build123d import Box, export_stl
        def build(seed, scale):
            export_stl(Box(1, 1, 1), "/tmp/benchgen-sandbox-escape.stl")
            from benchgen_assets.scene import Part, Scene
            return Scene(name="x", parts=[Part("box", Box(10, 10, 10))])
    ''',
}


@pytest.mark.parametrize("name", sorted(RUNTIME_ATTACKS))
def test_runtime_layers_contain_attacks_without_static_check(tmp_path, name):
    escape = [Path("/tmp/benchgen-sandbox-escape.txt"), Path("/tmp/benchgen-sandbox-escape.stl")]
    for path in escape:
        path.unlink(missing_ok=True)
    limits = FAST.model_copy(update={"static_check": False})
    result = run_build(textwrap.dedent(RUNTIME_ATTACKS[name]), 0, (1, 1, 1), tmp_path / "attack", limits)
    assert isinstance(result, SandboxError), result
    assert result.kind in ("forbidden_call", "forbidden_import", "runtime"), result
    assert not any(p.exists() for p in escape)
    assert "root:" not in result.message  # nothing of /etc/passwd leaked
    if name not in ("read_passwd", "write_outside", "subclasses_escape"):
        # as root the job is also chrooted, so stray paths simply do not exist; everything else is refused
        assert "not allowed" in result.message or "refused" in result.message, result.message
    build_ok(tmp_path)  # the next build still works


def run_limited(tmp_path, source: str, **limits) -> SandboxError:
    result = run_build(textwrap.dedent(source), 0, (1, 1, 1), tmp_path / "out", FAST.model_copy(update=limits))
    assert isinstance(result, SandboxError), result
    return result


def test_infinite_loop_hits_the_wall_timeout(tmp_path):
    error = run_limited(tmp_path, '''
        def build(seed, scale):
            while True:
                pass
    ''', wall_timeout_s=3, cpu_time_s=30)
    assert error.kind == "timeout" and "3 s" in error.message
    build_ok(tmp_path)


def test_cpu_limit_stops_a_busy_script(tmp_path):
    error = run_limited(tmp_path, '''
        def build(seed, scale):
            x = 0
            while True:
                x += 1
    ''', wall_timeout_s=30, cpu_time_s=2)
    assert error.kind == "cpu_limit"


def test_memory_bomb_hits_the_memory_limit(tmp_path):
    error = run_limited(tmp_path, '''
        def build(seed, scale):
            hoard = []
            while True:
                hoard.append(bytearray(50 * 1024 * 1024))
    ''', memory_mb=512)
    assert error.kind == "memory_limit", error
    build_ok(tmp_path)


def test_syntax_error_is_reported_with_its_line(tmp_path):
    error = run_limited(tmp_path, '''
        def build(seed, scale)
            return None
    ''')
    assert error.kind == "syntax" and "line 2" in error.message


def test_exception_in_build_comes_back_with_traceback(tmp_path):
    error = run_limited(tmp_path, '''
        from build123d import Box
        def build(seed, scale):
            width = 10 / (seed - seed)
            return Box(width, 1, 1)
    ''')
    assert error.kind == "runtime"
    assert "ZeroDivisionError" in error.message and "line 4" in error.message
    assert error.traceback and "ZeroDivisionError" in error.traceback


@pytest.mark.parametrize("returned, expected", [
    ("Box(10, 10, 10)", "must return"),
    ("Scene(name='empty', parts=[])", "non-empty"),
    ("Scene(name='flat', parts=[Part('sheet', Rectangle(10, 10))])", "no solid"),
    ("Scene(name='twins', parts=[Part('a', Box(1, 1, 1)), Part('a', Box(1, 1, 1))])", "unique"),
])
def test_bad_return_values_are_refused(tmp_path, returned, expected):
    error = run_limited(tmp_path, f'''
        from build123d import Box, Rectangle
        from benchgen_assets.scene import Part, Scene
        def build(seed, scale):
            return {returned}
    ''')
    assert error.kind == "bad_return" and expected in error.message, error


def test_invalid_geometry_is_reported_not_raised(tmp_path):
    result = run_build(textwrap.dedent('''
        from build123d import Box, Compound, Pos
        from benchgen_assets.scene import Part, Scene
        def build(seed, scale):
            overlapping = Compound([Box(10, 10, 10), Pos(5, 0, 0) * Box(10, 10, 10)])
            return Scene(name="overlap", parts=[Part("two_boxes", overlapping)])
    '''), 0, (1, 1, 1), tmp_path / "out", FAST)
    assert isinstance(result, BuildOutput), result
    report = result.parts[0].geometry
    assert report.self_intersecting and not report.ok and report.issues


def test_stale_socket_and_concurrent_clients_start_exactly_one_server(tmp_path):
    build_ok(tmp_path, name="before")
    old = server_status()
    assert shutdown_server() and server_status() is None
    stale = protocol.runtime_dir() / protocol.SOCKET_NAME
    stale.write_text("not a socket")  # left behind by a crashed server
    with ThreadPoolExecutor(max_workers=3) as pool:  # all three find no server at the same time
        results = list(pool.map(lambda i: build_ok(tmp_path, seed=i, name=f"concurrent{i}"), range(3)))
    assert all(len(r.parts) == 2 for r in results)
    now = server_status()
    assert now["pid"] != old["pid"] and now["jobs_started"] == 3
