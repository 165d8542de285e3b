"""Readings/s of the flex-prosumers stage through the runtime on a broker: N enrolled prosumers (each with a
running 1-slot order) among M meters that are not enrolled, 5-s readings pre-produced, then the stage started and
timed until every reading is consumed (lag 0).

    edream bench flex_prosumers [--bootstrap HOST:PORT] [--enrolled 5000] [--others 45000] [--steps 4]

Without ``--bootstrap`` an embedded broker is started in a temporary directory.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from edream.embedded.broker import EmbeddedBroker
from edream.measurements import power_reading
from edream.runtime.clock import clock_topic_name
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde
from edream.settings import Settings
from streams.agents.flex_prosumers import STAGE, stage
from streams.flex.enrolment import enrolment_event
from tools.sim.flex_scenario import prosumer

CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}
CANONICAL = (
    "meter.readings.raw.v1",
    "flex.allocations.v1",
    "flex.enrolments.v1",
    "flex.deviations.v1",
    "settlement.flex.v1",
    "device.commands.v1",
    "flex.prosumer.status.v1",
    "platform.deadletter.v1",
)


def run(
    seconds: float = 5.0,
    bootstrap: str | None = None,
    enrolled: int = 5000,
    others: int = 45000,
    steps: int = 4,
    **_: object,
) -> dict:
    """Readings/s of the stage over ``steps`` 5-s readings of ``enrolled`` + ``others`` meters (``seconds`` unused:
    the readings bound the run); an embedded broker is started unless ``bootstrap`` is given."""
    args = SimpleNamespace(bootstrap=bootstrap, enrolled=int(enrolled), others=int(others), steps=int(steps))
    broker = None
    if args.bootstrap is None:
        broker = EmbeddedBroker(Path(tempfile.mkdtemp(prefix="bench-fp-")))
        broker.start()
        args.bootstrap = broker.bootstrap
    try:
        return bench(args)
    finally:
        if broker is not None:
            broker.stop()


def bench(args: SimpleNamespace) -> dict:
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    run = uuid.uuid4().hex[:8]
    names = {c: f"{c}.b{run}" for c in CANONICAL}
    new = [NewTopic(n, 4, 1, config=CONFIG) for n in names.values()]
    if clock_topic_name(STAGE) not in admin.list_topics(timeout=10).topics:
        new.append(NewTopic(clock_topic_name(STAGE), 4, 1, config=CONFIG))
    for f in admin.create_topics(new).values():
        f.result(15)
    serde = Serde()
    p = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 50, "compression.type": "lz4"})
    for i in range(args.enrolled):
        rec = prosumer(i)
        rec = rec.__class__(**{**rec.__dict__, "prosumer_id": f"e{i}"})
        p.produce(
            names["flex.enrolments.v1"],
            key=rec.prosumer_id.encode(),
            value=serde.encode("FlexEnrolment", enrolment_event(rec, 0)),
        )
    now = int(time.time() * 1000)
    t0 = now - args.steps * 5000
    n = 0
    for s in range(args.steps):
        ts = t0 + s * 5000
        enrolled = [power_reading(f"m-e{i}", ts, 5000.0, prosumer_id=f"e{i}") for i in range(args.enrolled)]
        others = [power_reading(f"m-o{i}", ts, 800.0, prosumer_id=f"o{i}") for i in range(args.others)]
        for r, v in zip(enrolled + others, serde.encode_many("Measurement", enrolled + others), strict=True):
            p.produce(names["meter.readings.raw.v1"], key=r["device_id"].encode(), value=v)
            n += 1
            if n % 20000 == 0:
                p.poll(0)
    p.flush(120)
    settings = Settings(
        kafka_bootstrap_servers=args.bootstrap,
        edream_app_id=f"bench-{run}",
        edream_data_dir=f"/tmp/bench-fp-{run}",
    )
    topo = SimpleNamespace(topics=[SimpleNamespace(name=v) for v in names.values()])
    sup = StageSupervisor(
        stage(settings, topo), settings, names["platform.deadletter.v1"], None, 4, handle_signals=False
    )
    th = threading.Thread(target=sup.run, daemon=True)
    start = time.monotonic()
    th.start()
    want = args.steps * args.enrolled
    first = None
    while time.monotonic() - start < 600:
        if first is None and sup.health.events_in > 0:
            first = time.monotonic()
        if sup.health.events_in >= want and sup.current is not None and sup.current.lag() == 0:
            break  # every reading (also the ones dropped by the re-key) consumed
        time.sleep(0.05)
    end = time.monotonic()
    sup.stop()
    th.join(30)
    total = args.steps * (args.enrolled + args.others)
    after = end - (first or start)
    return {
        "benchmark": "flex_prosumers",
        "readings": total,
        "enrolled_readings": want,
        "consumed": sup.health.events_in,
        "seconds_incl_start_up": round(end - start, 1),
        "seconds_from_first_processed": round(after, 1),
        "readings_per_s_overall": round(total / (end - start)),
        "readings_per_s_after_start_up": round(total / after) if after > 0 else 0,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run()))
