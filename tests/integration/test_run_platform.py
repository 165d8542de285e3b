"""`edream run` on an external broker: real Faust worker, chDB sink, status API, dead letters, anchoring.

The embedded-broker run with the demo (children, status CLI, second start refused, field site, Ctrl-C) is
tests/integration/test_demo_day.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from confluent_kafka import Producer
from openapi_spec_validator import validate
from platform_process import get_when_up, platform_env, start_platform, stop_platform, wait_status

from edream.avro_samples import sample_value
from edream.avro_schemas import contract
from edream.kafka import producer_config
from edream.serde import DecodeError, Serde
from tools.sim.settlements import synthetic_settlement

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JSON = {"Content-Type": "application/json"}


def test_external_broker_sink_and_dead_letters(tmp_path, kafka_bootstrap, read_topic, renamed_topology):
    suffix = uuid.uuid4().hex[:8]
    topology, rename = renamed_topology(suffix)
    readings, dlq = rename["meter.readings.raw.v1"], rename["platform.deadletter.v1"]

    env, port = platform_env(tmp_path / "data", kafka_bootstrap, topology, f"edream-test-{suffix}")
    proc = start_platform(env, "--no-demo")
    try:
        wait_status(port, lambda s: "tables" in s["clickhouse"])
        rest = f"http://127.0.0.1:{env['EDREAM_REST_PORT']}/api/v1"
        request_id = _rest_submissions(rest, rename)
        from edream.settings import Settings

        settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
        p = Producer(producer_config(settings))
        serde = Serde()
        # a reading inside its contract (the sink refuses unknown units such as the sample's "s7")
        base = dict(sample_value(contract("Measurement").raw), quantity="P_ACTIVE", phase="TOTAL", unit="W")
        now = int(time.time() * 1000)  # inside the measurements table's 90-day TTL
        for i in range(30):
            m = dict(base, event_id=f"e{i}", device_id=f"d{i % 3}", ts=now - i * 5000, seq=i)
            p.produce(readings, key=m["device_id"].encode(), value=serde.encode("Measurement", m))
        p.produce(readings, key=b"d0", value=b"\x00garbage that is not avro")
        p.produce(
            readings,
            key=b"d0",
            value=serde.encode("Measurement", dict(base, event_id="dup", device_id="d0", ts=now, seq=999)),
        )
        p.produce(readings, key=b"d0", value=serde.encode("Trade", sample_value(contract("Trade").raw)))
        # valid Avro the measurements table cannot store: each row is dead-lettered, its batch is written
        hostile = [
            dict(base, event_id="y2300", device_id="d1", ts=10_413_792_000_000 + 1000, seq=1000),
            dict(base, event_id="nan", device_id="d1", ts=now - 1, seq=1001, value=float("nan")),
            dict(base, event_id="long", device_id="x" * 100_000, ts=now - 2, seq=1002),
        ]
        for m in hostile:
            p.produce(readings, key=b"d1", value=serde.encode("Measurement", m))
        assert p.flush(15) == 0
        st = wait_status(
            port,
            lambda s: (
                s["counters"].get("sink.measurements.rows", 0) >= 31
                and s["counters"].get("dlq.measurements", 0) >= 5
            ),
        )
        # a replayed reading with the same (device, quantity, phase, ts) key collapses into one row (in a count of
        # the table made after the sink had written all 31: status answers with its last count, made in the
        # background)
        sunk_at = st["time_ms"]
        st = wait_status(port, lambda s: s["clickhouse"].get("counted_at", 0) > sunk_at)
        assert st["clickhouse"]["tables"]["measurements"] == 30

        letters = [serde.decode(msg.value())[1] for msg in read_topic(dlq, 100, timeout=10)]
        letters = [
            dl for dl in letters if dl["stage"] == "sink:measurements"
        ]  # other stages read the topic too
        reasons = sorted(letter["error"] for letter in letters)
        assert any("unknown Avro" in r or "Confluent" in r for r in reasons), reasons
        assert any("expected Measurement, got Trade" in r for r in reasons), reasons
        assert {letter["source_topic"] for letter in letters} == {readings}
        assert b"garbage" in b"".join(letter["original"] for letter in letters)
        # refused by the sink's contract check (or, past it, by its column check), each with the field named
        invalid = {}
        for dl in letters:
            try:
                rec = serde.decode(dl["original"])[1]
            except DecodeError:
                continue
            if rec.get("event_id") in {"y2300", "nan", "long"}:
                invalid[rec["event_id"]] = dl["error"]
        assert invalid.keys() == {"y2300", "nan", "long"}, reasons
        assert "ts" in invalid["y2300"] and "finite" in invalid["nan"], invalid
        assert "device_id" in invalid["long"], invalid
        assert len({dl["letter_id"] for dl in letters}) == 5

        # the sink keeps running: a later reading lands
        later = dict(base, event_id="later", device_id="d2", ts=now + 1, seq=2000)
        p.produce(readings, key=b"d2", value=serde.encode("Measurement", later))
        assert p.flush(15) == 0
        wait_status(port, lambda s: s["clickhouse"]["tables"]["measurements"] == 31)

        # settlements -> anchoring agent -> chain: no later settlement arrives, so the window (in the past)
        # closes on the wall-clock timer once the agent is caught up; then an outsider verifies from another
        # process while the platform owns the embedded chDB
        settlements = [synthetic_settlement(i, "FLEX", slot=0) for i in range(5)]
        for rec in settlements:
            p.produce(
                rename["settlement.flex.v1"],
                key=rec["window_id"].encode(),
                value=serde.encode("Settlement", rec),
            )
        assert p.flush(15) == 0
        st = wait_status(port, lambda s: (s["clickhouse"].get("last_anchor") or {}).get("record_count") == 5)
        window = st["clickhouse"]["last_anchor"]["window_id"]
        assert window == "2026-11-18T00:00Z/15m"
        cli_env = dict(env)
        for args in (["window", "FLEX", window], ["record", "st-FLEX-0-3"]):
            r = subprocess.run(
                [sys.executable, "-m", "edream.cli", "verify", *args],
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert r.returncode == 0 and "\nVALID: " in "\n" + r.stdout, r.stdout + r.stderr

        # the REST API reads what the sinks wrote, shaped like the contract (epoch ms, parsed JSON columns)
        got = httpx.get(
            f"{rest}/flex/settlements", params={"window_id": settlements[0]["window_id"]}, timeout=10
        ).json()
        want = {r["settlement_id"]: serde.decode(serde.encode("Settlement", r))[1] for r in settlements}
        assert {r["settlement_id"]: r for r in got["items"]} == want
        # the unsigned request of an unregistered DSO submitted through REST was refused by the flex stage
        rejection = _poll(f"{rest}/rejections", {"subject_id": request_id})
        assert rejection["code"] in ("UNSIGNED_REQUEST", "UNKNOWN_DSO"), rejection
    finally:
        stop_platform(proc)


def _flex_request(request_id: str) -> dict:
    now = int(time.time() * 1000)
    slot = now - now % 900_000 + 3_600_000
    return {
        "event_id": f"ev-{request_id}",
        "request_id": request_id,
        "dso_id": "dso-not-registered",
        "area_id": "area-1",
        "direction": "REDUCE",
        "slots": [{"slot_start": slot, "kw": 5.0}],
        "reward_micro_per_kwh": 120_000,
        "deadline": slot - 600_000,
        "created_at": now,
    }


def _rest_submissions(rest: str, rename: dict[str, str]) -> str:
    """The OpenAPI document is valid; hostile bodies and queries get problem details naming the field; a
    well-formed (unsigned) FlexRequest is accepted onto the broker. Returns its request id."""
    spec = get_when_up(f"{rest}/openapi.json").json()
    validate(spec)
    assert {
        "/api/v1/flex/requests",
        "/api/v1/market/orders",
        "/api/v1/baselines",
        "/api/v1/forecasts",
    } <= set(spec["paths"])
    request = _flex_request(f"rest-{uuid.uuid4().hex[:8]}")
    hostile = {
        "slots[0].kw": dict(request, slots=[{"slot_start": 1, "kw": float("nan")}]),
        "reward_micro_per_kwh": dict(request, reward_micro_per_kwh=2**63),
        "direction": dict(request, direction="SIDEWAYS"),
        "surprise": dict(request, surprise=1),
    }
    for field, body in hostile.items():
        r = httpx.post(  # json.dumps writes NaN as the literal a careless client sends
            f"{rest}/flex/requests", content=json.dumps(body), headers=JSON, timeout=10
        )
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
        assert [e["field"] for e in r.json()["errors"]] == [field], r.text
    r = httpx.post(f"{rest}/flex/requests", content=b"{not json", headers=JSON, timeout=10)
    assert r.status_code == 422, r.text
    r = httpx.get(f"{rest}/flex/offers", params={"limit": 0, "color": "red"}, timeout=10)
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"limit", "color"}, r.text

    r = httpx.post(f"{rest}/flex/requests", json=request, timeout=30)
    assert r.status_code == 202, r.text
    assert r.json()["topic"] == rename["flex.requests.v1"] and r.json()["offset"] >= 0, r.text
    assert r.headers["location"] == f"/api/v1/flex/requests?request_id={request['request_id']}"
    return request["request_id"]


def _poll(url: str, params: dict, timeout: float = 90) -> dict:
    """The first item listed at ``url``; fails with the last answer after ``timeout`` s."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = httpx.get(url, params=params, timeout=10).json()
        if last.get("items"):
            return last["items"][0]
        time.sleep(1)
    raise AssertionError(f"nothing at {url} {params}: {last}")
