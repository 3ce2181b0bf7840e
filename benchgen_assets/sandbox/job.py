"""One sandboxed build, run in a process forked from the build server (never returns)."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

from benchgen_assets.records import BuildOutput, SandboxError, SandboxLimits
from benchgen_assets.sandbox.policy import AuditPolicy, SandboxViolation, python_read_roots, script_builtins

SCRIPT_NAME = "scenario.py"
RESULT_NAME = "result.json"
LOG_NAME = "output.log"
STL_DIR = "stl"
UNPRIVILEGED_UID = UNPRIVILEGED_GID = 65534  # nobody / nogroup


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _user_process_count(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


def apply_limits(limits: SandboxLimits, address_space: int, nproc: int) -> None:
    cpu = max(1, int(limits.cpu_time_s))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))  # soft: SIGXCPU, hard: SIGKILL
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    file_size = limits.max_file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _error(kind: str, message: str, tb: str | None = None) -> dict:
    return {"error": SandboxError(kind=kind, message=message, traceback=tb).model_dump()}


def _script_traceback(exc: BaseException) -> str:
    lines = traceback.format_exception(exc)
    return "".join(lines[-40:])


def _classify(exc: BaseException, policy: AuditPolicy) -> dict:
    from benchgen_assets.sandbox.export import BadReturn

    tb = _script_traceback(exc)
    text = f"{type(exc).__name__}: {exc}"
    if policy.refusals or isinstance(exc, SandboxViolation):
        kind = "forbidden_import" if "import" in str(exc) and not policy.refusals else "forbidden_call"
        reason = policy.refusals[0] if policy.refusals else str(exc)
        return _error(kind, f"The script did something a scenario script may not do: {reason}", tb)
    if isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__ or "bad_alloc" in str(exc):
        return _error("memory_limit", f"The script ran out of its memory budget ({text}). "
                      "Build smaller or fewer solids.", tb)
    if isinstance(exc, BadReturn):
        return _error("bad_return", str(exc), tb)
    where = next((f"line {fs.lineno}: {fs.line}" for fs in reversed(traceback.extract_tb(exc.__traceback__))
                  if fs.filename == SCRIPT_NAME), None)
    return _error("runtime", f"build() raised {text}" + (f" (at {where})" if where else ""), tb)


def build_in_job(job_dir: Path, request: dict) -> dict:
    from benchgen_assets.sandbox.export import BadReturn, check_scene, export_part, mechanism_records, safe_file_stem

    source = (job_dir / SCRIPT_NAME).read_text()
    seed = int(request["seed"])
    scale = tuple(float(x) for x in request["scale"])
    stl_dir = job_dir / STL_DIR
    policy = AuditPolicy(str(job_dir), python_read_roots())
    sys.addaudithook(policy)
    try:
        code = compile(source, SCRIPT_NAME, "exec")
    except SyntaxError as exc:
        return _error("syntax", f"SyntaxError: {exc.msg} (line {exc.lineno})")
    namespace = {"__name__": "scenario", "__file__": SCRIPT_NAME, "__builtins__": script_builtins()}
    policy.active = True
    t0 = time.perf_counter()
    try:
        exec(code, namespace)
        build = namespace.get("build")
        if not callable(build):
            raise BadReturn("the script must define a function build(seed, scale) -> Scene")
        scene = build(seed, scale)
        build_s = time.perf_counter() - t0
        if policy.refusals:  # the script swallowed a refusal: still a violation
            raise SandboxViolation(policy.refusals[0])
        check_scene(scene)
        t1 = time.perf_counter()
        taken: set[str] = set()
        parts = []
        for part in scene.parts:
            try:
                parts.append(export_part(part, safe_file_stem(part.name, taken), stl_dir))
            except (BadReturn, SandboxViolation, MemoryError):
                raise
            except Exception as exc:  # noqa: BLE001 — OCCT/trimesh could not handle this solid
                return _error("geometry", f"part {part.name!r} could not be meshed and analysed: "
                              f"{type(exc).__name__}: {exc}", _script_traceback(exc))
        export_s = time.perf_counter() - t1
        if policy.refusals:
            raise SandboxViolation(policy.refusals[0])
        output = BuildOutput(scene_name=str(scene.name), description=str(scene.description),
                             parameters=json.loads(json.dumps(scene.parameters, default=str)),
                             seed=seed, scale=scale, out_dir=str(stl_dir), parts=parts,
                             build_s=round(build_s, 4), export_s=round(export_s, 4), **mechanism_records(scene))
        return {"ok": output.model_dump(mode="json")}
    except BaseException as exc:  # noqa: BLE001 — everything the script does becomes a report
        return _classify(exc, policy)
    finally:
        policy.active = False


def confine(job_dir: Path) -> Path:
    """As root: chroot into the job dir and become ``nobody``. The filesystem is then out of reach
    even for C++ code (OCCT readers/writers) the audit hook cannot see, and RLIMIT_NPROC applies.
    Returns the job dir as the job now sees it."""
    if os.getuid() != 0:
        return job_dir
    for path in (job_dir, *job_dir.iterdir()):
        os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
    os.chroot(job_dir)
    os.chdir("/")
    os.setgroups([])
    os.setgid(UNPRIVILEGED_GID)
    os.setuid(UNPRIVILEGED_UID)
    return Path("/")


def run_job(job_dir: Path, request: dict) -> None:
    """Entry point in the forked job process: limits, confinement, hooks, build, export, result, exit."""
    status = 1
    try:
        os.setpgid(0, 0)
        log_fd = os.open(job_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null_fd)
        os.close(log_fd)
        limits = SandboxLimits.model_validate(request["limits"])
        (job_dir / STL_DIR).mkdir()
        # /proc is out of sight after confine(): measure first. The forked job already maps the
        # preloaded libraries (build123d/OCCT ≈ 1.2 GB of mostly shared address space), so the
        # memory budget is what the script may add on top of that.
        address_space = _vm_size_bytes() + limits.memory_mb * 1024 * 1024
        uid = UNPRIVILEGED_UID if os.getuid() == 0 else os.getuid()
        nproc = _user_process_count(uid) + limits.max_processes
        work_dir = confine(job_dir)
        apply_limits(limits, address_space, nproc)
        result = build_in_job(work_dir, request)
        tmp = work_dir / (RESULT_NAME + ".tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, work_dir / RESULT_NAME)
        status = 0
    except BaseException:  # noqa: BLE001 — e.g. MemoryError while serialising: the server reports it
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)
