"""Importers: episodes per second from RLDS tfrecords and from a LeRobot v3 dataset (mp4 decoding).

    .venv/bin/python bench/bench_importers.py [--episodes 20] [--steps 120] [--width 320 --height 256]

Writes both sources in a temp folder with the tests' real-format writers (JPEG frames in
tf.train.Example records; one H.264 mp4 for all LeRobot episodes), then times
``import_dataset`` over each (writing the episode folders included). Prints the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=256)
    args = parser.parse_args()

    import tests.robot_data_fixtures as fx
    from teacher_assets.episodes.importers import import_dataset

    fx.SIZE = (args.width, args.height)  # the writers draw frames at this size
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        episodes = [fx.rlds_episode(args.steps, "pick up the red cup and place it on the tray")
                    for _ in range(args.episodes)]
        half = len(episodes) // 2
        fx.write_rlds(tmp / "rlds", [episodes[:half], episodes[half:]])
        fx.write_lerobot_v3(tmp / "lerobot", [args.steps] * args.episodes, ["open the drawer"] * args.episodes,
                            codec="libx264")
        size_mb = sum(p.stat().st_size for p in (tmp / "rlds").rglob("*.tfrecord*")) / 1e6
        print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores)")
        print(f"{args.episodes} episodes x {args.steps} steps at {args.width}x{args.height}; RLDS shards {size_mb:.1f} MB")
        for fmt, src in (("rlds", tmp / "rlds"), ("lerobot", tmp / "lerobot")):
            started = time.perf_counter()
            report = import_dataset(fmt, src, tmp / f"out-{fmt}")
            seconds = time.perf_counter() - started
            assert len(report.imported) == args.episodes, report.failed
            print(f"{fmt:8s} {seconds:6.2f} s  {args.episodes / seconds:6.1f} episodes/s  "
                  f"({seconds / args.episodes * 1000:.0f} ms per episode)")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
