"""``edream vpp``: operator commands of the virtual power plant. Each prints its result as a final JSON line."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import typer

from streams.vpp.capability import CapabilityRequest, evaluate_capability
from streams.vpp.events import (
    asset_from_dict,
    asset_to_dict,
    capability_record,
    export_record,
    service_from_name,
)
from streams.vpp.export import ExportRequest, Market, ResForecast, evaluate_export, next_slot_start

app = typer.Typer(
    help="Virtual power plant: reserve/frequency capability, 30-minute export capacity, "
    "prosumer clustering and PV degradation.",
    no_args_is_help=True,
)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _load_portfolio(path: Path):
    data = json.loads(path.read_text())
    return [asset_from_dict(d) for d in (data["assets"] if isinstance(data, dict) else data)]


def _print(obj) -> None:
    typer.echo(json.dumps(obj, sort_keys=True, default=str))


@app.command()
def capability(
    portfolio: Path = typer.Argument(
        ..., exists=True, help="JSON list of assets (fields of streams.vpp.assets.Asset)"
    ),
    service: str = typer.Option("STATIC_FFR", help="EFR, DYNAMIC_FFR, STATIC_FFR or STOR"),
    start_ms: int = typer.Option(0, help="Window start, UTC epoch ms (0 = next quarter hour)"),
    slots: int = typer.Option(2, min=1, help="Number of slots in the window"),
    slot_minutes: int = typer.Option(15, min=1, help="Slot length, minutes"),
    demand_kw: float | None = typer.Option(None, help="Output the generators must keep delivering, kW"),
    lead_s: float = typer.Option(0.0, help="Seconds between now and the window start (start-up lead time)"),
    vpp_id: str = typer.Option("vpp", help="Portfolio id"),
) -> None:
    """Evaluate deliverable reserve/frequency capacity (unit commitment + economic dispatch, Pyomo + HiGHS)."""
    assets = _load_portfolio(portfolio)
    quarter = 15 * 60_000
    start = start_ms or (_now_ms() // quarter + 1) * quarter
    req = CapabilityRequest(
        f"{vpp_id}/{service}/{start}",
        service_from_name(service),
        start,
        start + slots * slot_minutes * 60_000,
        slot_minutes,
        now_ms=start - int(lead_s * 1000),
        demand_kw=(demand_kw,) * slots if demand_kw else None,
    )
    result = evaluate_capability(assets, req)
    _print(capability_record(result, vpp_id, _now_ms()))


@app.command()
def export(
    portfolio: Path = typer.Argument(
        ..., exists=True, help="JSON list of assets (generators, curtailable loads)"
    ),
    res_p50_kw: float = typer.Option(0.0, help="Sum of RES forecasts for the slot, median, kW"),
    res_p10_kw: float | None = typer.Option(None, help="Sum of RES forecasts, firm P10, kW (default = P50)"),
    load_kw: float = typer.Option(0.0, help="Community load forecast for the slot, kW"),
    price: float = typer.Option(..., help="Price forecast, currency per kWh (e.g. 0.18)"),
    threshold: float = typer.Option(0.10, help="Price threshold, currency per kWh"),
    quantile: float = typer.Option(0.1, help="Offer quantile: 0.1 firm, 0.5 median"),
    market: Market = typer.Option(Market.INTRADAY, help="INTRADAY or IMBALANCE"),
    now_ms: int = typer.Option(0, help="Evaluation time, UTC epoch ms (0 = now); slot = 60 min ahead"),
    vpp_id: str = typer.Option("vpp", help="Portfolio id"),
) -> None:
    """Export capacity and offer for the next 30-minute trading slot (community load served first)."""
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
    from streams.vpp.synthetic_portfolio import random_portfolio

    typer.echo(json.dumps([asset_to_dict(a) for a in random_portfolio(n, seed)]))


@app.command("cluster-eval")
def cluster_eval(
    k: int = typer.Option(6, help="Number of segments (0 = choose by silhouette)"),
    per_type: int = typer.Option(8, help="Synthetic prosumers per simbench profile type"),
    seed: int = typer.Option(0),
) -> None:
    """Cluster simbench household/commercial/agricultural prosumers; print ARI, purity, new-prosumer accuracy."""
    from streams.vpp.evaluation import evaluate_simbench

    _print(evaluate_simbench(k=k or None, per_type=per_type, seed=seed))


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
    from streams.vpp.pv_synthetic import simulate_pv

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
