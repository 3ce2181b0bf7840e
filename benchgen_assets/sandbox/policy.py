"""What an untrusted scenario script may do: the static (AST) check and the runtime guards.

Three layers, each enough to stop the obvious attacks and together covering each other's gaps:
1. ``check_source`` (in the caller, before anything runs): imports outside the allow-list,
   dunder/private attribute access, frame/code introspection, exec/eval/open/... builtins.
2. ``script_builtins`` (in the job process): the script's ``__builtins__`` lack those functions,
   its ``__import__`` enforces the allow-list, ``getattr`` & co refuse private names.
3. ``AuditPolicy`` (``sys.addaudithook`` in the job process): the real side effects — file opens
   outside the job dir, sockets, processes, ctypes — are refused whatever path reached them.
"""

from __future__ import annotations

import ast
import builtins
import os
import re
import site
import sys
from pathlib import Path
from typing import Optional

from benchgen_assets.records import SandboxError

# Modules a script may import (a submodule of an allowed package is allowed too).
ALLOWED_MODULES = ("build123d", "math", "random", "itertools", "functools", "dataclasses", "typing",
                   "collections", "enum", "benchgen_assets.scene")
# Modules reachable as attributes of allowed ones (build123d re-exports os, sys, ctypes, requests …).
FORBIDDEN_ATTRIBUTES = frozenset({
    "os", "sys", "subprocess", "ctypes", "socket", "shutil", "io", "tempfile", "pathlib", "importlib",
    "builtins", "inspect", "requests", "webbrowser", "urllib", "http", "pickle", "marshal", "gc",
    "signal", "threading", "multiprocessing", "resource", "mmap", "posix", "pty", "fcntl", "select",
    "ezdxf", "Lib3MF", "persistence", "copy_module", "logging",
    # frame / code introspection: a way back to unrestricted globals and builtins
    "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "f_globals", "f_locals",
    "f_builtins", "f_back", "f_code", "tb_frame", "tb_next", "co_code", "mro", "func_globals",
})
FORBIDDEN_BUILTINS = frozenset({
    "exec", "eval", "compile", "open", "input", "breakpoint", "help", "exit", "quit", "globals",
    "locals", "vars", "memoryview", "__import__", "__loader__", "__spec__", "__builtins__",
})
# build123d's file readers/writers do their I/O in C++, out of the audit hook's sight.
FORBIDDEN_ATTRIBUTE_PREFIXES = ("export", "import", "write", "save", "load", "read")
FORBIDDEN_FILE_CLASSES = frozenset({"Mesher", "ExportSVG", "ExportDXF", "BuildLineCode", "show", "PathLike"})
# Dunders a normal class definition needs; every other ``_name`` attribute is refused.
ALLOWED_DUNDER_ATTRIBUTES = frozenset({"__init__", "__post_init__"})
_DUNDER_IN_STRING = re.compile(r"__\w+__")


def module_allowed(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in ALLOWED_MODULES)


def attribute_allowed(name: str) -> bool:
    if name in ALLOWED_DUNDER_ATTRIBUTES:
        return True
    return not (name.startswith("_") or name in FORBIDDEN_ATTRIBUTES or name in FORBIDDEN_FILE_CLASSES
                or name.lower().startswith(FORBIDDEN_ATTRIBUTE_PREFIXES))


def _allowed_list() -> str:
    return ", ".join(ALLOWED_MODULES)


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []  # (kind, message)

    def _refuse(self, node: ast.AST, kind: str, what: str) -> None:
        self.problems.append((kind, f"line {getattr(node, 'lineno', '?')}: {what}"))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not module_allowed(alias.name):
                self._refuse(node, "forbidden_import", f"import of '{alias.name}' is not allowed "
                             f"(allowed: {_allowed_list()})")
            elif "." in alias.name and not module_allowed(alias.name.split(".")[0]) and alias.asname is None:
                # `import benchgen_assets.scene` would bind the whole benchgen_assets package
                self._refuse(node, "forbidden_import", f"write `from {alias.name} import ...` "
                             f"instead of `import {alias.name}`")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module or not module_allowed(node.module):
            self._refuse(node, "forbidden_import", f"import from '{'.' * node.level}{node.module or ''}' "
                         f"is not allowed (allowed: {_allowed_list()})")
        for alias in node.names:
            if alias.name != "*" and not attribute_allowed(alias.name):
                self._refuse(node, "forbidden_import", f"importing '{alias.name}' from '{node.module}' "
                             "is not allowed")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not attribute_allowed(node.attr):
            self._refuse(node, "forbidden_call", f"access to attribute '.{node.attr}' is not allowed "
                         "(no private/dunder attributes, no os/sys/io modules, no file import/export, "
                         "no frame introspection)")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_BUILTINS or (node.id.startswith("__") and node.id.endswith("__")):
            self._refuse(node, "forbidden_call", f"use of '{node.id}' is not allowed in a scenario script")
        elif node.id in FORBIDDEN_FILE_CLASSES or node.id.lower().startswith(("export_", "import_")):
            self._refuse(node, "forbidden_call", f"'{node.id}': a scenario script does no file import/export "
                         "(return the Scene; the sandbox exports it)")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        # getattr(x, "__class__"), "{0.__class__}".format(x), ...
        if isinstance(node.value, str) and _DUNDER_IN_STRING.search(node.value):
            self._refuse(node, "forbidden_call", f"string {node.value[:40]!r} names a dunder attribute")
        self.generic_visit(node)


def check_source(source: str, filename: str = "scenario.py") -> Optional[SandboxError]:
    """Static pre-check of a scenario script: None if it may run, else the error for the coder."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        line = (exc.text or "").rstrip()
        return SandboxError(kind="syntax", message=f"SyntaxError: {exc.msg} (line {exc.lineno}): {line}")
    checker = _Checker()
    checker.visit(tree)
    if not any(isinstance(n, ast.FunctionDef) and n.name == "build" for n in tree.body):
        checker.problems.append(("bad_return", "the script must define a top-level function "
                                 "`build(seed: int, scale: tuple[float, float, float]) -> Scene`"))
    if checker.problems:
        kind = checker.problems[0][0]
        lines = [m for _, m in checker.problems[:10]]
        return SandboxError(kind=kind, message="Scenario script refused by the sandbox:\n" + "\n".join(lines))
    return None


class SandboxViolation(PermissionError):
    """Raised inside the job when the script tries something it may not do."""


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level or not module_allowed(name):
        raise SandboxViolation(f"import of '{name}' is not allowed (allowed: {_allowed_list()})")
    if not fromlist and "." in name and not module_allowed(name.split(".")[0]):
        raise SandboxViolation(f"write `from {name} import ...` instead of `import {name}`")
    for item in fromlist or ():
        if item != "*" and not attribute_allowed(item):
            raise SandboxViolation(f"importing '{item}' from '{name}' is not allowed")
    return builtins.__import__(name, globals, locals, fromlist, level)


def _check_name(name) -> None:
    if not isinstance(name, str) or not attribute_allowed(name):
        raise SandboxViolation(f"attribute {name!r} is not accessible from a scenario script")


def _guarded_getattr(obj, name, *default):
    _check_name(name)
    return getattr(obj, name, *default)


def _guarded_hasattr(obj, name):
    _check_name(name)
    return hasattr(obj, name)


def _guarded_setattr(obj, name, value):
    _check_name(name)
    setattr(obj, name, value)


def _guarded_delattr(obj, name):
    _check_name(name)
    delattr(obj, name)


def script_builtins() -> dict:
    """The ``__builtins__`` a script runs with: no exec/eval/open/..., guarded import and getattr."""
    allowed = {k: v for k, v in vars(builtins).items() if k not in FORBIDDEN_BUILTINS}
    allowed.update(__import__=_guarded_import, getattr=_guarded_getattr, hasattr=_guarded_hasattr,
                   setattr=_guarded_setattr, delattr=_guarded_delattr)
    return allowed


# Audit events that are refused outright once the script runs.
_DENIED_EVENTS = ("os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
                  "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "os.putenv",
                  "os.unsetenv", "os.chdir", "resource.setrlimit", "resource.prlimit", "pty.spawn",
                  "sys.remote_exec", "webbrowser.open", "urllib.Request", "ftplib.connect", "smtplib.connect")
_DENIED_PREFIXES = ("socket.", "ctypes.", "_ctypes.")
# Filesystem events whose first argument is a path that must lie inside the job dir.
_PATH_WRITE_EVENTS = ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.link", "os.symlink",
                      "os.chmod", "os.chown", "os.truncate", "os.utime", "shutil.rmtree", "shutil.move",
                      "shutil.copyfile", "shutil.copytree", "os.setxattr", "os.removexattr")
_PATH_READ_EVENTS = ("os.listdir", "os.scandir", "glob.glob", "os.listxattr", "os.getxattr")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def python_read_roots() -> list[str]:
    """Directories whose files a lazy import may still need to read (stdlib, site-packages, project)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(__file__).resolve().parents[1]), *site.getsitepackages()}
    return sorted(os.path.realpath(r) for r in roots)


class AuditPolicy:
    """``sys.addaudithook`` callback for the job process. Every refusal is also recorded, so a script
    that swallows the PermissionError is still reported as a violation."""

    def __init__(self, job_dir: str, read_roots: list[str]):
        self.job_dir = os.path.realpath(job_dir)
        self.read_roots = read_roots
        self.refusals: list[str] = []
        self.active = False

    def _inside(self, path: str, roots: list[str]) -> bool:
        real = os.path.realpath(path)
        return any(real == r or real.startswith(r.rstrip("/") + "/") for r in roots)

    def _refuse(self, what: str) -> None:
        message = f"sandbox refused: {what}"
        self.refusals.append(message)
        raise SandboxViolation(message)

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event in _DENIED_EVENTS or event.startswith(_DENIED_PREFIXES):
            self._refuse(f"{event} (no processes, network, signals or native code in a scenario script)")
        elif event == "open":
            self._check_open(*args[:3])
        elif event in _PATH_WRITE_EVENTS:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)) and not self._inside(os.fsdecode(path), [self.job_dir]):
                    self._refuse(f"{event} on {os.fsdecode(path)!r} (outside the job directory)")
        elif event in _PATH_READ_EVENTS and args:
            path = args[0]
            if isinstance(path, (str, bytes, os.PathLike)) and not self._inside(
                    os.fsdecode(path), [self.job_dir, *self.read_roots]):
                self._refuse(f"{event} on {os.fsdecode(path)!r}")

    def _check_open(self, path, mode=None, flags=0) -> None:
        if isinstance(path, int):  # an already open descriptor: only our own ones exist
            return
        path = os.fsdecode(path)
        writing = bool(isinstance(mode, str) and set(mode) & set("wax+")) or bool((flags or 0) & _WRITE_FLAGS)
        if writing:
            if not self._inside(path, [self.job_dir]):
                self._refuse(f"opening {path!r} for writing (only the job directory is writable)")
        elif not self._inside(path, [self.job_dir, *self.read_roots]):
            self._refuse(f"opening {path!r} (files outside the job directory are not readable)")
