"""``edream flex``: submit DSO flexibility requests, follow orders, run a simulation. The desk itself runs as the
runtime stages ``flex`` and ``flex-prosumers`` (``edream stage run NAME``, started by ``edream run``/``edream worker``)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from streams.flex.model import Direction

app = typer.Typer(
    help="Flexibility lifecycle (HL-UC01): DSO requests -> optimised offers -> orders -> verification -> "
    "re-dispatch -> settlement. Evaluation commands print a final JSON line.",
    no_args_is_help=True,
)


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(2)


def parse_time_ms(text: str) -> int:
    """UTC epoch ms from an integer or an ISO-8601 time (naive = UTC)."""
    if text.lstrip("-").isdigit():
        return int(text)
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def _bootstrap() -> tuple[Any, str]:
    from edream.settings import load_settings
    from edream.stack import NoBroker, resolve_bootstrap

    settings = load_settings()
    try:
        return settings, resolve_bootstrap(settings)
    except NoBroker as exc:
        raise _fail(str(exc)) from None


def _produce(topic: str, schema: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Send (key, record) pairs to ``topic`` as Avro ``schema`` and wait for the broker's acknowledgement."""
    from confluent_kafka import Producer

    from edream.kafka import producer_config
    from edream.serde import Serde

    settings, bootstrap = _bootstrap()
    serde = Serde(settings)
    p = Producer(producer_config(settings, bootstrap))
    for key, record in records:
        p.produce(topic, serde.encode(schema, record, topic), key=key.encode())
    if p.flush(15):
        raise _fail(f"{topic}: not delivered within 15 s")


def _key(key_file: Path) -> str:
    try:
        return key_file.read_text().strip()
    except OSError as exc:
        raise _fail(f"key file: {exc}") from None


@app.command()
def request(
    key_file: Annotated[
        Path, typer.Option(help="file holding the DSO's 0x-hex private key (its address is on flex.dsos.v1)")
    ],
    area: Annotated[str, typer.Option(help="grid area / congestion point id")],
    start: Annotated[
        str, typer.Option(help="first slot start, ISO-8601 UTC (2026-11-23T10:00Z) or epoch ms")
    ],
    kw: Annotated[str, typer.Option(help="requested kW per slot: one value for all slots or a comma list")],
    slots: Annotated[int, typer.Option(help="number of slots (ignored when --kw is a list)")] = 4,
    direction: Annotated[
        Direction, typer.Option(help="REDUCE or INCREASE net consumption")
    ] = Direction.REDUCE,
    slot_minutes: Annotated[int, typer.Option(help="slot length, minutes")] = 15,
    reward: Annotated[int, typer.Option(help="reward, currency micro-units per kWh")] = 250_000,
    deadline: Annotated[
        str | None, typer.Option(help="offers accepted until (default: 5 min before start)")
    ] = None,
    dso: Annotated[str, typer.Option(help="DSO id (registered with `edream flex dso register`)")] = "dso-1",
    request_id: Annotated[str | None, typer.Option(help="request id (default: random)")] = None,
    topic: Annotated[str, typer.Option(help="requests topic")] = "flex.requests.v1",
    dry_run: Annotated[bool, typer.Option(help="print the record, do not send")] = False,
) -> None:
    """Sign (EIP-712, the DSO's key) and submit a DSO flexibility request; prints the sent FlexRequest as the
    final JSON line."""
    import time

    from streams.flex.requests import FlexRequest, RequestSlot
    from streams.flex.signing import sign_request

    key = _key(key_file)
    t0 = parse_time_ms(start)
    values = [float(v) for v in kw.split(",")]
    if len(values) == 1:
        values = values * slots
    step = slot_minutes * 60_000
    req = FlexRequest(
        request_id=request_id or f"req-{uuid.uuid4().hex[:12]}",
        dso_id=dso,
        area_id=area,
        direction=direction,
        slots=tuple(RequestSlot(t0 + k * step, v) for k, v in enumerate(values)),
        reward_micro_per_kwh=reward,
        deadline=parse_time_ms(deadline) if deadline else t0 - 5 * 60_000,
        created_at=int(time.time() * 1000),
        slot_minutes=slot_minutes,
    )
    try:
        record = sign_request(req, key).to_avro()
    except ValueError as exc:  # a malformed key, or values that cannot be signed (e.g. a negative time)
        raise _fail(f"cannot sign: {exc}") from None
    if not dry_run:
        _produce(topic, "FlexRequest", [(req.request_id, record)])
    typer.echo(json.dumps(record, sort_keys=True))


@app.command()
def accept(
    offer_id: Annotated[str, typer.Argument(help="the offer's offer_id (flex.offers.v1)")],
    key_file: Annotated[
        Path, typer.Option(help="file holding the DSO's 0x-hex private key (its address is on flex.dsos.v1)")
    ],
    area: Annotated[str, typer.Option(help="the offer's area (congestion point id of the request)")],
    kw: Annotated[
        str | None,
        typer.Option(
            help="accepted kW per slot as START=KW,... (START ISO-8601 UTC or epoch ms); omit with --reject"
        ),
    ] = None,
    reject: Annotated[bool, typer.Option(help="decline the offer instead")] = False,
    price: Annotated[
        int, typer.Option(help="price paid for the accepted flexibility, currency micro-units")
    ] = 0,
    valid_minutes: Annotated[
        float, typer.Option(help="the acceptance is void if processed later than this")
    ] = 5.0,
    dso: Annotated[str, typer.Option(help="DSO id (registered with `edream flex dso register`)")] = "dso-1",
    acceptance_id: Annotated[str | None, typer.Option(help="acceptance id (default: random)")] = None,
    dry_run: Annotated[bool, typer.Option(help="print the record, do not send")] = False,
) -> None:
    """Sign (EIP-712, the DSO's key) and send the DSO's answer to an offer: accepted kW per slot (all or part of
    what was offered) or --reject; prints the sent FlexAcceptance as the final JSON line. The desk orders the
    prosumers only after it (unless FLEX_AUTO_ACCEPT); refusals show on platform.rejections.v1."""
    import time

    from streams.flex.acceptance import AcceptedSlot, FlexAcceptance
    from streams.flex.desk import TOPIC_ACCEPTANCES
    from streams.flex.signing import sign_acceptance

    if reject == (kw is not None):
        raise _fail("give --kw START=KW,... or --reject (not both)")
    slots = []
    for part in (kw or "").split(","):
        if part:
            start, sep, value = part.rpartition("=")
            if not sep:
                raise _fail(f"--kw: {part!r} is not START=KW")
            slots.append(AcceptedSlot(parse_time_ms(start), float(value)))
    now = int(time.time() * 1000)
    acc = FlexAcceptance(
        acceptance_id=acceptance_id or f"acc-{uuid.uuid4().hex[:12]}",
        offer_id=offer_id,
        dso_id=dso,
        area_id=area,
        decision="REJECTED" if reject else "ACCEPTED",
        slots=tuple(slots),
        valid_until=now + int(valid_minutes * 60_000),
        created_at=now,
        price_micro=price,
    )
    try:
        record = sign_acceptance(acc, _key(key_file)).to_avro()
    except ValueError as exc:
        raise _fail(f"cannot sign: {exc}") from None
    if not dry_run:
        _produce(TOPIC_ACCEPTANCES, "FlexAcceptance", [(offer_id, record)])
    typer.echo(json.dumps(record, sort_keys=True))


dso_app = typer.Typer(
    help="DSO registry (flex.dsos.v1): which DSOs may request flexibility and the Ethereum address whose key "
    "signs their requests. Only the address is registered; the DSO keeps its key.",
    no_args_is_help=True,
)
app.add_typer(dso_app, name="dso")


def _publish_dsos(dsos: list[Any], dry_run: bool) -> None:
    from streams.flex.dsos import TOPIC_DSOS

    records = [d.to_avro() for d in dsos]
    if not dry_run:
        _produce(TOPIC_DSOS, "FlexDso", [(r["dso_id"], r) for r in records])
    for r in records:
        typer.echo(json.dumps(r, sort_keys=True))
    typer.echo(
        json.dumps({"published": 0 if dry_run else len(records), "dsos": [r["dso_id"] for r in records]})
    )


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


@dso_app.command("register")
def dso_register(
    dso_id: Annotated[str, typer.Argument(help="DSO id (the registry key, the dso_id of its requests)")],
    address: Annotated[
        str | None, typer.Option(help="Ethereum address that signs the DSO's requests (0x..., EIP-55)")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="or: derive the address from this 0x-hex private key file")
    ] = None,
    name: Annotated[str, typer.Option(help="display name")] = "",
    revoke: Annotated[
        bool, typer.Option(help="publish the entry inactive: the DSO's requests are refused")
    ] = (False),
    dry_run: Annotated[bool, typer.Option(help="validate and print the record, do not send")] = False,
) -> None:
    """Register (or update, or with --revoke revoke) one DSO; the record with the latest updated_at wins."""
    from eth_account import Account

    from streams.flex.dsos import DsoRegistryError, validate_dso

    if (address is None) == (key_file is None):
        raise _fail("give exactly one of --address and --key-file")
    if key_file is not None:
        try:
            address = Account.from_key(_key(key_file)).address
        except ValueError as exc:
            raise _fail(f"{key_file}: not a private key: {exc}") from None
    data = {
        "dso_id": dso_id,
        "eth_address": address,
        "name": name,
        "active": not revoke,
        "updated_at": _now_ms(),
    }
    try:
        dso = validate_dso(data, f"DSO '{dso_id}'")
    except DsoRegistryError as exc:
        raise _fail(str(exc)) from None
    _publish_dsos([dso], dry_run)


@dso_app.command("load")
def dso_load(
    path: Annotated[
        Path, typer.Argument(help="YAML registry file (a 'dsos' list)", exists=True, dir_okay=False)
    ],
    dry_run: Annotated[bool, typer.Option(help="validate and print the records, do not send")] = False,
) -> None:
    """Validate a registry file, then register every DSO in it (nothing is sent if any entry is invalid)."""
    from streams.flex.dsos import DsoRegistryError, load_dso_file

    try:
        dsos = load_dso_file(path, updated_at=_now_ms())
    except DsoRegistryError as exc:
        raise _fail(str(exc)) from None
    _publish_dsos(dsos, dry_run)


def read_topic(settings: Any, bootstrap: str, topic: str, timeout_s: float) -> list[dict[str, Any]]:
    """Every decodable record of ``topic`` from the beginning to its current end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from edream.serde import DecodeError, Serde

    serde = Serde(settings)
    from edream.kafka import consumer_config

    c = Consumer(
        consumer_config(
            settings, f"flex-status-{uuid.uuid4().hex[:8]}", bootstrap, **{"enable.partition.eof": True}
        )
    )
    try:
        meta = c.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        parts = list(meta.partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        done: set[int] = set()
        out = []
        import time

        deadline = time.monotonic() + timeout_s
        while len(done) < len(parts) and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    done.add(msg.partition())
                continue
            try:
                out.append(serde.decode(msg.value(), topic)[1])
            except DecodeError:
                continue
        return out
    finally:
        c.close()


@app.command()
def status(
    order_id: Annotated[str, typer.Argument(help="order id (ord-...)")],
    timeout: Annotated[float, typer.Option(help="seconds to read each topic")] = 20.0,
) -> None:
    """Per-prosumer delivery of an order so far (latest verification verdicts and settlements); final JSON line."""
    from streams.flex.status import order_status

    settings, bootstrap = _bootstrap()
    result = order_status(
        order_id,
        read_topic(settings, bootstrap, "flex.orders.v1", timeout),
        read_topic(settings, bootstrap, "flex.deviations.v1", timeout),
        read_topic(settings, bootstrap, "settlement.flex.v1", timeout),
    )
    if result is None:
        raise _fail(f"no order {order_id} on flex.orders.v1")
    typer.echo(json.dumps(result, sort_keys=True))


@app.command()
def simulate(
    prosumers: Annotated[int, typer.Option(help="portfolio size")] = 50,
    deviators: Annotated[int, typer.Option(help="how many of the dispatched prosumers stop complying")] = 5,
    kw: Annotated[float, typer.Option(help="requested reduction per slot, kW")] = 60.0,
    slots: Annotated[int, typer.Option(help="number of 15-min slots")] = 4,
    stop_after_s: Annotated[
        int, typer.Option(help="deviators stop this many seconds into the first slot")
    ] = 180,
) -> None:
    """In-process acceptance scenario (no broker): request, offer, order, 5-s readings, deviations,
    re-dispatch, settlement. Prints a JSON summary as the final line."""
    from streams.flex.desk import FlexDesk
    from tools.sim.flex_scenario import (
        SLOT_MS,
        T0,
        Devices,
        flat_outlook,
        pid,
        portfolio,
        reduce_request,
        sim_dsos,
        stoppers,
    )

    desk = FlexDesk(portfolio(prosumers), flat_outlook, dsos=sim_dsos())
    [offer_out] = desk.submit(reduce_request(kw=kw, n_slots=slots), now=T0 - 3_600_000)
    summary: dict[str, Any] = {"offer_status": offer_out.record.get("status", offer_out.record.get("code"))}
    if offer_out.schema != "FlexOffer" or offer_out.record["status"] == "INFEASIBLE":
        typer.echo(json.dumps(summary | {"offer": offer_out.record}, sort_keys=True))
        return
    [order_out] = desk.accept(offer_out.record["offer_id"], now=T0 - 1_800_000)
    order_id = order_out.record["order_id"]
    dispatched = sorted({a["prosumer_id"] for a in order_out.record["allocations"]})
    quitters = set(dispatched[:deviators])
    devices = Devices([pid(i) for i in range(prosumers)], stoppers(quitters, T0 + stop_after_s * 1000))

    def order_for_step() -> Any:
        desk.redispatch_queued()  # the devices read the order with the last step's shortfalls re-dispatched
        return desk.orders[order_id]

    for p, ts, reading in devices.readings(order_for_step, T0, T0 + slots * SLOT_MS):
        desk.on_reading(p, ts, reading)
    desk.advance_to(T0 + slots * SLOT_MS + 60_000)
    projected = [d for d in desk.deviations if d.kind == "PROJECTED" and d.verdict == "SHORTFALL"]
    order = desk.orders[order_id]
    summary |= {
        "order_id": order_id,
        "offered_kw": [s["offered_kw"] for s in offer_out.record["slots"]],
        "shortfall_kw": [s["shortfall_kw"] for s in offer_out.record["slots"]],
        "dispatched": len(dispatched),
        "deviators": sorted(quitters),
        "detected": sorted({d.prosumer_id for d in projected}),
        "detection_s_after_stop": sorted({(d.ts - T0) / 1000 - stop_after_s for d in projected}),
        "final_revision": order.revision,
        "order_status": order.status,
        "settlements": len(desk.settlements),
        "incentives_micro": sum(s.amount_micro for s in desk.settlements.values() if s.amount_micro > 0),
        "penalties_micro": -sum(s.amount_micro for s in desk.settlements.values() if s.amount_micro < 0),
        "delivered_wh": sum(s.quantity_wh for s in desk.settlements.values()),
    }
    typer.echo(json.dumps(summary, sort_keys=True))
