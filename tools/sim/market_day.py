"""A scripted market day with hand-worked results: 10 sellers and 10 buyers, 4 slots, bad orders, delivery.

Sellers S0..S9 have 1 kWh surplus per slot and offer it at 0.05..0.14 /kWh, buyers B0..B9 need 1 kWh at
0.20..0.11 /kWh: every slot clears 8 kWh at 0.125 (bounds [0.12, 0.13]) in 8 trades. An unsigned and a forged
order are rejected BAD_SIGNATURE, an order arriving after the first gate GATE_CLOSED. Delivery: S0 exports only
600 Wh in slot 0, everyone else exactly what they traded, so S0 pays 400 Wh x 0.05 into the POOL.

Times are relative to ``slot0`` (UTC epoch ms on the 15-min grid); message timestamps stand for the broker's
arrival time. Used by the market's unit and broker tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from eth_account import Account

from streams.market.config import MarketConfig
from streams.market.market_order import MarketOrder
from streams.market.participants import Participant
from streams.market.profile import net_profile_wh, orders_from_profile
from streams.market.signing import sign_order

Q = 900_000  # 15 min
HOUR = 3_600_000
N = 10
SLOTS = 4
PRICE = 125_000  # micro per kWh


def key(i: int) -> Account:
    return Account.from_key((i + 1).to_bytes(32, "big"))


@dataclass(frozen=True)
class MarketDay:
    slot0: int
    config: MarketConfig = MarketConfig(gate_closure_lead_ms=Q, imbalance_price_micro_per_kwh=50_000)

    @property
    def slots(self) -> list[int]:
        return [self.slot0 + s * Q for s in range(SLOTS)]

    @property
    def last_arrival(self) -> int:
        """The latest message timestamp of the day (UTC epoch ms)."""
        return self.slot0 + SLOTS * Q + 60_000

    def participants(self) -> list[Participant]:
        return [
            Participant(
                participant_id=f"{role}{i}",
                prosumer_id=f"pro-{role}{i}",
                eth_address=key(k).address,
                meters=(f"M-{role}{i}",),
                updated_at=self.slot0 - 24 * HOUR,
            )
            for k, (role, i) in enumerate((r, i) for r in "SB" for i in range(N))
        ]

    def good_orders(self) -> list[MarketOrder]:
        orders = []
        for k, p in enumerate(self.participants()):
            role, i = p.participant_id[0], int(p.participant_id[1:])
            price = 50_000 + 10_000 * i if role == "S" else 200_000 - 10_000 * i
            consumption, production = (
                ([200.0] * 4, [1200.0] * 4) if role == "S" else ([1300.0] * 4, [300.0] * 4)
            )
            orders += orders_from_profile(
                self.config,
                p.participant_id,
                p.eth_address,
                key(k).key,
                self.slot0,
                net_profile_wh(consumption, production),
                [price] * SLOTS,
                client_ts=self.slot0 - 2 * HOUR + k * 1000,
                first_nonce=0,
            )
        return orders

    def bad_orders(self) -> dict[str, MarketOrder]:
        b0 = next(o for o in self.good_orders() if o.participant_id == "B0" and o.slot_start == self.slot0)
        late_terms = replace(b0.terms, nonce=99, client_ts=self.slot0 - Q + 1)  # after the first gate
        return {
            "unsigned": replace(b0, nonce=50, signature=""),
            "forged": sign_order(
                replace(b0.terms, nonce=51, quantity_wh=5000), key(19).key, self.config.chain_id
            ),
            "late": sign_order(late_terms, key(10).key, self.config.chain_id),
        }

    def orders(self) -> list[tuple[MarketOrder, int]]:
        """Every order with its arrival time: the late one after the gate of slot 0, the others 0.5 s after
        they were signed."""
        bad = self.bad_orders()
        out = [(o, o.client_ts + 500) for o in [*self.good_orders(), bad["unsigned"], bad["forged"]]]
        return [*out, (bad["late"], self.slot0 - Q + 2)]

    def intervals(self) -> list[tuple[dict[str, Any], int]]:
        """IntervalEnergy records of every meter and slot, with their arrival (a minute after the interval)."""
        out = []
        for p in self.participants():
            seller = p.participant_id[0] == "S"
            for s, start in enumerate(self.slots):
                export = (600.0 if (p.participant_id, s) == ("S0", 0) else 1000.0) if seller else 0.0
                rec = {
                    "event_id": f"{p.meters[0]}/{start}/1",
                    "prosumer_id": p.prosumer_id,
                    "device_id": p.meters[0],
                    "interval_start": start,
                    "interval_end": start + Q,
                    "import_wh": 0.0 if seller else 1000.0,
                    "export_wh": export,
                    "avg_kw": 0.0,
                    "max_kw": 0.0,
                    "samples": 15,
                    "expected_samples": 15,
                    "completeness": 1.0,
                    "method": "POWER_INTEGRATION",
                    "estimated": False,
                    "version": 1,
                    "computed_at": start + Q,
                }
                out.append((rec, start + Q + 60_000))
        return out

    # -- the hand-worked results ------------------------------------------------------------------------------
    def expected_rejections(self) -> dict[str, str]:
        """Order id -> rejection code."""
        bad = self.bad_orders()
        return {
            bad["unsigned"].order_id: "BAD_SIGNATURE",
            bad["forged"].order_id: "BAD_SIGNATURE",
            bad["late"].order_id: "GATE_CLOSED",
        }

    def expected_settlements(self) -> dict[tuple[int, str], int]:
        """(slot start, party) -> amount in micro-units: 1 kWh x 0.125 per trade, S0 short 400 Wh in slot 0."""
        out: dict[tuple[int, str], int] = {}
        for s, slot in enumerate(self.slots):
            for i in range(8):
                out[(slot, f"S{i}")], out[(slot, f"B{i}")] = 125_000, -125_000
            if s == 0:
                out[(slot, "S0")] = 75_000 - 20_000  # 600 Wh x 0.125 - 400 Wh x 0.05
                out[(slot, "B0")] = -75_000
                out[(slot, "POOL")] = 20_000
        return out


def check_outputs(day: MarketDay, by_kind: dict[str, list[dict[str, Any]]]) -> None:
    """Assert the day's outputs (records per contract name) are the hand-worked ones."""
    codes = {r["subject_id"]: r["code"] for r in by_kind["Rejection"]}
    assert codes == day.expected_rejections(), codes
    assert len({r["order_id"] for r in by_kind["MarketOrder"]}) == 2 * N * SLOTS
    results = {r["slot_start"]: r for r in by_kind["ClearingResult"]}
    assert sorted(results) == day.slots
    for r in results.values():
        assert (r["price_micro_per_kwh"], r["cleared_wh"], r["n_trades"]) == (PRICE, 8000, 8)
        assert r["gate_closed_at"] == r["slot_start"] - Q
    trades = {t["trade_id"]: t for t in by_kind["Trade"]}
    assert len(trades) == 8 * SLOTS
    assert all(t["price_micro_per_kwh"] == PRICE and t["quantity_wh"] == 1000 for t in trades.values())
    stl = {(s["window_start"], s["party_id"]): s["amount_micro"] for s in by_kind["Settlement"]}
    assert stl == day.expected_settlements(), stl
