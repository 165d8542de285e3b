"""Fetch what is ready at once: the batch consume of a stage's Quix consumer.

librdkafka's batch consume returns when it has ``num_messages`` records or when ``timeout`` has passed, so a call
for Quix's batch of 10,000 with fewer records queued always waited the whole timeout. Quix fetches again each time
a quiet input's partition (the clock's, after each tick) runs empty, so a stage waited that timeout several times a
second with records queued: 26 % of the interval stage's main thread in the e2e bench at 50,000 meters, while it
lagged. :func:`consume_ready_first` takes what is queued without waiting and waits only when nothing is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Consume = Callable[..., list[Any]]


def consume_ready_first(consume: Consume) -> Consume:
    """``consume(num_messages, timeout)`` that returns the queued records at once, and waits up to ``timeout``
    (s) only when none is queued."""

    def ready_first(num_messages: int = 1, timeout: float | None = None) -> list[Any]:
        ready = consume(num_messages=num_messages, timeout=0)
        if ready or timeout == 0:
            return ready
        return consume(num_messages=num_messages, timeout=timeout)

    return ready_first
