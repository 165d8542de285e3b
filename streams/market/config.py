"""Market session configuration: slot grid, gate closure, price bounds, clearing rule, imbalance prices, and the
optional grid limits (:mod:`streams.market.network_config`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.market.clearing import ClearingRule, Rationing
from streams.market.network_config import NetworkConfig

MINUTE_MS = 60_000


class MarketConfigError(ValueError):
    """An invalid market config file; the message names the file, the entry and the field."""


def _where(data: object, loc: tuple) -> str:
    """``network.participants[2] 'P7': field 'congestion_points'`` from a pydantic error location."""
    parts, node, entry = [], data, ""
    for key in loc:
        if isinstance(key, int):
            parts[-1] += f"[{key}]"
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict):
                name = node.get("id", node.get("participant_id"))
                entry = f"{'.'.join(parts)} {name!r}: " if name is not None else f"{'.'.join(parts)}: "
                parts = []
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return f"{entry}field '{'.'.join(parts) or '(entry)'}'"


class MarketConfig(BaseModel):
    """One market: every delivery slot of ``slot_minutes`` is a session that clears at its gate closure.

    Prices are currency micro-units per kWh, times UTC epoch ms. ``allowed_lateness_ms`` delays the watermark that
    drives gate closure, so that orders sent before the gate but delivered slightly out of order still count.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    market_id: str = Field("p2p-local", pattern=r"^[A-Za-z0-9_.-]+$")
    slot_minutes: Literal[15, 60] = 15
    gate_closure_lead_ms: int = Field(
        15 * MINUTE_MS, ge=0, description="gate closes this long before slot start"
    )
    price_floor_micro_per_kwh: int = 0
    price_cap_micro_per_kwh: int = 1_000_000
    rule: ClearingRule = ClearingRule.UNIFORM
    rationing: Rationing = Rationing.PRO_RATA
    imbalance_price_micro_per_kwh: int = Field(
        50_000, ge=0, description="charged per kWh a seller fails to deliver"
    )
    surplus_credit_micro_per_kwh: int = Field(
        0, ge=0, description="paid per kWh a seller exports beyond its sales"
    )
    allowed_lateness_ms: int = Field(0, ge=0)
    chain_id: int = Field(31337, description="EIP-712 domain chainId orders are signed for")
    currency: str = "EUR"
    network: NetworkConfig | None = Field(
        None,
        description="congestion points and zones: clear within their limits (absent: the grid is ignored)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> MarketConfig:
        if self.price_floor_micro_per_kwh > self.price_cap_micro_per_kwh:
            raise ValueError("price_floor_micro_per_kwh must be <= price_cap_micro_per_kwh")
        return self

    @classmethod
    def from_yaml(cls, path: Path | str) -> MarketConfig:
        """Read and validate a config file; :class:`MarketConfigError` names the file, the entry and the field."""
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise MarketConfigError(f"{path}: not valid YAML: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            loc, msg = tuple(err["loc"]), err["msg"]
            if (
                err["type"] == "value_error" and loc
            ):  # a section's own check: its message names entry and field
                why = f"{'.'.join(map(str, loc))}.{msg.removeprefix('Value error, ')}"
            else:
                why = f"{_where(data, loc)}: {msg}"
            raise MarketConfigError(f"{path}: {why}{more}") from None

    @property
    def slot_ms(self) -> int:
        return self.slot_minutes * MINUTE_MS

    def slot_of(self, ts_ms: int) -> int:
        """Start (UTC epoch ms) of the slot containing ``ts_ms``."""
        return ts_ms - ts_ms % self.slot_ms

    def is_slot_start(self, ts_ms: int) -> bool:
        return ts_ms % self.slot_ms == 0

    def gate_closure(self, slot_start: int) -> int:
        """Gate closure of a slot (UTC epoch ms): orders must be sent strictly before it."""
        return slot_start - self.gate_closure_lead_ms

    def session_id(self, slot_start: int) -> str:
        """Deterministic session id, e.g. ``p2p-local/2026-11-23T12:00Z/15m``."""
        stamp = datetime.fromtimestamp(slot_start / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")
        return f"{self.market_id}/{stamp}/{self.slot_minutes}m"

    def price_in_bounds(self, price: int) -> bool:
        return self.price_floor_micro_per_kwh <= price <= self.price_cap_micro_per_kwh
