"""Synthetic Settlement records (Avro field set) for tests, benchmarks and demos. Deterministic: same arguments,
same record."""

from __future__ import annotations

from typing import Any

SLOT_MS = 15 * 60_000
T0_MS = 1_795_000_500_000 - 1_795_000_500_000 % 86_400_000  # midnight UTC 2026-11-18, epoch ms


def synthetic_settlement(
    i: int, kind: str = "FLEX", slot: int = 0, version: int = 1, t0_ms: int = T0_MS, **override: Any
) -> dict[str, Any]:
    """Settlement ``i`` of 15-minute slot ``slot`` after ``t0_ms``; ``override`` replaces fields."""
    start = t0_ms + slot * SLOT_MS
    rec: dict[str, Any] = {
        "event_id": f"ev-{kind}-{slot}-{i}-{version}",
        "settlement_id": f"st-{kind}-{slot}-{i}",
        "kind": kind,
        "window_id": f"slot-{slot}",
        "window_start": start,
        "window_end": start + SLOT_MS,
        "party_id": f"prosumer-{i:06d}",
        "reference_id": f"order-{slot}",
        "quantity_wh": 1000 + i,
        "amount_micro": 250_000 * (i % 7) - 500_000,
        "currency": "EUR",
        "details": "",
        "version": version,
        "computed_at": start + SLOT_MS + 60_000,
    }
    rec.update(override)
    return rec
