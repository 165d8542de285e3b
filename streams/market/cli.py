"""``edream market``: clear a CSV book offline, sign and submit orders, show a slot's current book.

Every command prints its result as one JSON object on its last line.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from streams.market.book_csv import BookCsvError, read_book_csv
from streams.market.clearing import ClearingRule, Rationing, clear
from streams.market.config import MarketConfig
from streams.market.market_order import MarketOrder, OrderTerms
from streams.market.network_clearing import clear_with_network
from streams.market.orders import EnergyType, Side
from streams.market.profile import orders_from_profile
from streams.market.signing import sign_order, verify_order

ORDERS_TOPIC = "market.orders.v1"

app = typer.Typer(
    help="P2P local energy market: offline clearing, signed order submission, order books. Energy in Wh, "
    "prices in currency micro-units per kWh (0.12 EUR/kWh = 120000), times UTC.",
    no_args_is_help=True,
)


class RuleOpt(StrEnum):
    uniform = "uniform"
    pay_as_bid = "pay-as-bid"


class RationingOpt(StrEnum):
    pro_rata = "pro-rata"
    time_priority = "time-priority"


ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="market config YAML (MarketConfig fields); default: built-in")
]


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(2)


def _config(path: Path | None) -> MarketConfig:
    try:
        return MarketConfig.from_yaml(path) if path else MarketConfig()
    except (OSError, ValueError) as exc:
        raise _fail(f"{path}: {exc}") from None


def _slot_ms(text: str) -> int:
    """Epoch ms, or ISO-8601 (``2026-11-23T12:00Z``; naive = UTC)."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"slot {text!r}: use epoch ms or ISO-8601 like 2026-11-23T12:00Z") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def _echo(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj, sort_keys=True))


@app.command("clear")
def clear_cmd(
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="CSV: order_id,participant_id,side,quantity_wh,price[,client_ts]",
            exists=True,
            dir_okay=False,
        ),
    ],
    rule: Annotated[
        RuleOpt, typer.Option(help="uniform price or pay-as-bid (pair midpoint)")
    ] = RuleOpt.uniform,
    rationing: Annotated[RationingOpt, typer.Option(help="how a marginal price level is shared")] = (
        RationingOpt.pro_rata
    ),
    curves: Annotated[bool, typer.Option(help="include the aggregated demand/supply curves")] = True,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="market config YAML: with a `network` section the book clears within its congestion limits "
            "(the result then has `network`: status, both welfares, zonal prices, limits)",
        ),
    ] = None,
):
    """Clear one slot's order book from a CSV file, offline, and print the result (price, volume, trades, fills)."""
    cfg = _config(config)
    network = None
    try:
        book = read_book_csv(input)
        rules = ClearingRule[rule.name.upper()], Rationing[rationing.name.upper()]
        if cfg.network is None:
            r = clear(book, *rules)
        else:
            network = clear_with_network(book, cfg.network.for_slot(cfg.slot_ms), *rules)
            r = network.clearing
    except (BookCsvError, ValueError) as exc:
        raise _fail(str(exc)) from None
    out = r.summary(curves=curves)
    if network is not None:
        out["network"] = {
            "status": network.status.value,
            "reason": network.reason,
            "welfare_micro": network.welfare_micro,
            "reference_welfare_micro": network.reference_welfare_micro,
            "reference_cleared_wh": network.reference.cleared_wh,
            "reference_price_micro_per_kwh": network.reference.price,
            "zone_prices": network.zone_prices,
            "limits": [dataclasses.asdict(u) for u in network.limits],
        }
    out["trades"] = [
        {
            "buy_order_id": m.buy_order_id,
            "sell_order_id": m.sell_order_id,
            "buyer_id": m.buyer_id,
            "seller_id": m.seller_id,
            "quantity_wh": m.quantity_wh,
            "price_micro_per_kwh": m.price,
        }
        for m in r.matches
    ]
    out["fills"] = r.fills
    _echo(out)


def _key(key_file: Path) -> str:
    try:
        return key_file.read_text().strip()
    except OSError as exc:
        raise _fail(f"key file: {exc}") from None


def _submit(orders: list[MarketOrder], dry_run: bool) -> None:
    if not dry_run:
        from confluent_kafka import Producer

        from edream.kafka import producer_config
        from edream.serde import Serde
        from edream.settings import load_settings
        from edream.stack import NoBroker, resolve_bootstrap

        settings = load_settings()
        try:
            bootstrap = resolve_bootstrap(settings)
        except NoBroker as exc:
            raise _fail(str(exc)) from None
        serde = Serde(settings)
        producer = Producer(producer_config(settings, bootstrap, **{"message.timeout.ms": 30_000}))
        for o in orders:
            producer.produce(
                ORDERS_TOPIC, serde.encode("MarketOrder", o.to_avro(), ORDERS_TOPIC), o.session_id
            )
        if producer.flush(35) != 0:
            raise _fail("orders not acknowledged by the broker")
    _echo(
        {
            "topic": ORDERS_TOPIC,
            "sent": not dry_run,
            "order_ids": [o.order_id for o in orders],
            "orders": [o.to_avro() for o in orders] if dry_run else len(orders),
        }
    )


@app.command("order")
def order_cmd(
    key_file: Annotated[Path, typer.Option(help="file holding the 0x-hex private key of the participant")],
    participant: Annotated[str, typer.Option(help="registered participant id")],
    side: Annotated[Side, typer.Option(help="BID (buy) or OFFER (sell)")],
    slot: Annotated[
        str, typer.Option(help="delivery slot start: epoch ms or ISO-8601, e.g. 2026-11-23T12:00Z")
    ],
    quantity_wh: Annotated[int, typer.Option(help="energy, Wh")],
    price: Annotated[int, typer.Option(help="limit price, currency micro-units per kWh")],
    energy_type: Annotated[EnergyType, typer.Option(help="GREEN, GREY or ANY")] = EnergyType.ANY,
    nonce: Annotated[int | None, typer.Option(help="unique per address; default: now in ms")] = None,
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option(help="sign and print, do not send")] = False,
):
    """Sign one order (EIP-712) with a local key file and submit it to market.orders.v1."""
    from eth_account import Account

    cfg = _config(config)
    key = _key(key_file)
    start = _slot_ms(slot)
    now = int(time.time() * 1000)
    terms = OrderTerms(
        participant,
        Account.from_key(key).address,
        cfg.session_id(start),
        side,
        start,
        cfg.slot_minutes,
        quantity_wh,
        price,
        energy_type,
        now,
        now if nonce is None else nonce,
    )
    _submit([sign_order(terms, key, cfg.chain_id)], dry_run)


@app.command("profile")
def profile_cmd(
    key_file: Annotated[Path, typer.Option(help="file holding the 0x-hex private key of the participant")],
    participant: Annotated[str, typer.Option(help="registered participant id")],
    start: Annotated[str, typer.Option(help="first slot start: epoch ms or ISO-8601")],
    energy: Annotated[str, typer.Option(help="comma-separated Wh per slot, + buy / - sell (e.g. 24 values)")],
    prices: Annotated[str, typer.Option(help="comma-separated limit prices, micro-units per kWh")],
    energy_type: Annotated[EnergyType, typer.Option(help="GREEN, GREY or ANY")] = EnergyType.ANY,
    first_nonce: Annotated[
        int | None, typer.Option(help="nonce of slot 0 (slot i gets +i); default: now")
    ] = None,
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option(help="sign and print, do not send")] = False,
):
    """Batch form: sign one order per slot from an energy profile with prices, and submit them."""
    from eth_account import Account

    cfg = _config(config)
    key = _key(key_file)
    now = int(time.time() * 1000)
    try:
        wh = [int(x) for x in energy.split(",")]
        px = [int(x) for x in prices.split(",")]
        orders = orders_from_profile(
            cfg,
            participant,
            Account.from_key(key).address,
            key,
            _slot_ms(start),
            wh,
            px,
            now,
            now if first_nonce is None else first_nonce,
            energy_type,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _submit(orders, dry_run)


def _read_to_end(topic: str) -> list[bytes]:
    """Every message value of ``topic`` up to the current end (no consumer group)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from edream.kafka import consumer_config
    from edream.runtime.watermarks import end_offset
    from edream.settings import load_settings
    from edream.stack import NoBroker, resolve_bootstrap

    settings = load_settings()
    try:
        bootstrap = resolve_bootstrap(settings)
    except NoBroker as exc:
        raise _fail(str(exc)) from None
    c = Consumer(consumer_config(settings, "edream-market-book", bootstrap))
    try:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            raise _fail(f"topic {topic} not found")
        ends = {p: end_offset(c, topic, p) for p in meta.partitions}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends if ends[p] > 0])
        pending = {p for p in ends if ends[p] > 0}
        values = []
        while pending:
            m = c.poll(2.0)
            if m is None:
                break
            if m.error():
                continue
            values.append(m.value())
            if m.offset() + 1 >= ends[m.partition()]:
                pending.discard(m.partition())
        return values
    finally:
        c.close()


@app.command("book")
def book_cmd(
    slot: Annotated[
        str, typer.Argument(help="delivery slot start: epoch ms or ISO-8601, e.g. 2026-11-23T12:00Z")
    ],
    config: ConfigOpt = None,
):
    """Show a slot's current book: validly signed orders on market.orders.v1 and the indicative clearing
    if the gate closed now (registry and gate checks are the market agent's; this view only checks signatures)."""
    from edream.serde import DecodeError, Serde
    from edream.settings import load_settings

    cfg = _config(config)
    start = cfg.slot_of(_slot_ms(slot))
    session = cfg.session_id(start)
    serde = Serde(load_settings())
    orders: dict[str, MarketOrder] = {}
    for value in _read_to_end(ORDERS_TOPIC):
        try:
            name, rec = serde.decode(value)
        except DecodeError:
            continue
        if name == "MarketOrder" and rec["session_id"] == session:
            o = MarketOrder.from_avro(rec)
            if verify_order(o, cfg.chain_id):
                orders[o.order_id] = o
    book = sorted(orders.values(), key=lambda o: (o.side.value, o.limit_price_micro_per_kwh, o.client_ts))
    positive = [o.to_book() for o in book if o.quantity_wh > 0]
    _echo(
        {
            "session_id": session,
            "slot_start": start,
            "gate_closure": cfg.gate_closure(start),
            "orders": [
                {k: v for k, v in o.to_avro().items() if k not in ("signature", "event_id")} for o in book
            ],
            "indicative": clear(positive, cfg.rule, cfg.rationing).summary(),
        }
    )
