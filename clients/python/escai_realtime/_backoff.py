"""Full-jitter exponential backoff, as the TypeScript SDK's (src/client/backoff.ts)."""
from __future__ import annotations

import random
from typing import Callable


def full_jitter(attempt: int, min_s: float, max_s: float, rand: Callable[[], float] = random.random) -> float:
    """Delay before attempt ``attempt`` (0-based), in seconds: uniform in [0, min(max, min*2^attempt)], at least min/2."""
    ceiling = min(max_s, min_s * 2.0 ** min(attempt, 30))
    return max(min_s / 2, rand() * ceiling)
