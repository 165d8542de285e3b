"""The sink's dead letters are on Kafka before it moves on: refused deliveries are sent again until acknowledged."""

from __future__ import annotations

import asyncio

import pytest

import streams.agents.acked_sends as acked_sends
from streams.agents.acked_sends import AckedSends


class Broker:
    """Delivery futures of a fake topic: the first ``refuse`` sends of each value fail (``raise_at_send``: the send
    call itself raises instead), later ones are acknowledged and stored."""

    def __init__(self, refuse: dict[bytes, int], raise_at_send: bool = False):
        self.refuse, self.raise_at_send = dict(refuse), raise_at_send
        self.stored: list[bytes] = []
        self.sends = 0

    async def send(self, key: bytes, value: bytes):  # noqa: ANN201
        self.sends += 1
        fut = asyncio.get_running_loop().create_future()
        if self.refuse.get(value, 0) > 0:
            self.refuse[value] -= 1
            if self.raise_at_send:
                raise BufferError("queue full")
            fut.set_exception(RuntimeError("UnknownError"))
        else:
            self.stored.append(value)
            fut.set_result(len(self.stored) - 1)
        return fut


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    real = acked_sends.async_backoff
    monkeypatch.setattr(
        acked_sends, "async_backoff", lambda what, **kw: real(what, **{**kw, "initial_s": 0.0, "max_s": 0.0})
    )


@pytest.mark.parametrize("raise_at_send", [False, True])
def test_refused_records_are_sent_again_until_acknowledged(raise_at_send):
    broker, retries = Broker({b"b": 2, b"c": 1}, raise_at_send), []
    sends = AckedSends(broker.send, "dead letters", on_retry=retries.append)

    async def batch() -> None:
        for v in (b"a", b"b", b"c"):
            await sends.send(b"k", v)
        await sends.confirm()

    asyncio.run(batch())
    assert sorted(broker.stored) == [b"a", b"b", b"c"]
    assert broker.sends == 6 and len(retries) == 2  # b refused twice, c once


def test_nothing_to_confirm_returns_at_once():
    broker = Broker({})
    asyncio.run(AckedSends(broker.send, "dead letters").confirm())
    assert broker.sends == 0
