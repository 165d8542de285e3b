"""Records a Faust agent sends that must be on Kafka before the agent moves on (its offsets are committed then).

``await topic.send(...)`` only queues a record: its delivery is a future that fails later if the broker refuses it
(an outage, an unknown error). Nobody awaited it in the sink, so a dead letter refused while the broker was away
was lost ("FutureMessage exception was never retrieved") although the batch's offsets were committed.
:class:`AckedSends` keeps the delivery futures of a batch and :meth:`AckedSends.confirm` waits for all of them,
sending the refused ones again with the platform's backoff until the broker acknowledges them (at-least-once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from edream.retry import async_backoff

#: sends one record (key, value) and returns its delivery future (Faust's ``topic.send``)
Send = Callable[[bytes, bytes], Awaitable[Awaitable[Any]]]


class DeliveryFailed(RuntimeError):
    """Some records of the batch were refused by the broker; they have been sent again."""


class AckedSends:
    def __init__(self, send: Send, what: str, on_retry: Callable[[BaseException], None] | None = None):
        self._send, self.what, self.on_retry = send, what, on_retry
        self._pending: list[tuple[bytes, bytes, Awaitable[Any]]] = []

    async def send(self, key: bytes, value: bytes) -> None:
        """Queue one record; its delivery (or the error of sending it) is awaited by :meth:`confirm`."""
        try:
            delivery = await self._send(key, value)
        except Exception as exc:  # noqa: BLE001 - e.g. the producer's queue is full: sent again by confirm
            delivery = asyncio.get_running_loop().create_future()
            delivery.set_exception(exc)
        self._pending.append((key, value, delivery))

    async def confirm(self) -> None:
        """Return once every queued record is acknowledged; refused ones are sent again with backoff (forever:
        the caller's offsets must not move past records that are not on Kafka)."""
        async for attempt in async_backoff(self.what, retry_on=(DeliveryFailed,), on_retry=self.on_retry):
            with attempt:
                pending, self._pending = self._pending, []
                results = await asyncio.gather(*(f for _, _, f in pending), return_exceptions=True)
                refused = [
                    (k, v, r)
                    for (k, v, _), r in zip(pending, results, strict=True)
                    if isinstance(r, BaseException)
                ]
                for key, value, _ in refused:
                    await self.send(key, value)
                if refused:
                    error = refused[0][2]
                    raise DeliveryFailed(f"{len(refused)} refused ({type(error).__name__}: {error})")
