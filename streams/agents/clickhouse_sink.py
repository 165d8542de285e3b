"""Generic ClickHouse sink agent: one batched consumer per sink in topology.yaml.

Decodes each message (either framing); undecodable ones go to the dead-letter topic with the reason and the
original bytes. Batches are bounded by the sink's ``batch_rows`` and ``batch_seconds``; offsets are committed only
after the batch is in ClickHouse (at-least-once), and the writes are idempotent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faust

from edream.avro_schemas import contract
from edream.serde import DecodeError
from edream.sink_writer import Positioned, SinkWriter
from streams.app import AgentContext, raw_topic
from streams.deadletter import dead_letter

log = logging.getLogger(__name__)


def register(app: faust.App, ctx: AgentContext) -> None:
    dlq_name = ctx.topic_of("DeadLetter")
    dlq = raw_topic(app, dlq_name)
    for sink in ctx.topology.sinks:
        schema_name = Path(ctx.topology.topic(sink.topic).value_schema).stem
        writer = SinkWriter(ctx.clickhouse, sink, contract(schema_name))

        async def consume(stream, sink=sink, writer=writer, schema_name=schema_name):
            async for events in stream.take_events(sink.batch_rows, within=sink.batch_seconds):
                batch: list[Positioned] = []
                for ev in events:
                    msg = ev.message
                    try:
                        name, record = ctx.serde.decode(ev.value, msg.topic)
                        if name != schema_name:
                            raise DecodeError(f"expected {schema_name}, got {name}")
                    except DecodeError as exc:
                        dl = dead_letter(
                            msg.topic, msg.partition, msg.offset, ev.key, ev.value, f"sink:{sink.name}", exc
                        )
                        value = ctx.serde.encode("DeadLetter", dl, dlq_name)
                        await dlq.send(key=msg.topic.encode(), value=value)
                        ctx.count(f"dlq.{sink.name}")
                        continue
                    batch.append(Positioned(record, msg.topic, msg.partition, msg.offset))
                await ctx.in_clickhouse_thread(writer.write, batch)
                ctx.count(f"sink.{sink.name}.rows", len(batch))

        app.agent(raw_topic(app, sink.topic), name=f"sink.{sink.name}")(consume)
