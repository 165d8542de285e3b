"""``edream vpp``: operator commands of the virtual power plant. Each prints its result as a final JSON line.

``capability`` and ``export`` evaluate offline when given a portfolio file, else they ask the running platform
(the ``vpp`` agent): ``capability`` sends a VppCapabilityRequest and waits for its answer, ``export`` prints the
latest VppExportCapacity. ``asset add|load|remove|list`` maintain the asset registry (``vpp.assets.v1``).
``degradation --asset ID`` estimates a PV asset's Rd from its history and publishes it on
``vpp.pv.degradation.v1`` (:mod:`streams.vpp.pv_degradation`).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import typer

from streams.vpp.capability import CapabilityRequest, evaluate_capability
from streams.vpp.events import (
    TOPIC_CAPABILITY,
    TOPIC_CAPABILITY_REQUESTS,
    TOPIC_EXPORT,
    asset_from_dict,
    asset_to_dict,
    capability_record,
    export_record,
    request_record,
    service_from_name,
)
from streams.vpp.export import ExportRequest, Market, ResForecast, evaluate_export, next_slot_start
from streams.vpp.registry import (
    TOPIC_ASSETS,
    AssetSpec,
    RegistryError,
    asset_record,
    load_portfolio_file,
    validate_spec,
)

app = typer.Typer(
    help="Virtual power plant: asset registry, reserve/frequency capability, 30-minute export capacity, "
    "prosumer clustering and PV degradation.",
    no_args_is_help=True,
)
asset_app = typer.Typer(
    help="The VPP asset registry (compacted topic vpp.assets.v1) of the running platform.",
    no_args_is_help=True,
)
app.add_typer(asset_app, name="asset")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(2)


def _load_portfolio(path: Path):
    """Assets of a JSON list of ``Asset`` fields, or of a YAML portfolio file (see streams.vpp.registry)."""
    if path.suffix in (".yaml", ".yml"):
        try:
            return [s.to_asset() for s in load_portfolio_file(path)]
        except RegistryError as exc:
            raise _fail(str(exc)) from None
    data = json.loads(path.read_text())
    return [asset_from_dict(d) for d in (data["assets"] if isinstance(data, dict) else data)]


def _client():
    from edream.settings import load_settings
    from edream.stack import NoBroker
    from streams.vpp.client import PlatformClient

    try:
        return PlatformClient.connect(load_settings())
    except NoBroker as exc:
        raise _fail(str(exc)) from None


def _print(obj) -> None:
    typer.echo(json.dumps(obj, sort_keys=True, default=str))


@app.command()
def capability(
    portfolio: Path | None = typer.Argument(
        None,
        exists=True,
        help="JSON list of assets (fields of streams.vpp.assets.Asset) or a YAML portfolio file; "
        "omit it to ask the running platform",
    ),
    service: str = typer.Option("STATIC_FFR", help="EFR, DYNAMIC_FFR, STATIC_FFR or STOR"),
    start_ms: int = typer.Option(0, help="Window start, UTC epoch ms (0 = next quarter hour)"),
    slots: int = typer.Option(2, min=1, help="Number of slots in the window"),
    slot_minutes: int = typer.Option(15, min=1, help="Slot length, minutes"),
    demand_kw: float | None = typer.Option(None, help="Output the generators must keep delivering, kW"),
    lead_s: float = typer.Option(
        0.0,
        help="Offline: seconds between now and the window start (start-up lead time); the platform uses "
        "the time from the request to the window start",
    ),
    vpp_id: str = typer.Option("vpp", help="Portfolio id"),
    request_id: str | None = typer.Option(None, help="Request id (platform mode; default: new unique id)"),
    timeout: float = typer.Option(60.0, help="Platform mode: seconds to wait for the answer"),
    dry_run: bool = typer.Option(False, help="Platform mode: print the request record instead of sending it"),
) -> None:
    """Evaluate deliverable reserve/frequency capacity (unit commitment + economic dispatch, Pyomo + HiGHS):
    offline against PORTFOLIO, or by the running platform's vpp agent against its asset registry."""
    try:
        spec = service_from_name(service)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if portfolio is None and lead_s:
        raise _fail(
            "--lead-s is for offline evaluation: the platform evaluates a request at its request time (now), "
            "so the lead time is the time until --start-ms"
        )
    quarter = 15 * 60_000
    now = _now_ms()
    start = start_ms or (now // quarter + 1) * quarter
    rid = request_id or f"{vpp_id}/{service}/{start}"
    if portfolio is None and request_id is None:
        rid += f"/{uuid.uuid4().hex[:8]}"  # a fresh question (the platform answers each request id once)
    req = CapabilityRequest(
        rid,
        spec,
        start,
        start + slots * slot_minutes * 60_000,
        slot_minutes,
        # offline: evaluated ``lead_s`` before the window; platform: ``requested_at`` is the request's event time,
        # which the stage validates against its wall clock (a future one would be dead-lettered)
        now_ms=start - int(lead_s * 1000) if portfolio is not None else now,
        demand_kw=(demand_kw,) * slots if demand_kw else None,
    )
    if portfolio is not None:
        result = evaluate_capability(_load_portfolio(portfolio), req)
        _print(capability_record(result, vpp_id, _now_ms()))
        return
    record = request_record(req, vpp_id, now)
    if dry_run:
        _print(record)
        return
    client = _client()
    client.send(TOPIC_CAPABILITY_REQUESTS, "VppCapabilityRequest", vpp_id, [record])

    def answered(recs: list[dict]) -> bool:
        return any(r["request_id"] == rid for r in recs)

    answers = [r for r in client.read(TOPIC_CAPABILITY, answered, timeout) if r["request_id"] == rid]
    if not answers:
        raise _fail(
            f"no answer to {rid} on {client.topic(TOPIC_CAPABILITY)} within {timeout:g} s "
            "(is the vpp agent running? `edream status`)"
        )
    _print(answers[-1])


@app.command()
def export(
    portfolio: Path | None = typer.Argument(
        None,
        exists=True,
        help="JSON list of assets (generators, curtailable loads) or a YAML portfolio file; omit it to show "
        "the running platform's latest evaluation",
    ),
    res_p50_kw: float = typer.Option(0.0, help="Sum of RES forecasts for the slot, median, kW"),
    res_p10_kw: float | None = typer.Option(None, help="Sum of RES forecasts, firm P10, kW (default = P50)"),
    load_kw: float = typer.Option(0.0, help="Community load forecast for the slot, kW"),
    price: float | None = typer.Option(
        None, help="Price forecast, currency per kWh (e.g. 0.18); offline only"
    ),
    threshold: float = typer.Option(0.10, help="Price threshold, currency per kWh"),
    quantile: float = typer.Option(0.1, help="Offer quantile: 0.1 firm, 0.5 median"),
    market: Market = typer.Option(Market.INTRADAY, help="INTRADAY or IMBALANCE"),
    now_ms: int = typer.Option(0, help="Evaluation time, UTC epoch ms (0 = now); slot = 60 min ahead"),
    vpp_id: str = typer.Option("vpp", help="Portfolio id"),
    timeout: float = typer.Option(20.0, help="Platform mode: seconds to wait for an evaluation"),
) -> None:
    """Export capacity and offer for the next 30-minute trading slot (community load served first): offline
    from PORTFOLIO and the given forecasts, or the platform's latest evaluation of VPP_ID (the vpp agent
    evaluates every 30 minutes from its asset registry, forecasts and baselines)."""
    if portfolio is None:
        client = _client()

        def found(recs: list[dict]) -> bool:
            return any(r["vpp_id"] == vpp_id for r in recs)

        mine = [r for r in client.read(TOPIC_EXPORT, None, timeout) if r["vpp_id"] == vpp_id]
        if not mine:  # none yet: follow the topic until the first evaluation arrives
            mine = [r for r in client.read(TOPIC_EXPORT, found, timeout) if r["vpp_id"] == vpp_id]
        if not mine:
            raise _fail(
                f"no export evaluation of {vpp_id} on {client.topic(TOPIC_EXPORT)} within {timeout:g} s"
            )
        _print(max(mine, key=lambda r: (r["evaluated_at"], r["slot_start"])))
        return
    if price is None:
        raise _fail("--price is required when evaluating a portfolio file")
    now = now_ms or _now_ms()
    req = ExportRequest(
        vpp_id,
        next_slot_start(now),
        now,
        int(round(price * 1e6)),
        int(round(threshold * 1e6)),
        market,
        30,
        quantile,
    )
    res = [ResForecast("res", res_p50_kw, res_p50_kw if res_p10_kw is None else res_p10_kw)]
    _print(export_record(evaluate_export(req, res, _load_portfolio(portfolio), load_kw)))


@app.command("demo-portfolio")
def demo_portfolio(n: int = typer.Argument(20, help="Number of assets"), seed: int = typer.Option(0)) -> None:
    """Print a random plausible portfolio as JSON (input for `capability` / `export`)."""
    from tools.sim.vpp_portfolio import random_portfolio

    typer.echo(json.dumps([asset_to_dict(a) for a in random_portfolio(n, seed)]))


@app.command("cluster-eval")
def cluster_eval(
    k: int = typer.Option(20, help="Number of segments (0 = choose by silhouette)"),
    per_type: int = typer.Option(8, help="Synthetic prosumers per simbench profile type"),
    seed: int = typer.Option(0),
    seeds: int = typer.Option(
        1, min=1, help="Repeat with seeds seed..seed+n-1 and print mean/min per figure instead of one run"
    ),
) -> None:
    """Cluster simbench household/commercial/agricultural prosumers (25% per type held out as new prosumers);
    print ARI, purity, per-category confusion, new-prosumer accuracy (per category and profile type)."""
    from streams.vpp.evaluation import evaluate_simbench, summarise_simbench

    if seeds > 1:
        _print(summarise_simbench(k or None, list(range(seed, seed + seeds)), per_type=per_type))
    else:
        _print(evaluate_simbench(k=k or None, per_type=per_type, seed=seed))


def _read_csv_history(path: Path):
    """CSV with a header: ``ts`` (UTC epoch ms, or ISO 8601 with offset) and ``power_w`` (W produced), optionally
    ``poa_wm2`` (measured plane-of-array irradiance, W/m2) and ``temp_air_c`` (degC); any cadence."""
    import numpy as np
    import pandas as pd

    from streams.vpp.pv_degradation import to_slots

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise _fail(f"{path}: cannot read CSV: {exc}") from None
    missing = {"ts", "power_w"} - set(frame.columns)
    if missing:
        raise _fail(f"{path}: missing column(s) {sorted(missing)} (need ts,power_w[,poa_wm2,temp_air_c])")
    ts = frame["ts"]
    if pd.api.types.is_numeric_dtype(ts):
        times = ts.to_numpy(dtype=np.int64)
    else:
        times = (pd.to_datetime(ts, utc=True).astype("int64") // 1_000_000).to_numpy()
    opt = {c: frame[c].to_numpy(dtype=float) if c in frame else None for c in ("poa_wm2", "temp_air_c")}
    return to_slots(times, frame["power_w"].to_numpy(dtype=float), opt["poa_wm2"], opt["temp_air_c"])


def _platform_history(device_id: str):
    """The meter's 15-minute intervals from the platform's ClickHouse: asked of the running platform when it owns
    the embedded chDB, else queried directly (``CLICKHOUSE_DSN``, or the embedded dir when nothing runs)."""
    import httpx

    from edream.clickhouse import get_client
    from edream.settings import load_settings
    from edream.stack import RunState
    from edream.topology import load_topology
    from edream.web_auth import auth_headers
    from streams.vpp.pv_degradation import history_from_interval_rows, history_sql, intervals_table

    settings = load_settings()
    live = RunState.load_live(settings)
    if settings.effective_clickhouse_dsn.startswith("chdb://") and live is not None:
        try:
            r = httpx.get(
                f"{live.web_url}/api/vpp/pv-history",
                params={"device_id": device_id},
                headers=auth_headers(settings),
                timeout=120,
            )
            body = r.json()
        except Exception as exc:  # noqa: BLE001 - reported
            raise _fail(f"running platform at {live.web_url} did not answer: {exc}") from None
        if "rows" not in body:
            raise _fail(f"platform: {body.get('error', body)}")
        return history_from_interval_rows(body["rows"])
    table = intervals_table(load_topology(settings.edream_topology))
    if table is None:
        raise _fail("the topology sinks no meter.intervals.15m.v1 table")
    res = get_client(settings).query(history_sql(table), parameters={"device": device_id})
    return history_from_interval_rows(res.result_rows)


def _asset_spec(asset_id: str, portfolio: Path | None) -> AssetSpec:
    """The asset's registry entry: from a YAML portfolio file, else the running platform's registry."""
    if portfolio is not None:
        try:
            specs = {s.asset_id: s for s in load_portfolio_file(portfolio)}
        except RegistryError as exc:
            raise _fail(str(exc)) from None
        where = str(portfolio)
    else:
        from streams.vpp.registry import registered_from_record

        client = _client()
        where = client.topic(TOPIC_ASSETS)
        try:
            specs = {
                aid: registered_from_record(r).spec for aid, r in _registry(client).items() if r["active"]
            }
        except RegistryError as exc:
            raise _fail(str(exc)) from None
    if asset_id not in specs:
        raise _fail(f"no active asset {asset_id!r} in {where}")
    return specs[asset_id]


@app.command()
def degradation(
    asset: str = typer.Option(..., "--asset", help="PV asset id in the registry"),
    csv: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Production history CSV: ts (UTC epoch ms or ISO 8601), power_w [, poa_wm2, temp_air_c]; "
        "default: the asset's meter_device_id intervals in the platform's ClickHouse",
    ),
    portfolio: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Take the asset from this YAML portfolio file, not the registry",
    ),
    dry_run: bool = typer.Option(False, help="Estimate and print the record, do not publish"),
) -> None:
    """Estimate a PV asset's year-on-year degradation rate Rd (%/year, with its confidence interval) from its
    production history against pvlib expected output (measured irradiance when the CSV has poa_wm2, else
    clear-sky on clear days), and publish it as PvDegradation on vpp.pv.degradation.v1 (the vpp agent then
    derates the asset's nameplate-based output). Exit 1, publishing nothing, when the history is too short."""
    from streams.vpp.pv_degradation import (
        TOPIC_DEGRADATION,
        InsufficientHistory,
        degradation_record,
        estimate_asset,
    )

    spec = _asset_spec(asset, portfolio)
    if spec.kind != "PV":
        raise _fail(f"asset {asset!r} is {spec.kind}, not PV")
    if csv is not None:
        history = _read_csv_history(csv)
    elif spec.meter_device_id:
        history = _platform_history(spec.meter_device_id)
    else:
        raise _fail(f"asset {asset!r} has no meter_device_id in the registry: give its history with --csv")
    try:
        est, method = estimate_asset(spec, history)
    except InsufficientHistory as exc:
        typer.echo(f"not enough history, nothing published: {exc}", err=True)
        _print({"published": 0, "asset_id": asset, "reason": str(exc)})
        raise typer.Exit(1) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    rec = degradation_record(spec, est, method, history, _now_ms())
    if dry_run:
        typer.echo("dry run: not published", err=True)
    else:
        client = _client()
        client.send(TOPIC_DEGRADATION, "PvDegradation", rec["asset_id"], [rec])
        typer.echo(f"published to {client.topic(TOPIC_DEGRADATION)}", err=True)
    _print(rec)


@app.command("degradation-demo")
def degradation_demo(
    rd: float = typer.Option(-0.8, help="Injected degradation, %/year"),
    years: float = typer.Option(3.0, help="Years of simulated 15-minute data"),
    clear_sky: bool = typer.Option(
        False, help="Use the clear-sky reference instead of the irradiance sensor"
    ),
    seed: int = typer.Option(0),
) -> None:
    """Simulate a 10 kWp PV system (pvlib, clouds, clipping, outages) and estimate Rd with its CI."""
    from streams.vpp.degradation import DegradationConfig, estimate_degradation
    from streams.vpp.pv_model import PvSystem, dc_power_w, expected_clearsky_w
    from tools.sim.pv_synthetic import simulate_pv

    system = PvSystem(48.14, 11.58, 10_000, ac_limit_w=8_500)
    start = int(datetime(2021, 1, 1, tzinfo=UTC).timestamp() * 1000)
    pv = simulate_pv(system, start, years, rd / 100.0, seed)
    expected = (
        expected_clearsky_w(system, pv.times_ms)
        if clear_sky
        else dc_power_w(system, pv.poa_wm2, pv.temp_air_c)
    )
    est = estimate_degradation(
        pv.times_ms,
        pv.power_w,
        expected,
        system.dc_capacity_w,
        system.ac_limit_w,
        DegradationConfig(clear_sky=clear_sky),
    )
    _print({"injected_rd_pct_per_year": rd, **asdict(est)})


def _parse_set(items: list[str]) -> dict[str, object]:
    """``field=value`` pairs; values parsed as YAML scalars/lists (``ramp_kw_per_s=2``, ``directions=[UP,DOWN]``)."""
    import yaml

    out: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise _fail(f"--set {item!r}: expected FIELD=VALUE")
        out[name.strip()] = yaml.safe_load(value)
    return out


def _publish(specs: list[AssetSpec], dry_run: bool) -> None:
    now = _now_ms()
    records = [asset_record(s, now) for s in specs]
    if not dry_run:
        client = _client()
        for r in records:
            client.send(TOPIC_ASSETS, "VppAsset", r["asset_id"], [r])
    for r in records:
        typer.echo(json.dumps(r, sort_keys=True))
    _print({"published": 0 if dry_run else len(records), "assets": [r["asset_id"] for r in records]})


@asset_app.command("add")
def asset_add(
    asset_id: str = typer.Argument(..., help="Asset id (the registry key)"),
    vpp_id: str = typer.Option(..., help="Portfolio the asset joins"),
    kind: str = typer.Option(..., help="GENERATOR, BESS, CURTAILABLE_LOAD, EVSE, PV or WIND"),
    p_max_kw: float = typer.Option(..., help="Max output / charge-discharge limit / max consumption, kW"),
    set_: list[str] = typer.Option(
        [], "--set", help="Other fields of avro/VppAsset.avsc as FIELD=VALUE (repeatable), e.g. soc_pct=60"
    ),
    dry_run: bool = typer.Option(False, help="Validate and print the record, do not send"),
) -> None:
    """Enrol (or update) one asset; the record with the latest updated_at wins."""
    data = {"asset_id": asset_id, "vpp_id": vpp_id, "kind": kind, "p_max_kw": p_max_kw, **_parse_set(set_)}
    try:
        spec = validate_spec(data, f"asset '{asset_id}'")
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    _publish([spec], dry_run)


@asset_app.command("load")
def asset_load(
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="YAML portfolio file (vpp_id, assets)"
    ),
    dry_run: bool = typer.Option(False, help="Validate and print the records, do not send"),
) -> None:
    """Validate a whole portfolio file, then enrol every asset in it (nothing is sent if any entry is invalid)."""
    try:
        specs = load_portfolio_file(path)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    _publish(specs, dry_run)


def _registry(client) -> dict[str, dict]:
    from streams.vpp.client import latest_assets

    return latest_assets(client.read(TOPIC_ASSETS, None, 20.0))


@asset_app.command("remove")
def asset_remove(asset_id: str = typer.Argument(..., help="Asset id")) -> None:
    """Remove an asset from its portfolio (publishes its latest record with active=false)."""
    client = _client()
    current = _registry(client).get(asset_id)
    if current is None or not current["active"]:
        raise _fail(f"no active asset {asset_id!r} on {client.topic(TOPIC_ASSETS)}")
    data = {k: v for k, v in current.items() if k not in ("event_id", "updated_at")} | {"active": False}
    _publish([validate_spec(data, f"asset '{asset_id}'")], dry_run=False)


@asset_app.command("list")
def asset_list(
    vpp_id: str | None = typer.Option(None, help="Only this portfolio"),
    removed: bool = typer.Option(False, help="Include removed (inactive) assets"),
) -> None:
    """The registry as the platform sees it: the latest record per asset, one JSON line each."""
    rows = [
        r
        for r in _registry(_client()).values()
        if (vpp_id is None or r["vpp_id"] == vpp_id) and (removed or r["active"])
    ]
    for r in sorted(rows, key=lambda r: (r["vpp_id"], r["asset_id"])):
        typer.echo(json.dumps(r, sort_keys=True))
    _print({"assets": len(rows)})
