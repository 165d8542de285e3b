"""A realistic random portfolio (mixed EV chargers, curtailable loads, PV, batteries) for benchmarks and demos."""

from __future__ import annotations

import random

from streams.flex.enrolment import (
    AvailabilityWindow,
    Battery,
    ContractTerms,
    CurtailableLoad,
    EvCharger,
    ProsumerRecord,
    PvSystem,
    Registry,
)
from streams.flex.model import SlotOutlook
from streams.flex.offers import OutlookFn


def random_portfolio(n: int, area: str = "area-1", seed: int = 1) -> Registry:
    """``n`` prosumers; each has a load, ~60 % an EV charger (7-64 A, 1 or 3 phase), ~50 % PV, ~25 % a battery;
    ~80 % are available all day, the rest 06:00-22:00 UTC only."""
    rng = random.Random(seed)
    reg = Registry()
    for i in range(n):
        assets: list = [CurtailableLoad(f"load-{i}", round(rng.uniform(0.5, 4.0), 2))]
        if rng.random() < 0.6:
            mx = rng.choice([16, 32, 64])
            assets.append(EvCharger(f"ev-{i}", mx, rng.randint(7, mx), rng.choice([1, 3])))
        if rng.random() < 0.5:
            assets.append(PvSystem(f"pv-{i}", round(rng.uniform(2, 10), 1)))
        if rng.random() < 0.25:
            assets.append(Battery(f"bat-{i}", rng.choice([5.0, 10.0, 13.5]), rng.choice([3.0, 5.0])))
        terms = ContractTerms(
            aggregator_id="agg-1",
            tolerance_range=rng.choice([0.05, 0.1, 0.15]),
            multiplier=rng.choice([1.0, 1.2, 1.5]),
            incentive_micro_per_kwh=rng.randint(80_000, 250_000),
            penalty_micro_per_kwh=rng.randint(150_000, 400_000),
        )
        windows = (AvailabilityWindow(0, 1440),) if rng.random() < 0.8 else (AvailabilityWindow(360, 1320),)
        reg.upsert(ProsumerRecord(f"p{i:05d}", area, terms, tuple(assets), windows, connection_kw=25.0))
    return reg


def random_outlook(seed: int = 1) -> OutlookFn:
    """Deterministic pseudo-random outlook per (prosumer, slot): baseline 0.5-8 kW, sigma 5-30 %, PV 0-0.7."""

    def outlook(prosumer_id: str, slot_start: int) -> SlotOutlook:
        r = random.Random(f"{seed}|{prosumer_id}|{slot_start}")
        base = r.uniform(0.5, 8.0)
        return SlotOutlook(
            baseline_kw=base,
            sigma_kw=base * r.uniform(0.05, 0.3),
            pv_kw_per_kwp=r.uniform(0.0, 0.7),
            ev_connected=r.random() < 0.7,
            battery_soc=r.uniform(0.2, 0.9),
        )

    return outlook
