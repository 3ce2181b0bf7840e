"""Runs one CoACD decomposition in its own process (CoACD is native code: a crash or a runaway
run must not take the caller down). Standalone on purpose: it must not import the package.

Usage: python _coacd_worker.py IN.npz OUT.npz PARAMS_JSON
"""

import json
import sys

import coacd
import numpy as np


def main() -> None:
    src, dst, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    with np.load(src) as data:
        mesh = coacd.Mesh(data["vertices"], data["faces"])
    coacd.set_log_level("error")
    pieces = coacd.run_coacd(mesh, **params)
    arrays = {}
    for i, (vertices, faces) in enumerate(pieces):
        arrays[f"v{i}"] = np.asarray(vertices, dtype=np.float64)
        arrays[f"f{i}"] = np.asarray(faces, dtype=np.int64)
    np.savez(dst, count=np.array(len(pieces)), **arrays)


if __name__ == "__main__":
    main()
