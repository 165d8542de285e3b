"""The platform as VEN of a utility: openleadr's VTN (the utility) against the platform's VEN
(connectors/openadr/utility_ven.py), on the real broker.

A LOAD_DISPATCH event (a 30-minute and a 15-minute interval, kW) becomes a FlexRequest on Kafka, signed with the
VEN's attesting key, with one 15-minute slot per quarter hour; the VEN opts in. A PRICE event is not understood:
the VEN opts out and a Rejection is on Kafka."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_utils import keccak
from flex_stages import Follower, wait_until
from openleadr import OpenADRServer

from connectors.openadr.utility_ven import UtilityLink, UtilityVen
from edream.embedded.process import free_port
from edream.serde import Serde
from streams.flex.requests import FlexRequest
from streams.flex.signing import request_signer

pytestmark = [pytest.mark.integration]

ATTEST_KEY = "0x" + keccak(text="edream-test/openadr-ven").hex()
TOPICS = ("flex.requests.v1", "platform.rejections.v1")


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.timeout(120)
def test_utility_events_become_signed_flex_requests_or_are_opted_out(
    kafka_bootstrap, unique_topic, test_settings
):
    names = {c: unique_topic(c, 2) for c in TOPICS}
    serde = Serde(test_settings)
    follow = {c: Follower(kafka_bootstrap, names[c], serde) for c in TOPICS}
    port = free_port()
    utility = OpenADRServer(
        vtn_id="UTILITY-VTN",
        http_port=port,
        requested_poll_freq=timedelta(seconds=0.5),
        show_fingerprint=False,
    )
    utility.add_handler("on_create_party_registration", lambda info: ("ven-edream", "reg-edream"))
    link = UtilityLink(
        vtn_url=f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b",
        ven_name="edream-aggregator",
        dso_id="utility-1",
        area_id="area-1",
        attest_key=ATTEST_KEY,
    )
    ven = UtilityVen(link, {"bootstrap.servers": kafka_bootstrap}, serde, names, now_ms)
    opts: dict[str, str] = {}

    def on_opt(ven_id, event_id, opt_type):
        opts[event_id] = opt_type

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def run(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    start = datetime.fromtimestamp((now_ms() // 900_000 + 96) * 900, UTC)  # a quarter hour about a day ahead
    try:
        run(utility.run())
        run(ven.start())

        async def add_events():
            utility.add_event(
                ven_id="ven-edream",
                signal_name="LOAD_DISPATCH",
                signal_type="delta",
                intervals=[
                    {"dtstart": start, "duration": timedelta(minutes=30), "signal_payload": -4.0},
                    {
                        "dtstart": start + timedelta(minutes=30),
                        "duration": timedelta(minutes=15),
                        "signal_payload": -2.0,
                    },
                ],
                callback=on_opt,
                event_id="dispatch-1",
            )
            utility.add_event(
                ven_id="ven-edream",
                signal_name="ELECTRICITY_PRICE",
                signal_type="price",
                intervals=[{"dtstart": start, "duration": timedelta(minutes=60), "signal_payload": 0.3}],
                callback=on_opt,
                event_id="price-1",
            )

        run(add_events())
        wait_until(lambda: len(opts) == 2, 20, "both events answered")
        follow["flex.requests.v1"].wait(1, 20)
        follow["platform.rejections.v1"].wait(1, 20)
    finally:
        run(ven.stop())
        run(utility.stop())
        for f in follow.values():
            f.close()

    assert opts == {"dispatch-1": "optIn", "price-1": "optOut"}
    [rec] = follow["flex.requests.v1"].records
    req = FlexRequest.from_avro(rec)
    t0 = int(start.timestamp() * 1000)
    assert (req.request_id, req.dso_id, req.area_id, req.direction) == (
        "oadr~utility-1~dispatch-1~m0",
        "utility-1",
        "area-1",
        "REDUCE",
    )
    assert [(s.slot_start - t0, s.kw) for s in req.slots] == [(0, 4.0), (900_000, 4.0), (1_800_000, 2.0)]
    assert req.deadline == t0 and request_signer(req) == Account.from_key(ATTEST_KEY).address
    [rej] = follow["platform.rejections.v1"].records
    assert (rej["subject_kind"], rej["subject_id"], rej["code"], rej["party_id"]) == (
        "OpenAdrEvent",
        "price-1",
        "INVALID_FIELD",
        "utility-1",
    )
