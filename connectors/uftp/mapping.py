"""UFTP messages <-> the platform's contracts, as pure functions (no I/O, no signing).

* FlexRequest (UFTP) -> :class:`~streams.flex.requests.FlexRequest`: ``request_id`` is the UFTP MessageID; the
  congestion point maps to a flex area through the DSO's registry entry; every ISP with ``Disposition=Requested``
  becomes a slot. Power follows the USEF sign convention (W, positive = more consumption): an ISP whose
  ``MaxPower`` is negative asks for at least that much reduction (REDUCE ``-MaxPower`` W), one whose ``MinPower``
  is positive for at least that much increase; one request has one direction. The DSO states no price in a UFTP
  FlexRequest, so the reward is 0 (the price is the offer's).
* :class:`~streams.flex.offers.FlexOffer` -> FlexOffer (UFTP): one option per offer (``OptionReference`` = our
  ``offer_id``), its ISPs the offered kW per slot in W (negative for REDUCE), its price the offer's cost,
  ``MinActivationFactor`` 0.01 (any part may be ordered), expiring at the offer's ``valid_until``.
* FlexOrder (UFTP) -> :class:`~streams.flex.acceptance.FlexAcceptance` (ACCEPTED): ``acceptance_id`` is the UFTP
  MessageID, ``offer_id`` the chosen ``OptionReference``, each ISP's |power| x ``ActivationFactor`` the accepted kW
  (so ordering part of an offer is an activation factor below 1, as UFTP 3.1 prescribes), the price in
  micro-units, valid for ``validity_ms`` after the order's time stamp. The desk checks it against the offer.

A message that cannot be mapped raises :class:`UftpRefused` with the Rejection code and the UFTP rejection reason.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from shapeshifter_uftp import FlexOffer as UftpOffer
from shapeshifter_uftp import FlexOfferOption, FlexOfferOptionISP
from shapeshifter_uftp import FlexOrder as UftpOrder
from shapeshifter_uftp import FlexRequest as UftpRequest
from shapeshifter_uftp.uftp import AvailableRequested
from xsdata.models.datatype import XmlDate, XmlDuration

from connectors.uftp.isp import IspFrame, frame_of, iso_ms, ms_iso
from streams.flex.acceptance import AcceptedSlot, FlexAcceptance
from streams.flex.dsos import Dso
from streams.flex.model import Direction
from streams.flex.offers import FlexOffer
from streams.flex.requests import FlexRequest, RequestSlot
from streams.flex.validation import Code

#: Namespace of the UFTP MessageIDs derived from our ids (a FlexOffer's id is a UUID, deterministic per offer).
MESSAGE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://edream.eu/uftp")
#: MinActivationFactor of every offered option: the DSO may order any part of it.
MIN_ACTIVATION = Decimal("0.01")
MICRO = Decimal(1_000_000)


class UftpRefused(ValueError):
    """A UFTP message the gateway cannot map: ``code`` for the Rejection event, the message for the UFTP reply."""

    def __init__(self, code: Code, reason: str):
        super().__init__(reason)
        self.code = code


def message_id_for(our_id: str) -> str:
    """The UFTP MessageID (a UUID) of one of our records, the same on every retry."""
    return str(uuid.uuid5(MESSAGE_NAMESPACE, our_id))


def area_of(dso: Dso, congestion_point: str) -> str:
    area = dso.congestion_points.get(congestion_point)
    if area is None:
        raise UftpRefused(Code.UNKNOWN_AREA, f"Unknown CongestionPoint {congestion_point!r} for {dso.dso_id}")
    return area


def frame(msg: UftpRequest | UftpOrder) -> IspFrame:
    minutes = msg.isp_duration.minutes if isinstance(msg.isp_duration, XmlDuration) else None
    if not minutes or msg.isp_duration.hours or msg.isp_duration.seconds:
        raise UftpRefused(
            Code.BAD_SLOT_LENGTH, f"ISPDuration {msg.isp_duration} is not a whole number of minutes"
        )
    return IspFrame(msg.period.to_date(), msg.time_zone, minutes)


def request_from_uftp(msg: UftpRequest, dso: Dso) -> FlexRequest:
    """The (unsigned) flex request of a verified UFTP FlexRequest from ``dso``."""
    area, isps = area_of(dso, msg.congestion_point), frame(msg)
    wanted: dict[int, float] = {}
    directions: set[Direction] = set()
    for isp in msg.isps:
        if isp.disposition != AvailableRequested.REQUESTED:
            continue
        if isp.max_power < 0:
            direction, watts = Direction.REDUCE, -isp.max_power
        elif isp.min_power > 0:
            direction, watts = Direction.INCREASE, isp.min_power
        else:
            continue  # a range that holds 0: nothing is needed at this ISP
        directions.add(direction)
        for k in range(isp.duration):
            wanted[isps.start_ms(isp.start + k)] = watts / 1000.0
    if len(directions) != 1:
        raise UftpRefused(
            Code.NO_SLOTS if not directions else Code.INVALID_FIELD,
            "no Requested ISP asks for flexibility"
            if not directions
            else "both directions in one FlexRequest",
        )
    return FlexRequest(
        request_id=msg.message_id,
        dso_id=dso.dso_id,
        area_id=area,
        direction=directions.pop(),
        slots=tuple(RequestSlot(t, kw) for t, kw in sorted(wanted.items())),
        reward_micro_per_kwh=0,
        deadline=iso_ms(msg.expiration_date_time),
        created_at=iso_ms(msg.time_stamp),
        slot_minutes=isps.isp_minutes,
    )


def offer_to_uftp(
    offer: FlexOffer, request: FlexRequest, congestion_point: str, time_zone: str, currency: str = "EUR"
) -> UftpOffer:
    """The UFTP FlexOffer (sender/recipient filled in by the client) of a feasible offer to ``request``."""
    isps = frame_of(min(request.slot_starts()), time_zone, request.slot_minutes)
    sign = -1 if request.direction is Direction.REDUCE else 1
    option = FlexOfferOption(
        isps=[
            FlexOfferOptionISP(
                power=sign * round(s.offered_kw * 1000), start=isps.isp_of(s.slot_start), duration=1
            )
            for s in offer.slots
            if s.offered_kw > 0
        ],
        option_reference=offer.offer_id,
        price=Decimal(offer.cost_micro) / MICRO,
        min_activation_factor=MIN_ACTIVATION,
    )
    return UftpOffer(
        message_id=message_id_for(offer.offer_id),
        isp_duration=XmlDuration(f"PT{request.slot_minutes}M"),
        time_zone=time_zone,
        period=XmlDate.from_date(isps.period),
        congestion_point=congestion_point,
        offer_options=[option],
        expiration_date_time=ms_iso(
            offer.valid_until if offer.valid_until is not None else min(request.slot_starts())
        ),
        flex_request_message_id=request.request_id,
        currency=currency,
    )


def acceptance_from_uftp(msg: UftpOrder, dso: Dso, validity_ms: int) -> FlexAcceptance:
    """The (unsigned) acceptance of a verified UFTP FlexOrder from ``dso`` (see module doc)."""
    if not msg.option_reference:
        raise UftpRefused(Code.UNKNOWN_OFFER, "FlexOrder names no OptionReference of a FlexOffer")
    area, isps = area_of(dso, msg.congestion_point), frame(msg)
    factor = float(msg.activation_factor)
    accepted: dict[int, float] = {}
    for isp in msg.isps:
        for k in range(isp.duration):
            accepted[isps.start_ms(isp.start + k)] = round(abs(isp.power) * factor) / 1000.0
    created = iso_ms(msg.time_stamp)
    return FlexAcceptance(
        acceptance_id=msg.message_id,
        offer_id=msg.option_reference,
        dso_id=dso.dso_id,
        area_id=area,
        decision="ACCEPTED",
        slots=tuple(AcceptedSlot(t, kw) for t, kw in sorted(accepted.items())),
        valid_until=created + validity_ms,
        created_at=created,
        price_micro=int(Decimal(msg.price) * MICRO),
        currency=msg.currency,
    )
