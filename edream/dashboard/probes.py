"""Is the chain up? Is ClickHouse up? Cheap probes for the console's dependency alerts (blocking: run them off
the event loop)."""

from __future__ import annotations

from typing import Any

import httpx

#: Seconds a probe may take before its dependency counts as down.
PROBE_TIMEOUT_S = 3.0


def chain_status(rpc_url: str | None, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """``eth_blockNumber`` on the JSON-RPC endpoint: ``{"up": True, "detail": "block N"}`` or why not."""
    if not rpc_url:
        return {"up": False, "detail": "no ETH_RPC_URL configured"}
    try:
        r = httpx.post(
            rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
            timeout=timeout_s,
        )
        r.raise_for_status()
        return {"up": True, "detail": f"block {int(r.json()['result'], 16)}"}
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return {"up": False, "detail": f"{type(exc).__name__}: {exc}"[:200]}


def clickhouse_status(client: Any) -> dict[str, Any]:
    """``SELECT 1`` on the panels' client (run it on the ClickHouse thread)."""
    try:
        client.query("SELECT 1")
        return {"up": True, "detail": "SELECT 1 answered"}
    except Exception as exc:  # noqa: BLE001 - any failure means down, shown to the operator
        return {
            "up": False,
            "detail": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200],
        }
