"""The congestion forecast stage on the runtime (pure wiring of :mod:`streams.grid.congestion`): the prosumers'
``forecast.profiles.v1`` profiles in, re-keyed to the grid they are mapped to (all prosumers of a grid meet in one
partition), ``grid.congestion.v1`` out; with the DSO role on, the signed ``flex.requests.v1`` that relieve it.

* **State** (per grid, in the partition's state, :mod:`streams.grid.profile_store`): each mapped prosumer's
  latest-issued profile per property and granularity, one key each; a ``dirty`` mark when one changed.
* **Records** are validated (:func:`streams.vpp.input_checks.check_forecast`: ids, step, finite Wh, ``issued_at``
  not ahead of the wall clock) before they are stored; an invalid or undecodable one raises, so the runtime
  dead-letters it with the reason.
* **Ticks** (every :data:`TICK_MS`): for every grid of the partition whose inputs changed, one congestion forecast
  over the quarter hours from the current one up to ``horizon_slots`` ahead that any prosumer's forecast covers,
  through the same :class:`~streams.flex.outlook.OutlookBook` as the flex desk (latest-issued point wins, net kW =
  consumption - production). A prosumer without a forecast for a slot counts as 0 kW and the slot's
  ``missing_forecasts`` says how many did (decision: a flagged result beats no result for the whole grid).
* **Output**: one GridCongestion per congestion point and slot, key ``grid_id``; ids deterministic from the point,
  the slot and the latest ``issued_at`` used (:mod:`streams.grid.events`), so a replay re-emits the same ids.
* **DSO role** (off unless a DSO id and key are configured): :func:`streams.grid.requests.congestion_requests` for
  the overloaded slots, signed with the DSO's key; ids from the forecast's ``issued_at``, so a recompute of the same
  inputs re-sends the same request (the desk answers DUPLICATE_REQUEST). Slots with a missing forecast are still
  requested (the 0 kW assumption errs towards asking less on evening peaks; the flag is on the congestion record).
* **Proof of relief** (with ``orders``, ``intervals`` and ``relief`` topics): ``flex.orders.v1`` and
  ``meter.intervals.15m.v1``, re-keyed to the grid too, validated (:mod:`streams.validation.flex_order`,
  :mod:`streams.validation.interval`) and kept per order / slot / meter reading; on the tick the expected relief of
  the ordered slots and, once their meters are in (or a grace passed), the measured one on ``grid.relief.v1``
  (:mod:`streams.grid.relief_tracker`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edream.runtime.contract import Emit, KeyValueState, Record
from edream.serde import Serde
from streams.flex.enrolment import Registry
from streams.flex.orders import FlexOrder
from streams.flex.outlook import OutlookBook
from streams.grid import profile_store
from streams.grid.events import SLOT_MS, congestion_record
from streams.grid.relief_tracker import CORRECTIONS_MS, GRACE_MS, Horizon, ReliefTracker
from streams.validation.fields import InvalidRecord
from streams.validation.flex_order import check_flex_order
from streams.validation.interval import check_interval
from streams.validation.limits import Limits
from streams.vpp.input_checks import check_forecast

if TYPE_CHECKING:  # the power-flow modules import pandapower (~4 s): only a stage with grids pays for it
    from streams.grid.model import GridModel
    from streams.grid.powerflow import PowerFlowEngine

#: wall-clock tick period per partition: changed grids are recomputed at most this often
TICK_MS = 2_000


@dataclass(frozen=True)
class DsoRole:
    """The DSO the stage speaks for: its id (``flex.dsos.v1``) and Ethereum key signing the requests."""

    dso_id: str
    key: str


@dataclass(frozen=True)
class Topics:
    """The stage's topics; ``orders``, ``intervals`` and ``relief`` (all three or none) turn proof of relief on."""

    forecasts: str
    congestion: str
    requests: str | None = None
    orders: str | None = None
    intervals: str | None = None
    relief: str | None = None


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class CongestionProcessor:
    """StageProcessor of the ``grid`` stage (see the module docstring). ``grids``: grid id -> model;
    ``engines``: grid id -> its power-flow engine; ``horizon_slots``: quarter hours looked ahead."""

    def __init__(
        self,
        serde: Serde,
        grids: Mapping[str, GridModel],
        engines: Mapping[str, PowerFlowEngine],
        topics: Topics,
        horizon_slots: int = 96,
        dso: DsoRole | None = None,
        limits: Limits | None = None,
        now_ms: Callable[[], int] = _wall_clock_ms,
        grace_ms: int = GRACE_MS,
        corrections_ms: int = CORRECTIONS_MS,
    ):
        self.serde, self.grids, self.engines, self.topics = serde, grids, engines, topics
        self.horizon_slots, self.dso, self.limits, self.now_ms = horizon_slots, dso, limits, now_ms
        self.mapped = {g: set(m.prosumer_ids) for g, m in grids.items()}
        self.relief = None
        if topics.relief and topics.orders and topics.intervals:
            self.relief = ReliefTracker(serde, grids, engines, topics.relief, grace_ms, corrections_ms)

    def _decode(self, record: Record, contract: str) -> tuple[str, dict]:
        """(grid id of the record key, the record) of a ``contract`` record for a configured grid."""
        name, rec = self.serde.decode(record.value, record.topic)
        if name != contract:
            raise ValueError(f"expected {contract} on {record.topic}, got {name}")
        grid = (record.key or b"").decode("utf-8", "replace")
        if grid not in self.grids:
            raise ValueError(f"unknown grid {grid[:128]!r} (configured: {sorted(self.grids)})")
        return grid, rec

    def on_record(self, record: Record, state: KeyValueState) -> Iterable[Emit]:
        if self.relief is not None and record.topic == self.topics.orders:
            grid, rec = self._decode(record, "FlexOrder")
            if errors := check_flex_order(rec, self.now_ms(), self.limits):
                raise InvalidRecord("FlexOrder", errors)
            self.relief.on_order(grid, FlexOrder.from_avro(rec), self.now_ms(), state)
            return []
        if self.relief is not None and record.topic == self.topics.intervals:
            grid, rec = self._decode(record, "IntervalEnergy")
            if errors := check_interval(rec, self.now_ms(), self.limits):
                raise InvalidRecord("IntervalEnergy", errors)
            self.relief.on_interval(grid, rec, state)
            return []
        if record.topic != self.topics.forecasts:
            raise ValueError(f"the grid stage does not read {record.topic}")
        grid, rec = self._decode(record, "Forecast")
        if errors := check_forecast(rec, self.now_ms(), self.limits):
            raise InvalidRecord("Forecast", errors)
        if rec["entity_id"] not in self.mapped[grid]:
            raise ValueError(f"prosumer {rec['entity_id'][:128]!r} is not mapped to grid {grid!r}")
        if rec["entity_kind"] != "PROSUMER" or rec["property"] not in profile_store.PROPERTIES:
            return []
        profile_store.store_profile(state, grid, rec)
        return []

    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> Iterable[Emit]:
        out: list[Emit] = []
        for grid in self.grids:
            forecast_changed = profile_store.is_dirty(state, grid)
            orders_changed = self.relief is not None and self.relief.needs_expectation(grid, state)
            if forecast_changed or orders_changed:
                horizon = self.horizon(grid, now_ms, state)
                if forecast_changed:
                    out += self.forecast(grid, horizon, now_ms)
                    profile_store.mark_clean(state, grid)
                if self.relief is not None:
                    out += self.relief.expect(grid, horizon, now_ms, state)
            if self.relief is not None:
                out += self.relief.measure(grid, now_ms, state)
        return out

    def horizon(self, grid: str, now_ms: int, state: KeyValueState) -> Horizon | None:
        """The prosumers' forecast of ``grid`` from the quarter hour of ``now_ms`` on (None: none covers it)."""
        from streams.grid.background import with_background
        from streams.grid.forecasts import horizon_forecast

        model = self.grids[grid]
        book = OutlookBook(Registry())
        issued_at = 0
        for p in profile_store.profiles(state, grid, model.prosumer_ids):
            book.on_forecast(p)
            issued_at = max(issued_at, p["issued_at"])
        first = now_ms - now_ms % SLOT_MS
        fc = horizon_forecast(book, model, [first + k * SLOT_MS for k in range(self.horizon_slots)])
        if not len(fc.slot_starts_ms):
            return None
        return Horizon(fc, with_background(model, fc.kw, fc.slot_starts_ms), issued_at)

    def forecast(self, grid: str, horizon: Horizon | None, now_ms: int) -> list[Emit]:
        """The congestion forecast (and the DSO role's requests) of ``grid`` over ``horizon``."""
        from streams.grid.congestion import forecast_congestion
        from streams.grid.requests import congestion_requests

        if horizon is None:
            return []
        model = self.grids[grid]
        fc, injections, issued_at = horizon.forecast, horizon.injections, horizon.issued_at
        slots = forecast_congestion(model, self.engines[grid], injections, fc.slot_starts_ms.tolist())
        missing = dict(zip(fc.slot_starts_ms.tolist(), fc.missing.tolist(), strict=True))
        key = grid.encode()
        out = [
            Emit(
                self.topics.congestion,
                key,
                self.serde.encode(
                    "GridCongestion",
                    congestion_record(
                        s, grid, len(model.prosumer_ids), int(missing[s.slot_start]), issued_at, now_ms
                    ),
                    self.topics.congestion,
                ),
            )
            for s in slots
        ]
        if self.dso is not None and self.topics.requests:
            for req in congestion_requests(model, slots, self.dso.dso_id, self.dso.key, now_ms, issued_at):
                value = self.serde.encode("FlexRequest", req.to_avro(), self.topics.requests)
                out.append(Emit(self.topics.requests, req.request_id.encode(), value))
        return out


def grid_of(grids: Mapping[str, tuple[str, ...]]) -> Callable[[str], str | None]:
    """prosumer id -> the id of the grid it is mapped to (a prosumer on two grids is a config error upstream)."""
    index = {pid: g for g, pids in grids.items() for pid in pids}
    return index.get
