"""Shared inputs of the market processor tests: signed orders, a registry, intervals, a processor on MemoryState."""

from __future__ import annotations

from eth_account import Account

from edream.runtime.state import MemoryState
from streams.market.config import MarketConfig
from streams.market.market_order import MarketOrder, OrderTerms
from streams.market.orders import EnergyType, Side
from streams.market.participants import Participant, ParticipantRegistry
from streams.market.processor import MarketProcessor
from streams.market.signing import sign_order
from streams.validation.limits import Limits

Q = 900_000  # 15 min in ms
KEYS = [Account.from_key((i + 1).to_bytes(32, "big")) for i in range(4)]


def participants(n: int = 2) -> list[Participant]:
    return [
        Participant(participant_id=f"P{i}", prosumer_id=f"x{i}", eth_address=k.address, meters=(f"M{i}",))
        for i, k in enumerate(KEYS[:n])
    ]


def processor(cfg: MarketConfig, now_ms: int | None = None, n: int = 2) -> MarketProcessor:
    """A processor over an in-memory registry; ``now_ms`` fixes its wall clock (default: the real one)."""
    clock = {} if now_ms is None else {"wall_clock": lambda: now_ms}
    return MarketProcessor(cfg, ParticipantRegistry(participants(n)), limits=Limits(), **clock)


def order(
    cfg: MarketConfig,
    i: int,
    side: Side,
    slot: int,
    client_ts: int,
    *,
    quantity_wh: int = 1000,
    price: int = 100_000,
    nonce: int = 0,
) -> MarketOrder:
    terms = OrderTerms(
        f"P{i}",
        KEYS[i].address,
        cfg.session_id(slot),
        side,
        slot,
        cfg.slot_minutes,
        quantity_wh,
        price,
        EnergyType.ANY,
        client_ts,
        nonce,
    )
    return sign_order(terms, KEYS[i].key, cfg.chain_id)


def interval(
    device: str, start: int, *, export_wh: float = 0.0, import_wh: float = 0.0, version: int = 1
) -> dict:
    """An IntervalEnergy record (avro/IntervalEnergy.avsc) of one meter."""
    return {
        "event_id": f"{device}/{start}/{version}",
        "prosumer_id": f"pro-{device}",
        "device_id": device,
        "interval_start": start,
        "interval_end": start + Q,
        "import_wh": import_wh,
        "export_wh": export_wh,
        "avg_kw": 0.0,
        "max_kw": 0.0,
        "samples": 15,
        "expected_samples": 15,
        "completeness": 1.0,
        "method": "POWER_INTEGRATION",
        "estimated": False,
        "version": version,
        "computed_at": start + Q,
    }


__all__ = ["KEYS", "Q", "MemoryState", "interval", "order", "participants", "processor"]
