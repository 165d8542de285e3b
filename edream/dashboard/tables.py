"""Which ClickHouse table holds what. Defaults are the sinks' names in topology.yaml and the areas' modules;
a deployment may override them with ``EDREAM_DASHBOARD_TABLES`` (JSON object, e.g. ``{"forecasts": "fc"}``)."""

from __future__ import annotations

import json
import os

DEFAULT_TABLES: dict[str, str] = {
    "measurements": "measurements",  # meter.readings.raw.v1 (Measurement), topology sink
    "intervals": "intervals_15m",  # meter.intervals.15m.v1 (IntervalEnergy)
    "forecasts": "forecasts",  # forecast.profiles.v1 (Forecast)
    "baselines": "baselines",  # baseline.15m.v1 (Baseline)
    "flex_enrolments": "flex_enrolments",  # flex.enrolments.v1 (FlexEnrolment), topology sink
    "flex_orders": "flex_orders",  # streams/flex/sinks.py
    "flex_deviations": "flex_deviations",
    "settlement_flex": "settlement_flex",
    "market_orders": "market_orders",  # market.orders.v1 (every submitted order), topology sink
    "market_orders_accepted": "market_orders_accepted",  # market.orders.accepted.v1 (the validated book)
    "market_clearing": "market_clearing",  # streams/market/queries.sql
    "market_trades": "market_trades",
    "market_settlement": "market_settlement",
    "chain_anchors": "chain_anchors",  # streams/anchoring/store.py
    "chain_anchor_leaves": "chain_anchor_leaves",  # chain.anchor.leaves.v1 (AnchorLeaf), the anchor manifests
    "vpp_export": "vpp_export",  # vpp.export.v1 (VppExportCapacity), topology sink
    "vpp_capability": "vpp_capability",  # vpp.capability.v1 (VppCapability), topology sink
    "device_commands": "device_commands",  # device.commands.v1 (DeviceCommand), topology sink
    "device_command_results": "device_command_results",  # device.command.results.v1
    "grid_congestion": "grid_congestion",  # grid.congestion.v1 (GridCongestion), topology sink
    "grid_relief": "grid_relief",  # grid.relief.v1 (GridRelief), topology sink
    "deadletters": "deadletters",  # platform.deadletter.v1 if sunk
}


def table_names(env: str | None = None) -> dict[str, str]:
    """Defaults overridden by the JSON mapping in ``env`` (default: ``$EDREAM_DASHBOARD_TABLES``)."""
    raw = env if env is not None else os.environ.get("EDREAM_DASHBOARD_TABLES", "")
    out = dict(DEFAULT_TABLES)
    if raw.strip():
        extra = json.loads(raw)
        if not isinstance(extra, dict):
            raise ValueError("EDREAM_DASHBOARD_TABLES must be a JSON object of logical name -> table")
        out.update({str(k): str(v) for k, v in extra.items()})
    return out
