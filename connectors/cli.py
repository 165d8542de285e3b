"""``edream connectors``: validate device configs, run the connector, serve a simulated site."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from connectors.config import ConfigError, load_config
from connectors.shard import SHARD_ENV, ShardSpecError, parse_shard, shard_devices
from edream.paths import CONNECTOR_CONFIG_DIR

app = typer.Typer(
    help="Field connectors: Modbus/TCP, OPC UA, MQTT (SMX) and HTTP devices -> Measurement events on Kafka.",
    no_args_is_help=True,
)

ConfigDir = Annotated[
    Path,
    typer.Option(
        "--config", "-c", help="directory of device YAML files (searched recursively)", file_okay=False
    ),
]


@app.command()
def check(config: ConfigDir = CONNECTOR_CONFIG_DIR) -> None:
    """Validate every config file; on error print it (file, device, field) and exit 1.

    Last line: JSON summary {"ok", "devices", "enabled", "profiles", "by_protocol"}.
    """
    try:
        cfg = load_config(config, include_disabled=True)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        typer.echo(json.dumps({"ok": False, "error": str(exc)}))
        raise typer.Exit(1) from None
    for d in cfg.devices:
        prof = f" (profile {d.profile})" if d.profile else ""
        state = "" if d.enabled else " [disabled]"
        typer.echo(f"  {d.id:<24} {d.protocol:<7} {cfg.device_files[d.id].name}{prof}{state}")
    summary = {
        "ok": True,
        "devices": len(cfg.devices),
        "enabled": sum(d.enabled for d in cfg.devices),
        "profiles": len(cfg.profiles),
        "by_protocol": dict(Counter(d.protocol for d in cfg.devices)),
        "connector_id": cfg.connector.id,
        "topic": cfg.connector.topic,
        "commands": cfg.connector.commands,
        "controllable": sorted(d.id for d in cfg.devices if getattr(d, "controls", None)),
    }
    typer.echo(json.dumps(summary))


async def until_signal() -> None:
    """Return on SIGINT or SIGTERM (the running loop's handlers; where signals cannot be hooked, never)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_until_signal(site: Any) -> None:
    """Print the started ``site``'s ``describe()`` as one JSON line, wait for SIGINT/SIGTERM, then stop it."""
    typer.echo(json.dumps(site.describe()))
    try:
        await until_signal()
    finally:
        await site.stop()


@app.command()
def run(
    config: ConfigDir = CONNECTOR_CONFIG_DIR,
    metrics_port: Annotated[int | None, typer.Option(help="serve Prometheus /metrics on this port")] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            envvar=SHARD_ENV,
            help="run only shard i of N of the devices (crc32 of the device id mod N == i), e.g. 0/2; "
            "start one process per shard with the same CONFIG",
        ),
    ] = None,
) -> None:
    """Run every enabled device in CONFIG (of --shard i/N when given) until Ctrl-C / SIGTERM; then flush and
    print a JSON status line.

    The broker is KAFKA_BOOTSTRAP_SERVERS, else the embedded broker of a running `edream run`.
    """
    from connectors.app import Connector
    from edream.settings import load_settings
    from edream.stack import NoBroker, resolve_bootstrap

    settings = load_settings()
    try:
        part = parse_shard(shard, f"--shard (or {SHARD_ENV})")
        cfg = load_config(config)
        bootstrap = resolve_bootstrap(settings)
    except (ShardSpecError, ConfigError, NoBroker) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    async def main() -> dict:
        conn = Connector(cfg, settings, bootstrap, shard=part)
        port = metrics_port if metrics_port is not None else cfg.connector.metrics_port
        if port is not None:
            conn.serve_metrics(port)
        mine = shard_devices(cfg.devices, part)
        typer.echo(
            f"connector {cfg.connector.id} shard {part.label}: {len(mine)} of {len(cfg.devices)} devices -> "
            f"{cfg.connector.topic} @ {bootstrap}",
            err=True,
        )
        async with conn:
            await until_signal()
        return conn.status()

    status = asyncio.run(main())
    typer.echo(json.dumps(status))


@app.command()
def command(
    device: Annotated[str, typer.Argument(help="device id in CONFIG, e.g. evse-24")],
    target: Annotated[str, typer.Option(help="unit inside the device, e.g. the SpotLink chargeboxID")] = "",
    set_current: Annotated[
        int | None, typer.Option(help="SET_CURRENT_A: amperes per phase, 7..64 (0 = stop)")
    ] = None,
    start: Annotated[bool, typer.Option("--start", help="START charging")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="STOP charging")] = False,
    valid_for: Annotated[float, typer.Option(help="seconds from now the command stays valid")] = 60.0,
    wait: Annotated[float, typer.Option(help="seconds to wait for the result (0: send only)")] = 30.0,
    config: ConfigDir = CONNECTOR_CONFIG_DIR,
) -> None:
    """Send one DeviceCommand by hand (valid from now) to the connector that runs CONFIG and print its result.

    Last line: the DeviceCommandResult as JSON; exit 0 when EXECUTED (or sent with --wait 0), 1 for any other
    status or an unknown device, 2 when no result arrived within --wait seconds.
    """
    from connectors.command_client import send_command
    from connectors.commands import command_record
    from connectors.models import DeviceAction, now_ms
    from edream.settings import load_settings
    from edream.stack import NoBroker, resolve_bootstrap

    chosen = [
        a for a, on in ((DeviceAction.SET_CURRENT_A, set_current is not None), (DeviceAction.START, start),
                        (DeviceAction.STOP, stop)) if on
    ]  # fmt: skip
    if len(chosen) != 1:
        typer.echo("error: give exactly one of --set-current A, --start, --stop", err=True)
        raise typer.Exit(1)
    settings = load_settings()
    try:
        cfg = load_config(config, include_disabled=True)
        bootstrap = resolve_bootstrap(settings)
    except (ConfigError, NoBroker) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if not cfg.connector.commands:
        typer.echo(f"error: the connector of {config} has no commands topic", err=True)
        raise typer.Exit(1)
    if device not in cfg.device_files:
        typer.echo(f"error: device {device!r} is not in {config}", err=True)
        raise typer.Exit(1)
    now = now_ms()
    record = command_record(
        device,
        target,
        chosen[0],
        None if set_current is None else float(set_current),
        now,
        now + int(valid_for * 1000),
        "cli",
        now,
        reason="edream connectors command",
    )
    typer.echo(json.dumps(record), err=True)
    result = send_command(settings, bootstrap, cfg.connector, record, wait)
    if wait <= 0:
        typer.echo(json.dumps({"sent": record["command_id"], "topic": cfg.connector.commands}))
        return
    if result is None:
        typer.echo(f"error: no result for {record['command_id']} within {wait:g} s", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(result))
    if result["status"] != "EXECUTED":
        raise typer.Exit(1)


@app.command()
def sim(
    prosumers: Annotated[int, typer.Option(help="SMX gateways (one per prosumer) publishing on MQTT")] = 50,
    modbus_devices: Annotated[int, typer.Option(help="KiWi Modbus gateways (unit ids 1..N)")] = 5,
    interval: Annotated[float, typer.Option(help="seconds between readings (the spec's devices: 5)")] = 5.0,
    mqtt_port: int = 1883,
    modbus_port: int = 5020,
    opcua_port: int = 4840,
    http_port: int = 8089,
) -> None:
    """Serve a simulated site on localhost (SimBench load/PV profiles) until Ctrl-C. The shipped
    connectors/config/site-terni-sim.yaml matches the default ports."""
    from tools.sim.site import SimulatedSite, SitePorts

    async def main() -> None:
        site = SimulatedSite(
            prosumers, modbus_devices, interval, SitePorts(mqtt_port, modbus_port, opcua_port, http_port)
        )
        await site.start()
        await serve_until_signal(site)

    asyncio.run(main())
