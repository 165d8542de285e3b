"""The scripted demo day as a pure, lazy generator of timed events (no broker, no clock).

From ``start_ms`` (UTC epoch ms, wall clock when the demo starts) it yields, oldest first:

* at start: the demo DSO's ``FlexDso`` (flex.dsos.v1: its UFTP identity, see :mod:`edream.demo.dso`; the DSO
  itself is a process of its own that requests, orders and settles flexibility over USEF/UFTP), a
  ``FlexEnrolment`` (flex.enrolments.v1) and a ``MarketParticipant`` (market.participants.v1, keys
  from :mod:`edream.demo.keys`) per prosumer, then the demo VPP's ``VppAsset`` records (vpp.assets.v1, see
  :mod:`edream.demo.vpp`);
* every ``vpp_request_every_minutes`` from start + ``vpp_first_request_after_ms``: a ``VppCapabilityRequest``
  for the next two quarter hours (services in turn);
* 90 s before every market gate closure (the first ``first_gate_after_ms`` after start): one signed
  ``MarketOrder`` per prosumer for that gate's 15-min slot, from the prosumer's own expected net energy (BID when
  it expects to import, OFFER when it expects to export) at a per-prosumer limit price.

Ids are deterministic (order nonces from the slot), so re-running the script for the same slots re-creates the
same nonces (REPLAYED_NONCE), never double trades.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from edream.demo.community import AREA, Community, Prosumer
from edream.demo.dso import DSO_ID, DemoDsoConfig, registry_entry
from edream.demo.keys import demo_address, demo_key
from edream.demo.vpp import VPP_ID, asset_records, capability_requests
from streams.flex.dsos import TOPIC_DSOS, Dso
from streams.flex.enrolment import (
    ContractTerms,
    CurtailableLoad,
    EvCharger,
    ProsumerRecord,
    PvSystem,
    enrolment_event,
)
from streams.flex.offers import OfferParams
from streams.market.config import MarketConfig
from streams.market.participants import Participant
from streams.market.profile import orders_from_profile

MINUTE_MS = 60_000
AGGREGATOR_ID = "agg-demo"


@dataclass(frozen=True)
class TimedEvent:
    """An event to publish at ``at_ms`` (UTC epoch ms) on canonical ``topic`` as Avro ``schema``."""

    at_ms: int
    topic: str
    schema: str
    key: str
    record: dict[str, Any]


@dataclass(frozen=True)
class DemoConfig:
    """Demo knobs. Durations in minutes/ms as named; ``dso``: the demo DSO's (its requests, orders, settlements)."""

    prosumers: int = 50
    seed: int = 1
    #: 4 min: the demo's worker starts after the stage processes, which took over 100 s on a loaded machine (make
    #: test), and a start later than the first gate leaves the market without a gate for a whole 15-min slot
    first_gate_after_ms: int = 240_000
    order_lead_ms: int = 90_000
    vpp_first_request_after_ms: int = 30_000
    vpp_request_every_minutes: int = 10
    day_minutes: int = 24 * 60
    dso: DemoDsoConfig = field(default_factory=DemoDsoConfig)


def demo_market_config(start_ms: int, cfg: DemoConfig, base: MarketConfig | None = None) -> MarketConfig:
    """The market with a gate-closure lead such that the first gate closes ``first_gate_after_ms`` after start
    (15-min slots keep their grid; the lead is in ``[0, 15 min)``)."""
    base = base or MarketConfig()
    first_gate = -(-(start_ms + cfg.first_gate_after_ms) // 1000) * 1000  # whole second
    slot = -(-first_gate // base.slot_ms) * base.slot_ms
    return base.model_copy(update={"gate_closure_lead_ms": slot - first_gate})


#: The field site's controllable charger (connectors/config/site-terni-sim.yaml: device ``evse-24``, SpotLink
#: chargeboxID ``24``): the demo binds the first EV owner's charger to it, so flex orders reach it as set-points.
DEMO_EV_DEVICE = ("evse-24", "24")


#: The other prosumers' contract incentives, micro-units per kWh (drawn uniformly per prosumer).
INCENTIVE_RANGE = (80_000, 200_000)
#: The controllable EV owner's incentive, micro-units per kWh: an offer costs a kWh ``incentive + risk price x u``
#: (``u`` <= 1, the forecast's relative uncertainty, :func:`streams.flex.offers.unit_cost_micro_per_kwh`), so it stays
#: the cheapest at any hour only if its incentive plus the whole risk price is below every other incentive. At 60,000
#: it was not: around its EV's plug-in (20:51 UTC) its forecast net power is near 0 with a wide band (u = 1), and an
#: order at 20:52 left it out (ci75).
CONTROLLABLE_INCENTIVE = INCENTIVE_RANGE[0] - OfferParams().risk_price_micro_per_kwh - 10_000


def controllable_prosumer(community: Community) -> str | None:
    """The prosumer whose charger is bound to :data:`DEMO_EV_DEVICE` (the first EV owner); the demo's OpenADR site
    stands for it too."""
    return next((p.prosumer_id for p in community.prosumers if p.ev_kw), None)


def flex_record(p: Prosumer, seed: int, ev_binding: tuple[str, str] | None = None) -> ProsumerRecord:
    """Flexibility contract and assets of a prosumer (curtailable load, EV charger, PV); ``ev_binding`` =
    (connector device id, chargebox id) makes the EV charger controllable through the connector."""
    rng = random.Random(f"{seed}/terms/{p.index}")
    assets: list[Any] = [CurtailableLoad(f"{p.prosumer_id}-load", p.curtailable_kw)]
    if p.ev_kw:
        phases = 3 if p.ev_kw > 8 else 1
        device, target = ev_binding or (None, None)
        assets.append(
            EvCharger(
                f"{p.prosumer_id}-ev",
                32,
                16 if phases == 3 else 32,
                phases,
                device_id=device,
                target_id=target,
            )
        )
    if p.pv_kwp:
        assets.append(PvSystem(f"{p.prosumer_id}-pv", p.pv_kwp))
    terms = ContractTerms(
        aggregator_id=AGGREGATOR_ID,
        tolerance_range=0.1,
        multiplier=1.0,
        # the controllable EV owner has the cheapest contract, so every demo request exercises the set-point path
        incentive_micro_per_kwh=CONTROLLABLE_INCENTIVE if ev_binding else rng.randint(*INCENTIVE_RANGE),
        penalty_micro_per_kwh=300_000,
    )
    return ProsumerRecord(p.prosumer_id, AREA, terms, tuple(assets))


def limit_price(p: Prosumer, seed: int, buying: bool) -> int:
    """Per-prosumer limit price, micro-units per kWh: bids 150k-300k, offers 50k-200k (overlapping)."""
    rng = random.Random(f"{seed}/price/{p.index}")
    return rng.randint(150_000, 300_000) if buying else rng.randint(50_000, 200_000)


class DemoScript:
    def __init__(self, community: Community, cfg: DemoConfig, market: MarketConfig, start_ms: int):
        self.community, self.cfg, self.market, self.start_ms = community, cfg, market, start_ms
        self.end_ms = start_ms + cfg.day_minutes * MINUTE_MS

    def events(self) -> Iterator[TimedEvent]:
        """Every event of the day, ordered by ``at_ms``."""
        return heapq.merge(
            self.registrations(),
            self.market_orders(),
            self.vpp_requests(),
            key=lambda e: e.at_ms,
        )

    def dso(self) -> Dso:
        """The demo DSO's registry entry (:func:`edream.demo.dso.registry_entry`)."""
        return registry_entry(self.cfg.seed, self.start_ms, self.cfg.dso)

    def registrations(self) -> Iterator[TimedEvent]:
        t = self.start_ms
        yield TimedEvent(t, TOPIC_DSOS, "FlexDso", DSO_ID, self.dso().to_avro())
        first_ev = controllable_prosumer(self.community)
        for p in self.community.prosumers:
            binding = DEMO_EV_DEVICE if p.prosumer_id == first_ev else None
            rec = enrolment_event(flex_record(p, self.cfg.seed, binding), t)
            yield TimedEvent(t, "flex.enrolments.v1", "FlexEnrolment", p.prosumer_id, rec)
        for p in self.community.prosumers:
            part = Participant(
                participant_id=p.prosumer_id,
                prosumer_id=p.prosumer_id,
                eth_address=demo_address(self.cfg.seed, p.prosumer_id),
                meters=(p.device_id,),
                updated_at=t,
            )
            yield TimedEvent(t, "market.participants.v1", "MarketParticipant", p.prosumer_id, part.to_avro())
        for rec in asset_records(self.community, t):
            yield TimedEvent(t, "vpp.assets.v1", "VppAsset", rec["asset_id"], rec)

    def vpp_requests(self) -> Iterator[TimedEvent]:
        first = self.start_ms + self.cfg.vpp_first_request_after_ms
        every = self.cfg.vpp_request_every_minutes * MINUTE_MS
        for at, rec in capability_requests(first, every, self.end_ms):
            yield TimedEvent(at, "vpp.capability.requests.v1", "VppCapabilityRequest", VPP_ID, rec)

    def gates(self) -> Iterator[int]:
        """Gate closures (UTC ms), one per market slot, from the first one at least 20 s after start. Usually
        that is the gate ``first_gate_after_ms`` after start (``market.yaml``'s lead is chosen so); when the market
        was configured at an earlier start (``edream run`` writes it before the worker is up: 90 s and more on a
        loaded machine), it is still the next gate, not one a whole slot later (the demo then sent no order for 15
        min and its test failed once)."""
        earliest = self.start_ms + 20_000
        slot_ms = self.market.slot_ms
        gate = self.market.gate_closure(
            -(-(earliest + self.market.gate_closure_lead_ms) // slot_ms) * slot_ms
        )
        while gate < self.end_ms:
            yield gate
            gate += self.market.slot_ms

    def orders_for_gate(self, gate_ms: int, at_ms: int) -> list[TimedEvent]:
        """One signed order per prosumer with a non-zero expected net energy in the gate's slot."""
        slot = gate_ms + self.market.gate_closure_lead_ms
        out = []
        for p in self.community.prosumers:
            wh = round(self.community.expected_wh(p, slot, slot + self.market.slot_ms))
            orders = orders_from_profile(
                self.market,
                p.prosumer_id,
                demo_address(self.cfg.seed, p.prosumer_id),
                demo_key(self.cfg.seed, p.prosumer_id),
                slot,
                [wh],
                [limit_price(p, self.cfg.seed, wh > 0)],
                client_ts=at_ms,
                first_nonce=slot // self.market.slot_ms,
            )
            out += [
                TimedEvent(at_ms, "market.orders.v1", "MarketOrder", o.session_id, o.to_avro())
                for o in orders
            ]
        return out

    def market_orders(self) -> Iterator[TimedEvent]:
        for gate in self.gates():
            at = max(self.start_ms + 10_000, gate - self.cfg.order_lead_ms)
            if at < gate:
                yield from self.orders_for_gate(gate, at)
