"""Physics half of the scenario generator: STL → convex decomposition → MJCF → strict validation → preview.

Plain Python (no dagster, no build123d): consumes a BuildOutput (STL files + records).
"""

import os

# MuJoCo picks its GL backend when first imported: headless CPU rendering unless told otherwise.
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

from .decompose import CoacdParams, Decomposition, DecompositionError, decompose_convex  # noqa: E402
from .mjcf import CompositionError, compose_mjcf  # noqa: E402
from .render import render_preview  # noqa: E402
from .schema import mjcf_schema_errors  # noqa: E402
from .stability import StabilityResult, stability_check  # noqa: E402
from .validate import validate_variant  # noqa: E402

__all__ = [
    "CoacdParams", "CompositionError", "Decomposition", "DecompositionError", "StabilityResult", "compose_mjcf",
    "decompose_convex", "mjcf_schema_errors", "render_preview", "stability_check", "validate_variant",
]
