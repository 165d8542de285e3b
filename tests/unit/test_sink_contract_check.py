"""The sink's contract check of readings (issue 14: "830 of 20,000 absurd Measurements passed; the sink validates
nothing"): every absurd reading of the chaos suite is refused before it can become a row, good and old readings
pass (backfill), and contracts without a check are left to their stages."""

from __future__ import annotations

import random
import time

import pytest

from edream.measurements import power_reading
from streams.validation.sink import sink_check
from tools.chaos.inputs import ABSURDITIES

NOW = int(time.time() * 1000)


@pytest.mark.parametrize(("name", "spoil"), ABSURDITIES, ids=[n for n, _ in ABSURDITIES])
def test_every_absurd_reading_is_refused(name, spoil):
    rec = spoil(power_reading("meter-1", NOW - 1000, 1500.0), random.Random(0))
    assert sink_check("Measurement")(rec), f"{name} passed the sink"


def test_good_and_old_readings_pass():
    check = sink_check("Measurement")
    assert check(power_reading("meter-1", NOW, 1500.0)) == []
    assert check(power_reading("meter-1", NOW - 400 * 86_400_000, 1500.0)) == []  # a year-old backfill


def test_reading_ahead_of_the_clock_is_refused():
    errors = sink_check("Measurement")(power_reading("meter-1", NOW + 3_600_000, 1500.0))
    assert [e.code for e in errors] == ["ts_in_future"]


def test_contracts_without_a_sink_check():
    assert sink_check("MarketOrder") is None and sink_check("Settlement") is None
