"""Runs one :class:`~edream.runtime.contract.StageSpec` on Quix Streams.

Dataflow of a stage, top to bottom:

1. one dataframe per input topic (raw bytes); inputs with a ``rekey`` function go through a repartition topic
   (``group_by``) so that the state key decides the partition; those source topics are consumed apart from the
   time-aligned state inputs (:mod:`edream.runtime.rekey_buffer`), and a fetch returns what is queued without
   waiting (:mod:`edream.runtime.consume_ready`);
2. the stage's clock topic (``edream.clock.<consumer group>``, same partition count) carries wall-clock ticks
   (:mod:`edream.runtime.clock`);
3. all of them are concatenated into one stream whose state store is partitioned like the inputs (RocksDB per
   partition, changelog topic, restored on assignment);
4. each record is handed to the processor with the partition's :class:`~edream.runtime.state.RecordState`; the
   record's writes are applied only if it succeeded; a failing record becomes a dead letter (stage + reason) and
   processing continues; :class:`~edream.runtime.contract.TransientError` stops the run without committing, so
   the supervisor restarts it with backoff and the record is retried;
5. emits are produced to their topics; offsets are committed only after the producer flushed and the state
   changelog is written (Quix's at-least-once checkpoint); changelog high watermarks are checked by a fetch
   (:mod:`edream.runtime.watermarks`: the embedded broker answers a short one).

Production settings (broker, SASL/TLS, group, state directory) come from :class:`~edream.settings.Settings`.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from quixstreams import Application, message_context
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TopicConfig
from quixstreams.models.serializers import SerializationContext, Serializer
from quixstreams.state.base.state import TransactionState

from edream.deadletter import dead_letter
from edream.kafka import client_config
from edream.runtime.clock import CLOCK_PREFIX, clock_topic_name, decode_tick
from edream.runtime.consume_ready import consume_ready_first
from edream.runtime.contract import Emit, Record, Rekey, StageProcessor, StageSpec, TransientError, View
from edream.runtime.health import StageHealth
from edream.runtime.input_frontier import InputFrontier
from edream.runtime.quix_fast_get import install as install_fast_get
from edream.runtime.rekey_buffer import SourcesApartBuffer
from edream.runtime.state import ReadCache, RecordState
from edream.runtime.watermarks import WatermarkProbe
from edream.serde import Serde
from edream.settings import Settings

log = logging.getLogger(__name__)
install_fast_get()

#: Longest wait of one consumer fetch (s). librdkafka's batch consume waits this long whenever fewer messages than
#: its batch (10,000) are ready, and Quix's time-aligned buffer fetches again whenever a quiet input's partition
#: (clock, allocations, a repartition topic) runs empty: with Quix's default of 1 s a stage sat idle most of that
#: second while its busy input lagged.
POLL_TIMEOUT_S = 0.05

#: The one state prefix of a stage's partition store: processors choose their own keys below it.
PARTITION_PREFIX = b"p"


class _EmitValue(Serializer):
    """Serializer of an :class:`Emit`: its value bytes as they are."""

    def __call__(self, value: Emit, ctx: SerializationContext) -> bytes:
        return value.value


class _StageApplication(Application):
    """An Application that can also run on a non-main thread (signals are the hosting process's business)."""

    def __init__(self, *args: Any, handle_signals: bool = True, **kwargs: Any):
        self._handle_signals = handle_signals
        super().__init__(*args, **kwargs)

    def _setup_signal_handlers(self) -> None:
        if self._handle_signals:
            super()._setup_signal_handlers()


def group_id(settings: Settings, stage: str) -> str:
    """Consumer group of a stage: every worker running it joins the same group and shares its partitions."""
    return f"{settings.edream_app_id}-{stage}"


class StageRun:
    """One run of a stage on one worker: the Quix application and the record handler."""

    def __init__(
        self,
        spec: StageSpec,
        settings: Settings,
        health: StageHealth,
        state_dir: Path,
        deadletter_topic: str,
        partitions: int,
        handle_signals: bool = True,
        views: dict[str, View] | None = None,
    ):
        self.spec, self.settings, self.health = spec, settings, health
        #: time.monotonic() at which the consumer failed and this run began to stop (None: it has not)
        self.failed_at: float | None = None
        self._stop_requested = False
        self.deadletter_topic = deadletter_topic
        self.serde = Serde(settings)
        self.processor: StageProcessor = spec.make(views or {})
        self._read_caches: dict[int, ReadCache] = {}
        self.app = _StageApplication(
            broker_address=ConnectionConfig.from_librdkafka_dict(
                client_config(settings.kafka_bootstrap_servers, settings), ignore_extras=True
            ),
            consumer_group=group_id(settings, spec.name),
            auto_offset_reset="earliest",
            commit_interval=settings.runtime_commit_interval_s,
            consumer_poll_timeout=POLL_TIMEOUT_S,
            state_dir=state_dir,
            processing_guarantee="at-least-once",
            producer_extra_config={"linger.ms": 20, "compression.type": "lz4", "enable.idempotence": False},
            consumer_extra_config={
                "enable.partition.eof": False,
                # a killed worker's partitions move to the others after this, not librdkafka's default 45 s
                "session.timeout.ms": int(settings.kafka_session_timeout_s * 1000),
                "heartbeat.interval.ms": max(500, int(settings.kafka_session_timeout_s * 1000) // 4),
            },
            loglevel=None,
            handle_signals=handle_signals,
            on_consumer_error=self._consumer_failed,
        )
        consumer = self.app._consumer  # noqa: SLF001 - Quix exposes no public accessor
        consumer.consume = consume_ready_first(consumer.consume)
        consumer.poll = _progress_on_message(consumer.poll, health)  # Quix restores state with poll
        if spec.rekey:  # the re-keyed source topics are consumed apart from the time-aligned state inputs
            consumer._buffer = SourcesApartBuffer(frozenset(spec.rekey), consumer._max_partition_buffer_size)  # noqa: SLF001
        # the embedded broker answers a short high watermark; Quix checks and restores changelogs against it
        self._watermarks = WatermarkProbe(
            self.app._consumer,  # noqa: SLF001 - the consumer Quix's recovery queries
            client_config(settings.kafka_bootstrap_servers, settings),
        )
        self._outputs: dict[str, Any] = {}
        self.frontier: InputFrontier | None = None
        if spec.ticks_wait_for_inputs_ms is not None:
            self.frontier = InputFrontier(
                lambda: self.app._consumer,  # noqa: SLF001 - Quix exposes no public accessor
                frozenset(spec.rekey),
                lambda topic: topic.startswith((CLOCK_PREFIX, "changelog__")),
            )
        self._held_since: float | None = None
        self._warned_hold = False
        self._wire(partitions)

    # -- wiring ----------------------------------------------------------------------------------------------
    def _topic(self, name: str, partitions: int | None = None) -> Any:
        config = None
        if partitions is not None:
            config = TopicConfig(
                num_partitions=partitions,
                replication_factor=self.settings.runtime_replication_factor,
                extra_config={"retention.ms": "3600000", "cleanup.policy": "delete"},
            )
        return self.app.topic(
            name,
            key_deserializer="bytes",
            value_deserializer="bytes",
            key_serializer="bytes",
            value_serializer=_EmitValue(),
            config=config,
        )

    def _consumer_failed(self, exc: Exception, message: Any, logger: logging.Logger) -> bool:
        """Quix's consumer error callback: the run stops (False: not suppressed); the time is kept, so the supervisor
        can tell a run that stops from one whose stop hangs (a broker failing under it)."""
        self.failed_at = time.monotonic()
        logger.error("%s: consuming failed, the run stops: %s: %s", self.spec.name, type(exc).__name__, exc)
        return False

    def _output(self, name: str) -> Any:
        if name not in self._outputs:
            self._outputs[name] = self._topic(name)
        return self._outputs[name]

    def _wire(self, partitions: int) -> None:
        spec = self.spec
        streams = []
        for name in spec.inputs:
            sdf = self.app.dataframe(self._topic(name))
            rekey = spec.rekey.get(name)
            if rekey is not None:
                sdf = (
                    sdf.apply(partial(_fan_out, rekey), expand=True, metadata=True)
                    .group_by(
                        _packed_key,
                        name=f"{spec.name}-{name}",
                        value_deserializer="bytes",
                        value_serializer="bytes",
                        key_deserializer="bytes",
                        key_serializer="bytes",
                    )
                    .apply(_packed_value)
                )
            streams.append(sdf.apply(partial(_tag, name), metadata=True))
        clock = self.app.dataframe(
            self._topic(clock_topic_name(group_id(self.settings, spec.name)), partitions)
        )
        streams.append(clock.apply(partial(_tag, CLOCK_PREFIX), metadata=True))
        merged = streams[0]
        for sdf in streams[1:]:
            merged = merged.concat(sdf)
        # the store's changelog topic is named after the stream id, by default every concatenated topic name
        # joined: past 255 characters with a few re-keyed inputs; the stage name identifies the stream instead
        merged = merged.__dataframe_clone__(stream=merged.stream, stream_id=f"stage-{spec.name}")
        merged = merged.apply(self._handle, stateful=True, metadata=True, expand=True)
        merged.to_topic(self._route, key=_emit_key)
        for name in (*spec.outputs, self.deadletter_topic):
            self._output(name)

    def _route(self, value: Emit, key: Any, timestamp: int, headers: Any) -> Any:
        return self._output(value.topic)

    # -- processing ------------------------------------------------------------------------------------------
    def _handle(
        self, tagged: tuple[str, bytes], key: Any, timestamp: int, headers: Any, state: TransactionState
    ) -> list[Emit]:
        source, value = tagged
        ctx = message_context()
        part_state = TransactionState(PARTITION_PREFIX, state._transaction)  # the partition's store
        buffered = RecordState(part_state, self._read_cache(ctx.partition, state._transaction))
        t0 = time.perf_counter()
        try:
            if source == CLOCK_PREFIX:
                now_ms = decode_tick(value)
                out = (
                    [] if self._hold_tick() else list(self.processor.on_tick(now_ms, ctx.partition, buffered))
                )
                self.health.ticked(now_ms)
            else:
                self.health.record_in(1)
                if unroutable := _unroutable(key):
                    raise unroutable
                record = Record(source, ctx.partition, ctx.offset, key, value, timestamp)
                out = list(self.processor.on_record(record, buffered))
                self._processed(ctx)
        except TransientError as exc:
            self.health.transient(exc)
            raise  # stops the run uncommitted; the supervisor restarts it with backoff
        except Exception as exc:  # noqa: BLE001 - a poison record must not stop the stage
            self.health.failed_record(exc)
            log.warning(
                "%s: record %s/%d/%d dead-lettered: %s: %s",
                self.spec.name,
                source,
                ctx.partition,
                ctx.offset,
                type(exc).__name__,
                exc,
            )
            self._processed(ctx)
            return [self._dead_letter(source, ctx.partition, ctx.offset, key, value, exc)]
        buffered.commit()
        self.health.processed(len(out), time.perf_counter() - t0)
        return out

    def _processed(self, ctx: Any) -> None:
        if self.frontier is not None:
            self.frontier.processed(ctx.topic, ctx.partition, ctx.offset)

    def _read_cache(self, partition: int, transaction: Any) -> ReadCache:
        """The read cache of ``partition``'s current store transaction (a new one with each transaction)."""
        cache = self._read_caches.get(partition)
        if cache is None or cache.owner is not transaction:
            cache = self._read_caches[partition] = ReadCache(transaction)
        return cache

    def _hold_tick(self) -> bool:
        """Hold this tick (the processor does not see it) while the inputs are not processed up to their end, for
        at most the spec's ``ticks_wait_for_inputs_ms``; after that ticks pass (logged) until it caught up."""
        if self.frontier is None or self.frontier.caught_up():
            self._held_since, self._warned_hold = None, False
            return False
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
        held_s, limit_s = now - self._held_since, (self.spec.ticks_wait_for_inputs_ms or 0) / 1000
        if held_s < limit_s:
            return True
        if not self._warned_hold:  # one warning per hold, not one per tick
            self._warned_hold = True
            log.warning(
                "%s: inputs still not processed to their end after %.0f s: ticks pass anyway",
                self.spec.name,
                held_s,
            )
        return False

    def _dead_letter(
        self, topic: str, partition: int, offset: int, key: Any, value: bytes, exc: BaseException
    ) -> Emit:
        code = getattr(exc, "error_type", None)  # a processor's machine code for the reason, if it names one
        rec = dead_letter(topic, partition, offset, key, value, f"stage:{self.spec.name}", exc, code)
        body = self.serde.encode("DeadLetter", rec, self.deadletter_topic)
        return Emit(self.deadletter_topic, topic.encode(), body)

    def run(self) -> None:
        tracker = self.app._run_tracker  # noqa: SLF001 - Quix exposes no public accessor
        set_as_running = tracker.set_as_running

        def start_unless_stopped() -> None:
            # Quix's run() creates topics and subscribes before it marks itself running, which cancels a stop
            # requested meanwhile (a stop during a slow start then never took effect); it is applied again here
            set_as_running()
            if self._stop_requested:
                tracker.stop()

        tracker.set_as_running = start_unless_stopped
        try:
            if not self._stop_requested:
                self.app.run()
        finally:
            self._watermarks.close()

    def stop(self) -> None:
        self._stop_requested = True
        self.app.stop()

    def lag(self) -> int | None:
        """Messages not yet consumed on the assigned input partitions (from cached watermarks)."""
        try:
            consumer = self.app._consumer  # noqa: SLF001 - Quix exposes no public accessor
            assigned = consumer.assignment()
            total = 0
            for tp in consumer.position(assigned):
                lo, hi = consumer.get_watermark_offsets(tp, cached=True)
                if hi < 0:
                    continue
                total += max(0, hi - (tp.offset if tp.offset >= 0 else lo))
            return total
        except Exception:  # noqa: BLE001 - health, not control flow
            return None


def _progress_on_message(poll: Any, health: StageHealth) -> Any:
    """``poll(timeout)`` that counts a returned message as the run's progress: restoring a large state from its
    changelog handles no record or tick for a while, but it is not a hang."""

    def poll_with_progress(*args: Any, **kwargs: Any) -> Any:
        msg = poll(*args, **kwargs)
        if msg is not None:
            health.progressed()
        return msg

    return poll_with_progress


def _tag(topic: str, value: bytes, key: Any, timestamp: int, headers: Any) -> tuple[str, bytes]:
    return (topic, value)


#: partition key of a record whose state key could not be read (followed by ``:`` and the re-keying function's
#: error): the stage dead-letters it from there with that reason, before its processor sees it
UNREADABLE_KEY = b"\x00unreadable"


class UnroutableRecord(ValueError):
    """An input record whose re-keying function failed: the message is that function's error, ``error_type`` its
    class name (what the dead letter reports, as if the stage had raised it)."""

    def __init__(self, reason: str, error_type: str = "UnroutableRecord"):
        super().__init__(reason)
        self.error_type = error_type


def _unroutable(key: Any) -> UnroutableRecord | None:
    if not (isinstance(key, bytes) and key.startswith(UNREADABLE_KEY)):
        return None
    error_type, sep, reason = key[len(UNREADABLE_KEY) + 1 :].decode("utf-8", "replace").partition(": ")
    return UnroutableRecord(reason, error_type) if sep and error_type else UnroutableRecord("unreadable")


_KEYLEN = struct.Struct(">H")


def _fan_out(rekey: Rekey, value: bytes, key: bytes | None, _timestamp: int, _headers: Any) -> list[bytes]:
    """One packed copy (key length, key, value) per state key; unreadable records keep going, to be
    dead-lettered by the stage under :data:`UNREADABLE_KEY`."""
    try:
        keys = list(rekey(key, value))
    except Exception as exc:  # noqa: BLE001
        keys = [UNREADABLE_KEY + f":{type(exc).__name__}: {exc}"[:1000].encode()]
    return [_KEYLEN.pack(len(k)) + k + value for k in keys]


def _packed_key(packed: bytes) -> bytes:
    (n,) = _KEYLEN.unpack_from(packed)
    return packed[2 : 2 + n]


def _packed_value(packed: bytes) -> bytes:
    (n,) = _KEYLEN.unpack_from(packed)
    return packed[2 + n :]


def _emit_key(value: Emit) -> bytes | None:
    return value.key


def emits(items: Iterable[tuple[str, bytes | None, bytes]]) -> list[Emit]:
    """(topic, key, value) triples as :class:`Emit`."""
    return [Emit(t, k, v) for t, k, v in items]
