"""A simulated DSO speaking USEF/UFTP with ``shapeshifter-uftp``'s DSO role: an implementation of the protocol
independent of the gateway's, for tests, the benchmark and demos (not a production path).

:class:`SimDso` serves the DSO's UFTP endpoint (what the aggregator sends: FlexRequestResponse, FlexOffer,
FlexOrderResponse, FlexSettlementResponse, D-Prognosis... lands in :attr:`SimDso.inbox`) and sends FlexRequests,
FlexOrders and FlexSettlements to the aggregator's endpoint, sealed with its own Ed25519 key. A D-Prognosis is
answered with a DPrognosisResponse: Accepted, or Rejected with :attr:`SimDso.prognosis_rejection` when that is set.
"""

from __future__ import annotations

import queue
import time
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from shapeshifter_uftp import (
    DPrognosis,
    DPrognosisResponse,
    FlexOffer,
    FlexOrder,
    FlexOrderISP,
    FlexRequest,
    FlexSettlement,
    ShapeshifterDsoAgrClient,
    ShapeshifterDsoService,
)
from shapeshifter_uftp.uftp import (
    AcceptedRejected,
    ContractSettlement,
    ContractSettlementISP,
    ContractSettlementPeriod,
    FlexOrderSettlement,
    FlexOrderSettlementISP,
)
from xsdata.models.datatype import XmlDate

from connectors.uftp import dso_messages
from connectors.uftp.dso_messages import TIME_ZONE as TIME_ZONE  # re-exported: the tests and demo use it
from connectors.uftp.keys import UftpKeyPair

SIM_DSO_DOMAIN = "dso.edream.test"
SIM_CONGESTION_POINT = "ean.871685900000000001"


class SimDso(ShapeshifterDsoService):
    """The DSO's UFTP service on ``port``; ``agr_domain``/``agr_endpoint``/``agr_public_key``: the aggregator."""

    def __init__(self, keys: UftpKeyPair, port: int, agr_domain: str, agr_endpoint: str, agr_public_key: str):
        super().__init__(
            sender_domain=SIM_DSO_DOMAIN,
            signing_key=keys.secret,
            key_lookup_function=lambda domain, role: agr_public_key if domain == agr_domain else None,
            endpoint_lookup_function=lambda domain, role: agr_endpoint,
            host="127.0.0.1",
            port=port,
        )
        self.keys, self.agr_domain, self.agr_endpoint, self.agr_public_key = (
            keys,
            agr_domain,
            agr_endpoint,
            agr_public_key,
        )
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.prognosis_rejection: str | None = None  # set: D-Prognoses are answered Rejected with this reason

    def client(
        self, keys: UftpKeyPair | None = None, domain: str = SIM_DSO_DOMAIN
    ) -> ShapeshifterDsoAgrClient:
        """A client to the aggregator sealing with ``keys`` (default: the DSO's own) as ``domain``."""
        return ShapeshifterDsoAgrClient(
            sender_domain=domain,
            signing_key=(keys or self.keys).secret,
            recipient_domain=self.agr_domain,
            recipient_endpoint=self.agr_endpoint,
            recipient_signing_key=self.agr_public_key,
        )

    def wait_for(self, kind: type, timeout: float = 60.0, **match: Any) -> Any:
        """The next received message of type ``kind`` whose attributes equal ``match`` (others stay queued)."""
        deadline, skipped = time.monotonic() + timeout, []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind.__name__} {match} within {timeout} s (other: {skipped})")
                try:
                    msg = self.inbox.get(timeout=left)
                except queue.Empty:
                    continue
                if isinstance(msg, kind) and all(getattr(msg, k) == v for k, v in match.items()):
                    return msg
                skipped.append(msg)
        finally:
            for m in skipped:
                self.inbox.put(m)

    def _keep(self, message: Any) -> None:
        self.inbox.put(message)

    def process_d_prognosis(self, message: DPrognosis) -> None:
        """Keep it and answer (on the library's inbound thread, after the aggregator's HTTP 200)."""
        self._keep(message)
        reason = self.prognosis_rejection
        response = DPrognosisResponse(
            d_prognosis_message_id=message.message_id,
            conversation_id=message.conversation_id,
            result=AcceptedRejected.REJECTED if reason else AcceptedRejected.ACCEPTED,
            rejection_reason=reason,
        )
        self.agr_client(message.sender_domain).send_d_prognosis_response(response)

    process_flex_request_response = process_flex_offer = _keep
    process_flex_order_response = process_flex_offer_revocation = process_metering = _keep
    process_dso_portfolio_query_response = process_dso_portfolio_update_response = _keep
    process_flex_reservation_update_response = process_flex_settlement_response = _keep


def flex_request(
    period: date,
    isps: dict[int, int],
    expires_ms: int,
    congestion_point: str = SIM_CONGESTION_POINT,
    isp_minutes: int = 15,
    message_id: str | None = None,
) -> FlexRequest:
    """:func:`connectors.uftp.dso_messages.flex_request` for the simulator's congestion point by default."""
    return dso_messages.flex_request(period, isps, expires_ms, congestion_point, isp_minutes, message_id)


def flex_order(offer: FlexOffer, factor: str = "1.00", option: int = 0) -> FlexOrder:
    """The FlexOrder of one option of ``offer``: its ISPs copied, activated by ``factor`` (part of it below 1)."""
    opt = offer.offer_options[option]
    return FlexOrder(
        message_id=str(uuid.uuid4()),
        isp_duration=offer.isp_duration,
        time_zone=offer.time_zone,
        period=offer.period,
        congestion_point=offer.congestion_point,
        isps=[FlexOrderISP(power=i.power, start=i.start, duration=i.duration) for i in opt.isps],
        flex_offer_message_id=offer.message_id,
        price=opt.price * Decimal(factor),
        currency=offer.currency,
        order_reference=f"po-{uuid.uuid4().hex[:8]}",
        option_reference=opt.option_reference,
        activation_factor=Decimal(factor),
    )


def flex_settlement(
    period: date, orders: dict[str, dict[int, tuple[int, int]]], congestion_point: str = SIM_CONGESTION_POINT
) -> FlexSettlement:
    """The DSO's FlexSettlement of ``period``: per FlexOrder MessageID, per ISP number its (ordered, delivered)
    flex power in W as the DSO holds them (USEF sign: negative for a reduction). The schema needs one
    ContractSettlement: an empty bilateral contract (no reserved power) stands in."""
    day = XmlDate.from_date(period)
    return FlexSettlement(
        message_id=str(uuid.uuid4()),
        period_start=day,
        period_end=day,
        currency="EUR",
        flex_order_settlements=[
            FlexOrderSettlement(
                order_reference=ref,
                period=day,
                congestion_point=congestion_point,
                price=Decimal("0"),
                net_settlement=Decimal("0"),
                isps=[
                    FlexOrderSettlementISP(
                        start=n,
                        duration=1,
                        baseline_power=0,
                        ordered_flex_power=ordered,
                        actual_power=delivered,
                        delivered_flex_power=delivered,
                    )
                    for n, (ordered, delivered) in sorted(isps.items())
                ],
            )
            for ref, isps in orders.items()
        ],
        contract_settlements=[
            ContractSettlement(
                contract_id="no-bilateral-contract",
                periods=[
                    ContractSettlementPeriod(
                        period=day, isps=[ContractSettlementISP(start=1, reserved_power=0)]
                    )
                ],
            )
        ],
    )
