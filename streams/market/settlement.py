"""Settlement of a delivered slot (HL-UC02 LL-UC04): traded energy vs metered interval energy, micro-units.

Rules (spec LL-UC04, integer-only):

* Per seller: ``delivered = min(sold, metered_export)``, shared over its trades pro-rata to the traded Wh
  (largest remainder, trades in ``trade_id`` order). Each trade is then worth ``delivered_wh * price / 1000``
  micro-units, rounded half-to-even once per trade: the buyer pays it, the seller receives it.
* A seller's shortfall ``sold - delivered`` is charged at ``imbalance_price_micro_per_kwh`` and paid into the
  ``POOL`` account; a seller's surplus ``export - sold`` is credited at ``surplus_credit_micro_per_kwh`` (default 0)
  out of the POOL. Buyers' own over/under-consumption is settled off-platform with their supplier.
* One record per party and session (the POOL included), so amounts sum to exactly 0. Ids are deterministic
  (``stl-`` hash of kind, session and party) and ``details`` is the canonical JSON of every input and component.
  For the POOL, ``energy_amount_micro`` is penalties collected minus surplus credits paid and ``quantity_wh`` the
  total shortfall.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

from streams.flex.ids import stable_id, window_id
from streams.market.config import MarketConfig
from streams.market.events import TradeEvent
from streams.market.rationing import pro_rata
from streams.settlement.canonical import canonical_bytes
from streams.settlement.record import SettlementRecord

POOL = "POOL"


def money_micro(wh: int, price_micro_per_kwh: int) -> int:
    """``wh * price / 1000`` in micro-units, rounded half-to-even."""
    return round(Fraction(wh * price_micro_per_kwh, 1000))


@dataclass(frozen=True)
class Metered:
    """A participant's metered energy over one slot, whole Wh."""

    import_wh: int = 0
    export_wh: int = 0


@dataclass
class _Account:
    bought_wh: int = 0
    sold_wh: int = 0
    delivered_wh: int = 0
    energy_micro: int = 0
    penalty_micro: int = 0
    credit_micro: int = 0
    trades: list[dict[str, Any]] = field(default_factory=list)

    @property
    def amount(self) -> int:
        return self.energy_micro - self.penalty_micro + self.credit_micro


@dataclass(frozen=True)
class MarketSettlement(SettlementRecord):
    """One Settlement event (kind MARKET) for a party and session (``reference_id`` = session id)."""

    KIND: ClassVar[str] = "MARKET"

    @property
    def session_id(self) -> str:
        return self.reference_id


def settle_session(
    config: MarketConfig,
    trades: Iterable[TradeEvent],
    metered: dict[str, Metered],
    computed_at: int | None = None,
) -> list[MarketSettlement]:
    """Settle one session's trades against metered energy. ``metered`` maps participant id -> slot totals (a
    missing seller counts as zero export). ``computed_at`` defaults to the slot end (deterministic re-runs)."""
    trades = sorted(trades, key=lambda t: t.trade_id)
    if not trades:
        return []
    session_id, slot_start = trades[0].session_id, trades[0].slot_start
    if any(t.session_id != session_id for t in trades):
        raise ValueError("settle_session needs the trades of one session")
    accounts: dict[str, _Account] = defaultdict(_Account)
    by_seller: dict[str, list[TradeEvent]] = defaultdict(list)
    for t in trades:
        by_seller[t.seller_id].append(t)
        accounts[t.buyer_id].bought_wh += t.quantity_wh
        accounts[t.seller_id].sold_wh += t.quantity_wh
    pool = _Account()
    for seller, own in sorted(by_seller.items()):
        acc = accounts[seller]
        export = metered.get(seller, Metered()).export_wh
        delivered_total = min(acc.sold_wh, export)
        for t, delivered in zip(own, pro_rata(delivered_total, [t.quantity_wh for t in own]), strict=True):
            value = money_micro(delivered, t.price_micro_per_kwh)
            for party, sign in ((t.buyer_id, -1), (seller, 1)):
                accounts[party].energy_micro += sign * value
                accounts[party].delivered_wh += delivered
                accounts[party].trades.append(
                    {
                        "trade_id": t.trade_id,
                        "traded_wh": t.quantity_wh,
                        "delivered_wh": delivered,
                        "price_micro_per_kwh": t.price_micro_per_kwh,
                        "amount_micro": sign * value,
                    }
                )
        shortfall, surplus = acc.sold_wh - delivered_total, max(export - acc.sold_wh, 0)
        acc.penalty_micro = money_micro(shortfall, config.imbalance_price_micro_per_kwh)
        acc.credit_micro = money_micro(surplus, config.surplus_credit_micro_per_kwh)
        pool.energy_micro += acc.penalty_micro - acc.credit_micro
        pool.delivered_wh += shortfall
    if pool.energy_micro or pool.delivered_wh:
        accounts[POOL] = pool
    window_end = slot_start + config.slot_ms
    out = []
    for party, acc in sorted(accounts.items()):
        m = metered.get(party, Metered())
        details = {
            "traded_buy_wh": acc.bought_wh,
            "traded_sell_wh": acc.sold_wh,
            "metered_import_wh": m.import_wh,
            "metered_export_wh": m.export_wh,
            "delivered_wh": acc.delivered_wh,
            "energy_amount_micro": acc.energy_micro,
            "penalty_micro": acc.penalty_micro,
            "surplus_credit_micro": acc.credit_micro,
            "imbalance_price_micro_per_kwh": config.imbalance_price_micro_per_kwh,
            "surplus_credit_micro_per_kwh": config.surplus_credit_micro_per_kwh,
            "trades": acc.trades,
        }
        out.append(
            MarketSettlement(
                settlement_id=stable_id("stl", "MARKET", session_id, party),
                reference_id=session_id,
                window_id=window_id(slot_start, config.slot_minutes),
                window_start=slot_start,
                window_end=window_end,
                party_id=party,
                quantity_wh=acc.delivered_wh,
                amount_micro=acc.amount,
                currency=config.currency,
                details=canonical_bytes(details).decode("utf-8"),
                computed_at=window_end if computed_at is None else computed_at,
            )
        )
    return out
