"""UFTP messages a DSO sends, built from plain figures (pure): the FlexRequest of a local day's ISPs. Used by the
DSO side of :mod:`connectors.uftp.congestion_requests` and by the simulated DSO (``tools/sim/uftp_dso.py``)."""

from __future__ import annotations

import uuid
from datetime import date

from shapeshifter_uftp import FlexRequest, FlexRequestISP
from shapeshifter_uftp.uftp import AvailableRequested
from xsdata.models.datatype import XmlDate, XmlDuration

from connectors.uftp.isp import ms_iso

#: the time zone of the demo's and the tests' UFTP periods (the Dutch market's)
TIME_ZONE = "Europe/Amsterdam"


def flex_request(
    period: date,
    isps: dict[int, int],
    expires_ms: int,
    congestion_point: str,
    isp_minutes: int = 15,
    message_id: str | None = None,
    time_zone: str = TIME_ZONE,
) -> FlexRequest:
    """A FlexRequest of ``period`` (a local date in ``time_zone``) asking, per ISP number, for ``watts`` (negative:
    reduction), ISPs of ``isp_minutes``; ``message_id`` default: a random UUID."""
    return FlexRequest(
        message_id=message_id or str(uuid.uuid4()),
        isp_duration=XmlDuration(f"PT{isp_minutes}M"),
        time_zone=time_zone,
        period=XmlDate.from_date(period),
        congestion_point=congestion_point,
        isps=[
            FlexRequestISP(
                disposition=AvailableRequested.REQUESTED,
                min_power=min(w, 0),
                max_power=w if w < 0 else 0,
                start=n,
                duration=1,
            )
            if w < 0
            else FlexRequestISP(
                disposition=AvailableRequested.REQUESTED, min_power=w, max_power=w, start=n, duration=1
            )
            for n, w in sorted(isps.items())
        ],
        revision=1,
        expiration_date_time=ms_iso(expires_ms),
    )
