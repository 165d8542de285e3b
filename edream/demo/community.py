"""A simulated energy community: N prosumers with household load, PV, EV chargers and a few micro-CHP units.

Every prosumer has one smart meter (``demo-meter-NNN``) reporting net active power (W, import positive) every
``step_ms``. Profiles are deterministic functions of the seed and UTC time, so a restart re-emits identical
readings (deterministic ``event_id``s, idempotent sinks). Hours are UTC hours of day.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
AREA = "demo-community"
SITE = "demo-site"
CONNECTOR = "demo"

#: (prosumer_id, ts_ms, own net kW) -> kW actually metered (lets devices follow flexibility orders)
Override = Callable[[str, int, float], float]


@dataclass(frozen=True)
class Prosumer:
    """One household. Powers in kW; ``ev_*_hour`` is the UTC hour the EV plugs in / the charge lasts (h)."""

    index: int
    base_kw: float
    evening_kw: float
    curtailable_kw: float
    pv_kwp: float = 0.0
    ev_kw: float = 0.0
    ev_arrival_hour: float = 18.0
    ev_hours: float = 3.0
    chp_kw: float = 0.0

    @property
    def prosumer_id(self) -> str:
        return f"prosumer-{self.index:03d}"

    @property
    def device_id(self) -> str:
        return f"demo-meter-{self.index:03d}"

    def household_kw(self, hour: float) -> float:
        """Appliances: base load with a morning and an evening peak."""
        morning = 0.6 * self.evening_kw * math.exp(-(((hour - 7.0) / 1.2) ** 2))
        evening = self.evening_kw * math.exp(-(((hour - 19.0) / 2.0) ** 2))
        return self.base_kw + morning + evening

    def pv_kw(self, hour: float) -> float:
        """Clear-sky-like bell between 06:00 and 18:00 UTC."""
        if not 6.0 < hour < 18.0:
            return 0.0
        return self.pv_kwp * 0.8 * math.sin(math.pi * (hour - 6.0) / 12.0) ** 1.5

    def ev_charging_kw(self, hour: float) -> float:
        since = (hour - self.ev_arrival_hour) % 24.0
        return self.ev_kw if since < self.ev_hours else 0.0

    def net_kw(self, ts_ms: int) -> float:
        """Expected net consumption (kW, import positive) at ``ts_ms`` without noise."""
        hour = (ts_ms % DAY_MS) / HOUR_MS
        return self.household_kw(hour) + self.ev_charging_kw(hour) - self.pv_kw(hour) - self.chp_kw


def _noise(seed: int, index: int, ts_ms: int) -> float:
    """Deterministic pseudo-random value in [-1, 1) per (seed, prosumer, timestamp)."""
    digest = hashlib.blake2b(f"{seed}/{index}/{ts_ms}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0


class Community:
    """``n`` prosumers drawn from ``seed``: ~50 % PV (3-8 kWp), ~40 % EV chargers (7.4 or 11 kW), ~10 % micro-CHP
    (3-5 kW electric, heat-led so always on), each with a curtailable load of 1-3 kW."""

    def __init__(self, n: int = 50, seed: int = 1, step_ms: int = 5_000):
        if n <= 0:
            raise ValueError("a community needs at least one prosumer")
        self.seed, self.step_ms = seed, step_ms
        rng = random.Random(seed)
        self.prosumers = [self._draw(i, rng) for i in range(n)]

    @staticmethod
    def _draw(i: int, rng: random.Random) -> Prosumer:
        has_pv, has_ev, has_chp = rng.random() < 0.5, rng.random() < 0.4, rng.random() < 0.1
        return Prosumer(
            index=i,
            base_kw=round(rng.uniform(0.2, 0.6), 2),
            evening_kw=round(rng.uniform(0.8, 2.5), 2),
            curtailable_kw=round(rng.uniform(1.0, 3.0), 2),
            pv_kwp=round(rng.uniform(3.0, 8.0), 1) if has_pv else 0.0,
            ev_kw=rng.choice([7.36, 11.04]) if has_ev else 0.0,
            ev_arrival_hour=round(rng.uniform(16.0, 21.0), 2),
            ev_hours=round(rng.uniform(1.5, 4.0), 2),
            chp_kw=round(rng.uniform(3.0, 5.0), 1) if has_chp else 0.0,
        )

    def __len__(self) -> int:
        return len(self.prosumers)

    def grid(self, start_ms: int, end_ms: int, step_ms: int | None = None) -> range:
        """Reading timestamps on the ``step_ms`` grid (default: the meters' step) in ``(start_ms, end_ms]``."""
        step = step_ms or self.step_ms
        return range((start_ms // step + 1) * step, end_ms + 1, step)

    def metered_kw(self, p: Prosumer, ts_ms: int) -> float:
        """Net kW with +-5 % (min 50 W) deterministic noise."""
        expected = p.net_kw(ts_ms)
        return expected + _noise(self.seed, p.index, ts_ms) * max(0.05, 0.05 * abs(expected))

    def expected_wh(self, p: Prosumer, start_ms: int, end_ms: int, sample_ms: int = 60_000) -> float:
        """Expected net energy (Wh, import positive) over ``[start_ms, end_ms)``: the prosumer's own forecast."""
        samples = [p.net_kw(t + sample_ms // 2) for t in range(start_ms, end_ms, sample_ms)]
        return sum(samples) * sample_ms / HOUR_MS * 1000.0

    def readings(
        self,
        start_ms: int,
        end_ms: int,
        override: Override | None = None,
        ingest_ms: int | None = None,
        step_ms: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Measurement records (avro/Measurement.avsc) of every meter for each grid time in ``(start, end]``,
        oldest first. ``override`` replaces the metered kW (devices following flexibility orders); ``step_ms``
        overrides the reading period (coarser history uploads)."""
        for ts in self.grid(start_ms, end_ms, step_ms):
            seq = ts // self.step_ms
            for p in self.prosumers:
                kw = self.metered_kw(p, ts)
                if override is not None:
                    kw = override(p.prosumer_id, ts, kw)
                yield measurement(p, ts, kw, seq, ts if ingest_ms is None else ingest_ms)


def measurement(p: Prosumer, ts_ms: int, kw: float, seq: int, ingest_ms: int) -> dict[str, Any]:
    """One P_ACTIVE/TOTAL Measurement in W; ``event_id`` is deterministic per meter and timestamp."""
    return {
        "event_id": f"demo/{p.device_id}/P_ACTIVE/TOTAL/{ts_ms}",
        "device_id": p.device_id,
        "prosumer_id": p.prosumer_id,
        "site_id": SITE,
        "quantity": "P_ACTIVE",
        "phase": "TOTAL",
        "value": round(kw * 1000.0, 1),
        "unit": "W",
        "obis_code": "1-0:16.7.0",
        "quality": "GOOD",
        "source_protocol": "SIMULATOR",
        "connector_id": CONNECTOR,
        "ts": ts_ms,
        "ts_source": "DEVICE",
        "seq": seq,
        "ingest_ts": ingest_ms,
    }
