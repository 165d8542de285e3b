"""The baselines stage processor alone (MemoryState, no broker): events/s and per-event cost vs state size.

1. ``feed``: 20 prosumers x 15 days of intervals from scratch through the runtime processor
   (:class:`~streams.analytics.baseline_processor.BaselineProcessor`), intervals/s.
2. ``per_event``: a state of N prosumers with 15 days of history each (one prosumer's state processed, then
   copied key by key under other ids), then intervals of randomly chosen prosumers entering a new slot (each
   issues an adjusted baseline from its 61-day look-back): mean and p99 microseconds per interval for a small
   and a large N; their ratio is what the state size costs per event.
"""

from __future__ import annotations

import random
import time
from typing import Any

import psutil

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.analytics.baseline_processor import INTERVAL_TOPIC, BaselineProcessor
from streams.analytics.baselines import DAY_MS, SLOT_MS
from tools.sim.interval_feed import interval, intervals, load_kw

START = 1_793_577_600_000  # 2026-11-02T00:00Z, a Monday
HISTORY_DAYS = 15
SMALL, LARGE = 1_000, 20_000


def _now(day: int) -> int:
    return START + day * DAY_MS


def _feed(serde: Serde, names: list[str], days: int) -> list[bytes]:
    return [serde.encode("IntervalEnergy", r, INTERVAL_TOPIC) for r in intervals(names, START, days * 96)]


def _records(serde: Serde, msgs: list[bytes]) -> list[Record]:
    out = []
    for i, m in enumerate(msgs):
        key = serde.decode(m, INTERVAL_TOPIC)[1]["prosumer_id"].encode()
        out.append(Record(INTERVAL_TOPIC, 0, i, key, m, 0))
    return out


def _feed_rates(serde: Serde) -> dict[str, Any]:
    msgs = _feed(serde, [f"f{i}" for i in range(20)], HISTORY_DAYS)
    records = _records(serde, msgs)
    proc, state = BaselineProcessor(serde, now_ms=lambda: _now(HISTORY_DAYS + 1)), MemoryState()
    t0 = time.perf_counter()
    emitted = sum(len(list(proc.on_record(r, state))) for r in records)
    runtime_s = time.perf_counter() - t0
    return {
        "intervals": len(records),
        "runtime_intervals_per_s": round(len(records) / runtime_s),
        "runtime_baselines": emitted,
    }


def _template(serde: Serde) -> tuple[dict[str, bytes], int]:
    """State keys of one prosumer ``t`` with HISTORY_DAYS days and one slot of history; its next slot start."""
    proc, state = BaselineProcessor(serde, now_ms=lambda: _now(HISTORY_DAYS + 1)), MemoryState()
    for r in _records(serde, _feed(serde, ["t"], HISTORY_DAYS)):
        proc.on_record(r, state)
    nxt = _now(HISTORY_DAYS)
    rec = interval("t", nxt, 1.0)
    proc.on_record(
        Record(INTERVAL_TOPIC, 0, 0, b"t", serde.encode("IntervalEnergy", rec, INTERVAL_TOPIC), 0), state
    )
    return state.data, nxt + SLOT_MS


def _per_event(
    serde: Serde, n: int, template: dict[str, bytes], first_slot: int, events: int
) -> dict[str, Any]:
    state = MemoryState()
    for i in range(n):
        p = f"p{i:06d}"
        for k, v in template.items():
            state.data[f"b:{p}" + k[len("b:t") :]] = bytes(
                bytearray(v)
            )  # own copies: a real state of n prosumers
    proc = BaselineProcessor(serde, now_ms=lambda: _now(HISTORY_DAYS + 1))
    rng = random.Random(n)
    slot_of: dict[int, int] = {}
    batch = []
    for _ in range(events):
        i = rng.randrange(n)
        start = slot_of.get(i, first_slot)
        slot_of[i] = start + SLOT_MS
        p = f"p{i:06d}"
        value = serde.encode("IntervalEnergy", interval(p, start, load_kw(i % 7, start)), INTERVAL_TOPIC)
        batch.append(Record(INTERVAL_TOPIC, 0, 0, p.encode(), value, 0))
    costs, emitted = [], 0
    for r in batch:
        t0 = time.perf_counter()
        emitted += len(list(proc.on_record(r, state)))
        costs.append(time.perf_counter() - t0)
    costs.sort()
    return {
        "prosumers": n,
        "state_keys": len(state.data),
        "rss_mb": round(psutil.Process().memory_info().rss / 2**20),
        "events": len(batch),
        "baselines": emitted,
        "mean_us": round(sum(costs) / len(costs) * 1e6, 1),
        "p99_us": round(costs[int(len(costs) * 0.99)] * 1e6, 1),
    }


def run(seconds: float = 5.0) -> dict[str, Any]:
    serde = Serde()
    out: dict[str, Any] = {"feed": _feed_rates(serde)}
    template, first_slot = _template(serde)
    events = max(2_000, int(seconds * 1_000))
    small = _per_event(serde, SMALL, template, first_slot, events)
    large = _per_event(serde, LARGE, template, first_slot, events)
    out["per_event"] = {
        "small": small,
        "large": large,
        "large_over_small": round(large["mean_us"] / small["mean_us"], 2),
    }
    return out
