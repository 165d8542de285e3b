"""Batch form: one signed order per slot from an energy profile (spec API ``estimatedEnergy[24]`` +
``tradingPrices[24]``; positive energy = buy, negative = sell, zero = no order)."""

from __future__ import annotations

from collections.abc import Sequence

from streams.market.config import MarketConfig
from streams.market.market_order import MarketOrder, OrderTerms
from streams.market.orders import EnergyType, Side
from streams.market.signing import sign_order


def orders_from_profile(
    config: MarketConfig,
    participant_id: str,
    address: str,
    private_key: str | bytes,
    first_slot_start: int,
    energy_wh: Sequence[int],
    prices_micro_per_kwh: Sequence[int],
    client_ts: int,
    first_nonce: int,
    energy_type: EnergyType = EnergyType.ANY,
) -> list[MarketOrder]:
    """Sign one order per non-zero entry. Entry ``i`` is for slot ``first_slot_start + i * slot``, with nonce
    ``first_nonce + i`` (so re-building the same batch gives the same orders). Energy in Wh per slot, prices in
    micro-units per kWh."""
    if len(energy_wh) != len(prices_micro_per_kwh):
        raise ValueError(f"{len(energy_wh)} energy values but {len(prices_micro_per_kwh)} prices")
    if not config.is_slot_start(first_slot_start):
        raise ValueError(f"{first_slot_start} is not on the {config.slot_minutes}-minute slot grid")
    orders = []
    for i, (wh, price) in enumerate(zip(energy_wh, prices_micro_per_kwh, strict=True)):
        if wh == 0:
            continue
        slot = first_slot_start + i * config.slot_ms
        terms = OrderTerms(
            participant_id=participant_id,
            address=address,
            session_id=config.session_id(slot),
            side=Side.BID if wh > 0 else Side.OFFER,
            slot_start=slot,
            slot_minutes=config.slot_minutes,
            quantity_wh=abs(int(wh)),
            limit_price_micro_per_kwh=int(price),
            energy_type=energy_type,
            client_ts=client_ts,
            nonce=first_nonce + i,
        )
        orders.append(sign_order(terms, private_key, config.chain_id))
    return orders


def net_profile_wh(consumption_wh: Sequence[float], production_wh: Sequence[float]) -> list[int]:
    """Forecast net demand per slot in whole Wh (consumption - production; positive = buy), rounded half-even."""
    if len(consumption_wh) != len(production_wh):
        raise ValueError("consumption and production profiles differ in length")
    return [round(c - p) for c, p in zip(consumption_wh, production_wh, strict=True)]
