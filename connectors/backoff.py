"""Exponential backoff with full jitter, deterministic when given a seeded ``random.Random``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays (seconds) ``initial * 2**n`` capped at ``maximum``, jittered to [delay/2, delay]."""

    initial: float = 0.5
    maximum: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return delay / 2 + self.rng.random() * delay / 2

    def reset(self) -> None:
        self.attempts = 0
