"""Generic ClickHouse sink agent: one batched consumer per sink in topology.yaml.

Decodes each message (either framing); undecodable ones, records outside their contract
(:mod:`streams.validation.sink`: readings), and rows the sink's table cannot store (see
:class:`edream.sink_writer.SinkWriter`), go to the dead-letter topic with the reason and the original bytes (stage
``sink:<name>``). Batches are bounded by the sink's ``batch_rows`` and ``batch_seconds``; offsets are committed only
after the batch is in ClickHouse (at-least-once), and the writes are idempotent. While ClickHouse is unreachable a
batch is retried with backoff (``sink.<name>.retries``), sleeping off the shared ClickHouse thread. A batch's dead
letters are acknowledged by the broker before the next batch (refused ones are sent again:
:mod:`streams.agents.acked_sends`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import faust

from edream.avro_schemas import contract
from edream.serde import DecodeError
from edream.sink_writer import Positioned, SinkWriter, write_retrying
from streams.agents.acked_sends import AckedSends
from streams.app import AgentContext, raw_topic
from streams.deadletter import sink_letter
from streams.validation.fields import InvalidRecord
from streams.validation.sink import sink_check

log = logging.getLogger(__name__)


def register(app: faust.App, ctx: AgentContext) -> None:
    dlq_name = ctx.topic_of("DeadLetter")
    dlq = raw_topic(app, dlq_name)
    for sink in ctx.topology.sinks:
        schema_name = Path(ctx.topology.topic(sink.topic).value_schema).stem
        writer = SinkWriter(ctx.clickhouse, sink, contract(schema_name))
        check = sink_check(schema_name)  # readings outside their contract never become rows

        async def consume(stream, sink=sink, writer=writer, schema_name=schema_name, check=check):
            stage = f"sink:{sink.name}"

            async def send_letter(key: bytes, value: bytes):  # noqa: ANN202 - Faust's delivery future
                return await dlq.send(key=key, value=value)

            letters = AckedSends(
                send_letter,
                f"sink {sink.name}: dead letters to {dlq_name}",
                on_retry=lambda exc: ctx.count(f"sink.{sink.name}.dlq_retries"),
            )

            async def to_dlq(
                p: Positioned, error: BaseException | str, error_type: str | None = None
            ) -> None:
                dl = sink_letter(p, stage, error, error_type, dlq_name)
                if dl is None:
                    log.error(
                        "sink %s: letter %s/%s/%s not stored: %s",
                        sink.name,
                        p.topic,
                        p.partition,
                        p.offset,
                        error,
                    )
                    ctx.count(f"sink.{sink.name}.unstorable")
                    return
                await letters.send(p.topic.encode(), ctx.serde.encode("DeadLetter", dl, dlq_name))
                ctx.count(f"dlq.{sink.name}")

            def on_retry(exc: BaseException) -> None:
                ctx.count(f"sink.{sink.name}.retries")

            async for events in stream.take_events(sink.batch_rows, within=sink.batch_seconds):
                batch: list[Positioned] = []
                for ev in events:
                    msg = ev.message
                    p = Positioned({}, msg.topic, msg.partition, msg.offset, ev.key, ev.value)
                    try:
                        name, record = ctx.serde.decode(ev.value, msg.topic)
                        if name != schema_name:
                            raise DecodeError(f"expected {schema_name}, got {name}")
                        if check is not None and (errors := check(record)):
                            raise InvalidRecord(schema_name, errors)
                    except DecodeError as exc:
                        await to_dlq(p, exc)
                        continue
                    batch.append(Positioned(record, msg.topic, msg.partition, msg.offset, ev.key, ev.value))
                result = await write_retrying(ctx.in_clickhouse_thread, writer, batch, on_retry)
                for r in result.rejected:
                    await to_dlq(r.item, r.reason, r.error_type)
                await (
                    letters.confirm()
                )  # the batch's dead letters are on Kafka before its offsets are committed
                ctx.count(f"sink.{sink.name}.rows", result.written)

        app.agent(raw_topic(app, sink.topic), name=f"sink.{sink.name}")(consume)
