"""Proof of relief in the grid stage (wiring of :mod:`streams.grid.relief` and :mod:`streams.grid.measured_relief`
on the state of :mod:`streams.grid.relief_store`), for one grid at a time.

* **Orders** (``flex.orders.v1`` re-keyed to the grids of their prosumers): the latest revision of each order is
  kept and indexed under the slots it allocates on the grid (slots already over are not opened again).
* **Expected** (:meth:`ReliefTracker.expect`, on the tick after a forecast or an order changed): for the open
  slots the congestion forecast covers, the loading without and with the orders (the power flow re-run with the
  ordered kW); frozen in the slot's state (the horizon starts at the current quarter hour, so later forecasts do
  not reach back over a slot that ended) and published as EXPECTED records when the figures changed. Their
  version is the latest forecast ``issued_at`` / order ``created_at`` used: forecasts of several prosumers issued
  at the same time but processed on different ticks give two records with one id (like ``grid.congestion.v1``).
* **Measured** (:meth:`ReliefTracker.measure`, every tick): an open slot that has ended is measured once every
  mapped prosumer has an interval for it, or once ``grace_ms`` after its end passed (the silent ones at their
  expected kW, counted in ``missing_meters``): one MEASURED record per congestion point with the verdict.
* **Corrections:** until ``corrections_ms`` after its end, a measured slot still takes intervals (a silent meter's
  late one, a corrected version); on the next tick it is measured again and, if its loading or missing meters
  changed, published again as MEASURED with a higher version (the sink keeps the latest per point and slot).
  Then the slot's state is dropped; intervals arriving later are ignored.

Decision: a prosumer counts as measured with its first meter's interval (prosumers are one meter each in the
demo; with several meters, the others' intervals still count if they come before the slot is measured).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from edream.runtime.contract import Emit, KeyValueState
from edream.serde import Serde
from streams.flex.orders import FlexOrder
from streams.grid import relief_store as store
from streams.grid.events import SLOT_MS
from streams.grid.measured_relief import Verdict, measured_loading, measured_slot, verdict
from streams.grid.relief_events import ReliefFigures, relief_record

if TYPE_CHECKING:
    from streams.grid.forecasts import HorizonForecast
    from streams.grid.injections import Injections
    from streams.grid.model import CongestionPoint, GridModel
    from streams.grid.powerflow import PowerFlowEngine

#: default wait after a slot's end for the last meters' intervals before it is measured without them
GRACE_MS = 30 * 60_000
#: default time after a slot's end during which late or corrected intervals re-measure it (the interval stage
#: corrects an interval up to 1 h after its end; delivery may lag behind that)
CORRECTIONS_MS = 2 * 3_600_000


@dataclass(frozen=True)
class Horizon:
    """The grid's forecast over the horizon as the congestion forecast used it (``issued_at``: latest, UTC ms)."""

    forecast: HorizonForecast
    injections: Injections
    issued_at: int


class ReliefTracker:
    """Proof of relief of the grids ``grids`` (grid id -> model), published on ``topic``."""

    def __init__(
        self,
        serde: Serde,
        grids: Mapping[str, GridModel],
        engines: Mapping[str, PowerFlowEngine],
        topic: str,
        grace_ms: int = GRACE_MS,
        corrections_ms: int = CORRECTIONS_MS,
    ):
        self.serde, self.grids, self.engines = serde, grids, engines
        self.topic, self.grace_ms, self.corrections_ms = topic, grace_ms, corrections_ms
        self.mapped = {g: set(m.prosumer_ids) for g, m in grids.items()}

    def on_order(self, grid: str, order: FlexOrder, now_ms: int, state: KeyValueState) -> None:
        if not any(a.prosumer_id in self.mapped[grid] for a in order.allocations):
            raise ValueError(f"order {order.order_id[:128]!r} allocates to no prosumer of grid {grid!r}")
        store.store_order(state, grid, order, self.mapped[grid], now_ms, SLOT_MS)

    def on_interval(self, grid: str, rec: Mapping[str, Any], state: KeyValueState) -> None:
        if rec["prosumer_id"] not in self.mapped[grid]:
            raise ValueError(f"prosumer {rec['prosumer_id'][:128]!r} is not mapped to grid {grid!r}")
        store.store_interval(state, grid, rec)

    def needs_expectation(self, grid: str, state: KeyValueState) -> bool:
        return store.orders_changed(state, grid)

    def expect(self, grid: str, horizon: Horizon | None, now_ms: int, state: KeyValueState) -> list[Emit]:
        """EXPECTED records for the open slots ``horizon`` covers whose inputs changed."""
        from streams.grid.congestion import forecast_congestion
        from streams.grid.relief import expected_relief, with_orders

        store.mark_orders_seen(state, grid)
        if horizon is None:
            return []
        starts = horizon.forecast.slot_starts_ms.tolist()
        open_now = set(store.open_slots(state, grid))
        rows = [k for k, t in enumerate(starts) if t in open_now]
        if not rows:
            return []
        model, engine = self.grids[grid], self.engines[grid]
        slots = [int(starts[k]) for k in rows]
        inj = horizon.injections.take(np.array(rows))
        orders = store.orders_of(state, grid, slots)
        before = forecast_congestion(model, engine, inj, slots)
        relief = expected_relief(model, engine, inj, slots, before, orders)
        expected_kw = with_orders(model, inj, slots, orders)[0].prosumer_kw
        cps = {cp.id: cp for cp in model.congestion_points}
        out: list[Emit] = []
        for k, slot in enumerate(slots):
            mine = [x for x in relief if x.slot_start == slot]
            live = [o for o in orders if o.status != "CANCELLED" and slot in o.slot_starts()]
            version = max([horizon.issued_at, *(o.created_at for o in live)])
            s = store.slot_state(state, grid, slot)
            if not live and s.expected is not None:  # every order of the slot cancelled: nothing to prove
                s.expected = None
                store.save_slot(state, grid, slot, s)
            if not mine:
                continue
            figures = {
                x.congestion_point_id: ReliefFigures(
                    slot, x.loading_before, x.loading_after, x.ordered_kw, x.unmapped_kw, len(live)
                )
                for x in mine
            }
            frozen = {
                "version": version,
                "expected_kw": expected_kw[k].tolist(),
                "points": {c: vars(f) for c, f in figures.items()},
            }
            # the same figures again (e.g. a new forecast for other slots): nothing to re-send
            if s.expected == json.loads(json.dumps(frozen)):
                continue
            s.expected = frozen
            store.save_slot(state, grid, slot, s)
            out += self._emit(
                grid, [(cps[c], f, Verdict.PENDING) for c, f in figures.items()], version, now_ms
            )
        return out

    def measure(self, grid: str, now_ms: int, state: KeyValueState) -> list[Emit]:
        """MEASURED records for the open slots that ended and are complete or past the grace, and corrected ones
        for measured slots whose intervals changed since (within ``corrections_ms`` of their end)."""
        model = self.grids[grid]
        out: list[Emit] = []
        for slot in store.open_slots(state, grid):
            end = slot + SLOT_MS
            if end > now_ms:
                break
            kw, latest = store.measured_kw(state, grid, slot, model.prosumer_ids)
            if len(kw) < len(model.prosumer_ids) and now_ms < end + self.grace_ms:
                continue
            s = store.slot_state(state, grid, slot)
            if s.expected is None and not any(
                o.status != "CANCELLED" for o in store.orders_of(state, grid, [slot])
            ):
                store.close_slot(state, grid, slot, model.prosumer_ids)  # its orders were cancelled
                continue
            version = max(latest, s.expected["version"] if s.expected else 0) + 1
            rows = self._measured(grid, slot, kw, s.expected)
            out += self._emit(grid, rows, version, now_ms)
            store.mark_measured(state, grid, slot, _published(rows, version))
        for slot, changed in store.measured_slots(state, grid).items():
            if now_ms >= slot + SLOT_MS + max(self.corrections_ms, self.grace_ms):
                store.close_slot(state, grid, slot, model.prosumer_ids)
            elif changed:
                out += self._correct(grid, slot, now_ms, state)
        return out

    def _correct(self, grid: str, slot: int, now_ms: int, state: KeyValueState) -> list[Emit]:
        """Corrected MEASURED records of a measured slot whose intervals changed (late or corrected ones), when its
        figures changed; their version is above every earlier one of the slot, so the sink keeps them."""
        model = self.grids[grid]
        s = store.slot_state(state, grid, slot)
        kw, latest = store.measured_kw(state, grid, slot, model.prosumer_ids)
        rows = self._measured(grid, slot, kw, s.expected)
        store.measured_again(state, grid, slot)
        assert s.measured is not None  # a measured slot
        if _published(rows, 0)["points"] == s.measured["points"]:
            return []
        version = max(latest, s.expected["version"] if s.expected else 0, s.measured["version"]) + 1
        s.measured = _published(rows, version)
        store.save_slot(state, grid, slot, s)
        return self._emit(grid, rows, version, now_ms)

    def _measured(
        self, grid: str, slot: int, kw: dict[str, float], expected: dict[str, Any] | None
    ) -> list[tuple[CongestionPoint, ReliefFigures, Verdict]]:
        """Each congestion point's figures and verdict from the measured kW (``kw``; the missing prosumers at
        their expected kW) against the frozen ``expected`` figures."""
        model = self.grids[grid]
        ms = measured_slot(model, slot, kw, expected["expected_kw"] if expected else None)
        loading = measured_loading(model, self.engines[grid], ms)
        points = expected["points"] if expected else {}
        rows = []
        for cp in model.congestion_points:
            f = (
                ReliefFigures(**points[cp.id])
                if cp.id in points
                else ReliefFigures(slot, None, None, 0, 0, 0)
            )
            f = replace(f, loading_measured=loading[cp.id], missing_meters=ms.missing)
            rows.append((cp, f, verdict(f.loading_before, f.loading_measured, cp.max_loading_percent)))
        return rows

    def _emit(
        self, grid: str, rows: list[tuple[CongestionPoint, ReliefFigures, Verdict]], version: int, now_ms: int
    ) -> list[Emit]:
        n = len(self.grids[grid].prosumer_ids)
        recs = [relief_record(cp, grid, f, v, version, n, now_ms) for cp, f, v in rows]
        return [
            Emit(self.topic, grid.encode(), b) for b in self.serde.encode_many("GridRelief", recs, self.topic)
        ]


def _published(rows: list[tuple[CongestionPoint, ReliefFigures, Verdict]], version: int) -> dict[str, Any]:
    """What a slot's MEASURED records said, kept to tell whether a correction changes it (JSON-shaped)."""
    points = {cp.id: [f.loading_measured, f.missing_meters] for cp, f, _ in rows}
    return {"version": version, "points": json.loads(json.dumps(points))}
