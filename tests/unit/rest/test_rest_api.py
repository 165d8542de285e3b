"""The REST API's request handling with its ClickHouse and broker calls replaced by functions (the real ones are
exercised on a running platform in tests/integration/test_run_platform.py): bearer tokens, problem details,
outages as 503, queries with bound parameters, rows shaped like their contract."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient

from edream.rest.app import build_api
from edream.rest.avro_models import avro_model
from edream.rest.problems import field_path
from edream.rest.queries import ReadQuery, RowShaper, select_sql
from edream.rest.resources import READS, ReadResource, ResourceError, bind_read
from edream.serde import Serde
from edream.topology import load_topology

TOKEN = "t" * 24
TOPOLOGY = load_topology("topology.yaml")


def _client(rows=(), fail_query=False, fail_produce=False, token=TOKEN):
    queries, produced = [], []

    async def query(sql, params):
        if fail_query:
            raise ConnectionError("chDB is gone")
        queries.append((sql, params))
        return list(rows)

    async def produce(topic, key, value):
        if fail_produce:
            raise TimeoutError("no delivery report within 10 s")
        produced.append((topic, key, value))
        return 2, 17

    app = build_api(TOPOLOGY, Serde(), query, produce, token)
    return TestClient(app), queries, produced


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _request() -> dict:
    return {
        "event_id": "ev-1",
        "request_id": "req-1",
        "dso_id": "dso-1",
        "area_id": "area-1",
        "direction": "REDUCE",
        "slots": [{"slot_start": 1_800_000_000_000, "kw": 5.0}],
        "reward_micro_per_kwh": 120_000,
        "deadline": 1_799_999_000_000,
        "created_at": 1_799_990_000_000,
        "signature": "0xabc",
    }


def test_every_path_needs_the_token_but_the_openapi_document():
    client, queries, _ = _client()
    for path in ("/api/v1/flex/orders", "/api/v1/rejections"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="edream"'
        assert r.headers["content-type"] == "application/problem+json"
        assert client.get(path, headers={"Authorization": "Bearer wrong-token-123456"}).status_code == 401
    assert client.post("/api/v1/flex/requests", json=_request()).status_code == 401
    assert not queries
    assert client.get("/api/v1/openapi.json").status_code == 200  # no data in it


def test_without_a_token_on_loopback_the_api_is_open():
    client, _, _ = _client(token=None)
    assert client.get("/api/v1/flex/orders").status_code == 200


def test_filters_are_bound_parameters_and_rows_are_shaped_like_the_contract():
    bound = bind_read(TOPOLOGY, next(r for r in READS if r.path == "flex/requests"))
    when = dt.datetime(2027, 1, 15, 12, tzinfo=dt.UTC)
    ms = int(when.timestamp() * 1000)
    row = (
        "ev-1",
        "x'; DROP TABLE t --",
        "dso-1",
        "area-1",
        "REDUCE",
        15,
        '[{"kw":5.0,"slot_start":1}]',
        120_000,
    )
    row += ("EUR", when, when, None)
    client, queries, _ = _client(rows=[row])
    r = client.get(
        "/api/v1/flex/requests",
        params={"request_id": "x'; DROP TABLE t --", "since_ms": 5, "limit": 3},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    sql, params = queries[-1]
    assert "DROP" not in sql and params == {"f0": "x'; DROP TABLE t --", "since": 5}
    assert sql.endswith("ORDER BY `created_at` DESC LIMIT 3") and "FROM `flex_requests` FINAL" in sql
    [item] = r.json()["items"]
    assert (
        item["slots"] == [{"kw": 5.0, "slot_start": 1}]
        and item["deadline"] == ms
        and item["signature"] is None
    )
    assert list(item) == [f["name"] for f in bound.fields]


def test_the_sites_dr_responses_are_listed_by_order_prosumer_and_opt():
    when = dt.datetime(2027, 1, 15, 12, 0, 5, tzinfo=dt.UTC)
    row = (
        "openadr/ven-1/o-1~r2~p-1/OPT_IN",
        "o-1~r2~p-1",
        "o-1",
        2,
        "p-1",
        "OPENADR",
        "ven-1",
        "OPT_IN",
        when,
    )
    client, queries, _ = _client(rows=[row])
    r = client.get(
        "/api/v1/flex/dr-responses", params={"order_id": "o-1", "opt": "OPT_IN", "until_ms": 9}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    sql, params = queries[-1]
    assert "FROM `flex_dr_responses` FINAL" in sql and sql.endswith("ORDER BY `responded_at` DESC LIMIT 100")
    assert params == {"f0": "OPT_IN", "f1": "o-1", "until": 9}
    assert r.json() == {
        "items": [
            {
                "event_id": row[0],
                "dr_event_id": "o-1~r2~p-1",
                "order_id": "o-1",
                "revision": 2,
                "prosumer_id": "p-1",
                "channel": "OPENADR",
                "party_id": "ven-1",
                "opt": "OPT_IN",
                "responded_at": int(when.timestamp() * 1000),
            }
        ],
        "count": 1,
    }
    r = client.get("/api/v1/flex/dr-responses", params={"channel": "OPENADR"}, headers=AUTH)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [
        "channel"
    ]  # not an id column


def test_hostile_queries_name_the_parameter():
    client, queries, _ = _client()
    r = client.get("/api/v1/market/trades", params={"limit": 10_001, "since_ms": "yesterday"}, headers=AUTH)
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"limit", "since_ms"}
    assert not queries


def test_a_submission_is_produced_keyed_and_located():
    client, _, produced = _client()
    r = client.post("/api/v1/flex/requests", json=_request(), headers=AUTH)
    assert r.status_code == 202, r.text
    assert r.json() | {"status_url": None} == {
        "topic": "flex.requests.v1",
        "partition": 2,
        "offset": 17,
        "id": "req-1",
        "status_url": None,
        "rejections_url": "/api/v1/rejections?subject_id=req-1",
    }
    assert r.headers["location"] == "/api/v1/flex/requests?request_id=req-1"
    [(topic, key, value)] = produced
    assert topic == "flex.requests.v1" and key == b"req-1"
    assert Serde().decode(value) == ("FlexRequest", _request() | {"slot_minutes": 15, "currency": "EUR"})


def test_outages_are_503_with_retry_after():
    client, _, _ = _client(fail_query=True, fail_produce=True)
    for r in (
        client.get("/api/v1/baselines", headers=AUTH),
        client.post("/api/v1/flex/requests", json=_request(), headers=AUTH),
    ):
        assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert "submitting it again is safe" in r.json()["detail"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"slots": [{"slot_start": 1, "kw": "lots"}]}, "slots[0].kw"),
        ({"slot_minutes": 2**31}, "slot_minutes"),
        ({"currency": None}, "currency"),
        ({"request_id": None}, "request_id"),
    ],
)
def test_invalid_bodies_name_the_field(change, field):
    client, _, produced = _client()
    r = client.post("/api/v1/flex/requests", json=_request() | change, headers=AUTH)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], r.text
    assert not produced


def test_models_follow_the_contract_defaults():
    model = avro_model("FlexRequest")
    minimal = {k: v for k, v in _request().items() if k not in ("slot_minutes", "currency", "signature")}
    rec = model.model_validate(minimal).model_dump()
    assert rec["slot_minutes"] == 15 and rec["currency"] == "EUR" and rec["signature"] is None


def test_a_resource_that_does_not_match_the_topology_fails_naming_it():
    with pytest.raises(ResourceError, match="flex/x: time column 'nope' is not a field of FlexOrder"):
        bind_read(TOPOLOGY, ReadResource("flex/x", "flex_orders", "nope", ""))
    with pytest.raises(ResourceError, match="no sink 'missing'"):
        bind_read(TOPOLOGY, ReadResource("flex/y", "missing", "ts", ""))


def test_select_refuses_a_column_that_is_not_a_filter():
    bound = bind_read(TOPOLOGY, READS[0])
    with pytest.raises(ValueError, match="reward_micro_per_kwh is not a filter"):
        select_sql(bound, ReadQuery(equals={"reward_micro_per_kwh": "1"}))


def test_non_finite_floats_are_shown_as_null():
    bound = bind_read(TOPOLOGY, next(r for r in READS if r.path == "baselines"))
    shaper = RowShaper(bound)
    row = [float("nan") if f["type"] == "double" else None for f in bound.fields]
    assert all(v is None for v in shaper.record(row).values())


def test_field_paths():
    assert field_path(("body", "slots", 0, "kw")) == "slots[0].kw"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(("body",)) == "body"


def test_the_cli_prints_a_valid_openapi_document(tmp_path):
    from openapi_spec_validator import validate
    from typer.testing import CliRunner

    from edream.cli import app

    out = tmp_path / "openapi.json"
    result = CliRunner().invoke(app, ["openapi", "--output", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    validate(doc)
    paths = doc["paths"]
    assert len(paths) == len(READS) and {"get", "post"} <= set(paths["/api/v1/flex/requests"])
    assert paths["/api/v1/flex/settlements"]["get"]["operationId"] == "listFlexSettlements"
    dr = paths["/api/v1/flex/dr-responses"]["get"]
    assert dr["operationId"] == "listFlexDrResponses" and "post" not in paths["/api/v1/flex/dr-responses"]
    assert {p["name"] for p in dr["parameters"]} >= {
        "order_id",
        "prosumer_id",
        "dr_event_id",
        "party_id",
        "opt",
    }
