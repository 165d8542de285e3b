"""The platform's records the UFTP gateway reads through the platform's REST API (the platform owns ClickHouse,
the system of record; the gateway runs next to it):

* the settlement records of a UFTP FlexOrder: FlexOrder MessageID = ``acceptance_id`` -> the accepted offer -> its
  flex order -> that order's ``Settlement`` records (``reference_id`` = order id);
* the forecasts a D-Prognosis is made of (``GET forecasts``, :mod:`connectors.uftp.prognosis`)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from connectors.uftp.settlement import SettledSlot, settled_slots
from streams.flex.requests import to_ms

log = logging.getLogger(__name__)
#: records of one listing read at most (the REST API's page limit): settlements of one order (prosumers x slots),
#: forecasts of one granularity
MAX_RECORDS = 10_000


class LedgerUnavailable(ConnectionError):
    """The platform's REST API did not answer (the settlement is then answered Rejected, to be sent again)."""


class RestLedger:
    """``base_url``: the platform's ``.../api/v1``; ``headers``: its bearer token (``edream.web_auth.auth_headers``)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout_s: float = 10.0):
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers or {}, timeout=timeout_s)

    def _items(self, path: str, **params: Any) -> list[dict[str, Any]]:
        try:
            r = self._http.get(path, params=params)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise LedgerUnavailable(f"platform REST API {path}: {exc}") from exc
        return r.json()["items"]

    def _order_of(self, acceptance_id: str) -> tuple[dict[str, Any], str] | None:
        """Our acceptance of the DSO's FlexOrder and the id of its flex order, or None when we have neither."""
        accepted = self._items("/flex/acceptances", acceptance_id=acceptance_id, limit=1)
        if not accepted:
            return None
        orders = self._items("/flex/orders", offer_id=accepted[0]["offer_id"], limit=1)
        return (accepted[0], orders[0]["order_id"]) if orders else None

    def records(self, acceptance_id: str) -> list[dict[str, Any]] | None:
        """The order's ``Settlement`` records (empty: not settled yet), or None when the FlexOrder is unknown."""
        found = self._order_of(acceptance_id)
        if found is None:
            return None
        return self._items("/flex/settlements", reference_id=found[1], limit=MAX_RECORDS)

    def settled(self, acceptance_id: str) -> dict[int, SettledSlot] | None:
        """The order's settled slots with the kW we accepted per slot (empty: not settled yet), or None when the
        FlexOrder is unknown."""
        found = self._order_of(acceptance_id)
        if found is None:
            return None
        accepted, order_id = found
        records = self._items("/flex/settlements", reference_id=order_id, limit=MAX_RECORDS)
        return settled_slots(records, {to_ms(s["slot_start"]): float(s["kw"]) for s in accepted["slots"]})

    def forecasts(self, granularity: str, since_ms: int) -> list[dict[str, Any]]:
        """The forecasts (avro/Forecast.avsc) of ``granularity`` (DAYAHEAD, INTRA_DAY, ONE_HOUR_AHEAD) issued at or
        after ``since_ms`` (UTC epoch ms), the newest :data:`MAX_RECORDS`; a full page is logged (the older ones,
        mostly replaced by newer issues, are left out)."""
        rows = self._items(
            "/forecasts", prediction_granularity=granularity, since_ms=since_ms, limit=MAX_RECORDS
        )
        if len(rows) >= MAX_RECORDS:
            log.warning(
                "%s forecasts: read the newest %d only, older issues left out", granularity, MAX_RECORDS
            )
        return rows

    def close(self) -> None:
        self._http.close()
