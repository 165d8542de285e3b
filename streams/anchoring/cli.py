"""``edream verify``: independent verification of anchored settlements and DR contract terms against the chain.

``window`` and ``record`` read the settlement rows from ClickHouse (``CLICKHOUSE_DSN``), the root from the AnchorRegistry
(``ETH_RPC_URL``, or the running embedded anvil; address from ``ANCHOR_REGISTRY_ADDRESS`` or the data dir) and
print a human summary followed by one JSON object on the last line. Exit code 0 = VALID, 1 = INVALID,
2 = cannot verify (chain or store not reachable/configured). No signing key is needed.

``terms`` reads a prosumer's current enrolment from ``flex.enrolments.v1`` (or a JSON file), recomputes the
keccak256 of its canonical contract document and compares it with the versions registered in the
ContractTermsRegistry (address from ``TERMS_REGISTRY_ADDRESS`` or the data dir): 0 = VALID, 1 = MISMATCH or
NOT_REGISTERED, 2 = cannot verify.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Verify anchored settlement windows and single settlement records against the Ethereum anchor "
    "(Merkle root per kind and window in the AnchorRegistry contract), and prosumers' DR contract terms against "
    "the ContractTermsRegistry. Prints VALID or exactly what differs.",
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
    from edream.web_auth import auth_headers

    settings = load_settings()
    live = RunState.load_live(settings)
    if not settings.effective_clickhouse_dsn.startswith("chdb://") or live is None:
        return None
    try:
        headers = auth_headers(settings)
        return httpx.get(f"{live.web_url}{path}", params=params, headers=headers, timeout=120).json()
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


def _fail(message: str) -> typer.Exit:
    typer.echo(f"cannot verify: {message}", err=True)
    typer.echo(json.dumps({"status": "ERROR", "error": message}))
    return typer.Exit(2)


@app.command("terms")
def terms_cmd(
    prosumer_id: Annotated[str, typer.Argument(help="prosumer whose DR contract terms to check")],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="JSON file of the enrolment (a FlexEnrolment event with record_json, or the bare registry "
            "record); default: the prosumer's current record on the enrolment topic",
        ),
    ] = None,
    topic: Annotated[str, typer.Option(help="enrolment topic (compacted)")] = "flex.enrolments.v1",
) -> None:
    """Recompute the terms hash (keccak256 of the canonical contract document) of the prosumer's enrolment and
    compare it with the ContractTermsRegistry: VALID with the version and block if the latest registered version
    carries it, MISMATCH (naming a superseded version if it matches one) or NOT_REGISTERED."""
    from edream.settings import load_settings
    from edream.stack import NoBroker, resolve_bootstrap
    from streams.anchoring.enrolment_lookup import latest_enrolment
    from streams.anchoring.service import connect_terms
    from streams.anchoring.terms import TermsError, contract_key, record_from_document, verify_terms

    settings = load_settings()
    try:
        if file is not None:
            doc = json.loads(file.read_text())
        else:
            doc = latest_enrolment(settings, resolve_bootstrap(settings), topic, prosumer_id)
            if doc is None:
                raise _fail(f"no enrolment of {prosumer_id} on {topic}")
        record, problems, _ = record_from_document(doc)
    except (OSError, ValueError, TermsError, NoBroker, LookupError, TimeoutError) as exc:
        raise _fail(str(exc)) from exc
    if record.prosumer_id != prosumer_id:
        raise _fail(f"the enrolment is of {record.prosumer_id!r}, not {prosumer_id!r}")
    try:
        client = connect_terms(settings, sign=False)
        versions = client.versions(contract_key(record.terms.aggregator_id, record.prosumer_id))
    except Exception as exc:  # noqa: BLE001 - chain unreachable or not configured
        raise _fail(str(exc)) from exc
    rep = verify_terms(record, versions, problems).to_dict()
    rep["contract_address"] = client.address
    where = f"version {rep['version']} (block {rep['block_number']})" if rep["version"] else "no version"
    typer.echo(
        f"{rep['status']}: {prosumer_id} terms {rep['terms_hash']} vs {where} of contract {rep['contract_ref']} "
        f"({rep['contract_id']}) at {client.address}"
    )
    for p in rep["problems"]:
        typer.echo(f"  - {p}")
    for n in rep["notes"]:
        typer.echo(f"  note: {n}")
    typer.echo(json.dumps(rep, default=str, sort_keys=True))
    raise typer.Exit(0 if rep["status"] == "VALID" else 1)
