"""What a stream processor emits: :class:`Out` events, and their routing + Avro encoding for the Kafka loop.

Pure domain processors (flex desk, market, VPP) return ``Out`` records with *canonical* topic names; the stream
adapters turn them into ``(topic, key, value)`` triples with :func:`encode_outs`, using the loaded topology's names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edream.serde import Serde

Emit = tuple[str, bytes, bytes]  # (topic, key, value)


@dataclass(frozen=True)
class Out:
    """An event to publish: canonical topic name, Avro contract name, key, record."""

    topic: str
    schema: str
    key: str
    record: dict[str, Any]


def encode_outs(serde: Serde, topics: Mapping[str, str], outs: Iterable[Out]) -> list[Emit]:
    """Route each event to the topology's name for its canonical topic and Avro-encode it."""
    emits = []
    for o in outs:
        topic = topics.get(o.topic, o.topic)
        emits.append((topic, o.key.encode(), serde.encode(o.schema, o.record, topic)))
    return emits
