"""The forecasts stage processor alone (MemoryState, no broker): intervals/s per worker and state per prosumer,
River ``linear`` vs ``ensemble`` (``FORECAST_MODEL``).

Per model: two prosumers, a consumer and a PV prosumer (its net load minus a clear-sky PV profile of 3 kW peak:
it exports at midday, so both of its series are modelled; a consumer's production series is all zeros and is
not), are fed ``warm_days`` days of 15-minute intervals through
:class:`~streams.analytics.forecast_processor.ForecastProcessor` (their state values are then the size a
prosumer has after that many days); those states are copied under ``entities`` prosumer ids, ``pv_share`` of
them PV prosumers; then the
next slots' intervals of all of them arrive slot by slot (each record: decode, validate, load the prosumer's
state, online update, issue the horizons due, score, store) for about ``seconds``. Reported: intervals per
second (= online update + issue per second per worker; every 4th record closes an hourly point, and the
forecasts issued are counted), state bytes per consumer, PV prosumer and on average, the projected partition state for 10,000 prosumers and
the time one worker needs for a slot of 10,000 prosumers (they all report within seconds of a slot's end).

Also, once: the LightGBM member's model text size and fit time on 28 days of hourly points at 50 and 200
rounds - the cost of keeping that member per (prosumer, property, horizon) in the partition state.

Run small on a shared machine: ``edream bench forecasts --entities 200 --seconds 5 --pv-share 0.3``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.analytics.ensemble import EnsembleForecaster
from streams.analytics.forecast_processor import ForecastProcessor, ForecastTopics
from streams.validation.limits import Limits
from tools.sim.interval_feed import DAY_MS, SLOT_MS, interval, load_kw, pv_kw

START = 1_793_577_600_000  # 2026-11-02T00:00Z, a Monday
TOPIC = "meter.intervals.15m.v1"
TOPICS = ForecastTopics(TOPIC, "forecast.profiles.v1", "forecast.accuracy.v1")
MODELS = ("linear", "ensemble")
TARGET_ENTITIES = 10_000


def _record(serde: Serde, prosumer: str, index: int, slot: int, pv: bool = False) -> Record:
    ts = START + slot * SLOT_MS
    rec = interval(prosumer, ts, load_kw(index % 20, ts) - (pv_kw(ts) if pv else 0.0))
    return Record(TOPIC, 0, slot, prosumer.encode(), serde.encode("IntervalEnergy", rec, TOPIC), 0)


def _model_rates(
    serde: Serde, model: str, entities: int, warm_days: int, seconds: float, pv_share: float
) -> dict[str, Any]:
    slots = warm_days * 96
    end_ms = START + (warm_days + 2) * DAY_MS  # within the limits' look-back (max 28 warm days)
    proc = ForecastProcessor(serde, TOPICS, Limits(), clock=lambda: end_ms / 1000, model=model)
    warm = {False: MemoryState(), True: MemoryState()}  # a consumer "t" and a PV prosumer "t"
    t0 = time.perf_counter()
    for s in range(slots):
        for pv, st in warm.items():
            proc.on_record(_record(serde, "t", 0, s, pv), st)
    warm_s = time.perf_counter() - t0
    # the keys of prosumer "t": "<prefix>t" (and "<prefix>t/<series>" for the ensemble)
    bytes_of = {pv: sum(len(v) for v in st.data.values()) for pv, st in warm.items()}
    names = [f"p{i:05d}" for i in range(entities)]
    has_pv = [i < round(pv_share * entities) for i in range(entities)]
    state = MemoryState()
    for n, pv in zip(names, has_pv, strict=True):
        for k, v in warm[pv].data.items():
            state.set(k.replace(":t", f":{n}", 1), v)
    records = forecasts = 0
    t0 = time.perf_counter()
    slot = slots
    while time.perf_counter() - t0 < seconds or slot == slots:
        for i, (n, pv) in enumerate(zip(names, has_pv, strict=True)):
            out = proc.on_record(_record(serde, n, i, slot, pv), state)
            forecasts += sum(1 for e in out if e.topic == TOPICS.forecasts)
            records += 1
        slot += 1
    run_s = time.perf_counter() - t0
    rate = records / run_s
    state_bytes = sum(len(v) for v in state.data.values()) / entities
    return {
        "warm_intervals_per_s": round(2 * slots / warm_s),
        "intervals_per_s": round(rate),
        "slots": slot - slots,
        "forecasts_per_s": round(forecasts / run_s),
        "state_bytes_per_consumer": bytes_of[False],
        "state_bytes_per_pv_prosumer": bytes_of[True],
        "state_bytes_per_prosumer": round(state_bytes),
        "state_keys_per_prosumer": len(warm[True].data),
        "state_mb_for_10000": round(state_bytes * TARGET_ENTITIES / 1e6),
        "seconds_per_slot_of_10000": round(TARGET_ENTITIES / rate, 1),
    }


def _lightgbm_cost(days: int = 28) -> dict[str, Any]:
    hour = 3_600_000
    k = np.arange(days * 24)
    y = 1000 * np.array([load_kw(0, START + int(i) * hour) for i in k])
    out = {}
    for rounds in (50, 200):
        f = EnsembleForecaster(hour, 24, history_days=days, gbm_rounds=rounds)
        for i, v in zip(k.tolist(), y.tolist(), strict=True):
            f.observe(START + i * hour, v)
        t0 = time.perf_counter()
        f.retrain()
        out[f"rounds_{rounds}"] = {
            "fit_s": round(time.perf_counter() - t0, 2),
            "model_text_bytes": len(f.gbm.booster.model_to_string()) if f.gbm.booster else None,
        }
    return out


def run(
    seconds: float = 5.0, entities: int = 200, warm_days: int = 21, pv_share: float = 0.3
) -> dict[str, Any]:
    serde = Serde()
    res: dict[str, Any] = {
        "entities": entities,
        "warm_days": warm_days,
        "pv_share": pv_share,
        "seconds_per_model": seconds,
    }
    for m in MODELS:
        res[m] = _model_rates(serde, m, entities, warm_days, seconds, pv_share)
    res["ensemble_vs_linear_speed"] = round(
        res["ensemble"]["intervals_per_s"] / res["linear"]["intervals_per_s"], 2
    )
    res["lightgbm_member_per_series_28_days"] = _lightgbm_cost()
    res["needed_intervals_per_s_for_10000"] = round(TARGET_ENTITIES / (SLOT_MS / 1000), 1)
    return res
