"""The UFTP gateway: the aggregator's Shapeshifter service (``shapeshifter-uftp``'s AGR role) in front of the flex
desk.

Inbound (``POST /shapeshifter/api/v3/message``, a SignedMessage): the sender must be an active DSO of the registry
``flex.dsos.v1`` with a UFTP domain and key, and the message must be sealed with that key; otherwise HTTP 401 (the
UFTP transport error) and a Rejection event (UNKNOWN_DSO / BAD_SIGNATURE, party = the claimed sender domain).
A verified FlexRequest or FlexOrder is mapped (:mod:`connectors.uftp.mapping`), signed with the gateway's Ethereum key
(the address registered as the DSO's ``eth_address``: the gateway attests what it verified) and published as a
FlexRequest on ``flex.requests.v1`` or a FlexAcceptance on ``flex.acceptances.v1``; one that cannot be mapped is
answered Rejected at once, with a Rejection event.

Outbound, from what the desk decides (:class:`~connectors.uftp.desk_link.DeskLink`): the request's offer -> a
FlexRequestResponse (Accepted) and a signed UFTP FlexOffer; a refused request -> FlexRequestResponse (Rejected, the
code and reason); the order of an acceptance -> FlexOrderResponse (Accepted); a refused acceptance (unknown,
expired or closed offer, more than offered, replay...) -> FlexOrderResponse (Rejected). Replays are refused by the
desk, which remembers request and acceptance ids (the UFTP MessageIDs) in its state.

A DSO's FlexSettlement is checked against the platform's settlement records of each FlexOrder (read through the
platform's REST API, :class:`~connectors.uftp.ledger.RestLedger`; :mod:`connectors.uftp.settlement`) and answered
with a FlexSettlementResponse: Accepted, one status per order (Accepted, or Disputed with the ISPs that differ);
Rejected (send it again) when the platform's API does not answer or no ledger is configured.

D-Prognosis (:meth:`UftpGateway.send_prognoses`, every ``prognosis_minutes`` on a thread of its own, see
:func:`open_gateway`): the platform's forecasts read through its REST API, per congestion point of every active UFTP
DSO the net forecast power of the area's enrolled prosumers per ISP (:mod:`connectors.uftp.prognosis`), one sealed
D-Prognosis per period, sent only when it differs from the last one the DSO took. The DSO's DPrognosisResponse is
logged, as a warning with its reason when Rejected (that prognosis is then sent again next round). An API outage
skips the round (logged); the next round tries again.

Every message received (seal verified) and sent is recorded with its XML on ``uftp.messages.v1``
(:mod:`connectors.uftp.audit`; ClickHouse ``uftp_messages``).

Other UFTP messages of the AGR role (reservation updates, offer revocation, portfolio and metering responses) are
accepted on the wire and logged only: not built yet.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Response
from fastapi.exceptions import HTTPException
from shapeshifter_uftp import (
    DPrognosisResponse,
    FlexOrderResponse,
    FlexRequestResponse,
    FlexSettlementResponse,
    ShapeshifterAgrService,
    transport,
)
from shapeshifter_uftp import FlexOrder as UftpOrder
from shapeshifter_uftp import FlexRequest as UftpRequest
from shapeshifter_uftp import FlexSettlement as UftpSettlement
from shapeshifter_uftp.exceptions import InvalidSignatureException, SchemaException
from shapeshifter_uftp.uftp import AcceptedRejected, SignedMessage, UsefRole

from connectors.uftp.audit import message_event
from connectors.uftp.desk_link import DeskLink
from connectors.uftp.ledger import LedgerUnavailable, RestLedger
from connectors.uftp.mapping import UftpRefused, acceptance_from_uftp, offer_to_uftp, request_from_uftp
from connectors.uftp.periodic import Periodic
from connectors.uftp.prognosis import HORIZON_SPAN_MS, area_power, d_prognoses, isp_powers, prosumer_power
from connectors.uftp.settlement import settlement_statuses
from edream.deadletter import DEADLETTER_TOPIC, dead_letter
from edream.runtime.global_view import GlobalView
from edream.serde import Serde
from streams.flex.desk import out_of
from streams.flex.dso_view import DsoView
from streams.flex.dsos import Dso, DsoRegistry
from streams.flex.enrolled import EnrolledRegistry
from streams.flex.enrolment import Registry
from streams.flex.offers import FlexOffer
from streams.flex.requests import FlexRequest
from streams.flex.signing import sign_acceptance, sign_request
from streams.flex.validation import Code, Issue, rejection
from streams.outputs import Out

log = logging.getLogger(__name__)
UFTP_PATH = "/shapeshifter/api/v3/message"
#: seconds from :func:`open_gateway` to the first D-Prognosis round
FIRST_PROGNOSIS_AFTER_S = 30.0


@dataclass(frozen=True)
class GatewayConfig:
    """domain: our UFTP sender domain; signing_key: our base64 Ed25519 secret key (64 bytes, seed + public key,
    as ``nacl``'s ``crypto_sign`` takes it); attest_key: the Ethereum private key that signs the contracts the
    gateway publishes; time_zone: of the ISPs we offer and forecast; order_validity_ms: a FlexOrder is void when
    the desk gets it later than this after its time stamp; isp_minutes: ISP length of our D-Prognoses;
    prognosis_minutes: minutes between D-Prognosis rounds (0: none sent)."""

    domain: str
    signing_key: str
    attest_key: str
    host: str = "127.0.0.1"
    port: int = 8092
    time_zone: str = "Europe/Amsterdam"
    order_validity_ms: int = 300_000
    isp_minutes: int = 15
    prognosis_minutes: float = 0


@dataclass
class _Pending:
    """A forwarded DSO message awaiting the desk's answer."""

    dso: Dso
    message: UftpRequest | UftpOrder
    request: FlexRequest | None = None


class UftpGateway(ShapeshifterAgrService):
    """See module doc. ``dsos``: the current DSO registry (e.g. ``DsoView.refresh``); ``now``: wall clock, UTC
    epoch ms (Rejection times); ``ledger``: the platform's settlement records and forecasts (None: FlexSettlements
    are answered Rejected, no D-Prognosis is sent); ``enrolled``: the current prosumer registry (the areas'
    portfolios of the D-Prognoses)."""

    def __init__(
        self,
        config: GatewayConfig,
        link: DeskLink,
        dsos: Callable[[], DsoRegistry],
        now: Callable[[], int],
        ledger: RestLedger | None = None,
        enrolled: Callable[[], Registry] = Registry,
    ):
        super().__init__(
            sender_domain=config.domain,
            signing_key=config.signing_key,
            key_lookup_function=self._dso_key,
            endpoint_lookup_function=self._dso_endpoint,
            host=config.host,
            port=config.port,
            path=UFTP_PATH,
        )
        self.config, self.link, self.dsos, self.now, self.ledger = config, link, dsos, now, ledger
        self.enrolled = enrolled
        # (dso_id, congestion point, period) -> (MessageID, ISPs) of the last D-Prognosis sent and not refused
        self._prognosed: dict[tuple[str, str, str], tuple[str, Any]] = {}
        self._last_issue_ms = 0  # issue time of the last D-Prognosis round (UTC epoch ms)
        self._requests: dict[
            str, _Pending
        ] = {}  # request_id -> the FlexRequest awaiting its offer or refusal
        self._orders: dict[str, _Pending] = {}  # acceptance_id -> the FlexOrder awaiting its order or refusal
        self._offer_orders: dict[str, str] = {}  # offer_id -> acceptance_id of the FlexOrder that ordered it
        self._lock = threading.Lock()

    # -- participants ------------------------------------------------------------------------------------------
    def _dso(self, domain: str) -> Dso | None:
        dso = self.dsos().by_uftp_domain(domain)
        return dso if dso is not None and dso.uftp_public_key else None

    def _dso_key(self, domain: str, role: str) -> str | None:
        dso = self._dso(domain) if role == UsefRole.DSO else None
        return None if dso is None else dso.uftp_public_key

    def _dso_endpoint(self, domain: str, role: str) -> str:
        dso = self._dso(domain) if role == UsefRole.DSO else None
        if dso is None or not dso.uftp_endpoint:
            raise LookupError(f"no UFTP endpoint registered for {role} {domain}")
        return dso.uftp_endpoint

    # -- inbound -----------------------------------------------------------------------------------------------
    def _receive_message(self, message: SignedMessage) -> Response:
        """Verify the sender and the seal (401 and a Rejection when either fails); a FlexRequest or FlexOrder is then
        forwarded to Kafka before the HTTP 200 (at least once: a DSO that got no 200 sends again, and the desk refuses
        the second copy as a replay), other messages are processed on the inbound executor, as the library does."""
        key = self._dso_key(message.sender_domain, message.sender_role)
        if key is None:
            self._refuse_transport(
                message,
                Code.UNKNOWN_DSO,
                f"{message.sender_role} {message.sender_domain} is not a registered UFTP DSO",
            )
            raise HTTPException(401, "unknown sender")
        try:
            inner = transport.unseal_message(message.body, key)
        except InvalidSignatureException as exc:
            self._refuse_transport(
                message, Code.BAD_SIGNATURE, f"not sealed with the key registered for {message.sender_domain}"
            )
            raise HTTPException(401, "invalid signature") from exc
        except SchemaException as exc:
            self._dead_letter(message, exc)
            raise HTTPException(400, "not a UFTP message") from exc
        if inner.sender_domain != message.sender_domain or type(inner) not in self.acceptable_messages:
            reason = f"{type(inner).__name__} from {inner.sender_domain}: sender domain mismatch or not for the AGR role"
            self._dead_letter(message, reason)
            raise HTTPException(400, reason)
        self._audit(inner, "IN", self._dso(message.sender_domain))
        if isinstance(
            inner, UftpRequest
        ):  # on Kafka (flushed) before the DSO hears HTTP 200; a failure is a 500
            self.process_flex_request(inner)
        elif isinstance(inner, UftpOrder):
            self.process_flex_order(inner)
        else:
            self.inbound_executor.submit(self._process_message, inner, message.sender_role)
        return Response(status_code=200)

    def _dead_letter(self, message: SignedMessage, error: Exception | str) -> None:
        """A sealed message that is not a UFTP message for us, to the dead-letter topic with the reason."""
        letter = dead_letter(
            "uftp",
            -1,
            -1,
            message.sender_domain.encode(),
            bytes(message.body),
            "uftp-gateway",
            error,
            failed_at=self.now(),
        )
        self.link.publish([Out(DEADLETTER_TOPIC, "DeadLetter", "uftp", letter)])

    def _refuse_transport(self, message: SignedMessage, code: Code, reason: str) -> None:
        """The Rejection event of a message refused before it was unsealed: its subject is the MessageID it claims
        (read without trusting it) or, when unreadable, a digest of its body."""
        claimed = None
        with contextlib.suppress(Exception):  # a forged body need not be readable
            claimed = transport.from_xml(bytes(message.body)[64:]).message_id
        subject = claimed or "sha256-" + hashlib.sha256(bytes(message.body)).hexdigest()[:32]
        rej = rejection(
            "UftpMessage", subject[:128], [Issue(code, reason)], self.now(), message.sender_domain[:128]
        )
        self.link.publish([out_of(rej)])

    def process_flex_request(self, message: UftpRequest) -> None:
        dso = self._dso(message.sender_domain)
        assert dso is not None  # verified in _receive_message
        try:
            req = request_from_uftp(message, dso)
        except (UftpRefused, ValueError) as exc:
            code = exc.code if isinstance(exc, UftpRefused) else Code.INVALID_FIELD
            self.link.publish(
                [
                    out_of(
                        rejection(
                            "FlexRequest", message.message_id, [Issue(code, str(exc))], self.now(), dso.dso_id
                        )
                    )
                ]
            )
            self._respond_request(dso, message, f"{code}: {exc}")
            return
        with self._lock:
            self._requests[req.request_id] = _Pending(dso, message, req)
        self.link.publish([out_of(sign_request(req, self.config.attest_key))])

    def process_flex_order(self, message: UftpOrder) -> None:
        dso = self._dso(message.sender_domain)
        assert dso is not None
        try:
            acc = acceptance_from_uftp(message, dso, self.config.order_validity_ms)
        except (UftpRefused, ValueError) as exc:
            code = exc.code if isinstance(exc, UftpRefused) else Code.INVALID_FIELD
            self.link.publish(
                [
                    out_of(
                        rejection(
                            "FlexAcceptance",
                            message.message_id,
                            [Issue(code, str(exc))],
                            self.now(),
                            dso.dso_id,
                        )
                    )
                ]
            )
            self._respond_order(dso, message, f"{code}: {exc}")
            return
        with self._lock:
            self._orders[acc.acceptance_id] = _Pending(dso, message)
            self._offer_orders[acc.offer_id] = acc.acceptance_id
        self.link.publish([out_of(sign_acceptance(acc, self.config.attest_key))])

    # -- the desk's answers ------------------------------------------------------------------------------------
    def on_outcome(self, topic: str, rec: dict[str, Any]) -> None:
        """A record of :data:`~connectors.uftp.desk_link.OUTCOMES`: answer the DSO message it decides, if ours."""
        if topic == "flex.offers.v1":
            with self._lock:
                pending = self._requests.pop(rec["request_id"], None)
            if pending is not None:  # the response, then (on the same thread: in this order) the offer
                offer = FlexOffer.from_avro(rec)
                messages = [self._request_response(pending.message, None)]
                if offer.status != "INFEASIBLE":
                    messages.append(self._uftp_offer(pending, offer))
                self.outbound_executor.submit(self._send_in_order, pending.dso, messages)
        elif topic == "flex.orders.v1" and rec["revision"] == 1:
            with self._lock:
                acceptance_id = self._offer_orders.pop(rec["offer_id"], None)
                pending = self._orders.pop(acceptance_id, None) if acceptance_id else None
            if pending is not None:
                self._respond_order(pending.dso, pending.message, None)
        elif topic == "platform.rejections.v1":
            reason = f"{rec['code']}: {rec['reason']}"
            with self._lock:
                if rec["subject_kind"] == "FlexRequest":
                    pending, respond = self._requests.pop(rec["subject_id"], None), self._respond_request
                elif rec["subject_kind"] == "FlexAcceptance":
                    pending, respond = self._orders.pop(rec["subject_id"], None), self._respond_order
                elif rec["subject_kind"] == "FlexOffer" and rec["subject_id"] in self._offer_orders:
                    acceptance_id = self._offer_orders.pop(rec["subject_id"])
                    pending, respond = self._orders.pop(acceptance_id, None), self._respond_order
                else:
                    pending = None
            if pending is not None:
                respond(pending.dso, pending.message, reason)

    def _uftp_offer(self, pending: _Pending, offer: FlexOffer) -> Any:
        assert pending.request is not None
        msg = offer_to_uftp(offer, pending.request, pending.message.congestion_point, self.config.time_zone)
        msg.conversation_id = pending.message.conversation_id
        return msg

    @staticmethod
    def _request_response(message: UftpRequest, refused: str | None) -> FlexRequestResponse:
        return FlexRequestResponse(
            flex_request_message_id=message.message_id,
            conversation_id=message.conversation_id,
            **_result(refused),
        )

    def _respond_request(self, dso: Dso, message: UftpRequest, refused: str | None) -> None:
        self.outbound_executor.submit(self._send, dso, self._request_response(message, refused))

    def _respond_order(self, dso: Dso, message: UftpOrder, refused: str | None) -> None:
        response = FlexOrderResponse(
            flex_order_message_id=message.message_id,
            conversation_id=message.conversation_id,
            **_result(refused),
        )
        self.outbound_executor.submit(self._send, dso, response)

    def _send(self, dso: Dso, message: Any) -> bool:
        """Seal and send ``message`` to ``dso`` and audit it; True when the DSO's endpoint took it."""
        delivered = False
        try:
            self.dso_client(dso.uftp_domain)._send_message(message)  # noqa: SLF001 - the clients' one generic sender
            delivered = True
        except Exception:  # noqa: BLE001 - the DSO unreachable: logged, the desk's state is unaffected
            log.exception("uftp gateway: %s to %s not delivered", type(message).__name__, dso.uftp_domain)
        if message.message_id:  # the client filled in the envelope fields: it was sealed and sent (or tried)
            self._audit(message, "OUT", dso, delivered)
        return delivered

    def _send_in_order(self, dso: Dso, messages: list[Any]) -> None:
        for message in messages:
            self._send(dso, message)

    def _audit(self, message: Any, direction: str, dso: Dso | None, delivered: bool | None = None) -> None:
        """The message on ``uftp.messages.v1`` (:mod:`connectors.uftp.audit`); a broker outage is logged and does
        not stop the protocol exchange."""
        try:
            event = message_event(message, direction, self.now(), dso.dso_id if dso else None, delivered)
            self.link.publish([event])
        except Exception:  # noqa: BLE001
            log.exception("uftp gateway: %s %s not recorded", direction, type(message).__name__)

    # -- settlement -------------------------------------------------------------------------------------------
    def process_flex_settlement(self, message: UftpSettlement) -> None:
        """Answer the DSO's settlement with our status per order (see module doc); runs on the inbound executor."""
        dso = self._dso(message.sender_domain)
        if dso is None:
            return  # deregistered since it was verified: nobody to answer
        statuses, refused = [], None
        if self.ledger is None:
            refused = "this aggregator checks no settlements (the gateway has no platform API configured)"
        else:
            try:
                statuses = settlement_statuses(message, self.config.time_zone, self.ledger.settled)
            except LedgerUnavailable as exc:
                refused = f"cannot check the settlement now ({exc}); send it again"
        for st in statuses:
            if st.dispute_reason:
                log.warning(
                    "uftp gateway: %s disputes %s: %s", dso.dso_id, st.order_reference, st.dispute_reason
                )
        response = FlexSettlementResponse(
            flex_settlement_message_id=message.message_id,
            conversation_id=message.conversation_id,
            flex_order_settlement_statuses=statuses,
            **_result(refused),
        )
        self._send(dso, response)

    # -- D-Prognosis -------------------------------------------------------------------------------------------
    def send_prognoses(self) -> int:
        """One D-Prognosis round (the periodic job's body, see module doc): returns the number of D-Prognoses the
        DSOs' endpoints took. The round's issue time (its revision) is now, or a second after the previous round's
        when that is later (so revisions increase even for rounds within a second). Never raises for an API outage
        (logged, nothing sent)."""
        if self.ledger is None:
            return 0
        now = self.now()
        try:
            rows = [
                row
                for granularity, span_ms in HORIZON_SPAN_MS.items()
                for row in self.ledger.forecasts(granularity, now - span_ms)
            ]
        except LedgerUnavailable as exc:
            log.warning("uftp gateway: no D-Prognosis this round, the forecasts are not readable: %s", exc)
            return 0
        power, registry, sent = prosumer_power(rows, self.config.isp_minutes), self.enrolled(), 0
        with self._lock:  # revisions count whole seconds: a round within a second of the last counts one on
            issued = self._last_issue_ms = max(now, self._last_issue_ms + 1000)
        current: set[tuple[str, str, str]] = set()
        for dso in self.dsos():
            if not (dso.active and dso.uftp_public_key and dso.uftp_endpoint):
                continue
            for congestion_point, area in sorted(dso.congestion_points.items()):
                portfolio = area_power(power, (r.prosumer_id for r in registry.in_area(area)))
                for message in d_prognoses(
                    portfolio, congestion_point, self.config.time_zone, self.config.isp_minutes, issued
                ):
                    key, isps = (dso.dso_id, congestion_point, str(message.period)), isp_powers(message)
                    current.add(key)
                    with self._lock:
                        last = self._prognosed.get(key)
                        if last is not None and last[1] == isps:
                            continue  # unchanged since the DSO took it
                        self._prognosed[key] = (message.message_id, isps)  # before the DSO can answer
                    if self._send(dso, message):
                        sent += 1
                    else:
                        with self._lock:
                            self._prognosed.pop(key, None)
        with self._lock:  # periods no forecast reaches any more
            self._prognosed = {k: v for k, v in self._prognosed.items() if k in current}
        return sent

    def process_d_prognosis_response(self, message: DPrognosisResponse) -> None:
        """The DSO's answer to a D-Prognosis (audited on receipt): Rejected is a warning with the DSO's reason, and
        that prognosis is sent again next round."""
        if message.result == AcceptedRejected.REJECTED:
            dso = self._dso(message.sender_domain)
            with self._lock:
                for key, (message_id, _isps) in list(self._prognosed.items()):
                    if (
                        dso is not None
                        and key[0] == dso.dso_id
                        and message_id == message.d_prognosis_message_id
                    ):
                        del self._prognosed[key]
            log.warning(
                "uftp gateway: %s rejected D-Prognosis %s: %s",
                message.sender_domain,
                message.d_prognosis_message_id,
                message.rejection_reason,
            )
        else:
            log.info(
                "uftp gateway: %s accepted D-Prognosis %s",
                message.sender_domain,
                message.d_prognosis_message_id,
            )

    # -- AGR-role messages not built yet: accepted on the wire, logged -----------------------------------------
    def _logged(self, message: Any) -> None:
        log.info(
            "uftp gateway: %s from %s logged only (not built yet)",
            type(message).__name__,
            message.sender_domain,
        )

    process_flex_offer_response = process_flex_offer_revocation_response = _logged
    process_flex_reservation_update = process_metering_response = _logged
    process_agr_portfolio_query_response = process_agr_portfolio_update_response = _logged


def _result(refused: str | None) -> dict[str, Any]:
    if refused is None:
        return {"result": AcceptedRejected.ACCEPTED}
    return {"result": AcceptedRejected.REJECTED, "rejection_reason": refused[:1000]}


def open_gateway(
    config: GatewayConfig,
    client_conf: dict[str, Any],
    topics: dict[str, str],
    serde: Serde,
    now: Callable[[], int],
    ledger: RestLedger | None = None,
) -> tuple[UftpGateway, Callable[[], None]]:
    """The gateway wired to Kafka (``client_conf``: confluent-kafka settings with ``bootstrap.servers``; ``topics``:
    canonical -> topology names): the DSO registry read whole and followed, the desk's outcomes followed from now;
    ``ledger``: the platform's settlement records (FlexSettlement) and forecasts (D-Prognosis). The prosumer
    registry (``flex.enrolments.v1``) is read whole and followed too: the areas' portfolios. With a ledger and
    ``config.prognosis_minutes`` > 0, D-Prognosis rounds run every that many minutes, the first
    :data:`FIRST_PROGNOSIS_AFTER_S` after this call (the gateway is serving by then). Returns the gateway (not yet
    serving: ``run()`` or ``run_in_thread()``) and the function that stops the rounds and closes its Kafka side."""
    view = GlobalView({**client_conf, "group.id": "edream-uftp-dsos"}, topics["flex.dsos.v1"]).start()
    prosumers = GlobalView(
        {**client_conf, "group.id": "edream-uftp-enrolments"}, topics["flex.enrolments.v1"]
    ).start()
    link = DeskLink(client_conf, serde, topics)
    gateway = UftpGateway(
        config, link, DsoView(view, serde).refresh, now, ledger, EnrolledRegistry(prosumers, serde).refresh
    )
    link.start(gateway.on_outcome)
    rounds = None
    if ledger is not None and config.prognosis_minutes > 0:
        interval_s = config.prognosis_minutes * 60
        rounds = Periodic(
            gateway.send_prognoses, interval_s, min(interval_s, FIRST_PROGNOSIS_AFTER_S), "uftp-d-prognosis"
        ).start()

    def close() -> None:
        if rounds is not None:
            rounds.stop()
        link.stop()
        view.stop()
        prosumers.stop()
        if ledger is not None:
            ledger.close()

    return gateway, close
