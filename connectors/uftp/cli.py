"""``edream uftp``: the USEF/UFTP gateway towards DSOs (aggregator role). ``keys`` makes the gateway's keys,
``whoami`` prints what a DSO must know about us, ``serve`` runs the gateway against the platform's broker."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import typer

app = typer.Typer(
    help="USEF/UFTP (Shapeshifter 3.x) gateway: DSOs send FlexRequests and FlexOrders, the platform answers with "
    "FlexOffers and FlexOrderResponses and sends D-Prognoses. DSOs are registered on flex.dsos.v1 (`edream flex dso load`).",
    no_args_is_help=True,
)


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(2)


@app.command()
def keys() -> None:
    """Print a fresh Ed25519 key pair (UFTP_SIGNING_KEY; give the public key to the DSOs) and a fresh Ethereum
    attesting key (UFTP_ATTEST_KEY; its address is the eth_address of every UFTP DSO on flex.dsos.v1) as JSON."""
    from eth_account import Account

    from connectors.uftp.keys import UftpKeyPair

    pair, attest = UftpKeyPair.generate(), Account.create()
    typer.echo(
        json.dumps(
            {
                "UFTP_SIGNING_KEY": pair.secret,
                "uftp_public_key": pair.public,
                "UFTP_ATTEST_KEY": "0x" + attest.key.hex().removeprefix("0x"),
                "attest_address": attest.address,
            }
        )
    )


def _config():
    from connectors.uftp.gateway import GatewayConfig
    from edream.settings import load_settings

    settings = load_settings()
    missing = [
        n for n in ("uftp_domain", "uftp_signing_key", "uftp_attest_key") if getattr(settings, n) is None
    ]
    if missing:
        raise _fail(f"set {', '.join(m.upper() for m in missing)} (`edream uftp keys` makes the keys)")
    return settings, GatewayConfig(
        domain=settings.uftp_domain,
        signing_key=settings.uftp_signing_key.get_secret_value(),
        attest_key=settings.uftp_attest_key.get_secret_value(),
        host=settings.uftp_host,
        port=settings.uftp_port,
        time_zone=settings.uftp_time_zone,
        prognosis_minutes=settings.uftp_prognosis_minutes,
    )


@app.command()
def whoami() -> None:
    """What a DSO configures for us: our sender domain, public key, endpoint; and the attesting address to register
    as the eth_address of its flex.dsos.v1 entry."""
    import base64

    from eth_account import Account

    from connectors.uftp.gateway import UFTP_PATH

    settings, config = _config()
    typer.echo(
        json.dumps(
            {
                "uftp_domain": config.domain,
                "uftp_public_key": base64.b64encode(base64.b64decode(config.signing_key)[32:]).decode(),
                "endpoint": f"http://{config.host}:{config.port}{UFTP_PATH}",
                "attest_address": Account.from_key(config.attest_key).address,
            }
        )
    )


@app.command()
def serve() -> None:
    """Run the gateway until Ctrl-C: reads the DSO registry, forwards verified FlexRequests/FlexOrders to the flex
    desk, answers DSOs from the desk's offers, orders and rejections, checks their FlexSettlements against the
    platform's settlement records and sends them D-Prognoses of the platform's forecasts every
    UFTP_PROGNOSIS_MINUTES (both read through its REST API: EDREAM_REST_URL, default the local platform's)."""
    from connectors.uftp.gateway import open_gateway
    from connectors.uftp.ledger import RestLedger
    from edream.kafka import client_config
    from edream.serde import Serde
    from edream.stack import NoBroker, resolve_bootstrap
    from edream.topology import load_topology, topic_names
    from edream.web_auth import auth_headers

    logging.basicConfig(level=logging.INFO)
    settings, config = _config()
    try:
        bootstrap = resolve_bootstrap(settings)
    except NoBroker as exc:
        raise _fail(str(exc)) from None
    names = topic_names(load_topology(settings.edream_topology))
    ledger = RestLedger(
        settings.rest_api_url, auth_headers(settings)
    )  # FlexSettlements are checked against it, D-Prognoses made of its forecasts
    gateway, close = open_gateway(
        config,
        client_config(bootstrap, settings),
        names,
        Serde(settings),
        lambda: int(time.time() * 1000),
        ledger,
    )
    typer.echo(f"uftp gateway {config.domain} on http://{config.host}:{config.port} (Ctrl-C stops)")
    try:
        gateway.run()
    finally:
        close()


@app.command("sim-dso")
def sim_dso(
    agr_url: str = typer.Option(
        ...,
        "--agr-url",
        help="the gateway's UFTP endpoint, e.g. http://127.0.0.1:8092/shapeshifter/api/v3/message",
    ),
    port: int = typer.Option(
        8093, help="port the simulated DSO serves UFTP on (its registry entry names it)"
    ),
    prosumers: int = typer.Option(50, help="size of the demo community (the request is a share of its kW)"),
    seed: int = typer.Option(1, help="demo seed: the DSO's and the gateway's demo keys follow from it"),
    congestion_points: str = typer.Option(
        "",
        "--congestion-points",
        envvar="UFTP_DSO_CONGESTION_POINTS",
        help="ask for what the grid stage's congestion forecast (grid.congestion.v1) needs instead of the timed "
        "requests: grid congestion point id = UFTP CongestionPoint, comma-separated, e.g. "
        "'demo-community/T1=ean.871685900000000001' (the EAN must be in the DSO's registry entry)",
    ),
    timed: bool = typer.Option(
        False,
        "--timed",
        help="with --congestion-points, also send the timed requests (edream run's demo does with "
        "DEMO_TIMELAPSE=true: the grid's requests are for its evening and midday congestion, the timed ones show "
        "the lifecycle within minutes)",
    ),
) -> None:
    """Run the demo's DSO until Ctrl-C (edream run starts it): a UFTP FlexRequest for the demo area every 10 min
    (or, with --congestion-points, for exactly the overloads the grid stage forecasts: 15-min ISPs sized from the
    overload and the sensitivities), a FlexOrder of 80 % of each offer, a FlexSettlement of each order once its
    records are anchored (read through the platform's REST API and anchor check). It remembers its unsettled orders
    and the ISPs it ordered in EDREAM_DATA_DIR/demo-dso.json, so a restart still settles them and never asks for an
    ordered ISP again; a refused request is followed by the next one a minute later. Demo keys: never for
    production."""
    import signal
    import threading
    from dataclasses import replace

    from connectors.uftp.ledger import RestLedger
    from edream.demo.community import Community
    from edream.demo.dso import DemoDsoConfig, requested_kw
    from edream.demo.dso_memory import DsoMemory
    from edream.demo.dso_process import DemoDso
    from edream.settings import load_settings
    from edream.web_auth import auth_headers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    cfg = replace(DemoDsoConfig(), port=port, timed_beside_feed=timed)
    headers = auth_headers(settings)
    web_host = "127.0.0.1" if settings.edream_web_host in ("0.0.0.0", "::") else settings.edream_web_host
    dso = DemoDso(
        cfg,
        seed,
        requested_kw(Community(prosumers, seed), cfg),
        agr_url,
        RestLedger(settings.rest_api_url, headers),
        f"http://{web_host}:{settings.edream_web_port}/api/verify",
        headers,
        memory=DsoMemory.load(settings.edream_data_dir / "demo-dso.json"),
        feed=_congestion_feed(settings, congestion_points) if congestion_points.strip() else None,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    typer.echo(f"demo dso on http://127.0.0.1:{port} -> {agr_url} (Ctrl-C stops)")
    dso.run(stop)


def _congestion_feed(settings: Any, spec: str) -> Any:
    """The sim DSO's congestion feed on the topology's ``grid.congestion.v1`` (exits naming a bad entry)."""
    from connectors.uftp.congestion_feed import CongestionFeed, congestion_points
    from edream.kafka import client_config
    from edream.serde import Serde
    from edream.stack import NoBroker, resolve_bootstrap
    from edream.topology import load_topology, topic_names

    try:
        eans = congestion_points(spec)
        bootstrap = resolve_bootstrap(settings)
    except (ValueError, NoBroker) as exc:
        raise _fail(str(exc)) from None
    topic = topic_names(load_topology(settings.edream_topology))["grid.congestion.v1"]
    return CongestionFeed(
        client_config(bootstrap, settings), topic, eans, Serde(settings), f"{settings.edream_app_id}-uftp-dso"
    )
