"""The one IntervalEnergy check (streams/validation/interval.py) every interval consumer runs: each bound of the
contract is refused with its field named, and a good interval (as the interval stage emits it) passes."""

from __future__ import annotations

import math

import pytest

from streams.validation.interval import check_interval
from streams.validation.limits import Limits
from tools.sim.interval_feed import interval

NOW = 1_779_000_000_000 - 1_779_000_000_000 % 900_000
START = NOW - 900_000
LIMITS = Limits()


def _interval(**over) -> dict:
    return {**interval("p1", START, 2.0, computed_at=NOW), **over}


def test_a_good_interval_passes():
    assert check_interval(_interval(), NOW, LIMITS) == []


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"event_id": ""}, "event_id"),
        ({"prosumer_id": "x" * 10_000}, "prosumer_id"),
        ({"interval_end": NOW + 10 * 365 * 86_400_000, "interval_start": NOW}, "interval_end"),
        ({"interval_start": START + 1}, "interval_start"),
        ({"interval_end": START + 1_800_000}, "interval_end"),
        ({"import_wh": math.nan}, "import_wh"),
        ({"export_wh": -1.0}, "export_wh"),
        ({"avg_kw": math.inf}, "avg_kw"),
        ({"completeness": 1.5}, "completeness"),
        ({"version": 0}, "version"),
    ],
)
def test_each_bound_is_refused_naming_its_field(over, field):
    errors = check_interval(_interval(**over), NOW, LIMITS)
    assert field in {e.field for e in errors}, errors
