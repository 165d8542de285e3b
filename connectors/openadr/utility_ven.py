"""The platform as VEN of a utility's VTN (openleadr's ``OpenADRClient``): the utility's DR events become
FlexRequests for the flex desk.

The utility is a DSO of the registry ``flex.dsos.v1`` whose ``eth_address`` is the address of ``attest_key``: the
VEN attests what it received (as the UFTP gateway does) by signing the FlexRequest (:mod:`streams.flex.signing`).
An event is mapped by :func:`~connectors.openadr.utility_events.request_from_event`, published to
``flex.requests.v1`` (flushed) and opted in; an event that cannot be mapped is opted out and becomes a Rejection
(``OpenAdrEvent``, INVALID_FIELD, party = the DSO id). Opting in means "the platform takes the request to its
desk", not that the flexibility is delivered: the offer goes to the utility by its own channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer
from openleadr import OpenADRClient

from connectors.openadr.utility_events import EventRefused, request_from_event
from edream.serde import Serde
from streams.flex.desk import out_of
from streams.flex.signing import sign_request
from streams.flex.validation import Code, Issue, rejection
from streams.outputs import Out, encode_outs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UtilityLink:
    """``vtn_url``: the utility VTN's ``.../OpenADR2/Simple/2.0b``; ``ven_name``: ours, as the utility registered it;
    ``dso_id``/``area_id``: the utility on ``flex.dsos.v1`` and the flex area its events are for; ``attest_key``:
    0x-hex Ethereum key signing the requests; ``simple_levels_kw``: reduction in kW asked by SIMPLE levels 1..3."""

    vtn_url: str
    ven_name: str
    dso_id: str
    area_id: str
    attest_key: str
    slot_minutes: int = 15
    simple_levels_kw: Sequence[float] = ()
    reward_micro_per_kwh: int = 0


class UtilityVen:
    """See module doc. ``client_conf``: confluent-kafka settings; ``topics``: canonical -> topology names; ``now``:
    wall clock, UTC epoch ms."""

    def __init__(
        self,
        link: UtilityLink,
        client_conf: Mapping[str, Any],
        serde: Serde,
        topics: Mapping[str, str],
        now: Callable[[], int],
    ):
        self.link, self.serde, self.topics, self.now = link, serde, dict(topics), now
        self.producer = Producer({**client_conf, "linger.ms": 5})
        self.client = OpenADRClient(ven_name=link.ven_name, vtn_url=link.vtn_url, show_fingerprint=False)
        self.client.add_handler("on_event", self._on_event)
        self.client.add_handler("on_update_event", self._on_event)

    async def _publish(self, outs: list[Out]) -> None:
        for topic, key, value in encode_outs(self.serde, self.topics, outs):
            self.producer.produce(topic, value, key=key)
        if await asyncio.get_running_loop().run_in_executor(None, self.producer.flush, 30):
            raise RuntimeError("Kafka did not take the VEN's records within 30 s")

    async def _on_event(self, event: dict[str, Any]) -> str:
        """optIn once the request is on Kafka; optOut (and a Rejection) for an event we cannot map. A Kafka failure
        raises: openleadr then opts out, and the utility may send the event again."""
        if event["event_descriptor"].get("event_status") in ("cancelled", "completed"):
            return "optIn"  # nothing new to ask the desk; the response is only an acknowledgement
        lk = self.link
        try:
            req = request_from_event(
                event,
                lk.dso_id,
                lk.area_id,
                self.now(),
                lk.slot_minutes,
                lk.simple_levels_kw,
                lk.reward_micro_per_kwh,
            )
        except (EventRefused, KeyError, TypeError, ValueError) as exc:
            event_id = str(event["event_descriptor"].get("event_id"))[:128]
            rej = rejection(
                "OpenAdrEvent", event_id, [Issue(Code.INVALID_FIELD, str(exc))], self.now(), lk.dso_id
            )
            await self._publish([out_of(rej)])
            log.warning("openadr ven: event %s refused: %s", event_id, exc)
            return "optOut"
        await self._publish([out_of(sign_request(req, lk.attest_key))])
        log.info(
            "openadr ven: event %s -> flex request %s", event["event_descriptor"]["event_id"], req.request_id
        )
        return "optIn"

    async def start(self) -> None:
        """Register with the utility and start polling; in the running event loop."""
        await self.client.run()

    async def stop(self) -> None:
        await self.client.stop()
        self.producer.flush(10)
