"""The flex side of the end-to-end benchmark's load (:mod:`tools.bench.e2e`), pure: which simulated meters are
enrolled prosumers of which congestion area, which of them ignore their orders, the simulated DSO's signed requests
that put orders on the areas, and the net power each meter reads given the orders it has seen.

Meter ``m<i>`` belongs to prosumer :func:`~tools.sim.flex_scenario.pid` ``(i)``. The first ``enrolled`` meters are
enrolled as the flex scenario's prosumers (one 3 kW curtailable load on a flat 5 kW baseline, merit order by index,
:func:`tools.sim.flex_scenario.prosumer`), dealt round-robin over ``areas`` areas ``bench-0``, ``bench-1``, ...; an
enrolled meter reads its 5 kW baseline less what its latest order revision allocates to it in the slot of the
reading (catching up what it missed of the slot, within its 3 kW), unless it is a *deviator* (every
``1/deviating_share``-th prosumer of an area in merit order, the cheapest one first, so deviators are among the
ordered): a deviator keeps reading its baseline, which the per-prosumer stage
detects as a PROJECTED SHORTFALL and the area desk re-dispatches. Meters that are not enrolled read 0.5-1.46 kW
(flex drops them at its door; the other stages process them). Times are UTC epoch ms, power kW.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.flex.delivery import DeliveryMeter
from streams.flex.dispatch import catch_up_kw
from streams.flex.enrolment import Registry
from streams.flex.model import Direction
from streams.flex.orders import FlexOrder, OrderAllocation
from streams.flex.requests import FlexRequest, RequestSlot
from tools.sim.flex_scenario import BASELINE_KW, CAP_KW, SIM_DSO_ID, pid, prosumer, signed

MS_PER_MINUTE = 60_000
#: reward of the bench's requests, micro-units per kWh (the flex scenario's)
REWARD_MICRO_PER_KWH = 250_000


def area_id(k: int) -> str:
    return f"bench-{k}"


@dataclass(frozen=True)
class FlexLoad:
    """meters: simulated meters; enrolled_share: fraction of them enrolled as prosumers; areas: congestion areas
    they are dealt over; deviating_share: fraction of an area's prosumers that ignore their orders;
    request_share: fraction of an area's curtailable kW (3 kW per prosumer) each request asks for."""

    meters: int
    enrolled_share: float = 0.1
    areas: int = 4
    deviating_share: float = 0.2
    request_share: float = 0.3

    def __post_init__(self) -> None:
        for name in ("enrolled_share", "deviating_share", "request_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        if self.meters < 0 or self.areas < 1:
            raise ValueError(f"meters must be >= 0 and areas >= 1, got {self.meters}, {self.areas}")

    @property
    def enrolled(self) -> int:
        return round(self.meters * self.enrolled_share)

    def area_of(self, i: int) -> str | None:
        """Area of meter ``i``'s prosumer, None when it is not enrolled."""
        return area_id(i % self.areas) if i < self.enrolled else None

    def deviates(self, i: int) -> bool:
        """Whether meter ``i``'s prosumer ignores its orders: every ``round(1 / deviating_share)``-th prosumer of
        its area in merit order, starting with the cheapest; never with ``deviating_share`` 0."""
        if i >= self.enrolled or self.deviating_share == 0:
            return False
        return (i // self.areas) % max(1, round(1 / self.deviating_share)) == 0

    def registry(self) -> Registry:
        """The enrolled prosumers (ids ``pid(i)``, areas round-robin)."""
        reg = Registry()
        for i in range(self.enrolled):
            reg.upsert(prosumer(i, self.area_of(i)))  # type: ignore[arg-type]
        return reg

    def requests(self, first_slot: int, n_slots: int, now: int, slot_minutes: int = 1) -> list[FlexRequest]:
        """One REDUCE request per area with prosumers, signed by the simulated DSO, created at ``now``, due by
        ``first_slot``, for ``n_slots`` slots of ``slot_minutes`` from ``first_slot`` (which must be aligned to
        them), each asking ``request_share`` of the area's curtailable kW."""
        slot_ms = slot_minutes * MS_PER_MINUTE
        if first_slot % slot_ms:
            raise ValueError(f"first slot {first_slot} is not aligned to {slot_minutes} min")
        out = []
        for k in range(self.areas):
            members = len(range(k, self.enrolled, self.areas))
            kw = round(self.request_share * CAP_KW * members, 3)
            if kw <= 0:
                continue
            out.append(
                signed(
                    FlexRequest(
                        request_id=f"bench-req-{area_id(k)}-{first_slot}",
                        dso_id=SIM_DSO_ID,
                        area_id=area_id(k),
                        direction=Direction.REDUCE,
                        slots=tuple(RequestSlot(first_slot + s * slot_ms, kw) for s in range(n_slots)),
                        reward_micro_per_kwh=REWARD_MICRO_PER_KWH,
                        deadline=first_slot,
                        created_at=now,
                        slot_minutes=slot_minutes,
                    )
                )
            )
        return out


class OrdersSeen:
    """The latest revision of every order seen, indexed by (prosumer, slot start) for the meters' set-points."""

    def __init__(self) -> None:
        self.latest: dict[str, FlexOrder] = {}
        self._slot_ms: set[int] = set()
        self._index: dict[tuple[str, int], tuple[FlexOrder, OrderAllocation]] = {}

    def add(self, order: FlexOrder) -> bool:
        """Take ``order`` if it is a newer revision than the one held; whether it was."""
        old = self.latest.get(order.order_id)
        if old is not None and old.revision >= order.revision:
            return False
        for a in old.allocations if old else ():
            self._index.pop((a.prosumer_id, a.slot_start), None)
        for a in order.allocations:
            self._index[(a.prosumer_id, a.slot_start)] = (order, a)
        self.latest[order.order_id] = order
        self._slot_ms.add(order.slot_ms)
        return True

    def allocation(self, prosumer_id: str, ts: int) -> tuple[FlexOrder, OrderAllocation] | None:
        """The order revision and allocation of ``prosumer_id`` in the slot holding ``ts``, if any."""
        for slot_ms in self._slot_ms:
            hit = self._index.get((prosumer_id, ts - ts % slot_ms))
            if hit is not None:
                return hit
        return None


@dataclass
class BenchMeters:
    """The meters of a :class:`FlexLoad`: the net power each reads, enrolled complying ones following their latest
    order revision with catch-up set-points (as :class:`tools.sim.flex_scenario.Devices`: a slot's average must
    reach its target, measured by the prosumer's own readings, so a kW re-dispatched to it mid-slot is caught up
    over the rest of the slot, within its 3 kW), deviators on their 5 kW baseline."""

    load: FlexLoad
    orders: OrdersSeen = field(default_factory=OrdersSeen)
    meter: DeliveryMeter = field(default_factory=DeliveryMeter)

    def reading_kw(self, i: int, ts: int) -> float:
        """Net power, kW, meter ``i`` reads at ``ts`` (UTC epoch ms, after its previous reading)."""
        if i >= self.load.enrolled:
            return 0.5 + (i % 97) * 0.01
        if self.load.deviates(i):
            return BASELINE_KW
        p = pid(i)
        kw = BASELINE_KW
        hit = self.orders.allocation(p, ts)
        if hit is not None:
            order, a = hit
            slot_end = a.slot_start + order.slot_ms
            since = max(a.slot_start, self.meter.last.get(p, (a.slot_start, 0.0))[0])
            so_far = self.meter.so_far_kwms(
                (p, a.slot_start), p, a.slot_start, slot_end, order.direction, a.baseline_kw, since
            )
            want = catch_up_kw(a.kw, so_far, since, a.slot_start, slot_end)
            kw = order.direction.actual_kw(BASELINE_KW, min(CAP_KW, max(0.0, want)))
        self.meter.on_reading(p, ts, kw)
        return kw


def next_slot_start(now: int, lead_ms: int, slot_minutes: int = 1) -> int:
    """The first slot boundary (multiple of ``slot_minutes``, UTC epoch ms) at least ``lead_ms`` after ``now``."""
    slot_ms = slot_minutes * MS_PER_MINUTE
    t = now + lead_ms
    return t if t % slot_ms == 0 else t + slot_ms - t % slot_ms
