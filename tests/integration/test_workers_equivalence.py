"""N workers give the same outputs as one, also when a worker is killed with SIGKILL mid-run (issue 13).

Two copies of the topology (unique topic names) run side by side on the session broker: one by a single `edream
worker`, the other by three `edream worker` processes in the stages' consumer groups (intervals, flex,
flex-prosumers, market), one of which is SIGKILLed mid-run (its stage processes die with it; the group rebalances
its partitions to the others, which restore their state from the changelog). Both get the same fixed input,
message for message with the same record times:

* the flex lifecycle and the market, live on the wall clock (their gates, ticks and slot closings are wall-clock
  driven): enrolments, the DSO registry, market participants, metered statuses, a signed DSO request for a
  1-minute slot (sent once both area desks consumed the statuses: the offer's outlook), 5-s readings of the
  prosumers during delivery, signed market orders for a session whose gate closes during the run;
* the intervals' backlog, sent as delivery starts so the kill hits it: 40 meters, 50 minutes of 5-s readings.

Offers, orders, deviations, flex settlements, market clearing results and trades (whole records), and interval
records (id, version, energy, samples) must be the same sets: 0 lost, 0 changed; replays may repeat a record,
never alter it. Anchors are not compared here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from edream.measurements import power_reading
from edream.serde import Serde

pytestmark = [pytest.mark.integration, pytest.mark.slow]
METERS, PERIOD_MS, SPAN_MS = 40, 5_000, 50 * 60_000


def _worker(env: dict[str, str], data_dir, log, stages: str) -> subprocess.Popen:
    env = {**env, "EDREAM_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", "from edream.cli import main; main()", "worker", "--stages", stages],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: _stop_all reaps its stage processes whatever happened
    )


def _stop_all(workers: list[subprocess.Popen]) -> None:
    """SIGTERM every live worker, give each 60 s, then SIGKILL each worker's process group (its stage
    processes too), so a failed run leaves nothing running for the tests after it."""
    live = [w for w in workers if w.poll() is None]
    for w in live:
        w.send_signal(signal.SIGTERM)
    for w in live:
        with contextlib.suppress(subprocess.TimeoutExpired):
            w.wait(60)
    for w in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(w.pid, signal.SIGKILL)
        w.wait()


def _deployment(bootstrap: str, renamed_topology, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """A copy of the topology with unique topic names, all created: (workers' environment, canonical -> name)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from edream.topology import load_topology

    suffix = uuid.uuid4().hex[:8]
    topology, topics = renamed_topology(suffix)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EDREAM_TOPOLOGY": str(topology),
        "EDREAM_APP_ID": f"eq-{name}-{suffix}",
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "FLEX_AUTO_ACCEPT": "true",  # no DSO answers the offers here: the desk orders at once
    }
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(t.name, t.partitions, 1, config=t.kafka_config()) for t in load_topology(topology).topics]
    for fut in admin.create_topics(new).values():
        fut.result(15)
    return env, topics


def _decoded(bootstrap: str, topics: list[str], serde: Serde) -> dict[str, list[dict]]:
    """Every record of the topics, from the beginning until they have been quiet for 2 s."""
    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"eq-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    try:
        meta = c.list_topics(timeout=10).topics
        c.assign([TopicPartition(t, p, 0) for t in topics for p in meta[t].partitions])
        out: dict[str, list[dict]] = {t: [] for t in topics}
        idle = 0
        while idle < 4:
            batch = [m for m in c.consume(1000, 0.5) if not m.error()]
            idle = 0 if batch else idle + 1
            for m in batch:
                out[m.topic()].append(serde.decode(m.value(), m.topic())[1])
        return out
    finally:
        c.close()


STAGES = "intervals,flex,flex-prosumers,market"
PROSUMERS = 8
#: canonical output topics compared whole between the 1-worker and the 3-worker deployment
COMPARED = (
    "flex.offers.v1",
    "flex.orders.v1",
    "flex.deviations.v1",
    "settlement.flex.v1",
    "market.clearing.v1",
    "market.trades.v1",
)
MIN_MS = 60_000
INTERVALS = "meter.intervals.15m.v1"


def _drained(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether consumer group ``group`` has committed the end of ``topics`` and of its repartition topics."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        meta = c.list_topics(timeout=10).topics
        names = [t for t in topics if t in meta] + [
            t for t in meta if t.startswith(f"repartition__{group}--")
        ]
        tps = [TopicPartition(t, p) for t in names for p in meta[t].partitions]
        for tp in c.committed(tps, timeout=10):
            lo, hi = c.get_watermark_offsets(tp, timeout=10)
            if hi > lo and tp.offset < hi:  # nothing committed yet: offset < 0
                return False
        return True
    finally:
        c.close()


def _wait(cond, timeout: float, what: str, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def _sleep_until(ms: int) -> None:
    time.sleep(max(0.0, ms / 1000 - time.time()))


def _outputs(bootstrap: str, topics: dict[str, str], serde: Serde) -> dict[str, set[str]]:
    """Canonical output topic -> its records, each as canonical JSON (every field compared); intervals as
    (id, version, energies, samples): their ``computed_at`` is the time a window was closed."""
    got = _decoded(bootstrap, [topics[c] for c in (*COMPARED, INTERVALS)], serde)
    out = {c: {json.dumps(r, sort_keys=True, default=str) for r in got[topics[c]]} for c in COMPARED}
    out[INTERVALS] = {
        (r["event_id"], r["version"], r["import_wh"], r["export_wh"], r["samples"])
        for r in got[topics[INTERVALS]]
    }
    return out


@pytest.mark.timeout(600)
def test_three_workers_with_one_killed_match_one_worker(tmp_path, kafka_bootstrap, renamed_topology):
    from streams.flex.enrolment import enrolment_event
    from streams.flex.model import Direction
    from streams.flex.requests import FlexRequest, RequestSlot
    from streams.market.config import MarketConfig
    from tools.sim.flex_scenario import AREA, BASELINE_KW, SIM_DSO_ID, pid, portfolio, signed, sim_dso
    from tools.sim.market_day import MarketDay, Q

    serde = Serde()
    t0 = int(time.time() * 1000)
    # the market session's gate closes ~2 min from now, on the wall clock, while the flex delivery runs
    gate = t0 + 120_000
    slot0 = (gate // Q + 1) * Q
    day = MarketDay(
        slot0, MarketConfig(gate_closure_lead_ms=slot0 - gate, imbalance_price_micro_per_kwh=50_000)
    )
    market_yaml = f"gate_closure_lead_ms: {slot0 - gate}\nimbalance_price_micro_per_kwh: 50000\n"
    deployments = {name: _deployment(kafka_bootstrap, renamed_topology, name) for name in ("one", "three")}
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})

    def send(canonical: str, schema: str, key: str, rec: dict, ts: int) -> None:
        """The same message (key, value, record time) to both deployments."""
        for _, topics in deployments.values():
            t = topics[canonical]
            producer.produce(t, serde.encode(schema, rec, t), key=key.encode(), timestamp=ts)

    for rec in portfolio(PROSUMERS).records.values():
        send(
            "flex.enrolments.v1", "FlexEnrolment", rec.prosumer_id, enrolment_event(rec, t0 - 86_400_000), t0
        )
        status = {"prosumer_id": rec.prosumer_id, "area_id": rec.area_id, "ts": t0, "metered_kw": BASELINE_KW}
        send("flex.prosumer.status.v1", "FlexProsumerStatus", rec.prosumer_id, status | {"delivered": []}, t0)
    send("flex.dsos.v1", "FlexDso", SIM_DSO_ID, sim_dso().to_avro(), t0)
    for p in day.participants():
        send("market.participants.v1", "MarketParticipant", p.participant_id, p.to_avro(), t0)
    for o in day.good_orders():  # signed 2 h before the slot, arrived 0.5 s later
        if o.slot_start == slot0:
            send("market.orders.v1", "MarketOrder", o.session_id, o.to_avro(), o.client_ts + 500)
    assert producer.flush(30) == 0
    # the intervals' input: 40 meters, 50 minutes of 5-s readings ending 10 minutes ago, sent during delivery
    past = t0 // PERIOD_MS * PERIOD_MS - 10 * 60_000
    backlog = [
        (topics["meter.readings.raw.v1"], rec["device_id"].encode(), serde.encode("Measurement", rec))
        for _, topics in deployments.values()
        for rec in (
            power_reading(
                f"meter-{m}", ts, 500.0 + 37.0 * m + (ts // PERIOD_MS) % 11, prosumer_id=f"p-{m}", seq=k
            )
            for k, ts in enumerate(range(past - SPAN_MS, past, PERIOD_MS))
            for m in range(METERS)
        )
    ]

    log = open(tmp_path / "workers.log", "ab")  # noqa: SIM115 - shared by the worker processes
    workers: dict[str, list[subprocess.Popen]] = {}
    for name, count in (("one", 1), ("three", 3)):
        for i in range(count):
            data = tmp_path / f"{name}-{i}"
            data.mkdir()
            (data / "market.yaml").write_text(market_yaml)
            workers.setdefault(name, []).append(_worker(deployments[name][0], data, log, STAGES))
    start = time.monotonic()
    try:
        # the metered statuses are the offer's outlook: consumed by both area desks before the request comes
        groups = {n: env["EDREAM_APP_ID"] for n, (env, _) in deployments.items()}
        _wait(
            lambda: all(
                _drained(kafka_bootstrap, f"{g}-flex", [deployments[n][1]["flex.prosumer.status.v1"]])
                for n, g in groups.items()
            ),
            180,
            "the statuses consumed",
            every=2,
        )
        phases = {"statuses consumed": time.monotonic() - start}
        t_req = int(time.time() * 1000)
        first = (t_req + 20_000) // MIN_MS * MIN_MS + MIN_MS
        slots = (first,)
        request = signed(
            FlexRequest(
                request_id=f"req-{uuid.uuid4().hex[:8]}",
                dso_id=SIM_DSO_ID,
                area_id=AREA,
                direction=Direction.REDUCE,
                slots=tuple(RequestSlot(s, 7.5) for s in slots),
                reward_micro_per_kwh=250_000,
                deadline=first - 5_000,
                created_at=t_req,
                slot_minutes=1,
            )
        )
        send("flex.requests.v1", "FlexRequest", request.request_id, request.to_avro(), t_req)
        assert producer.flush(30) == 0
        orders = {}

        def ordered() -> bool:
            for n, (_, topics) in deployments.items():
                t = topics["flex.orders.v1"]
                orders[n] = _decoded(kafka_bootstrap, [t], serde)[t]
            return all(orders.values())

        _wait(ordered, max(10, (first - time.time() * 1000) / 1000 - 5), "an order in both deployments")
        [order] = orders["one"]
        target = {(a["prosumer_id"], a["slot_start"]): a["kw"] for a in order["allocations"]}
        # the prosumers deliver 95 %, 100 % and 105 % of their allocation, in merit order, within the tolerance
        share = {p: (0.95, 1.0, 1.05)[k % 3] for k, p in enumerate(sorted({p for p, _ in target}))}
        killed = False
        for seq, ts in enumerate(range(first - 10_000, slots[-1] + MIN_MS + 25_000, 5_000)):
            _sleep_until(ts)
            slot = (ts - 1) // MIN_MS * MIN_MS  # a reading measures the 5 s before it
            for i in range(PROSUMERS):
                p = pid(i)
                kw = BASELINE_KW - target.get((p, slot), 0.0) * share.get(p, 1.0)
                reading = power_reading(f"meter-{p}", ts, kw * 1000.0, prosumer_id=p, seq=seq)
                send("meter.readings.raw.v1", "Measurement", f"meter-{p}", reading, ts)
            if ts == first:  # the intervals' backlog, processed while a worker is killed
                for topic, key, value in backlog:
                    producer.produce(topic, value, key=key, timestamp=ts)
            producer.flush(10)
            if not killed and ts >= first + 20_000:
                os.kill(workers["three"][0].pid, signal.SIGKILL)  # mid-run; its stages die with it
                killed = True
        phases["delivery read"] = time.monotonic() - start
        settlements = len(target)
        got: dict[str, dict[str, set]] = {}

        def settled() -> bool:
            last = dict(got)
            for n, (_, topics) in deployments.items():
                got[n] = _outputs(kafka_bootstrap, topics, serde)
            return last == got and all(
                len(o["settlement.flex.v1"]) >= settlements
                and len(o["market.trades.v1"]) >= 8
                and len(o["meter.intervals.15m.v1"]) >= METERS * 3
                for o in got.values()
            )

        _wait(settled, 240, "the outputs of both deployments, stable", every=3)
        phases["outputs stable"] = time.monotonic() - start
        print("seconds after the workers started:", {k: round(v) for k, v in phases.items()})
    finally:
        _stop_all([w for ws in workers.values() for w in ws])
    one, three = got["one"], got["three"]
    counts = {c: len(v) for c, v in one.items()}
    assert counts["flex.offers.v1"] == 1 and counts["market.clearing.v1"] == 1, counts
    assert counts["market.trades.v1"] == 8 and counts["settlement.flex.v1"] == settlements, counts
    finals = [json.loads(d) for d in one["flex.deviations.v1"]]
    assert {(d["prosumer_id"], d["kind"]) for d in finals} >= {(p, "FINAL") for p, _ in target}
    windows = SPAN_MS // (15 * 60_000)
    assert len({r[0] for r in one[INTERVALS]}) >= METERS * windows, "every meter's closed windows are out"
    for c in (*COMPARED, INTERVALS):
        assert three[c] == one[c], (c, sorted(one[c] - three[c])[:2], sorted(three[c] - one[c])[:2])
