"""Market session configuration: slot grid, gate closure, price bounds, clearing rule, imbalance prices."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.market.clearing import ClearingRule, Rationing

MINUTE_MS = 60_000


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

    @model_validator(mode="after")
    def _bounds(self) -> MarketConfig:
        if self.price_floor_micro_per_kwh > self.price_cap_micro_per_kwh:
            raise ValueError("price_floor_micro_per_kwh must be <= price_cap_micro_per_kwh")
        return self

    @classmethod
    def from_yaml(cls, path: Path | str) -> MarketConfig:
        return cls.model_validate(yaml.safe_load(Path(path).read_text()) or {})

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
