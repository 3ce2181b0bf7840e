"""How long each code location takes to import, against `import dagster` alone.

    .venv/bin/python bench/bench_import.py [--runs 5]

Each figure is the median wall time of fresh interpreter processes (the .pyc cache warm).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "python (no imports)": "pass",
    "dagster alone": "import dagster",
    "benchgen_assets.definitions": "import benchgen_assets.definitions",
    "teacher_assets.definitions": "import teacher_assets.definitions",
}


def median_seconds(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    for code in TARGETS.values():  # warm the bytecode cache
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    results = {name: median_seconds(code, args.runs) for name, code in TARGETS.items()}
    base = results["dagster alone"]
    print(f"machine: {os.cpu_count()} cores; median of {args.runs} fresh processes")
    print(f"{'target':32} {'seconds':>8} {'vs dagster':>11}")
    for name, secs in results.items():
        print(f"{name:32} {secs:8.2f} {secs / base:10.2f}x")


if __name__ == "__main__":
    main()
