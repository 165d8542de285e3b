"""The flex area desk's processor alone (MemoryState, no broker): per-event cost of its steady inputs (prosumer
status every minute, 15-min baselines) with N prosumers' summaries in state, at a small and a large N, and the cost of
one request (offer + order over the area's candidates).

    edream bench flex_area [--small 1000] [--large 100000] [--events 20000]

Prints one JSON object: events/s and us/event per size, their ratio (large / small), request ms per size.
"""

from __future__ import annotations

import random
import time

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.flex.area_stage import AreaParams, FlexAreaProcessor
from streams.flex.dso_view import DsoView
from streams.flex.enrolled import EnrolledRegistry
from streams.flex.enrolment import Registry
from tools.sim.flex_scenario import AREA, SLOT_MS, T0, dso_view, enrolment_view, prosumer, reduce_request

SERDE = Serde()
NOW = T0 - 3_600_000
AREAS = 100  # prosumers are spread over this many areas (one partition holds them all here)


def status(pid: str, area: str, ts: int, kw: float) -> bytes:
    rec = {"prosumer_id": pid, "area_id": area, "ts": ts, "metered_kw": kw, "delivered": []}
    return SERDE.encode("FlexProsumerStatus", rec)


def baseline(pid: str, start: int, kw: float) -> bytes:
    rec = {
        "event_id": f"b-{pid}-{start}",
        "prosumer_id": pid,
        "isp_start": start,
        "isp_end": start + 900_000,
        "baseline_kw": kw,
        "method": "OTHER",
        "method_params": "",
        "adjustment_kw": 0.0,
        "source_days": [],
        "computed_at": start - 86_400_000,
        "version": 1,
    }
    return SERDE.encode("Baseline", rec)


def area_of(i: int) -> str:
    return AREA if i < 1000 else f"area-{i % AREAS}"


def build(n: int, auto_accept: bool = True) -> tuple[FlexAreaProcessor, MemoryState, list[str]]:
    registry = Registry()
    for i in range(n):
        registry.upsert(prosumer(i, area_of(i)))
    enrolled = EnrolledRegistry(enrolment_view(registry, SERDE), SERDE)
    params = AreaParams(auto_accept=auto_accept)  # default: one request = offer + order
    proc = FlexAreaProcessor(SERDE, enrolled, DsoView(dso_view(SERDE), SERDE), {}, params, clock=lambda: NOW)
    state = MemoryState()
    pids = sorted(registry.records)
    for i, pid in enumerate(pids):  # every prosumer's summaries are in state: a day of baselines, a status
        proc.on_record(
            Record("flex.prosumer.status.v1", 0, i, None, status(pid, area_of(i), NOW, 5.0), NOW), state
        )
        for k in range(0, 96, 8):
            proc.on_record(
                Record("baseline.15m.v1", 0, i, None, baseline(pid, T0 + k * 900_000, 5.0), NOW), state
            )
    return proc, state, pids


def per_event_us(proc: FlexAreaProcessor, state: MemoryState, pids: list[str], events: int) -> float:
    rnd = random.Random(1)
    records = []
    for j in range(events):
        i = rnd.randrange(len(pids))
        if j % 4:
            value = status(pids[i], area_of(int(pids[i][1:])), NOW + j, 5.0 + j % 3)
            records.append(Record("flex.prosumer.status.v1", 0, j, None, value, NOW))
        else:
            records.append(
                Record("baseline.15m.v1", 0, j, None, baseline(pids[i], T0 + (j % 96) * 900_000, 4.0), NOW)
            )
    t0 = time.perf_counter()
    for r in records:
        proc.on_record(r, state)
    return (time.perf_counter() - t0) / events * 1e6


def request_ms(proc: FlexAreaProcessor, state: MemoryState, n: int) -> float:
    req = reduce_request(kw=min(60.0, 0.5 * min(n, 1000)), n_slots=4, request_id=f"req-{n}")
    proc.on_record(
        Record("flex.requests.v1", 0, 0, None, SERDE.encode("FlexRequest", req.to_avro()), NOW), state
    )
    t0 = time.perf_counter()
    out = proc.on_tick(NOW, 0, state)
    assert len(out) > 2, "an offer, an order and its allocations"
    return (time.perf_counter() - t0) * 1000


def run(
    seconds: float = 5.0, small: int = 1000, large: int = 100_000, events: int = 20_000, **_: object
) -> dict:
    """Per-event cost at ``small`` and ``large`` prosumers (``events`` status/baseline records each) and the cost of
    one request; ``seconds`` is unused (the sizes bound the run)."""
    result: dict = {"benchmark": "flex_area", "slot_ms": SLOT_MS}
    for label, n in (("small", int(small)), ("large", int(large))):
        proc, state, pids = build(n)
        us = per_event_us(proc, state, pids, int(events))
        result[label] = {
            "prosumers": n,
            "state_keys": len(state.data),
            "us_per_event": round(us, 1),
            "events_per_s": round(1e6 / us),
            "request_ms_1000_candidates": round(request_ms(proc, state, n), 1),
        }
    result["large_over_small"] = round(result["large"]["us_per_event"] / result["small"]["us_per_event"], 2)
    return result
