"""``edream verify``: independent verification of anchored settlements against the chain.

Both commands read the settlement rows from ClickHouse (``CLICKHOUSE_DSN``), the root from the AnchorRegistry
(``ETH_RPC_URL``, or the running embedded anvil; address from ``ANCHOR_REGISTRY_ADDRESS`` or the data dir) and
print a human summary followed by one JSON object on the last line. Exit code 0 = VALID, 1 = INVALID,
2 = cannot verify (chain or store not reachable/configured). No signing key is needed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Verify anchored settlement windows and single settlement records against the Ethereum anchor "
    "(Merkle root per kind and window in the AnchorRegistry contract). Prints VALID or exactly what differs.",
    no_args_is_help=True,
)

FlexTable = Annotated[str, typer.Option("--flex-table", help="ClickHouse table of FLEX settlements")]
MarketTable = Annotated[str, typer.Option("--market-table", help="ClickHouse table of MARKET settlements")]


def _service(flex_table: str, market_table: str) -> Any:
    from edream.clickhouse import get_client
    from edream.settings import load_settings
    from streams.anchoring.service import AnchoringService, connect
    from streams.anchoring.store import AnchorStore

    settings = load_settings()
    try:
        client = connect(settings, sign=False)
        store = AnchorStore(get_client(settings), {"FLEX": flex_table, "MARKET": market_table})
    except Exception as exc:  # noqa: BLE001 - reported as "cannot verify"
        typer.echo(f"cannot verify: {exc}", err=True)
        typer.echo(json.dumps({"status": "ERROR", "error": str(exc)}))
        raise typer.Exit(2) from exc
    return AnchoringService(client, store)


def _via_running_platform(path: str, params: dict[str, str]) -> dict[str, Any] | None:
    """With the embedded chDB, the running ``edream run`` process owns the data dir (one process per dir):
    ask it to verify instead. None when ClickHouse is a server or no platform runs here."""
    import httpx

    from edream.settings import load_settings
    from edream.stack import RunState

    settings = load_settings()
    live = RunState.load_live(settings)
    if not settings.effective_clickhouse_dsn.startswith("chdb://") or live is None:
        return None
    try:
        return httpx.get(f"{live.web_url}{path}", params=params, timeout=120).json()
    except Exception as exc:  # noqa: BLE001 - reported as "cannot verify"
        typer.echo(f"cannot verify: running platform at {live.web_url} did not answer: {exc}", err=True)
        raise typer.Exit(2) from exc


def _cannot(report: dict[str, Any]) -> None:
    if report.get("status") == "ERROR":
        typer.echo(report.get("error", "cannot verify"), err=True)
        typer.echo(json.dumps(report, default=str, sort_keys=True))
        raise typer.Exit(2)


def _emit(report: dict[str, Any], headline: str) -> None:
    typer.echo(f"{report['status']}: {headline}")
    for p in report.get("problems", []):
        typer.echo(f"  - {p}")
    typer.echo(json.dumps(report, default=str, sort_keys=True))
    raise typer.Exit(0 if report["status"] == "VALID" else 1)


@app.command("window")
def window_cmd(
    kind: Annotated[str, typer.Argument(help="settlement kind: FLEX or MARKET")],
    window: Annotated[str, typer.Argument(help="anchor window id, e.g. 2026-11-23T10:15Z/15m")],
    flex_table: FlexTable = "settlement_flex",
    market_table: MarketTable = "market_settlement",
) -> None:
    """Recompute the window's Merkle root from ClickHouse and compare it with the on-chain root; name the
    tampered, missing or unexpected rows using the anchor manifest (itself checked against the root)."""
    rep = _via_running_platform("/api/verify", {"kind": kind.upper(), "window": window})
    if rep is None:
        rep = _service(flex_table, market_table).verify_window(kind.upper(), window).to_dict()
    _cannot(rep)
    _emit(
        rep,
        f"{kind.upper()} {window}: {rep['record_count']} rows, on-chain root {rep['on_chain_root']}, "
        f"recomputed {rep['recomputed_root']}",
    )


@app.command("record")
def record_cmd(
    settlement_id: Annotated[str, typer.Argument(help="settlement_id of the record to prove")],
    flex_table: FlexTable = "settlement_flex",
    market_table: MarketTable = "market_settlement",
) -> None:
    """Print the record, its Merkle proof and the on-chain root; VALID if the proof folds to the root (checked
    in Python and by the contract's verifyLeaf), else what does not match."""
    rep = _via_running_platform("/api/verify/record", {"id": settlement_id})
    if rep is None:
        rep = _service(flex_table, market_table).verify_record(settlement_id).to_dict()
    _cannot(rep)
    if rep["record"] is not None:
        typer.echo("record: " + json.dumps(rep["record"], default=str, sort_keys=True))
    typer.echo(f"leaf: {rep['leaf']}  anchored leaf: {rep['anchored_leaf']}")
    typer.echo(f"proof ({len(rep['proof'])} hashes): " + " ".join(rep["proof"]))
    _emit(rep, f"{settlement_id} in {rep['kind']} {rep['window_id']}, on-chain root {rep['on_chain_root']}")
