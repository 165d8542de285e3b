"""UFTP ISPs (imbalance settlement periods) <-> UTC epoch ms.

A UFTP Flex* message names a ``period`` (a local date in ``time_zone``), the ISP length (``isp_duration``, e.g.
PT15M) and ISPs by number: ISP 1 starts at the period's local midnight, ISP n ``(n - 1) x isp_duration`` of elapsed
time later (so a DST day has 92 or 100 quarter-hours). Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MS_PER_MINUTE = 60_000


@dataclass(frozen=True)
class IspFrame:
    """The ISP frame of one message: ``period`` (local date), ``time_zone`` (IANA), ``isp_minutes``."""

    period: date
    time_zone: str
    isp_minutes: int

    @property
    def isp_ms(self) -> int:
        return self.isp_minutes * MS_PER_MINUTE

    def midnight_ms(self) -> int:
        """UTC epoch ms of the period's local midnight."""
        local = datetime.combine(self.period, time(0), tzinfo=ZoneInfo(self.time_zone))
        return int(local.astimezone(UTC).timestamp() * 1000)

    def start_ms(self, isp: int) -> int:
        """UTC epoch ms at which ISP number ``isp`` (1-based) starts."""
        return self.midnight_ms() + (isp - 1) * self.isp_ms

    def isp_of(self, start_ms: int) -> int:
        """The ISP number starting at ``start_ms``; ValueError when it is not an ISP start of this period."""
        offset = start_ms - self.midnight_ms()
        day_ms = self.start_ms_of_next_day() - self.midnight_ms()
        if offset < 0 or offset >= day_ms or offset % self.isp_ms:
            raise ValueError(f"{start_ms} is not an ISP start of {self.period} ({self.time_zone})")
        return offset // self.isp_ms + 1

    def start_ms_of_next_day(self) -> int:
        return IspFrame(self.period + timedelta(days=1), self.time_zone, self.isp_minutes).midnight_ms()


def frame_of(start_ms: int, time_zone: str, isp_minutes: int) -> IspFrame:
    """The frame whose period holds the instant ``start_ms`` (UTC epoch ms) in ``time_zone``."""
    local = datetime.fromtimestamp(start_ms / 1000, tz=ZoneInfo(time_zone))
    return IspFrame(local.date(), time_zone, isp_minutes)


def iso_ms(value: str) -> int:
    """UTC epoch ms of an ISO 8601 date-time with an offset or Z (UFTP time stamps and expirations)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return int(parsed.timestamp() * 1000)


def ms_iso(ms: int) -> str:
    """ISO 8601 UTC date-time (``...Z``) of UTC epoch ms."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
