"""The contract checks the ClickHouse sink applies to a decoded record before it may become a row.

Readings (``Measurement``) are the one contract whose topic is written to a business table as it arrives
(``measurements``): a reading outside its contract (:func:`streams.validation.measurement.check_measurement`) is
dead-lettered by the sink like an undecodable one, not stored. The sink bounds event time only towards the
future (clock skew, ``VALIDATION_MAX_FUTURE_S``) and back to 2000, so old readings can still be backfilled.
Business requests (orders, flex requests) are stored as submitted; their acceptance is the Rejection or accepted
event of their stage.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from streams.validation.fields import FieldError
from streams.validation.measurement import check_measurement, default_config

Check = Callable[[Mapping[str, Any]], list[FieldError]]


def _measurement() -> Check:
    cfg = dataclasses.replace(default_config(), max_past_ms=None)
    return lambda rec: check_measurement(rec, now_ms=int(time.time() * 1000), cfg=cfg)


_CHECKS: dict[str, Callable[[], Check]] = {"Measurement": _measurement}


def sink_check(schema_name: str) -> Check | None:
    """The check of records of ``schema_name`` (Avro record name) on their way into ClickHouse, if any."""
    make = _CHECKS.get(schema_name)
    return make() if make else None
