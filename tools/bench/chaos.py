"""``edream bench chaos``: the full chaos suite (issue 14) against a real ``edream run --no-demo``.

kill -9 of the platform (twice, then restarts) and of each child (broker, object store, anvil, every stage
process), SIGSTOP/SIGCONT of the broker, anvil and the stage processes for 45-60 s, 20,000 random byte strings,
20,000 absurd Measurements, 5,000 wrong-contract records and the hostile market orders and flex requests, around
a steady flow of good readings and anchored settlements (see :mod:`tools.chaos.suite`). Prints the table, then
one JSON object; ``edream bench`` exits 1 unless 0 lost, 0 duplicated, 0 wrongly accepted, every anchored window
VALID and every stage UP at the end. ``--plan time-boxed`` runs the subset of ``tests/chaos/``; ``--seed N``.
Takes 10-20 minutes; ``--seconds`` is ignored.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from tools.chaos.suite import FULL, QUICK, run_plan


def run(seconds: float = 0.0, plan: str = "full", seed: int = FULL.seed) -> dict[str, Any]:
    chosen = {"full": FULL, "time-boxed": QUICK}[plan]
    report = run_plan(dataclasses.replace(chosen, seed=seed))
    print(report.table(), file=sys.stdout, flush=True)
    return report.to_dict()
