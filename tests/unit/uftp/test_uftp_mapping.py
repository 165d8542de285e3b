"""UFTP <-> contracts, pure: ISP numbers against local days (DST included), a FlexRequest's Requested ISPs as slots
of its congestion point's area, an offer as a one-option FlexOffer, a FlexOrder's activation factor as the accepted
part; what cannot be mapped is refused with its code; the registry's UFTP fields are validated."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from eth_account import Account
from shapeshifter_uftp import FlexRequestISP
from shapeshifter_uftp.uftp import AvailableRequested

from connectors.uftp.isp import IspFrame, iso_ms, ms_iso
from connectors.uftp.keys import UftpKeyPair
from connectors.uftp.mapping import (
    UftpRefused,
    acceptance_from_uftp,
    message_id_for,
    offer_to_uftp,
    request_from_uftp,
)
from edream.serde import Serde
from streams.flex.dsos import Dso, DsoRegistryError, dso_from_record, validate_dso
from streams.flex.model import Direction
from streams.flex.offers import Allocation, FlexOffer, OfferSlot
from tools.sim.uftp_dso import SIM_CONGESTION_POINT, SIM_DSO_DOMAIN, flex_order, flex_request

DAY = date(2026, 12, 7)  # winter: Amsterdam is UTC+1
KEYS = UftpKeyPair.generate(b"k" * 32)
DSO = Dso(
    dso_id="dso-uftp",
    eth_address=Account.from_key("0x" + "11" * 32).address,
    uftp_domain=SIM_DSO_DOMAIN,
    uftp_public_key=KEYS.public,
    uftp_endpoint="https://dso.edream.test/shapeshifter/api/v3/message",
    congestion_points={SIM_CONGESTION_POINT: "terni-1"},
)


def utc_ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def stamped(msg, at: str = "2026-12-06T08:00:00+00:00"):
    msg.time_stamp, msg.sender_domain, msg.version = at, SIM_DSO_DOMAIN, "3.1.0"
    return msg


def test_isp_numbers_count_elapsed_quarter_hours_from_local_midnight_also_on_dst_days():
    winter = IspFrame(DAY, "Europe/Amsterdam", 15)
    assert winter.start_ms(1) == utc_ms(2026, 12, 6, 23) and winter.start_ms(41) == utc_ms(2026, 12, 7, 9)
    assert winter.isp_of(utc_ms(2026, 12, 7, 9)) == 41
    spring = IspFrame(date(2026, 3, 29), "Europe/Amsterdam", 15)  # 23 hours: 92 ISPs
    assert spring.isp_of(spring.start_ms(92)) == 92
    with pytest.raises(ValueError, match="not an ISP start"):
        spring.isp_of(spring.start_ms(93))
    with pytest.raises(ValueError, match="not an ISP start"):
        winter.isp_of(winter.start_ms(2) + 60_000)
    assert iso_ms(ms_iso(utc_ms(2026, 12, 7, 9))) == utc_ms(2026, 12, 7, 9)


def test_a_flex_request_becomes_the_requested_slots_of_its_areas_request():
    msg = stamped(flex_request(DAY, {41: -10_000, 42: -8_000}, utc_ms(2026, 12, 7, 8)))
    msg.isps.append(
        FlexRequestISP(disposition=AvailableRequested.AVAILABLE, min_power=-1, max_power=1, start=43)
    )
    msg.isps.append(
        FlexRequestISP(
            disposition=AvailableRequested.REQUESTED, min_power=-3000, max_power=-2000, start=44, duration=2
        )
    )
    req = request_from_uftp(msg, DSO)
    assert (req.request_id, req.dso_id, req.area_id, req.direction) == (
        msg.message_id,
        "dso-uftp",
        "terni-1",
        Direction.REDUCE,
    )
    nine = utc_ms(2026, 12, 7, 9)
    assert [(s.slot_start, s.kw) for s in req.slots] == [
        (nine, 10.0),
        (nine + 900_000, 8.0),
        (nine + 2_700_000, 2.0),  # at least 2 kW less (MaxPower -2000), ISPs 44 and 45
        (nine + 3_600_000, 2.0),
    ]
    assert req.deadline == utc_ms(2026, 12, 7, 8) and req.created_at == utc_ms(2026, 12, 6, 8)
    assert req.slot_minutes == 15 and req.reward_micro_per_kwh == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda m: setattr(m, "congestion_point", "ean.000000000000000000"), "UNKNOWN_AREA"),
        (
            lambda m: m.isps.append(
                FlexRequestISP(
                    disposition=AvailableRequested.REQUESTED, min_power=500, max_power=900, start=50
                )
            ),
            "INVALID_FIELD",
        ),
        (lambda m: [setattr(i, "disposition", AvailableRequested.AVAILABLE) for i in m.isps], "NO_SLOTS"),
    ],
)
def test_unmappable_requests_are_refused_with_their_code(change, code):
    msg = stamped(flex_request(DAY, {41: -10_000}, utc_ms(2026, 12, 7, 8)))
    change(msg)
    with pytest.raises(UftpRefused) as refused:
        request_from_uftp(msg, DSO)
    assert refused.value.code == code


def offer_for(req) -> FlexOffer:
    slots = tuple(OfferSlot(s.slot_start, s.kw, s.kw, 0.0) for s in req.slots)
    allocs = tuple(Allocation("p00", s.slot_start, s.kw) for s in req.slots)
    return FlexOffer(
        "off-1", req.request_id, "agg", "FULL", slots, allocs, 4_500_000, 0, req.slots[0].slot_start
    )


def test_an_offer_is_one_option_and_a_half_activated_order_accepts_half_of_it():
    req = request_from_uftp(
        stamped(flex_request(DAY, {41: -10_000, 42: -8_000}, utc_ms(2026, 12, 7, 8))), DSO
    )
    uftp_offer = offer_to_uftp(offer_for(req), req, SIM_CONGESTION_POINT, "Europe/Amsterdam")
    [option] = uftp_offer.offer_options
    assert [(i.start, i.power) for i in option.isps] == [(41, -10_000), (42, -8_000)]
    assert (option.option_reference, option.price, option.min_activation_factor) == (
        "off-1",
        Decimal("4.5"),
        Decimal("0.01"),
    )
    assert (
        uftp_offer.message_id == message_id_for("off-1")
        and uftp_offer.flex_request_message_id == req.request_id
    )
    assert iso_ms(uftp_offer.expiration_date_time) == utc_ms(2026, 12, 7, 9)
    acc = acceptance_from_uftp(stamped(flex_order(uftp_offer, "0.50")), DSO, 300_000)
    assert (acc.offer_id, acc.area_id, acc.dso_id, acc.decision) == (
        "off-1",
        "terni-1",
        "dso-uftp",
        "ACCEPTED",
    )
    assert acc.accepted_kw() == {utc_ms(2026, 12, 7, 9): 5.0, utc_ms(2026, 12, 7, 9, 15): 4.0}
    assert acc.price_micro == 2_250_000 and acc.valid_until == acc.created_at + 300_000
    no_option = stamped(flex_order(uftp_offer))
    no_option.option_reference = None
    with pytest.raises(UftpRefused) as refused:
        acceptance_from_uftp(no_option, DSO, 300_000)
    assert refused.value.code == "UNKNOWN_OFFER"


def test_the_registry_validates_uftp_fields_and_carries_them_through_avro():
    base = DSO.model_dump(exclude={"uftp_public_key"})
    with pytest.raises(DsoRegistryError, match="field 'uftp_public_key': .*32 bytes"):
        validate_dso({**base, "uftp_public_key": "AAAA"}, "dsos.yaml: dsos[0]")
    with pytest.raises(DsoRegistryError, match="field 'uftp_endpoint'"):
        validate_dso({**base, "uftp_endpoint": "ftp://x"}, "dsos.yaml: dsos[0]")
    serde = Serde()
    _, rec = serde.decode(serde.encode("FlexDso", DSO.to_avro()))
    assert dso_from_record(rec) == DSO
