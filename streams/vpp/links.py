"""Links of the vpp stage: messages one state key sends to another key's partition (topic ``vpp.links.v1``).

The stage keeps three kinds of state, each on the partition of its own key (see :mod:`streams.vpp.stage`):
assets (key ``asset_id``, where registry records and degradation estimates arrive), forecast entities (key
``entity_id`` = prosumer id, where forecasts and baselines arrive) and VPPs (key ``vpp_id``, where requests are
answered and exports evaluated). A link carries what one knows to another, keyed by its ``target``:

* ``MEMBER`` / ``LEAVE`` (asset -> VPP): the asset's latest registry record and degradation estimate / the asset
  moved to another VPP (``version``: the record's ``updated_at``, UTC epoch ms);
* ``SUBSCRIBE`` / ``UNSUBSCRIBE`` (VPP -> entity): the VPP starts/stops needing the entity's outlook;
* ``FORECAST`` / ``BASELINE`` (entity -> each subscribed VPP): a newer Forecast record / baseline slots.

The envelope is the Avro contract ``VppLink``; ``body`` is JSON (orjson) of the carried data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from edream.serde import Serde

TOPIC_LINKS = "vpp.links.v1"
SCHEMA = "VppLink"


class LinkKind(StrEnum):
    MEMBER = "MEMBER"
    LEAVE = "LEAVE"
    SUBSCRIBE = "SUBSCRIBE"
    UNSUBSCRIBE = "UNSUBSCRIBE"
    FORECAST = "FORECAST"
    BASELINE = "BASELINE"


@dataclass(frozen=True)
class Link:
    """One link. ``target``: the key it is sent to; ``vpp_id``: the VPP concerned; ``subject``: the asset id
    (MEMBER, LEAVE) or entity id (others); ``body``: the carried data (JSON-serialisable)."""

    kind: LinkKind
    target: str
    vpp_id: str
    subject: str
    version: int = 0
    body: Any = None

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "target": self.target,
            "vpp_id": self.vpp_id,
            "subject": self.subject,
            "version": int(self.version),
            "body": orjson.dumps(self.body if self.body is not None else {}).decode(),
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Link:
        return cls(
            LinkKind(rec["kind"]),
            rec["target"],
            rec["vpp_id"],
            rec["subject"],
            int(rec["version"]),
            orjson.loads(rec["body"]),
        )


def encode_link(serde: Serde, link: Link, topic: str) -> bytes:
    return serde.encode(SCHEMA, link.to_record(), topic)


def decode_link(serde: Serde, value: bytes, topic: str) -> Link:
    """Raises :class:`~edream.serde.DecodeError` (or ValueError/KeyError) on anything but a VppLink."""
    name, rec = serde.decode(value, topic)
    if name != SCHEMA:
        raise ValueError(f"expected {SCHEMA} on {topic}, got {name}")
    return Link.from_record(rec)
