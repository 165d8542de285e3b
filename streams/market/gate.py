"""Gate closure driven by event time: a watermark, not the arrival of a later order, closes a slot."""

from __future__ import annotations

import heapq

from streams.market.config import MarketConfig


class GateClock:
    """Tracks open slots and closes them when the watermark reaches their gate closure.

    The watermark is the highest event time seen (UTC epoch ms, from orders, meter data or periodic timer ticks)
    minus ``config.allowed_lateness_ms``; it never goes back. A slot is closed once ``watermark >= gate_closure``.
    """

    def __init__(self, config: MarketConfig):
        self.config = config
        self.watermark: int | None = None
        self._open: list[int] = []  # heap of slot starts (gate closure is monotone in slot start)
        self._open_set: set[int] = set()

    def is_closed(self, slot_start: int) -> bool:
        return self.watermark is not None and self.config.gate_closure(slot_start) <= self.watermark

    def open(self, slot_start: int) -> bool:
        """Start tracking a slot (idempotent); False if its gate is already closed."""
        if self.is_closed(slot_start):
            return False
        if slot_start not in self._open_set:
            self._open_set.add(slot_start)
            heapq.heappush(self._open, slot_start)
        return True

    @property
    def open_slots(self) -> list[int]:
        return sorted(self._open_set)

    def advance(self, event_time_ms: int) -> list[int]:
        """Move the watermark to ``event_time_ms - allowed_lateness`` (if later); return the slots that closed,
        oldest first. Each slot is returned exactly once."""
        wm = event_time_ms - self.config.allowed_lateness_ms
        if self.watermark is None or wm > self.watermark:
            self.watermark = wm
        closed = []
        while self._open and self.is_closed(self._open[0]):
            slot = heapq.heappop(self._open)
            self._open_set.discard(slot)
            closed.append(slot)
        return closed
