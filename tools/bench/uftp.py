"""``edream bench uftp``: the USEF/UFTP gateway's cost per signed message and request -> offer latency.

Figures:

* ``seal_per_s`` / ``unseal_per_s``: ``shapeshifter-uftp`` sealing (XML + Ed25519 signature) and unsealing
  (verification + XML parse) of a 4-ISP FlexRequest, one thread.
* ``http_per_s``: sealed FlexRequests sent by the library's DSO client (4 threads) over HTTP to the gateway, which
  verifies, maps and EIP-712-signs each and hands it to a counting stand-in of its Kafka link (no broker): from the
  first send until the last is handed over.
* ``request_to_offer_ms`` (p50, p99): one FlexRequest in process, from the sealed bytes to the sealed FlexOffer:
  unseal, map, sign, the area desk's processor (MemoryState) offering over ``prosumers`` prosumers of the area,
  map back, seal. Broker hops and HTTP are not in it.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from eth_account import Account
from shapeshifter_uftp import transport

import connectors.uftp  # noqa: F401 - the library's XML lookup restricted to its own models
from connectors.uftp.gateway import UFTP_PATH, GatewayConfig, UftpGateway
from connectors.uftp.isp import ms_iso
from connectors.uftp.keys import UftpKeyPair
from connectors.uftp.mapping import offer_to_uftp, request_from_uftp
from edream.embedded.process import free_port
from edream.runtime.contract import Record
from streams.flex.dso_view import DsoView
from streams.flex.dsos import Dso, DsoRegistry
from streams.flex.offers import FlexOffer
from streams.flex.signing import sign_request
from tools.bench.flex_area import NOW, SERDE, build
from tools.sim.flex_scenario import AREA, T0, StaticView
from tools.sim.uftp_dso import SIM_CONGESTION_POINT, SIM_DSO_DOMAIN, TIME_ZONE, SimDso, flex_request

AGR = "agr.edream.test"
ATTEST_KEY = "0x" + "42" * 32
DSO_KEYS, AGR_KEYS = UftpKeyPair.generate(b"d" * 32), UftpKeyPair.generate(b"a" * 32)


def _dso(endpoint: str = "http://127.0.0.1:9/x") -> Dso:
    return Dso(
        dso_id="dso-uftp",
        eth_address=Account.from_key(ATTEST_KEY).address,
        uftp_domain=SIM_DSO_DOMAIN,
        uftp_public_key=DSO_KEYS.public,
        uftp_endpoint=endpoint,
        congestion_points={SIM_CONGESTION_POINT: AREA},
    )


def _request(at_ms: int) -> Any:
    """A 4-ISP reduction request from T0 (local ISPs), stamped ``at_ms``, ready to seal."""
    local = datetime.fromtimestamp(T0 / 1000, ZoneInfo(TIME_ZONE))
    first = (local.hour * 60 + local.minute) // 15 + 1
    msg = flex_request(local.date(), {first + k: -20_000 for k in range(4)}, at_ms + 1_800_000)
    msg.version, msg.sender_domain, msg.recipient_domain = "3.1.0", SIM_DSO_DOMAIN, AGR
    msg.time_stamp, msg.conversation_id = ms_iso(at_ms), str(uuid.uuid4())
    return msg


def bench_seal(seconds: float) -> dict[str, float]:
    msg = _request(NOW)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sealed = transport.seal_message(msg, DSO_KEYS.secret)
        n += 1
    seal = n / (time.perf_counter() - t0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        transport.unseal_message(sealed, DSO_KEYS.public)
        n += 1
    return {"seal_per_s": round(seal), "unseal_per_s": round(n / (time.perf_counter() - t0))}


class _Counting:
    """The gateway's Kafka link, counting what it would publish."""

    def __init__(self) -> None:
        self.n, self.lock = 0, threading.Lock()

    def publish(self, outs: list) -> None:
        with self.lock:
            self.n += len(outs)


def bench_http(seconds: float, threads: int = 4) -> dict[str, float]:
    port, dso_port = free_port(), free_port()
    link = _Counting()
    registry = DsoRegistry([_dso()])
    config = GatewayConfig(AGR, AGR_KEYS.secret, ATTEST_KEY, port=port, time_zone=TIME_ZONE)
    gateway = UftpGateway(config, link, lambda: registry, lambda: int(time.time() * 1000))  # type: ignore[arg-type]
    sim = SimDso(DSO_KEYS, dso_port, AGR, f"http://127.0.0.1:{port}{UFTP_PATH}", AGR_KEYS.public)
    gateway.run_in_thread()
    sent = [0] * threads
    t0 = time.perf_counter()

    def sender(i: int) -> None:
        client = sim.client()
        while time.perf_counter() - t0 < seconds:
            client.send_flex_request(_request(int(time.time() * 1000)))
            sent[i] += 1

    try:
        workers = [threading.Thread(target=sender, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        while link.n < sum(sent) and time.perf_counter() - t0 < seconds + 30:
            time.sleep(0.005)
        elapsed = time.perf_counter() - t0
    finally:
        gateway.stop()
    return {"http_per_s": round(link.n / elapsed, 1), "http_messages": link.n, "http_threads": threads}


def bench_request_to_offer(prosumers: int, repeats: int) -> dict[str, float]:
    proc, state, _ = build(prosumers, auto_accept=False)
    dso = _dso()
    proc.dsos = DsoView(StaticView({dso.dso_id.encode(): SERDE.encode("FlexDso", dso.to_avro())}), SERDE)
    times = []
    for _ in range(repeats):
        sealed = transport.seal_message(_request(NOW), DSO_KEYS.secret)
        t0 = time.perf_counter()
        req = sign_request(
            request_from_uftp(transport.unseal_message(sealed, DSO_KEYS.public), dso), ATTEST_KEY
        )
        value = SERDE.encode("FlexRequest", req.to_avro())
        proc.on_record(Record("flex.requests.v1", 0, 0, None, value, NOW), state)
        [emit] = [e for e in proc.on_tick(NOW, 0, state) if e.topic == "flex.offers.v1"]
        offer = FlexOffer.from_avro(SERDE.decode(emit.value)[1])
        msg = offer_to_uftp(offer, req, SIM_CONGESTION_POINT, TIME_ZONE)
        msg.version, msg.sender_domain, msg.recipient_domain = "3.1.0", AGR, SIM_DSO_DOMAIN
        msg.time_stamp, msg.conversation_id = ms_iso(NOW), str(uuid.uuid4())
        transport.seal_message(msg, AGR_KEYS.secret)
        times.append((time.perf_counter() - t0) * 1000)
        assert offer.status != "INFEASIBLE"
    times.sort()
    return {
        "request_to_offer_ms_p50": round(statistics.median(times), 1),
        "request_to_offer_ms_p99": round(times[min(len(times) - 1, int(0.99 * len(times)))], 1),
        "prosumers": prosumers,
    }


def run(seconds: float = 5.0, prosumers: int = 1000, repeats: int = 10) -> dict[str, Any]:
    """``seconds``: each of the two throughput phases' length."""
    return bench_seal(seconds / 2) | bench_http(seconds) | bench_request_to_offer(prosumers, repeats)
