"""The DSO registry: which DSOs may request flexibility and the Ethereum address whose key signs their requests.

Records are ``FlexDso`` (avro/FlexDso.avsc) on the compacted topic ``flex.dsos.v1`` (key ``dso_id``); the record
with the highest ``updated_at`` (UTC epoch ms) per DSO wins, so replaying the topic in any order rebuilds the same
registry. ``active: false`` revokes a DSO (its requests are then rejected as UNKNOWN_DSO). Only the address is
registered: the DSO keeps its private key.

A DSO connected through the USEF/UFTP gateway (:mod:`connectors.uftp`) also names its UFTP sender domain, the base64
Ed25519 key that verifies its UFTP messages, its UFTP endpoint and which of its congestion points is which flex
area; its ``eth_address`` is then the gateway's, which signs the requests and acceptances it verified.

Registry file (``edream flex dso load FILE``)::

    dsos:
      - dso_id: dso-north
        eth_address: "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
        name: North grid operator
      - {dso_id: dso-south, eth_address: "0xFFcf8FDEE72ac11b5c542428B35EEF5769C409f0"}
      - dso_id: dso-uftp
        eth_address: "0x..."                      # the UFTP gateway's address (edream uftp keys)
        uftp_domain: dso.example.com
        uftp_public_key: "base64 Ed25519 public key"
        uftp_endpoint: https://dso.example.com/shapeshifter/api/v3/message
        congestion_points: {"ean.871685900000000001": terni-1}

Errors name the file, the entry and the field: ``dsos.yaml: dsos[1] 'dso-south': field 'eth_address': not an
Ethereum address (or bad EIP-55 checksum): '0x12'``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streams.eip712 import checksum_address

TOPIC_DSOS = "flex.dsos.v1"


class DsoRegistryError(ValueError):
    """An invalid registry entry; the message names where (file/entry or record) and the field."""


class Dso(BaseModel):
    """One registered DSO. ``updated_at``: UTC epoch ms of this version of the entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dso_id: str = Field(min_length=1, max_length=128)
    eth_address: str
    name: str = Field(default="", max_length=256)
    active: bool = True
    updated_at: int = Field(default=0, ge=0)
    uftp_domain: str | None = Field(default=None, min_length=3, max_length=253, pattern=r"^[a-z0-9.-]+$")
    uftp_public_key: str | None = None
    uftp_endpoint: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    congestion_points: dict[str, str] = Field(default_factory=dict)

    @field_validator("eth_address")
    @classmethod
    def _checksum(cls, v: str) -> str:
        return checksum_address(v)

    @field_validator("uftp_public_key")
    @classmethod
    def _ed25519(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            raw = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not base64") from None
        if len(raw) != 32:
            raise ValueError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
        return v

    def to_avro(self) -> dict[str, Any]:
        return {"event_id": f"{self.dso_id}/{self.updated_at}", **self.model_dump()}


def validate_dso(data: Any, where: str) -> Dso:
    """Validate one entry; raise :class:`DsoRegistryError` ``"<where>: field '<f>': <why>"`` (first error)."""
    if not isinstance(data, Mapping):
        raise DsoRegistryError(f"{where}: must be a mapping of DSO fields, got {type(data).__name__}")
    try:
        return Dso.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(entry)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise DsoRegistryError(
            f"{where}: field '{field}': {err['msg'].removeprefix('Value error, ')}{more}"
        ) from None


def dso_from_record(rec: Mapping[str, Any]) -> Dso:
    """Validate a decoded FlexDso record (``updated_at`` as epoch ms or datetime)."""
    data = {k: v for k, v in rec.items() if k != "event_id"}
    if hasattr(data.get("updated_at"), "timestamp"):
        data["updated_at"] = int(round(data["updated_at"].timestamp() * 1000))
    return validate_dso(data, f"FlexDso '{rec.get('dso_id', '?')}'")


def load_dso_file(path: Path | str, updated_at: int = 0) -> list[Dso]:
    """Validate a YAML registry file (top level ``dsos:`` list); every entry gets ``updated_at`` (UTC epoch ms)
    unless it sets one. Errors name the file, the entry and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise DsoRegistryError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise DsoRegistryError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("dsos"), list):
        raise DsoRegistryError(f"{path}: top level must be a mapping with a 'dsos' list")
    unknown = set(data) - {"dsos"}
    if unknown:
        raise DsoRegistryError(f"{path}: unknown top-level key(s) {sorted(unknown)} (expected dsos)")
    out: list[Dso] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(data["dsos"]):
        name = entry.get("dso_id", "?") if isinstance(entry, dict) else "?"
        where = f"{path}: dsos[{i}] '{name}'"
        if isinstance(entry, dict):
            entry = {"updated_at": updated_at, **entry}
        dso = validate_dso(entry, where)
        if dso.dso_id in seen:
            raise DsoRegistryError(f"{where}: field 'dso_id': duplicate of dsos[{seen[dso.dso_id]}]")
        seen[dso.dso_id] = i
        out.append(dso)
    return out


class DsoRegistry:
    """The registry rebuilt from ``flex.dsos.v1``: per DSO the entry with the highest ``updated_at``; a revoked
    (inactive) entry keeps its version, so an older record replayed later cannot re-activate the DSO."""

    def __init__(self, dsos: list[Dso] | None = None):
        self._by_id: dict[str, Dso] = {}
        for d in dsos or []:
            self.upsert(d)

    def upsert(self, dso: Dso) -> bool:
        """Apply one entry; False (ignored) when a later version is already known."""
        old = self._by_id.get(dso.dso_id)
        if old is not None and old.updated_at > dso.updated_at:
            return False
        self._by_id[dso.dso_id] = dso
        return True

    def active(self, dso_id: str) -> Dso | None:
        """The DSO's entry if it is registered and active."""
        d = self._by_id.get(dso_id)
        return d if d is not None and d.active else None

    def by_uftp_domain(self, domain: str) -> Dso | None:
        """The active DSO whose UFTP sender domain is ``domain``."""
        for d in self._by_id.values():
            if d.active and d.uftp_domain == domain:
                return d
        return None

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Dso]:
        return iter(sorted(self._by_id.values(), key=lambda d: d.dso_id))
