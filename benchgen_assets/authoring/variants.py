"""Request → variants: the seed and scale vector of each variant, drawn only from the base seed."""

from __future__ import annotations

import math
import random

from benchgen_assets.records import ScaleLimits, VariantSpec


def draw_variants(base_seed: int, count: int, limits: ScaleLimits) -> list[VariantSpec]:
    """``count`` variants; the same (base_seed, count, limits) always gives the same list, and a
    longer list starts with the shorter one. Scales are log-uniform per axis, so 0.5 and 2.0 are
    equally likely and the nominal scene (1.0) sits in the middle; variant 0 is the nominal
    scene clamped to the limits, so every scenario has one unscaled probe."""
    rng = random.Random(f"benchgen-variants:{base_seed}")
    out = []
    for i in range(count):
        seed = rng.randrange(2**31)
        if i == 0:
            scale = tuple(min(max(1.0, lo), hi) for lo, hi in zip(limits.min, limits.max))
        else:
            scale = tuple(round(math.exp(rng.uniform(math.log(lo), math.log(hi))), 3)
                          for lo, hi in zip(limits.min, limits.max))
        out.append(VariantSpec(variant_id=f"v{i:02d}", seed=seed, scale=scale))
    return out
