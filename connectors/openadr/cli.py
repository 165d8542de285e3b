"""``edream openadr``: the platform's OpenADR 2.0b VTN towards prosumer sites. ``check`` validates the VTN config,
``serve`` runs the VTN against the platform's broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path

import typer

app = typer.Typer(
    help="OpenADR 2.0b VTN for prosumer sites: flex orders become DR events for the sites' VENs; opt-in/out "
    "goes to flex.dr.responses.v1, power reports to meter.readings.raw.v1.",
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
    """Run the VTN until Ctrl-C: serves the DR events of the flex orders for the configured VENs' prosumers and
    publishes their opt-in/out and power reports."""
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
            await asyncio.Event().wait()
        finally:
            await vtn.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
