"""The bounds every inbound contract is checked against, from the platform settings (``VALIDATION_*``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from edream.settings import Settings, load_settings

MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class Limits:
    """Contract bounds. Times are durations in ms relative to the wall clock ("now", UTC epoch ms).

    ``max_future_ms``: clock-skew allowance for event times; ``max_past_ms``: oldest accepted event time;
    ``horizon_ms``: how far ahead a flex slot, market slot or VPP window may start; ``max_reading_kw``: largest
    |power| of one reading (kW); ``max_flex_kw``: largest kW one flex request slot may ask for;
    ``max_order_wh``: largest market order quantity (Wh).
    """

    max_future_ms: int = 300_000
    max_past_ms: int = 31 * MS_PER_DAY
    horizon_ms: int = 7 * MS_PER_DAY
    max_reading_kw: float = 10_000.0
    max_flex_kw: float = 10_000.0
    max_order_wh: int = 10_000_000

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(
            max_future_ms=round(s.validation_max_future_s * 1000),
            max_past_ms=round(s.validation_max_past_days * MS_PER_DAY),
            horizon_ms=round(s.validation_horizon_days * MS_PER_DAY),
            max_reading_kw=s.validation_max_reading_kw,
            max_flex_kw=s.validation_max_flex_kw,
            max_order_wh=s.validation_max_order_wh,
        )


@lru_cache(maxsize=1)
def current_limits() -> Limits:
    """The limits of this process's settings (environment + ``EDREAM_CONFIG``), read once."""
    return Limits.from_settings(load_settings())
