"""The VPP inside `edream run`: an operator enrols a portfolio with the CLI, asks for capability and reads the
export capacity the vpp agent evaluates on its own timers; state survives a restart.

Real session broker (renamed topology), real `edream run --no-demo` subprocess with chDB in its data dir, the
real CLI as a subprocess. ``vpp.yaml`` sets a 3-second export cadence so several timer evaluations happen within
the test. Bounded waits only: every check waits for a condition and fails with what it saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Producer
from platform_process import platform_env, start_platform, stop_platform, wait_status

from edream.kafka import producer_config
from edream.serde import Serde
from edream.settings import Settings
from streams.vpp.assets import SERVICES
from streams.vpp.capability import CapabilityRequest
from streams.vpp.events import request_record
from streams.vpp.registry import asset_record, validate_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MIN = 60_000
PORTFOLIO = """\
vpp_id: {vpp}
assets:
  - {{asset_id: {vpp}-bess, kind: BESS, p_max_kw: 50, energy_kwh: 100, soc_pct: 60, soc_min_pct: 10,
     response_time_s: 0.5, directions: [UP, DOWN]}}
  - {{asset_id: {vpp}-hydro, kind: GENERATOR, p_max_kw: 50, current_kw: 40}}
  - {{asset_id: {vpp}-pv, kind: PV, p_max_kw: 10, current_kw: 0, directions: [DOWN], forecast_entity_id: {vpp}-site}}
"""


def _cli(env: dict, *args: str) -> dict:
    """Run `edream ARGS` like an operator; return its final JSON line (fail with its output otherwise)."""
    r = subprocess.run(
        [sys.executable, "-m", "edream.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, f"edream {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def _wait_records(read_topic, topic: str, serde: Serde, pred, what: str, timeout: float = 90.0) -> list:
    deadline, recs = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        recs = [serde.decode(m.value(), topic)[1] for m in read_topic(topic, 10_000, timeout=3.0)]
        if pred(recs):
            return recs
    raise AssertionError(f"{what} never held on {topic}; last records: {recs[-5:]}")


@pytest.mark.timeout(600)  # 190-300 s under make test's load (two platform starts); the default is 300 s
def test_vpp_agent_answers_exports_on_timers_and_survives_restart(
    tmp_path, kafka_bootstrap, renamed_topology, read_topic
):
    suffix = uuid.uuid4().hex[:8]
    vpp = f"vpp-{suffix}"
    topology, topics = renamed_topology(suffix)
    data = tmp_path / "data"
    data.mkdir()
    (data / "vpp.yaml").write_text("export_every_minutes: 0.05\n")  # every 3 s instead of every 30 min
    env, port = platform_env(data, kafka_bootstrap, topology, f"edream-vpp-{suffix}")
    serde = Serde()
    producer = Producer(producer_config(Settings(kafka_bootstrap_servers=kafka_bootstrap)))
    t_assets, t_req = topics["vpp.assets.v1"], topics["vpp.capability.requests.v1"]
    t_cap, t_export = topics["vpp.capability.v1"], topics["vpp.export.v1"]
    t_dlq = topics["platform.deadletter.v1"]

    def produce(topic: str, schema: str, key: str, rec: dict) -> None:
        producer.produce(topic, key=key.encode(), value=serde.encode(schema, rec, topic))
        assert producer.flush(15) == 0

    def request(rid: str, service: str = "EFR") -> dict:
        start = (int(time.time() * 1000) // (15 * MIN) + 1) * 15 * MIN
        req = CapabilityRequest(rid, SERVICES[service], start, start + 30 * MIN)
        return request_record(req, vpp, int(time.time() * 1000))

    proc = start_platform(env, "--no-demo")
    try:
        st = wait_status(port, lambda s: "tables" in s["clickhouse"])
        assert "vpp" in st["agents"]

        # enrol the portfolio with the operator CLI; an invalid record sent by hand goes to the dead letters
        pf = tmp_path / "portfolio.yaml"
        pf.write_text(PORTFOLIO.format(vpp=vpp))
        assert _cli(env, "vpp", "asset", "load", str(pf))["published"] == 3
        bad = asset_record(
            validate_spec(
                {"asset_id": f"{vpp}-bad", "vpp_id": vpp, "kind": "GENERATOR", "p_max_kw": 10}, "t"
            ),
            int(time.time() * 1000),
        )
        produce(t_assets, "VppAsset", bad["asset_id"], bad | {"p_min_kw": 20.0})
        listed = _cli(env, "vpp", "asset", "list", "--vpp-id", vpp)
        assert listed == {
            "assets": 4
        }  # the registry topic holds what was sent; the agent refuses the bad one

        # the registry reaches the VPP's partition through vpp.links (asset partition -> VPP partition); a request
        # is evaluated against the portfolio known when it is processed, so wait until an export shows all of it
        _wait_records(
            read_topic,
            t_export,
            serde,
            lambda rs: any(r["vpp_id"] == vpp and r["export_p50_kw"] == 50.0 for r in rs),
            "an export of the whole portfolio",
        )

        # a request redelivered twice is answered once; a later request proves the duplicate was processed
        first = request(f"{suffix}-r1")
        produce(t_req, "VppCapabilityRequest", vpp, first)
        produce(t_req, "VppCapabilityRequest", vpp, first)
        produce(t_req, "VppCapabilityRequest", vpp, request(f"{suffix}-r2", "STATIC_FFR"))
        answers = _wait_records(
            read_topic,
            t_cap,
            serde,
            lambda rs: any(r["request_id"] == f"{suffix}-r2" for r in rs),
            "answer r2",
        )
        by_id = {}
        for a in answers:
            by_id.setdefault(a["request_id"], []).append(a)
        assert len(by_id[f"{suffix}-r1"]) == 1
        r1 = by_id[f"{suffix}-r1"][0]
        # EFR (1 s): BESS 50 kW + hydro headroom 10 kW; the PV offers DOWN only
        assert (r1["capacity_kw"], r1["feasible"], r1["event_id"]) == (60.0, True, f"{suffix}-r1/capability")
        assert {e["asset_id"]: e["reason"] for e in r1["excluded"]} == {f"{vpp}-pv": "DIRECTION"}

        # the operator asks the running platform and waits for the answer
        ans = _cli(env, "vpp", "capability", "--vpp-id", vpp, "--service", "EFR", "--timeout", "90")
        assert ans["capacity_kw"] == 60.0 and ans["request_id"].startswith(f"{vpp}/EFR/")

        dead = _wait_records(
            read_topic, t_dlq, serde, lambda rs: any(r["source_topic"] == t_assets for r in rs), "dead letter"
        )
        [dl] = [r for r in dead if r["source_topic"] == t_assets]
        assert "p_min_kw 20.0 is above p_max_kw 10.0" in dl["error"] and dl["original"]

        # export evaluations on the agent's timers (no event needed), hydro 40 -> 50 kW, PV at 0 kW
        exports = _wait_records(
            read_topic,
            t_export,
            serde,
            lambda rs: len({r["evaluated_at"] for r in rs if r["vpp_id"] == vpp}) >= 2,
            "two timer evaluations",
        )
        mine = [r for r in exports if r["vpp_id"] == vpp]
        assert all(
            r["slot_end"] - r["slot_start"] == 30 * MIN and r["slot_start"] > r["evaluated_at"] for r in mine
        )
        assert mine[-1]["export_p50_kw"] == 50.0

        # a PV forecast of 3000 Wh per 30 min (6 kW) for the site is used by the next evaluation
        now = int(time.time() * 1000)
        base = now // (30 * MIN) * (30 * MIN) - 30 * MIN
        points = [
            {"ts": base + i * 30 * MIN, "value": 3000.0, "lower": 2000.0, "upper": 4000.0} for i in range(8)
        ]
        produce(
            topics["forecast.profiles.v1"],
            "Forecast",
            f"{vpp}-site",
            {
                "event_id": f"{vpp}-site/ENERGY_PRODUCTION/INTRA_DAY/{now}",
                "entity_id": f"{vpp}-site",
                "entity_kind": "PROSUMER",
                "property": "ENERGY_PRODUCTION",
                "prediction_granularity": "INTRA_DAY",
                "profile_granularity_minutes": 30,
                "issued_at": now,
                "model": "test",
                "points": points,
            },
        )
        _wait_records(
            read_topic,
            t_export,
            serde,
            lambda rs: any(
                r["vpp_id"] == vpp and (r["export_p50_kw"], r["export_p10_kw"]) == (56.0, 54.0) for r in rs
            ),
            "an export with the PV forecast (50 + 6 kW; firm 50 + 4 kW)",
        )
        latest = _cli(env, "vpp", "export", "--vpp-id", vpp)
        assert latest["vpp_id"] == vpp and latest["decision"] == "OFFER"

        # sinks: registry, answers and exports land in chDB
        wait_status(
            port,
            lambda s: (
                s["clickhouse"]["tables"].get("vpp_assets", 0) >= 4
                and s["clickhouse"]["tables"].get("vpp_capability", 0) >= 3
                and s["clickhouse"]["tables"].get("vpp_export", 0) >= 2
            ),
            timeout=90,
        )
    finally:
        out = stop_platform(proc)
    assert "Traceback" not in out, out[-3000:]
    assert (data / "state" / "vpp").is_dir(), "the vpp stage process keeps its RocksDB state under state/vpp"
    assert not list((data / "state").glob("*-vpp.pkl")), "no whole-state pickle of the VPP any more"

    # restart: the stage's state (RocksDB, backed by its changelog topic) keeps the answered requests and the
    # portfolio
    proc = start_platform(env, "--no-demo")
    try:
        wait_status(port, lambda s: "vpp" in s.get("agents", []))
        produce(t_req, "VppCapabilityRequest", vpp, first)  # answered before the restart: not again
        produce(t_req, "VppCapabilityRequest", vpp, request(f"{suffix}-r3"))
        answers = _wait_records(
            read_topic,
            t_cap,
            serde,
            lambda rs: any(r["request_id"] == f"{suffix}-r3" for r in rs),
            "answer r3",
        )
        assert [a["request_id"] for a in answers].count(f"{suffix}-r1") == 1
        assert [a["capacity_kw"] for a in answers if a["request_id"] == f"{suffix}-r3"] == [60.0]
    finally:
        out = stop_platform(proc)
    assert "Traceback" not in out, out[-3000:]
