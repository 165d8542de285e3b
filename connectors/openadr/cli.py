"""``edream openadr``: OpenADR 2.0b. ``check`` validates the VTN config, ``serve`` runs the platform's VTN towards
prosumer sites, ``ven`` runs the platform as VEN of a utility's VTN, ``sim-site`` a simulated site's VEN."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import typer

from connectors.cli import serve_until_signal, until_signal

app = typer.Typer(
    help="OpenADR 2.0b. As VTN for prosumer sites: flex orders become DR events for the sites' VENs; opt-in/out "
    "goes to flex.dr.responses.v1, power reports to meter.readings.raw.v1. As VEN of a utility: its DR events "
    "become flex requests.",
    no_args_is_help=True,
)
ConfigOption = typer.Option(None, "--config", "-c", help="VTN config YAML (default: OPENADR_CONFIG)")


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(2)


def _load(config: Path | None):
    from connectors.openadr.config import OpenAdrConfigError, load_config
    from edream.settings import load_settings

    settings = load_settings()
    path = config or settings.openadr_config
    if path is None:
        raise _fail("give --config or set OPENADR_CONFIG (example: connectors/openadr/vtn.example.yaml)")
    try:
        return settings, load_config(path)
    except OpenAdrConfigError as exc:
        raise _fail(str(exc)) from None


@app.command()
def check(config: Path | None = ConfigOption) -> None:
    """Validate the config and print the VTN's endpoint and its VENs as JSON."""
    _, cfg = _load(config)
    scheme = "https" if cfg.vtn.tls else "http"
    typer.echo(
        json.dumps(
            {
                "vtn_id": cfg.vtn.vtn_id,
                "endpoint": f"{scheme}://{cfg.vtn.host}:{cfg.vtn.port}/OpenADR2/Simple/2.0b",
                "vens": [v.model_dump(exclude_none=True) for v in cfg.vens],
            }
        )
    )


@app.command()
def serve(config: Path | None = ConfigOption) -> None:
    """Run the VTN until Ctrl-C / SIGTERM: serves the DR events of the flex orders for the configured VENs'
    prosumers and publishes their opt-in/out and power reports."""
    from connectors.openadr.vtn import OpenAdrVtn
    from edream.kafka import client_config
    from edream.serde import Serde
    from edream.stack import NoBroker, resolve_bootstrap
    from edream.topology import load_topology, topic_names

    logging.basicConfig(level=logging.INFO)
    settings, cfg = _load(config)
    try:
        bootstrap = resolve_bootstrap(settings)
    except NoBroker as exc:
        raise _fail(str(exc)) from None
    names = topic_names(load_topology(settings.edream_topology))
    vtn = OpenAdrVtn(
        cfg, client_config(bootstrap, settings), Serde(settings), names, lambda: int(time.time() * 1000)
    )

    async def main() -> None:
        await vtn.start()
        typer.echo(
            f"openadr vtn {cfg.vtn.vtn_id} on {cfg.vtn.host}:{cfg.vtn.port}, {len(cfg.vens)} VENs (Ctrl-C stops)"
        )
        try:
            await until_signal()
        finally:
            await vtn.stop()

    asyncio.run(main())


def _kafka(settings):
    from edream.kafka import client_config
    from edream.serde import Serde
    from edream.stack import NoBroker, resolve_bootstrap
    from edream.topology import load_topology, topic_names

    try:
        bootstrap = resolve_bootstrap(settings)
    except NoBroker as exc:
        raise _fail(str(exc)) from None
    return (
        client_config(bootstrap, settings),
        Serde(settings),
        topic_names(load_topology(settings.edream_topology)),
    )


@app.command()
def ven(
    vtn_url: str = typer.Option(
        ..., help="the utility VTN's endpoint, e.g. https://vtn.example.com/OpenADR2/Simple/2.0b"
    ),
    ven_name: str = typer.Option(..., help="our VEN name, as the utility registered it"),
    dso: str = typer.Option(
        ..., help="the utility's dso_id on flex.dsos.v1 (eth_address = OPENADR_ATTEST_KEY's)"
    ),
    area: str = typer.Option(..., help="the flex area the utility's events are for"),
    slot_minutes: int = typer.Option(15, help="slot length of the flex requests, minutes"),
    simple_levels_kw: str = typer.Option(
        "", help="reduction asked by SIMPLE levels 1,2,3 in kW, e.g. 5,10,20"
    ),
) -> None:
    """Run the platform as VEN of a utility's VTN until Ctrl-C / SIGTERM: its LOAD_DISPATCH / SIMPLE events
    become signed FlexRequests on flex.requests.v1 (opted in); events that cannot be mapped are opted out, with a
    Rejection."""
    from connectors.openadr.utility_ven import UtilityLink, UtilityVen
    from edream.settings import load_settings

    logging.basicConfig(level=logging.INFO)
    settings = load_settings()
    if settings.openadr_attest_key is None:
        raise _fail("set OPENADR_ATTEST_KEY (0x-hex Ethereum key; `edream uftp keys` prints one)")
    try:
        levels = tuple(float(x) for x in simple_levels_kw.split(",") if x.strip())
    except ValueError:
        raise _fail(f"--simple-levels-kw: {simple_levels_kw!r} is not a comma-separated list of kW") from None
    link = UtilityLink(
        vtn_url, ven_name, dso, area, settings.openadr_attest_key.get_secret_value(), slot_minutes, levels
    )
    conf, serde, names = _kafka(settings)
    client = UtilityVen(link, conf, serde, names, lambda: int(time.time() * 1000))

    async def main() -> None:
        await client.start()
        typer.echo(f"openadr ven {ven_name} of {vtn_url} (Ctrl-C stops)")
        try:
            await until_signal()
        finally:
            await client.stop()

    asyncio.run(main())


@app.command("sim-site")
def sim_site(
    vtn_url: str = typer.Option(
        ..., help="the VTN's endpoint, e.g. http://127.0.0.1:8096/OpenADR2/Simple/2.0b"
    ),
    ven_name: str = typer.Option(..., help="the site's VEN name, as listed in the VTN's config"),
    resource_id: str = typer.Option(
        "site-ems",
        help="resource of the power report (the VTN's device id: <ven_id>.<resource_id> by default)",
    ),
    base_kw: float = typer.Option(1.2, help="the site's base load, kW"),
    evening_kw: float = typer.Option(
        1.8, help="its evening peak on top of the base (19:00 UTC), kW; 0 = constant"
    ),
    sampling_seconds: float = typer.Option(10.0, help="telemetry sampling rate offered to the VTN, seconds"),
    register_timeout: float = typer.Option(60.0, help="give up when not registered within this many seconds"),
) -> None:
    """Run a simulated site's VEN (openleadr's client) until Ctrl-C / SIGTERM: registers with the VTN, opts in to
    every DR event (logged: id, signals, intervals in kW), follows its LOAD_DISPATCH delta and reports its real
    power when the VTN asks. Prints one JSON line (name, assigned ven_id, endpoint) once registered; exit 2 when
    the VTN does not register it in time."""
    from tools.sim.openadr_site import NotRegistered, OpenAdrSite, SiteLoad

    logging.basicConfig(level=logging.INFO)
    for chatty in ("openleadr", "apscheduler"):  # a line per sample and per poll; ours name each event
        logging.getLogger(chatty).setLevel(logging.WARNING)
    for name, value in (("--sampling-seconds", sampling_seconds), ("--register-timeout", register_timeout)):
        if not value > 0:
            raise _fail(f"{name} must be > 0 seconds, got {value:g}")
    if not (0 <= base_kw < 1000 and 0 <= evening_kw < 1000):
        raise _fail("--base-kw and --evening-kw must be between 0 and 1000 kW")
    site = OpenAdrSite(vtn_url, ven_name, resource_id, SiteLoad(base_kw, evening_kw), sampling_seconds)

    async def main() -> None:
        try:
            await site.start(register_timeout)
        except NotRegistered as exc:
            raise _fail(
                f"{exc} within {register_timeout:g} s (VTN down, or the name is not in its config)"
            ) from None
        await serve_until_signal(site)

    asyncio.run(main())
