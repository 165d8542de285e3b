"""The Avro contracts in ``avro/``: loading, parsing and fingerprints.

Every ``avro/<Name>.avsc`` is a self-contained record schema. The registry-less framing (Avro single-object
encoding) identifies a schema by the CRC-64-AVRO fingerprint of its Parsing Canonical Form, so consumers look the
fingerprint up here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from edream.paths import AVRO_DIR


class SchemaNotFound(KeyError):
    """No ``avro/<name>.avsc`` (or no schema with that fingerprint)."""


@dataclass(frozen=True)
class AvroContract:
    """One parsed contract: its short name (file stem), raw JSON, parsed schema and fingerprint."""

    name: str
    path: Path
    raw: dict[str, Any]
    parsed: Any
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO of the canonical form

    @property
    def full_name(self) -> str:
        return f"{self.raw.get('namespace', '')}.{self.raw['name']}".lstrip(".")


def strip_logical_types(schema: Any) -> Any:
    """Copy of a schema without ``logicalType`` annotations.

    The platform passes times as plain ints (UTC epoch ms) everywhere; reading with the stripped schema keeps
    them ints instead of datetimes. The canonical form (and so the fingerprint) ignores logical types anyway.
    """
    if isinstance(schema, dict):
        return {k: strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [strip_logical_types(s) for s in schema]
    return schema


def parse_avro(raw: dict[str, Any]) -> Any:
    """fastavro-parse a schema for the platform's int-millis convention."""
    return fastavro.parse_schema(strip_logical_types(raw), _force=True)


def parse_contract(path: Path) -> AvroContract:
    raw = json.loads(path.read_text())
    parsed = parse_avro(raw)
    canonical = to_parsing_canonical_form(raw)
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return AvroContract(name=path.stem, path=path, raw=raw, parsed=parsed, fingerprint=fp)


@cache
def all_contracts(avro_dir: Path = AVRO_DIR) -> dict[str, AvroContract]:
    """All contracts keyed by short name (``Measurement``)."""
    return {p.stem: parse_contract(p) for p in sorted(avro_dir.glob("*.avsc"))}


@cache
def _by_fingerprint(avro_dir: Path = AVRO_DIR) -> dict[bytes, AvroContract]:
    return {c.fingerprint: c for c in all_contracts(avro_dir).values()}


def contract(name: str, avro_dir: Path = AVRO_DIR) -> AvroContract:
    try:
        return all_contracts(avro_dir)[name]
    except KeyError:
        raise SchemaNotFound(f"no Avro contract {name!r} in {avro_dir}") from None


def contract_by_fingerprint(fp: bytes, avro_dir: Path = AVRO_DIR) -> AvroContract:
    try:
        return _by_fingerprint(avro_dir)[fp]
    except KeyError:
        raise SchemaNotFound(f"no Avro contract in {avro_dir} has fingerprint {fp.hex()}") from None


def load_schema(name: str) -> Any:
    """Parsed fastavro schema of ``avro/<name>.avsc``."""
    return contract(name).parsed
