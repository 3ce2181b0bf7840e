"""Sandbox for untrusted scenario scripts: a shared build server forks one limited job per build.

    from benchgen_assets.sandbox import run_build, SandboxLimits
    result = run_build(script_source, seed, scale, out_dir)  # BuildOutput | SandboxError

Importing this package is cheap (no build123d); the server process pays that import once.
"""

from benchgen_assets.records import SandboxLimits
from benchgen_assets.sandbox.client import ensure_server, run_build, server_status, shutdown_server
from benchgen_assets.sandbox.policy import check_source

__all__ = ["SandboxLimits", "check_source", "ensure_server", "run_build", "server_status", "shutdown_server"]
