"""The demo's DSO over USEF/UFTP, pure: who it is, what it asks for and when, and how it settles.

The demo DSO is a process of its own (:mod:`edream.demo.dso_process`, ``edream uftp sim-dso``) on
``shapeshifter-uftp``'s DSO role, talking to the platform's UFTP gateway (``edream uftp serve``, aggregator role) over
HTTP as a DSO in production would; no flex request of the demo is made by hand. It:

* sends a FlexRequest for its congestion point :data:`CONGESTION_POINT` (the demo community's area) every
  ``every_minutes`` from ``first_after_ms`` after its start: reduce by ``share`` of the community's curtailable kW
  during ``isps`` ISPs of ``isp_minutes``, the first one starting at least ``lead_ms`` later (never across the local
  midnight: a UFTP message holds the ISPs of one day); it expires 5 s before its first ISP;
* orders ``order_factor`` of every FlexOffer it gets (a FlexOrder with that ActivationFactor);
* settles every order once the platform's settlement records of each ordered ISP are anchored on chain and verify:
  a FlexSettlement stating, per ISP, the flex power it ordered (its own figure) and the power delivered as those
  records give it (the demo DSO has no meters of its own), which the gateway checks against the same records.

Registry: the demo (:class:`edream.demo.script.DemoScript`) registers the DSO on ``flex.dsos.v1`` with its UFTP
domain, public key and endpoint, and the gateway's attesting address as its ``eth_address`` (the gateway signs what
it verified). Keys are :func:`edream.demo.keys.demo_uftp_keys` / :func:`~edream.demo.keys.demo_key`: demo only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shapeshifter_uftp import FlexOrder as UftpOrder
from shapeshifter_uftp import FlexRequest as UftpRequest
from shapeshifter_uftp import FlexSettlement as UftpSettlement

from connectors.uftp.isp import IspFrame, frame_of
from connectors.uftp.settlement import settled_slots
from edream.demo.community import AREA, Community
from edream.demo.keys import demo_address, demo_key, demo_uftp_keys
from streams.flex.dsos import Dso
from tools.sim.uftp_dso import SIM_CONGESTION_POINT, SIM_DSO_DOMAIN, TIME_ZONE, flex_request, flex_settlement

MINUTE_MS = 60_000
DSO_ID = "dso-demo"
#: the demo DSO's UFTP sender domain and congestion point (the simulator's)
DSO_DOMAIN, CONGESTION_POINT = SIM_DSO_DOMAIN, SIM_CONGESTION_POINT
#: the platform's UFTP sender domain in the demo, and the participant id of the gateway's attesting key
AGR_DOMAIN, GATEWAY_ID = "agr.demo.edream", "uftp-gateway"
#: the path both sides serve UFTP on (``shapeshifter-uftp``'s default)
UFTP_PATH = "/shapeshifter/api/v3/message"
_IDS = uuid.uuid5(uuid.NAMESPACE_DNS, DSO_DOMAIN)


@dataclass(frozen=True)
class DemoDsoConfig:
    """The demo DSO's knobs; ``port``: where it serves UFTP (the aggregator's messages to it)."""

    port: int = 8093
    every_minutes: int = 10
    # first request this long after the DSO starts: the aggregator's desk has caught up with the uploaded hour of
    # history by then (it offers only once its inputs are consumed, so the metered baselines are in)
    first_after_ms: int = 45_000
    # a request's first ISP starts at least this long after it is sent (the desk must offer before it expires, 5 s
    # before that ISP: 30 s was missed on a loaded machine)
    lead_ms: int = 90_000
    isps: int = 3
    isp_minutes: int = 1
    share: float = 0.3
    order_factor: Decimal = Decimal("0.80")
    #: an order's settlement is looked for from this long after its last ISP ends, and given up after ``give_up_ms``
    settle_after_ms: int = 10_000
    #: a request refused (or expired untaken) is followed by the next this long later, not ``every_minutes`` (one
    #: taken but not offered on before it expired: at once)
    ask_again_ms: int = 60_000
    #: with a congestion feed, also send the timed requests (the demo does with DEMO_TIMELAPSE=true: its grid is
    #: congested in the evening and at sunny middays, the timed requests show the whole lifecycle within minutes)
    timed_beside_feed: bool = False
    #: beside the feed, the timed script has this long ahead of now to itself (ms): the feed asks from then on
    timed_horizon_ms: int = 30 * MINUTE_MS
    give_up_ms: int = 30 * MINUTE_MS


def requested_kw(community: Community, cfg: DemoDsoConfig) -> float:
    """The reduction (kW) the DSO asks for per ISP: ``share`` of the community's curtailable load."""
    return round(cfg.share * sum(p.curtailable_kw for p in community.prosumers), 1)


def request_at(at_ms: int, kw: float, cfg: DemoDsoConfig, not_before_ms: int = 0) -> UftpRequest:
    """The FlexRequest the DSO sends at ``at_ms`` (UTC epoch ms): ``kw`` less during the next ``cfg.isps`` ISPs
    starting at least ``cfg.lead_ms`` later and not before ``not_before_ms``; its MessageID follows from the first
    ISP (the same request again is a duplicate the platform refuses, never a second one)."""
    isp_ms = cfg.isp_minutes * MINUTE_MS
    first = -(-max(at_ms + cfg.lead_ms, not_before_ms) // isp_ms) * isp_ms
    frame = frame_of(first, TIME_ZONE, cfg.isp_minutes)
    if first + cfg.isps * isp_ms > frame.start_ms_of_next_day():  # one message holds the ISPs of one day
        first = frame.start_ms_of_next_day()
        frame = frame_of(first, TIME_ZONE, cfg.isp_minutes)
    isps = {frame.isp_of(first + k * isp_ms): -round(kw * 1000) for k in range(cfg.isps)}
    return flex_request(
        frame.period,
        isps,
        first - 5_000,
        CONGESTION_POINT,
        cfg.isp_minutes,
        message_id=str(uuid.uuid5(_IDS, f"request/{first}")),
    )


def isps_end_ms(msg: UftpRequest | UftpOrder) -> int:
    """UTC epoch ms at which the last ISP of ``msg`` ends."""
    frame = IspFrame(msg.period.to_date(), msg.time_zone, msg.isp_duration.minutes)
    return frame.start_ms(max(i.start + i.duration for i in msg.isps))


def ordered_watts(order: UftpOrder) -> dict[int, int]:
    """ISP number -> the flex power (W, USEF sign) ``order`` activates: the offered power x ActivationFactor."""
    out: dict[int, int] = {}
    for isp in order.isps:
        for k in range(isp.duration):
            out[isp.start + k] = round(Decimal(isp.power) * Decimal(order.activation_factor))
    return out


def settlement_of(order: UftpOrder, records: Iterable[Mapping[str, Any]]) -> UftpSettlement | None:
    """The DSO's FlexSettlement of ``order`` from the platform's ``Settlement`` records of it (as the REST API lists
    them): per ISP, what it ordered and the delivered power of the records (the ordered power's sign); None while an
    ordered ISP has no record."""
    slots = settled_slots(records)
    frame = IspFrame(order.period.to_date(), order.time_zone, order.isp_duration.minutes)
    figures: dict[int, tuple[int, int]] = {}
    for number, ordered in ordered_watts(order).items():
        slot = slots.get(frame.start_ms(number))
        if slot is None:
            return None
        delivered = round(slot.watts(slot.delivered_wh))
        figures[number] = (ordered, -delivered if ordered < 0 else delivered)
    return flex_settlement(frame.period, {order.message_id: figures}, order.congestion_point)


def registry_entry(seed: int, updated_at: int, cfg: DemoDsoConfig) -> Dso:
    """The demo DSO on ``flex.dsos.v1``: its UFTP domain, key and endpoint, its congestion point -> the demo area,
    and the gateway's attesting address (the gateway signs the requests and orders it verified)."""
    return Dso(
        dso_id=DSO_ID,
        eth_address=demo_address(seed, GATEWAY_ID),
        name="demo DSO (USEF/UFTP)",
        uftp_domain=DSO_DOMAIN,
        uftp_public_key=demo_uftp_keys(seed, DSO_ID).public,
        uftp_endpoint=f"http://127.0.0.1:{cfg.port}{UFTP_PATH}",
        congestion_points={CONGESTION_POINT: AREA},
        updated_at=updated_at,
    )


def gateway_env(seed: int, port: int) -> dict[str, str]:
    """The settings (environment) of the demo's UFTP gateway (``edream uftp serve``) on ``port``."""
    return {
        "UFTP_DOMAIN": AGR_DOMAIN,
        "UFTP_SIGNING_KEY": demo_uftp_keys(seed, AGR_DOMAIN).secret,
        "UFTP_ATTEST_KEY": demo_key(seed, GATEWAY_ID),
        "UFTP_HOST": "127.0.0.1",
        "UFTP_PORT": str(port),
        "UFTP_TIME_ZONE": TIME_ZONE,
    }
