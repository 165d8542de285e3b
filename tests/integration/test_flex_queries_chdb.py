"""Every example query in streams/flex/queries.sql runs on real chDB over the sinks filled by a simulation."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from edream.avro_schemas import contract
from edream.sink_writer import Positioned, SinkWriter
from streams.flex.desk import FlexDesk
from streams.flex.sinks import SINKS
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

pytestmark = pytest.mark.integration
QUERIES = Path(__file__).resolve().parents[2] / "streams" / "flex" / "queries.sql"


def test_example_queries_run_on_chdb(chdb_client):
    desk = FlexDesk(portfolio(12), flat_outlook, dsos=sim_dsos())
    req = reduce_request(kw=12.0, n_slots=2)
    outs = desk.submit(req, now=T0 - 3_600_000)
    outs += desk.accept(outs[0].record["offer_id"], now=T0 - 1_800_000)
    order_id = outs[-1].record["order_id"]
    devices = Devices([pid(i) for i in range(12)], stoppers({"p00"}, T0 + 120_000))
    for p, ts, kw in devices.readings(lambda: desk.orders[order_id], T0, T0 + 2 * SLOT_MS, 15_000):
        outs += desk.on_reading(p, ts, kw)
    outs += desk.advance_to(T0 + 3 * SLOT_MS)
    records = {"flex.requests.v1": [req.to_avro()]}
    for o in outs:
        records.setdefault(o.topic, []).append(o.record)

    suffix = uuid.uuid4().hex[:8]
    names = {}
    for s in SINKS:
        table = f"{s.table}_{suffix}"
        names[s.table] = table
        writer = SinkWriter(chdb_client, s.model_copy(update={"table": table}), contract(_schema(s.topic)))
        writer.write([Positioned(r, s.topic, 0, i) for i, r in enumerate(records.get(s.topic, []))])

    text = "\n".join(line for line in QUERIES.read_text().splitlines() if not line.strip().startswith("--"))
    statements = [q.strip() for q in text.split(";") if q.strip()]
    assert len(statements) == 7
    results = []
    for q in statements:
        for base, table in names.items():
            q = re.sub(rf"\b{base}\b", table, q)
        results.append(chdb_client.query(q).result_rows)
    assert results[3][0][1] == "p00"  # query 4: the first detected shortfall is the quitter
    per_party = {r[0]: r for r in results[5]}
    assert per_party["p00"][2] > 0  # query 6: p00 paid penalties
    assert sum(r[3] for r in results[6]) == sum(s.amount_micro for s in desk.settlements.values())


def _schema(topic: str) -> str:
    return {
        "flex.requests.v1": "FlexRequest",
        "flex.offers.v1": "FlexOffer",
        "flex.orders.v1": "FlexOrder",
        "flex.deviations.v1": "Deviation",
        "settlement.flex.v1": "Settlement",
    }[topic]
