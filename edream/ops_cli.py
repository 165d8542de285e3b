"""``edream replay``: re-process a time range by resetting a consumer group's offsets (sinks are idempotent)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(
    help="Re-process a time range safely: move a consumer group's committed offsets back to the first event at "
    "or after START (per partition), so the stopped workers re-read from there when restarted. Sinks are "
    "idempotent, so re-processed events do not duplicate rows. Stop the group's workers first.",
    no_args_is_help=True,
)

Start = Annotated[
    str, typer.Option("--from", help="start of the range: ISO-8601 UTC (2026-11-23T10:00Z) or epoch ms")
]
End = Annotated[
    str | None, typer.Option("--to", help="end of the range (only sizes it; Kafka replays to the head)")
]
Group = Annotated[
    str | None, typer.Option("--group", help="consumer group (default: EDREAM_APP_ID, the workers)")
]
Topics = Annotated[
    list[str] | None,
    typer.Option("--topic", help="topic to reset (repeatable; default: all sink and agent inputs)"),
]


def _run(start: str, end: str | None, group: str | None, topics: list[str] | None, execute: bool) -> None:
    from edream.replay import ReplayError, apply, group_consumer, parse_time_ms, plan, summary
    from edream.settings import load_settings
    from edream.stack import NoBroker, resolve_bootstrap
    from edream.topology import load_topology

    settings = load_settings()
    try:
        start_ms = parse_time_ms(start)
        end_ms = parse_time_ms(end) if end else None
        bootstrap = resolve_bootstrap(settings)
    except (ReplayError, NoBroker) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    topo = load_topology(settings.edream_topology)
    names = topics or sorted({t for a in topo.agents for t in a.inputs} | {s.topic for s in topo.sinks})
    group_id = group or settings.edream_app_id
    consumer = group_consumer(bootstrap, group_id)
    try:
        resets = plan(consumer, bootstrap, names, start_ms, end_ms)
        if execute:
            apply(consumer, resets)
    except ReplayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        consumer.close()
    for r in resets:
        was = "-" if r.committed is None else r.committed
        typer.echo(
            f"{r.topic}[{r.partition}] {was} -> {r.target}  (in range {r.in_range}, re-read {r.reprocessed})"
        )
    typer.echo(json.dumps(summary(resets, group_id, start_ms, end_ms, applied=execute), sort_keys=True))


@app.command("plan")
def plan_cmd(start: Start, end: End = None, group: Group = None, topic: Topics = None) -> None:
    """Show where each partition would be reset and how many messages would be re-processed (changes nothing)."""
    _run(start, end, group, topic, execute=False)


@app.command("apply")
def apply_cmd(start: Start, end: End = None, group: Group = None, topic: Topics = None) -> None:
    """Commit the reset offsets for the (stopped) group; restart the workers to re-process the range."""
    _run(start, end, group, topic, execute=True)
