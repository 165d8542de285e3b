"""Avro serialization with two framings, chosen by configuration, both always decodable.

* Confluent wire format (``SCHEMA_REGISTRY_URL`` set): ``0x00`` + 4-byte big-endian schema id + Avro body; the
  schema is registered under the topic's ``<topic>-value`` subject (TopicNameStrategy).
* Avro single-object encoding (no registry): ``0xC3 0x01`` + 8-byte little-endian CRC-64-AVRO fingerprint of the
  schema's canonical form + Avro body; the fingerprint is looked up among the contracts in ``avro/``.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Sequence
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from edream.avro_schemas import AvroContract, contract, contract_by_fingerprint, parse_avro
from edream.settings import Settings

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


class DecodeError(ValueError):
    """The bytes are not a decodable Avro message in either framing; the message says why."""


def _write_body(c: AvroContract, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, c.parsed, record)
    return buf.getvalue()


def _read_body(writer_schema: Any, body: bytes, reader_schema: Any | None = None) -> dict[str, Any]:
    return fastavro.schemaless_reader(io.BytesIO(body), writer_schema, reader_schema)


class Serde:
    """Encode/decode platform events. Thread-compatible; caches registry ids and writer schemas."""

    def __init__(self, settings: Settings | None = None, registry_url: str | None = None):
        url = (
            registry_url if registry_url is not None else (settings.schema_registry_url if settings else None)
        )
        self.registry: SchemaRegistryClient | None = (
            SchemaRegistryClient.new_client({"url": url}) if url else None
        )
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, tuple[str, Any]] = {}

    @property
    def framing(self) -> str:
        return "confluent" if self.registry else "single-object"

    # -- encode -------------------------------------------------------------------------------------------
    def encode(self, schema_name: str, record: dict[str, Any], topic: str | None = None) -> bytes:
        c = contract(schema_name)
        return self._header(c, topic) + _write_body(c, record)

    def encode_many(
        self, schema_name: str, records: Sequence[dict[str, Any]], topic: str | None = None
    ) -> list[bytes]:
        """``[encode(schema_name, r, topic) for r in records]`` (the same bytes) in one pass: the contract and
        framing header are looked up once and every body is written into one shared buffer."""
        c = contract(schema_name)
        header, parsed, write = self._header(c, topic), c.parsed, fastavro.schemaless_writer
        buf = io.BytesIO()
        ends: list[int] = []
        for record in records:
            write(buf, parsed, record)
            ends.append(buf.tell())
        out: list[bytes] = []
        start = 0
        with buf.getbuffer() as view:
            for end in ends:
                out.append(header + view[start:end])
                start = end
        return out

    def _header(self, c: AvroContract, topic: str | None) -> bytes:
        if self.registry is None:
            return SINGLE_OBJECT_MAGIC + c.fingerprint
        if topic is None:
            raise ValueError("Confluent framing needs the topic (subject <topic>-value)")
        return CONFLUENT_MAGIC + struct.pack(">I", self._schema_id(topic, c))

    def _schema_id(self, topic: str, c: AvroContract) -> int:
        key = (topic, c.name)
        if key not in self._ids:
            assert self.registry is not None
            sid = self.registry.register_schema(f"{topic}-value", Schema(json.dumps(c.raw), "AVRO"))
            self._ids[key] = sid
            self._writers[sid] = (c.name, c.parsed)
        return self._ids[key]

    # -- decode -------------------------------------------------------------------------------------------
    def decode(self, data: bytes | None, topic: str | None = None) -> tuple[str, dict[str, Any]]:
        """Return (contract name, record). The record is resolved to our current contract (reader schema)."""
        if not data:
            raise DecodeError("empty message")
        try:
            if data[:2] == SINGLE_OBJECT_MAGIC:
                if len(data) < 10:
                    raise DecodeError("single-object header truncated")
                c = contract_by_fingerprint(data[2:10])
                return c.name, _read_body(c.parsed, data[10:])
            if data[:1] == CONFLUENT_MAGIC:
                if len(data) < 5:
                    raise DecodeError("Confluent header truncated")
                (sid,) = struct.unpack(">I", data[1:5])
                name, writer = self._writer_for_id(sid)
                return name, _read_body(writer, data[5:], contract(name).parsed)
        except DecodeError:
            raise
        except Exception as exc:  # fastavro raises a variety of errors on corrupt bodies
            raise DecodeError(f"{type(exc).__name__}: {exc}") from exc
        raise DecodeError(f"unknown framing (first byte 0x{data[0]:02x}); expected 0x00 or 0xc3 0x01")

    def _writer_for_id(self, sid: int) -> tuple[str, Any]:
        if sid in self._writers:
            return self._writers[sid]
        if self.registry is None:
            raise DecodeError(
                f"Confluent-framed message (schema id {sid}) but no SCHEMA_REGISTRY_URL configured"
            )
        schema = self.registry.get_schema(sid)
        raw = json.loads(schema.schema_str)
        name = raw["name"]
        self._writers[sid] = (name, parse_avro(raw))
        return self._writers[sid]
