"""The demo DSO running: :mod:`edream.demo.dso`'s script on ``shapeshifter-uftp``'s DSO role (``edream uftp sim-dso``).

One loop, once a second: send the FlexRequests that are due (again every 5 s while the gateway refuses one, e.g.
before the registry entry reached it, until it expires), order every FlexOffer received, and settle every order
whose records are in and anchored (looked for every 5 s). Answers are logged; a Rejected or Disputed one as a
warning.

What is requested: with a congestion feed (:class:`connectors.uftp.congestion_feed.CongestionFeed`, the grid
stage's ``grid.congestion.v1``), exactly what the forecast congestion needs; without one (or beside it, with
``timed_beside_feed``), the demo's timed script (:func:`edream.demo.dso.request_at`; a request refused by the
aggregator or expired before it was taken is followed by the next one a minute later, one taken but not offered on
before it expired at once, not at the regular cadence).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
from shapeshifter_uftp import (
    FlexOffer,
    FlexOrderResponse,
    FlexRequestResponse,
    FlexSettlementResponse,
    transport,
)
from shapeshifter_uftp import FlexOrder as UftpOrder
from shapeshifter_uftp import FlexRequest as UftpRequest
from shapeshifter_uftp.uftp import AcceptedRejected

from connectors.uftp.congestion_feed import CongestionFeed
from connectors.uftp.isp import IspFrame, iso_ms
from connectors.uftp.ledger import LedgerUnavailable, RestLedger
from edream.demo.dso import AGR_DOMAIN, DSO_ID, DemoDsoConfig, isps_end_ms, request_at, settlement_of
from edream.demo.dso_memory import DsoMemory
from edream.demo.keys import demo_uftp_keys
from tools.sim.uftp_dso import SimDso, flex_order

log = logging.getLogger("edream.demo.dso")
RETRY_MS, SETTLE_POLL_MS = 5_000, 5_000


def now_ms() -> int:
    return int(time.time() * 1000)


def _isp_spans(msg: UftpRequest | UftpOrder, isps: list[Any] | None = None) -> set[tuple[str, int, int]]:
    """(congestion point, start, end) UTC epoch ms of every ISP of ``msg`` (or of ``isps``, some of its ISPs)."""
    frame = IspFrame(msg.period.to_date(), msg.time_zone, msg.isp_duration.minutes)
    point, isp_ms = msg.congestion_point, msg.isp_duration.minutes * 60_000
    return {
        (point, start, start + isp_ms)
        for i in (msg.isps if isps is None else isps)
        for k in range(i.duration)
        for start in (frame.start_ms(i.start + k),)
    }


def _overlaps(
    spans: set[tuple[str, int, int]], asked: set[tuple[str, int, int]], same_point: bool
) -> int | None:
    """The latest end (UTC epoch ms) of the ``asked`` spans that ``spans`` overlap in time (at the same congestion
    point when ``same_point``), or None."""
    ends = [e for p, b, e in asked for q, s, t in spans if b < t and s < e and (p == q or not same_point)]
    return max(ends) if ends else None


def _keeping(request: UftpRequest, isps: list[Any]) -> UftpRequest | None:
    """``request`` with only ``isps`` (some of its ISPs, in order); None when there are none."""
    if not isps:
        return None
    return request if len(isps) == len(request.isps) else replace(request, isps=isps)


@dataclass
class _Order:
    """A FlexOrder sent, awaiting its settlement from ``settle_from`` until ``give_up_at`` (UTC epoch ms)."""

    message: UftpOrder
    settle_from: int
    give_up_at: int
    next_look: int = 0


class DemoDso:
    """``agr_endpoint``: the gateway's UFTP URL; ``ledger``: the platform's settlement records (REST API);
    ``verify_url``: the platform's anchor check (``.../api/verify``); ``kw``: the reduction asked per ISP."""

    def __init__(
        self,
        cfg: DemoDsoConfig,
        seed: int,
        kw: float,
        agr_endpoint: str,
        ledger: RestLedger,
        verify_url: str,
        headers: dict[str, str] | None = None,
        now: Callable[[], int] = now_ms,
        memory: DsoMemory | None = None,
        feed: CongestionFeed | None = None,
    ):
        self.cfg, self.kw, self.ledger, self.now, self.feed = cfg, kw, ledger, now, feed
        self.memory = memory or DsoMemory()
        self.sim = SimDso(
            demo_uftp_keys(seed, DSO_ID),
            cfg.port,
            AGR_DOMAIN,
            agr_endpoint,
            demo_uftp_keys(seed, AGR_DOMAIN).public,
        )
        self._verify = httpx.Client(headers=headers or {}, timeout=30)
        # settlement record ids whose proof verified (of orders not settled yet)
        self._verified: set[str] = set()
        self.verify_url = verify_url
        self._offers_asked: set[str] = set()  # FlexRequest MessageIDs
        self._timed: set[str] = set()  # those of the timed script (their orders move ``memory.busy_until``)
        # timed FlexRequests taken by the gateway and not offered on yet -> their expiry (UTC epoch ms)
        self._awaiting_offer: dict[str, int] = {}
        # (congestion point, ISP start, ISP end) UTC epoch ms asked for by the congestion feed's requests
        self._asked: set[tuple[str, int, int]] = set()
        self._next_request = 0  # UTC epoch ms of the next FlexRequest
        self._orders: dict[str, _Order] = {}  # FlexOrder MessageID -> awaiting settlement

    def run(self, stop: threading.Event) -> None:
        """Serve the DSO's endpoint and play the script until ``stop`` is set."""
        self.sim.run_in_thread()
        for xml in self.memory.orders.values():  # placed before a restart: still to be settled
            order = transport.from_xml(xml)
            self._track(order)
            self._asked |= _isp_spans(order)
        self._next_request = self.now() + self.cfg.first_after_ms
        pending: dict[
            str, tuple[UftpRequest, int]
        ] = {}  # MessageID -> (request, UTC epoch ms of the next try)
        try:
            while not stop.wait(1.0):
                t = self.now()
                try:
                    for req in self._due_requests(t):
                        pending[req.message_id] = (req, t)
                    for mid, (req, retry_at) in list(pending.items()):
                        if t >= retry_at:
                            if self._send_request(req, t) is None:
                                del pending[mid]
                            else:
                                pending[mid] = (req, t + RETRY_MS)
                    self._read_inbox()
                    self._settle_due(t)
                except Exception:  # noqa: BLE001 - e.g. the gateway down mid-send: logged, the next second goes on
                    log.exception("demo dso: step failed; going on")
        finally:
            self.sim.stop()
            self._verify.close()
            self.ledger.close()
            if self.feed is not None:
                self.feed.close()

    def _due_requests(self, t: int) -> list[UftpRequest]:
        """The FlexRequests to send from now: what the congestion feed asks for, and (without a feed, or with
        ``cfg.timed_beside_feed``) the timed script's next one.

        Beside the feed, the timed script has the next ``cfg.timed_horizon_ms``: the feed asks only for ISPs from
        then on (and after the timed script's orders), and a timed request starts after every feed ISP it would
        overlap. The platform takes one order per area and time, and both ask for the demo's one area: on an
        evening the feed ordered 18:30-20:00 UTC minutes ahead, and every timed request until 20:00 was refused
        (OVERLAPPING_ORDER)."""
        requests: list[UftpRequest] = []
        timed = self.feed is None or self.cfg.timed_beside_feed
        if self.feed is not None:
            polled = self.feed.poll(t)
            if timed:
                polled = [
                    self._after(r, max(t + self.cfg.timed_horizon_ms, self.memory.busy_until)) for r in polled
                ]
            requests += [r for r in map(self._not_asked_yet, polled) if r is not None]
            self.feed.commit()  # taken: kept in ``pending`` until sent or expired
        self._chase_unoffered(t)
        if timed and t >= self._next_request:
            self._next_request = t + self.cfg.every_minutes * 60_000
            request = self._timed_request(t)
            self._timed.add(request.message_id)
            requests.append(request)
        return requests

    def _timed_request(self, t: int) -> UftpRequest:
        """The timed script's request at ``t``: after its own orders (``memory.busy_until``) and after every ISP the
        feed asked for that it would overlap."""
        not_before = self.memory.busy_until
        while True:
            request = request_at(t, self.kw, self.cfg, not_before)
            end = _overlaps(_isp_spans(request), self._asked, same_point=False)
            if end is None:
                return request
            not_before = end

    @staticmethod
    def _after(request: UftpRequest | None, start_ms: int) -> UftpRequest | None:
        """``request`` without its ISPs that start before ``start_ms`` (UTC epoch ms); None when none is left."""
        if request is None:
            return None
        kept = _keeping(
            request, [i for i in request.isps if min(s for _, s, _ in _isp_spans(request, [i])) >= start_ms]
        )
        if kept is None:
            log.info(
                "demo dso: FlexRequest %s is for the timed script's next minutes; not sent",
                request.message_id,
            )
        return kept

    def _chase_unoffered(self, t: int) -> None:
        """A timed request the gateway took but no FlexOffer answered before it expired (the aggregator had no
        flexibility to offer, e.g. its desk had no outlook of the prosumers yet: UFTP has no message for that):
        the congestion is still there, and the lead of the lapsed request has passed waiting, so the next request
        goes at once (for the ISPs from ``cfg.lead_ms`` later)."""
        for mid, expires in list(self._awaiting_offer.items()):
            if t >= expires:
                del self._awaiting_offer[mid]
                log.info("demo dso: no FlexOffer for %s before it expired; asking again now", mid)
                self._next_request = min(self._next_request, t)

    def _not_asked_yet(self, request: UftpRequest | None) -> UftpRequest | None:
        """``request`` (from a new forecast issue) without the ISPs of its congestion point that overlap one an
        earlier one already asked for (their offers are being ordered; asking again got offers of prosumer-slots
        already ordered, which the desk refuses as OVERLAPPING_ORDER); None when nothing is left."""
        if request is None:
            return None
        new = [
            i
            for i in request.isps
            if _overlaps(_isp_spans(request, [i]), self._asked, same_point=True) is None
        ]
        self._asked |= _isp_spans(request)
        kept = _keeping(request, new)
        if kept is None:
            log.info(
                "demo dso: FlexRequest %s asks only for ISPs already asked for; not sent", request.message_id
            )
        return kept

    # -- requests and orders -----------------------------------------------------------------------------------
    def _send_request(self, request: UftpRequest, t: int) -> UftpRequest | None:
        """Send ``request``; returns it when it must be tried again."""
        if t >= iso_ms(request.expiration_date_time):
            log.warning("demo dso: FlexRequest %s expired before the aggregator took it", request.message_id)
            self._ask_again_soon(t)
            return None
        try:
            self.sim.client().send_flex_request(request)
        except Exception as exc:  # noqa: BLE001 - the gateway not up or not knowing us yet: tried again
            log.info("demo dso: FlexRequest %s not taken (%s); again in 5 s", request.message_id, exc)
            return request
        self._offers_asked.add(request.message_id)
        if request.message_id in self._timed:
            self._awaiting_offer[request.message_id] = iso_ms(request.expiration_date_time)
        log.info(
            "demo dso: FlexRequest %s: %d ISPs of %s from ISP %d, %s W",
            request.message_id,
            len(request.isps),
            request.isp_duration,
            request.isps[0].start,
            request.isps[0].max_power,
        )
        return None

    def _read_inbox(self) -> None:
        while not self.sim.inbox.empty():
            msg = self.sim.inbox.get_nowait()
            if isinstance(msg, FlexOffer):
                self._order(msg)
            elif isinstance(msg, FlexRequestResponse | FlexOrderResponse):
                ref = getattr(msg, "flex_request_message_id", None) or msg.flex_order_message_id
                if msg.result == AcceptedRejected.REJECTED:
                    log.warning("demo dso: %s refused: %s", ref, msg.rejection_reason)
                    self._forget(ref)
                    if isinstance(msg, FlexRequestResponse):
                        self._ask_again_soon(self.now())
                else:
                    log.info("demo dso: %s accepted", ref)
            elif isinstance(msg, FlexSettlementResponse):
                for st in msg.flex_order_settlement_statuses or []:
                    level = logging.WARNING if st.dispute_reason else logging.INFO
                    log.log(
                        level,
                        "demo dso: settlement of %s %s %s",
                        st.order_reference,
                        st.disposition,
                        st.dispute_reason or "",
                    )

    def _ask_again_soon(self, t: int) -> None:
        """A request refused (e.g. the desk behind, DEADLINE_PASSED) or never taken: the congestion is still there,
        so the next request comes ``cfg.ask_again_ms`` later instead of at the regular cadence."""
        self._next_request = min(self._next_request, t + self.cfg.ask_again_ms)

    def _order(self, offer: FlexOffer) -> None:
        if offer.flex_request_message_id not in self._offers_asked or not offer.offer_options:
            log.warning("demo dso: FlexOffer %s answers no request of ours; ignored", offer.message_id)
            return
        self._awaiting_offer.pop(offer.flex_request_message_id, None)
        order = flex_order(offer, factor=str(self.cfg.order_factor))
        try:
            self.sim.client().send_flex_order(order)
        except Exception:  # noqa: BLE001 - the offer lapses; the next request gets a new one
            log.exception("demo dso: FlexOrder of %s not sent", offer.message_id)
            return
        self.memory.orders[order.message_id] = transport.to_xml(order)
        if offer.flex_request_message_id in self._timed:  # no later timed request overlaps it; an order for
            # forecast congestion (hours ahead, 15-min ISPs) does not hold the timed script back until then
            self.memory.busy_until = max(self.memory.busy_until, isps_end_ms(order))
        self.memory.save()
        self._track(order)
        log.info(
            "demo dso: FlexOrder %s: %s of offer %s",
            order.message_id,
            order.activation_factor,
            offer.message_id,
        )

    def _track(self, order: UftpOrder) -> None:
        """Await the settlement of ``order`` from ``settle_after_ms`` after its last ISP."""
        last_end = isps_end_ms(order)
        self._orders[order.message_id] = _Order(
            order, last_end + self.cfg.settle_after_ms, max(self.now(), last_end) + self.cfg.give_up_ms
        )

    def _forget(self, ref: str) -> None:
        self._orders.pop(ref, None)
        if self.memory.orders.pop(ref, None) is not None:
            self.memory.save()

    # -- settlement -----------------------------------------------------------------------------------------------
    def _settle_due(self, t: int) -> None:
        for ref, pending in list(self._orders.items()):
            if t >= pending.give_up_at:
                log.warning("demo dso: %s never settled (no anchored records); given up", ref)
                self._forget(ref)
            elif t >= max(pending.settle_from, pending.next_look):
                pending.next_look = t + SETTLE_POLL_MS
                if self._settle(pending.message):
                    self._forget(ref)

    def _settle(self, order: UftpOrder) -> bool:
        """Send the order's FlexSettlement when every ordered ISP is settled and anchored; True once sent."""
        try:
            records = self.ledger.records(order.message_id)
        except LedgerUnavailable as exc:
            log.info("demo dso: platform API unavailable (%s)", exc)
            return False
        settlement = settlement_of(order, records or [])
        if settlement is None or not self._anchored([r["settlement_id"] for r in records or []]):
            return False
        try:
            self.sim.client().send_flex_settlement(settlement)
        except Exception as exc:  # noqa: BLE001 - the gateway down: sent again at the next look
            log.info("demo dso: FlexSettlement of %s not taken (%s); again in 5 s", order.message_id, exc)
            return False
        log.info("demo dso: FlexSettlement %s of %s sent", settlement.message_id, order.message_id)
        self._verified.difference_update(r["settlement_id"] for r in records or [])
        return True

    def _anchored(self, settlement_ids: list[str]) -> bool:
        """Whether every record is anchored on chain and its proof verifies (the platform's check of each record:
        a record's ``window_id`` names its settlement slot, e.g. ``.../15m``, not the anchoring window, whose length
        is ANCHOR_WINDOW_MINUTES: the demo's 1-minute anchor windows never matched a 15-min ISP's record)."""
        for sid in sorted(set(settlement_ids) - self._verified):
            try:
                report: dict[str, Any] = self._verify.get(
                    f"{self.verify_url}/record", params={"id": sid}
                ).json()
            except (httpx.HTTPError, ValueError):
                return False
            if report.get("status") != "VALID":
                return False
            self._verified.add(sid)
        return True
