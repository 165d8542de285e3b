"""The VTN's configuration file (YAML): the server and the registry of the VENs allowed to register.

Registration policy: only listed VENs register, by their ``ven_name``; each gets its configured ``ven_id`` and
stands for exactly one prosumer. When the VTN serves TLS (``tls`` set) every VEN must have the SHA-256 fingerprint
of its client certificate (openleadr's ``AA:BB:...`` form, last 10 bytes) and registration from another certificate
is refused; message signatures are then checked by the library against that fingerprint. Over plain HTTP (loopback
demos and tests) fingerprints are optional and not checked: there is no certificate to compare.

Errors name the file, the entry and the field: ``vtn.yaml: vens[1] 'ven-p002': field 'prosumer_id': ...``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.validation.fields import ID_PATTERN

_FINGERPRINT = re.compile(r"^([0-9A-F]{2}:){9}[0-9A-F]{2}$")
#: the VTN's default HTTP port: next to the platform's dashboard (8088), UFTP gateway and simulated EV API (8089),
#: REST API (8090) and the host ports docker/compose.yaml gives its workers (8088-8095)
DEFAULT_PORT = 8096


class OpenAdrConfigError(ValueError):
    """An invalid VTN config; the message names file, entry and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _identifier(v: str) -> str:
    if not ID_PATTERN.fullmatch(v) or len(v) > 128:
        raise ValueError(f"{v!r} is not an identifier (letters, digits, _.:/@#+=~-, at most 128)")
    return v


class Ven(_Strict):
    """One site's VEN. ``devices``: report resource_id -> device_id of its readings (default
    ``<ven_id>.<resource_id>``). ``net_meter``: whether its power reports are the prosumer's net meter (the
    readings then carry ``prosumer_id`` and count in the prosumer's delivery and baselines); false for a site whose
    net power is metered by another connector: its reports are readings of their own device only, without
    ``prosumer_id``, so they never mix into that meter's series."""

    ven_id: str
    ven_name: str = Field(min_length=1, max_length=128)
    prosumer_id: str
    site_id: str | None = None
    fingerprint: str | None = None
    devices: dict[str, str] = {}
    net_meter: bool = True
    vpp_assets: list[
        str
    ] = []  # VPP assets at the site (vpp.assets.v1 ids): their dispatch set points are events

    _ids = field_validator("ven_id", "prosumer_id", "site_id")(
        classmethod(lambda cls, v: v if v is None else _identifier(v))
    )

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, v: str | None) -> str | None:
        if v is not None and not _FINGERPRINT.match(v.upper()):
            raise ValueError("must be 10 hex bytes separated by ':' (openleadr's certificate fingerprint)")
        return None if v is None else v.upper()

    @field_validator("vpp_assets")
    @classmethod
    def _assets(cls, v: list[str]) -> list[str]:
        for asset_id in v:
            _identifier(asset_id)
        return v

    @field_validator("devices")
    @classmethod
    def _devices(cls, v: dict[str, str]) -> dict[str, str]:
        for device_id in v.values():
            _identifier(device_id)
        return v

    def device_id(self, resource_id: str) -> str:
        return self.devices.get(resource_id) or f"{self.ven_id}.{resource_id}"


class Tls(_Strict):
    """PEM paths: the server certificate and key (HTTPS and message signing) and the CA of the VENs' client
    certificates."""

    cert: Path
    key: Path
    ca_file: Path


class Vtn(_Strict):
    """``vtn_id``: our OpenADR id (needs an upper-case letter: openleadr VENs flag lower-case ids); ``poll_seconds``:
    the poll frequency we ask VENs for; ``report_seconds``: the telemetry sampling interval we request (clamped to
    what each VEN offers); ``market_context``: the DR program URI of our events."""

    vtn_id: str = "EDREAM-VTN"
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    poll_seconds: float = Field(10.0, gt=0, le=86_400)
    report_seconds: float = Field(60.0, gt=0, le=86_400)
    market_context: str = "oadr://edream/flex"
    tls: Tls | None = None

    @field_validator("vtn_id")
    @classmethod
    def _vtn_id(cls, v: str) -> str:
        _identifier(v)
        if v.islower():
            raise ValueError("must contain an upper-case letter (OpenADR VENs reject lower-case VTN ids)")
        return v


class VtnConfig(_Strict):
    vtn: Vtn = Vtn()
    vens: list[Ven] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> VtnConfig:
        for name in ("ven_id", "ven_name", "prosumer_id"):
            seen: set[str] = set()
            for i, ven in enumerate(self.vens):
                value = getattr(ven, name)
                if value in seen:
                    raise _EntryError(i, name, f"{value!r} is used by more than one VEN")
                seen.add(value)
        sites: dict[str, str] = {}
        for i, ven in enumerate(self.vens):
            for asset_id in ven.vpp_assets:
                if asset_id in sites:
                    raise _EntryError(i, "vpp_assets", f"{asset_id!r} is also at VEN {sites[asset_id]!r}")
                sites[asset_id] = ven.ven_id
        if self.vtn.tls is not None:
            for i, ven in enumerate(self.vens):
                if ven.fingerprint is None:
                    raise _EntryError(i, "fingerprint", "required when the VTN serves TLS")
        return self

    def by_name(self, ven_name: str) -> Ven | None:
        return next((v for v in self.vens if v.ven_name == ven_name), None)

    def by_id(self, ven_id: str) -> Ven | None:
        return next((v for v in self.vens if v.ven_id == ven_id), None)

    def by_prosumer(self, prosumer_id: str) -> Ven | None:
        return next((v for v in self.vens if v.prosumer_id == prosumer_id), None)

    def asset_sites(self) -> dict[str, str]:
        """VPP asset id -> the prosumer of the VEN whose site holds it."""
        return {a: v.prosumer_id for v in self.vens for a in v.vpp_assets}


class _EntryError(ValueError):
    def __init__(self, index: int, field: str, msg: str):
        super().__init__(msg)
        self.index, self.field, self.msg = index, field, msg


def _where(data: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "vens" and isinstance(loc[1], int):
        vens = data.get("vens") or []
        entry = vens[loc[1]] if loc[1] < len(vens) and isinstance(vens[loc[1]], Mapping) else {}
        label = f"vens[{loc[1]}]" + (f" {entry['ven_id']!r}" if "ven_id" in entry else "")
        return f"{label}: field '{'.'.join(map(str, loc[2:])) or 'entry'}'"
    return f"field '{'.'.join(map(str, loc))}'"


def parse_config(data: Any, source: str = "<config>") -> VtnConfig:
    """Validate a decoded config; :class:`OpenAdrConfigError` names ``source``, the entry and the field."""
    if not isinstance(data, Mapping):
        raise OpenAdrConfigError(f"{source}: top level must be a mapping with 'vtn' and 'vens'")
    try:
        return VtnConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _EntryError):
            raise OpenAdrConfigError(
                f"{source}: {_where(data, ('vens', cause.index, cause.field))}: {cause.msg}"
            ) from None
        raise OpenAdrConfigError(f"{source}: {_where(data, tuple(err['loc']))}: {err['msg']}") from None


def load_config(path: Path | str) -> VtnConfig:
    """Read and validate the YAML file at ``path``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise OpenAdrConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise OpenAdrConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path))


def write_config(
    path: Path | str,
    *,
    port: int,
    poll_seconds: float,
    ven_name: str,
    ven_id: str,
    prosumer_id: str,
    report_seconds: float = 60.0,
    host: str = "127.0.0.1",
    site_id: str | None = None,
    devices: Mapping[str, str] | None = None,
    net_meter: bool = True,
) -> VtnConfig:
    """Write a VTN config for one VEN to ``path`` (YAML, replaced atomically) and return it. It is validated by
    :func:`parse_config` before anything is written (an invalid value raises :class:`OpenAdrConfigError` naming
    ``path``, the entry and the field), so ``edream openadr serve -c path`` loads exactly this. ``poll_seconds`` /
    ``report_seconds``: the VEN's poll period and the telemetry sampling interval asked of it, seconds."""
    path = Path(path)
    ven: dict[str, Any] = {"ven_id": ven_id, "ven_name": ven_name, "prosumer_id": prosumer_id}
    ven |= {"site_id": site_id, "devices": dict(devices or {}), "net_meter": net_meter}
    vtn = {"host": host, "port": port, "poll_seconds": poll_seconds, "report_seconds": report_seconds}
    cfg = parse_config({"vtn": vtn, "vens": [{k: v for k, v in ven.items() if v is not None}]}, str(path))
    text = yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True), sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"# OpenADR 2.0b VTN config written by connectors.openadr.config.write_config\n{text}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return cfg
