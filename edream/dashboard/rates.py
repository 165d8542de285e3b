"""Events per second from successive snapshots of monotonically increasing counters."""

from __future__ import annotations

from collections.abc import Mapping


class RateTracker:
    """Keeps the previous snapshot; ``update`` returns per-counter rates (1/s) since then.

    Times are UTC epoch ms. The first call, or a call within the same millisecond, yields zero rates; a counter
    that went down (process restarted) is measured from zero.
    """

    def __init__(self) -> None:
        self._prev: dict[str, int] = {}
        self._prev_ms: int | None = None
        self._rates: dict[str, float] = {}

    def update(self, counters: Mapping[str, int], now_ms: int) -> dict[str, float]:
        if self._prev_ms is not None and now_ms > self._prev_ms:
            dt = (now_ms - self._prev_ms) / 1000
            self._rates = {}
            for k, v in counters.items():
                before = self._prev.get(k, 0)
                self._rates[k] = (v - before if v >= before else v) / dt
        elif self._prev_ms is None:
            self._rates = {k: 0.0 for k in counters}
        if self._prev_ms is None or now_ms > self._prev_ms:
            self._prev, self._prev_ms = dict(counters), now_ms
        return dict(self._rates)
