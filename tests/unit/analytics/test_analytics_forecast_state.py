"""Per-prosumer forecasting state as JSON: a rebuilt forecaster forecasts and learns exactly like the original."""

from __future__ import annotations

import base64
import json
import math
import random

import numpy as np
import pytest
from pydantic import ValidationError

from edream.serde import Serde
from streams.analytics.forecast_service import ForecastService
from streams.analytics.forecast_state import (
    ForecasterState,
    decode,
    dump_forecaster,
    dump_stream,
    encode,
    load_forecaster,
    load_stream,
)
from streams.analytics.forecast_stream import ForecastStream
from streams.analytics.forecasting import DAY_MS, HORIZONS, EntityForecaster

STEP = 900_000
DAY0 = 1_795_392_000_000  # 2026-11-23T00:00Z, a Monday


def series(days: int, seed: int) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    out = []
    for i in range(days * 96):
        if 300 <= i < 320:  # a five-hour outage: NaN history entries
            continue
        hour = (i % 96) / 4
        out.append((DAY0 + i * STEP, 200 + 120 * math.sin(hour / 24 * 2 * math.pi) + rng.gauss(0, 15)))
    return out


def round_trip(f: EntityForecaster) -> EntityForecaster:
    blob = dump_forecaster(f).model_dump_json()
    return load_forecaster(ForecasterState.model_validate_json(blob))


@pytest.mark.parametrize("model", ["linear", "profile", "seasonal-naive"])
def test_rebuilt_forecaster_forecasts_and_learns_exactly_like_the_original(model):
    data = series(12, 1)
    original = EntityForecaster(STEP, model=model)
    for ts, wh in data[:900]:
        original.observe(ts, wh)
    rebuilt = round_trip(original)
    issued = data[900][0]
    for h in HORIZONS.values():
        assert rebuilt.forecast_points(issued, h) == original.forecast_points(issued, h)
        naive_a, naive_b = original.naive_points(issued, h), rebuilt.naive_points(issued, h)
        assert [repr(x) for x in naive_a] == [repr(x) for x in naive_b]  # NaN where history is missing
    for ts, wh in data[900:]:
        original.observe(ts, wh)
        rebuilt.observe(ts, wh)
    assert rebuilt.predict_steps(data[-1][0] + STEP, 96) == original.predict_steps(data[-1][0] + STEP, 96)
    assert dump_forecaster(rebuilt).model_dump_json() == dump_forecaster(original).model_dump_json()


def test_state_is_plain_json_and_nan_survives():
    f = EntityForecaster(STEP)
    f.observe(DAY0, 100.0)
    f.observe(DAY0 + 3 * STEP, 120.0)  # two missing steps: NaN in the history
    blob = dump_forecaster(f).model_dump_json()
    as_json = json.loads(blob)  # nothing but numbers, strings, lists and objects
    hist = np.frombuffer(base64.b64decode(as_json["hist"]), dtype="<f8")
    assert hist[0] == 100.0 and np.isnan(hist[1]) and np.isnan(hist[2]) and hist[3] == 120.0
    assert as_json["regression"]["features"] == ["d1", "d7", "prof", "wk"]
    back = round_trip(f)
    assert math.isnan(back.value_at(DAY0 + STEP)) and back.value_at(DAY0 + 3 * STEP) == 120.0
    assert np.array_equal(back.profile, f.profile, equal_nan=True)


def test_holt_winters_and_malformed_values_are_refused():
    with pytest.raises(ValueError, match="holt-winters"):
        dump_forecaster(EntityForecaster(STEP, model="holt-winters"))
    with pytest.raises(ValidationError):
        decode(b'{"watermark": "soon"}')
    with pytest.raises(ValidationError):
        decode(b"\x80\x05K\x01.")  # a pickle is not a state value
    f = EntityForecaster(STEP)
    state = dump_forecaster(f).model_copy(update={"hist": [1.0] * (7 * DAY_MS // STEP + 2)})
    with pytest.raises(ValueError, match="at most"):
        load_forecaster(state)
    with pytest.raises(ValidationError, match="multiple of 8"):
        ForecasterState.model_validate_json(
            dump_forecaster(f).model_dump_json().replace('"hist":"', '"hist":"AAAA')
        )


def test_pending_points_stored_without_a_band_load_with_an_unknown_band():
    stream = ForecastStream(Serde(), ForecastService())
    for ts, wh in series(2, 1)[:150]:
        stream.on_interval({"prosumer_id": "p", "device_id": "d", "interval_start": ts, "interval_end": ts + STEP,
                            "import_wh": wh, "export_wh": 0.0})  # fmt: skip
    stored = json.loads(encode(dump_stream(stream, "p")))
    pend = stored["series"][0]["pending"]["day-ahead"]
    assert pend and all(len(p) == 6 for p in pend)
    for points in (s["pending"] for s in stored["series"]):
        for h in points:
            points[h] = [p[:4] for p in points[h]]  # as written before lower/upper were kept
    back = load_stream(decode(json.dumps(stored).encode()), "p", Serde(), "f", "a")
    (old,) = [
        p.points
        for (k, h), p in back.service.pending.items()
        if k[2] == "ENERGY_CONSUMPTION" and h == "day-ahead"
    ]
    assert [list(p[:4]) for p in old] == [p[:4] for p in pend]
    assert all(math.isnan(p[4]) and math.isnan(p[5]) for p in old)
