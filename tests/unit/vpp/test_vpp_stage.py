"""The vpp stage on the runtime contract, without a broker: records are routed like the runtime does (re-key,
partition by key, links fed back) over MemoryState partitions. Proves the state joins (asset -> VPP, entity ->
VPP), the export timers on ticks with the per-partition due index, answered-request memory, dead-letter reasons,
that 1 and 4 partitions give the same outputs, and that the records equal those of the previous processor."""

from __future__ import annotations

import zlib
from collections import deque

import pytest

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.vpp.assets import SERVICES
from streams.vpp.capability import CapabilityRequest
from streams.vpp.events import request_record
from streams.vpp.processor import VppConfig, VppProcessor
from streams.vpp.registry import asset_record, registered_from_record, validate_spec
from streams.vpp.stage import INPUTS, InvalidInput, VppStage, state_key_of
from streams.vpp.stage_state import DUE

T0 = 1_717_416_000_000  # 2024-06-03 12:00 UTC, a 30-minute boundary
MIN = 60_000
HALF_HOUR = 30 * MIN
SERDE = Serde()
SCHEMAS = {topic: contract for topic, (contract, _) in INPUTS.items()}


class Harness:
    """The runtime's routing in miniature: inputs re-keyed by the stage's rekey functions, every record and
    link processed on partition crc32(key) % partitions with that partition's MemoryState, links fed back until
    none are left. A record that raises leaves its partition's state as it was (as RecordState does)."""

    def __init__(self, partitions: int = 1, config: VppConfig | None = None):
        self.stage = VppStage(SERDE, config or VppConfig(), clock=lambda: T0 + 10 * MIN)
        self.parts = [MemoryState() for _ in range(partitions)]
        self.out: list[tuple[str, bytes, dict]] = []
        self.offset = 0

    def part(self, key: bytes) -> int:
        return zlib.crc32(key) % len(self.parts)

    def send(self, topic: str, rec: dict, ts: int = T0, key: bytes | None = None) -> None:
        """``key``: the message key (default: the record's key field, as the producing stages key it)."""
        value = SERDE.encode(SCHEMAS[topic], rec, topic)
        if key is None:
            key = str(rec.get(INPUTS[topic][1])).encode()
        for state_key in state_key_of(SERDE, topic, topic)(key, value):
            self._run(deque([(topic, state_key, value)]), ts)

    def _run(self, queue: deque, ts: int) -> None:
        while queue:
            topic, key, value = queue.popleft()
            p = self.part(key)
            self.offset += 1
            state = self.parts[p]
            before = dict(state.data)
            try:
                emits = self.stage.on_record(Record(topic, p, self.offset, key, value, ts), state)
            except Exception:
                state.data = before
                raise
            self._collect(emits, queue)

    def _collect(self, emits, queue: deque) -> None:
        for e in emits:
            if e.topic == "vpp.links.v1":
                queue.append((e.topic, e.key, e.value))
            else:
                self.out.append((e.topic, e.key, SERDE.decode(e.value, e.topic)[1]))

    def tick(self, now: int) -> list[dict]:
        n = len(self.out)
        for p, state in enumerate(self.parts):
            queue: deque = deque()
            self._collect(self.stage.on_tick(now, p, state), queue)
            self._run(queue, now)
        return [rec for _, _, rec in self.out[n:]]


def _asset(at: int = T0, **fields) -> dict:
    spec = validate_spec({"vpp_id": "v", **fields}, "test")
    return asset_record(spec, at)


def _forecast(entity: str, prop: str, issued_at: int, points: list[tuple[int, float]], step_min: int = 30):
    return {
        "event_id": f"{entity}/{prop}/INTRA_DAY/{issued_at}",
        "entity_id": entity,
        "entity_kind": "PROSUMER",
        "property": prop,
        "prediction_granularity": "INTRA_DAY",
        "profile_granularity_minutes": step_min,
        "issued_at": issued_at,
        "model": "test",
        "points": [{"ts": ts, "value": wh, "lower": None, "upper": None} for ts, wh in points],
    }


def _baseline(prosumer: str, start: int, kw: float, version: int = 1) -> dict:
    return {
        "event_id": f"{prosumer}/{start}/{version}",
        "prosumer_id": prosumer,
        "isp_start": start,
        "isp_end": start + 15 * MIN,
        "baseline_kw": kw,
        "method": "HIGH_X_OF_Y",
        "method_params": "{}",
        "adjustment_kw": 0.0,
        "source_days": [],
        "computed_at": start - HALF_HOUR,
        "version": version,
    }


def _request(rid: str, vpp: str = "v", service: str = "EFR") -> dict:
    req = CapabilityRequest(rid, SERVICES[service], T0 + HALF_HOUR, T0 + 2 * HALF_HOUR)
    return request_record(req, vpp, T0)


def _degradation(asset_id: str, rd: float, computed_at: int) -> dict:
    return {
        "event_id": f"{asset_id}/YOY_CLEARSKY/0/1",
        "asset_id": asset_id,
        "vpp_id": "v",
        "rd_pct_per_year": rd,
        "ci_low": rd - 0.1,
        "ci_high": rd + 0.1,
        "confidence": 0.95,
        "pr_latest": 0.9,
        "pairs": 300,
        "days_used": 900,
        "slots_used": 30_000,
        "slots_total": 100_000,
        "data_from": T0 - 3 * 365 * 86_400_000,
        "data_to": T0,
        "method": "YOY_CLEARSKY",
        "dc_capacity_kw": 10.0,
        "computed_at": computed_at,
    }


# ---- export timers on ticks ----


def test_tick_evaluates_each_vpp_once_per_period_and_after_a_registry_change():
    h = Harness()
    h.send("vpp.assets.v1", _asset(asset_id="hydro", kind="GENERATOR", p_max_kw=50, current_kw=40))
    h.send(
        "vpp.assets.v1",
        _asset(asset_id="w-load", kind="CURTAILABLE_LOAD", p_max_kw=5, current_kw=4, vpp_id="w"),
    )
    first = h.tick(T0 + 7 * MIN)
    assert sorted((r["vpp_id"], r["export_p50_kw"]) for r in first) == [("v", 50.0), ("w", 4.0)]
    v = next(r for r in first if r["vpp_id"] == "v")
    assert (v["slot_start"], v["slot_end"], v["evaluated_at"]) == (
        T0 + HALF_HOUR,
        T0 + 2 * HALF_HOUR,
        T0 + 7 * MIN,
    )
    assert v["event_id"] == f"v/INTRADAY/{T0 + HALF_HOUR}/{T0 + 7 * MIN}"
    assert h.parts[0].data[DUE] == b'{"v":%d,"w":%d}' % (T0 + HALF_HOUR, T0 + HALF_HOUR)

    assert h.tick(T0 + 8 * MIN) == [] and h.tick(T0 + 29 * MIN) == []  # same period: nothing
    again = h.tick(T0 + HALF_HOUR + 500)
    assert [r["slot_start"] for r in again] == [T0 + 2 * HALF_HOUR] * 2

    h.send(
        "vpp.assets.v1", _asset(T0 + 31 * MIN, asset_id="hydro", kind="GENERATOR", p_max_kw=60, current_kw=40)
    )
    assert [(r["vpp_id"], r["export_p50_kw"]) for r in h.tick(T0 + 32 * MIN)] == [("v", 60.0)]

    # the last member leaves: the VPP is no longer evaluated (and leaves the due index)
    h.send(
        "vpp.assets.v1", _asset(T0 + 33 * MIN, asset_id="hydro", kind="GENERATOR", p_max_kw=60, active=False)
    )
    assert [r["vpp_id"] for r in h.tick(T0 + 3 * HALF_HOUR)] == ["w"]
    assert b'"v"' not in h.parts[0].data[DUE]


def test_older_registry_version_is_ignored():
    h = Harness()
    h.send("vpp.assets.v1", _asset(T0 + 5, asset_id="hydro", kind="GENERATOR", p_max_kw=50, current_kw=40))
    h.send("vpp.assets.v1", _asset(T0, asset_id="hydro", kind="GENERATOR", p_max_kw=99, current_kw=40))
    assert [r["export_p50_kw"] for r in h.tick(T0)] == [50.0]


def test_an_asset_moved_to_another_vpp_leaves_the_first():
    h = Harness(partitions=4)
    h.send("vpp.assets.v1", _asset(asset_id="hydro", kind="GENERATOR", p_max_kw=50, current_kw=40))
    h.send("vpp.assets.v1", _asset(asset_id="pv", kind="PV", p_max_kw=10, current_kw=3))
    h.send(
        "vpp.assets.v1",
        _asset(T0 + 1, asset_id="hydro", kind="GENERATOR", p_max_kw=50, current_kw=40, vpp_id="w"),
    )
    got = {r["vpp_id"]: r["export_p50_kw"] for r in h.tick(T0)}
    assert got == {"v": 3.0, "w": 50.0}


# ---- outlook joined from entity partitions ----


def _outlook_scenario(h: Harness, forecasts_first: bool) -> None:
    window = T0 + HALF_HOUR
    outlook = [
        ("forecast.profiles.v1", _forecast("site-1", "ENERGY_PRODUCTION", T0, [(window, 3000.0)])),
        ("forecast.profiles.v1", _forecast("site-2", "ENERGY_CONSUMPTION", T0, [(window, 2000.0)])),
        ("baseline.15m.v1", _baseline("site-2", window, 8.0)),
        ("baseline.15m.v1", _baseline("site-2", window + 15 * MIN, 8.0)),
        ("forecast.profiles.v1", _forecast("other", "ENERGY_PRODUCTION", T0, [(window, 9000.0)])),
    ]
    assets = [
        _asset(
            asset_id="pv",
            kind="PV",
            p_max_kw=10,
            current_kw=0,
            forecast_entity_id="site-1",
            uncertainty_min=0.8,
        ),
        _asset(
            asset_id="load",
            kind="CURTAILABLE_LOAD",
            p_max_kw=20,
            current_kw=1,
            curtailable_share=0.5,
            forecast_entity_id="site-2",
        ),
    ]
    first, then = (outlook, [("vpp.assets.v1", a) for a in assets])[:: 1 if forecasts_first else -1]
    for topic, rec in [*first, *then]:
        h.send(topic, rec)


@pytest.mark.parametrize("forecasts_first", [True, False])
def test_export_uses_the_forecasts_and_baselines_of_member_entities(forecasts_first):
    h = Harness(partitions=4)
    _outlook_scenario(h, forecasts_first)
    [rec] = h.tick(T0 + MIN)
    # p50: PV 6 + load shed 8 x 0.5 = 10; p10: PV 6 x 0.8 + 4 = 8.8 (as the previous processor)
    assert (rec["export_p50_kw"], rec["export_p10_kw"]) == (10.0, 8.8)
    assert rec["setpoints"] == [{"asset_id": "load", "setpoint_kw": 4.0}]


def test_entity_no_longer_referenced_is_dropped_and_a_newer_forecast_is_followed():
    h = Harness(partitions=4)
    _outlook_scenario(h, True)
    window = T0 + HALF_HOUR
    h.send("forecast.profiles.v1", _forecast("site-1", "ENERGY_PRODUCTION", T0 + 1, [(window, 1000.0)]))
    h.send(
        "forecast.profiles.v1", _forecast("site-1", "ENERGY_PRODUCTION", T0 - 1, [(window, 4000.0)])
    )  # older
    assert h.tick(T0)[0]["export_p50_kw"] == 6.0  # PV 2 + load 4
    h.send("vpp.assets.v1", _asset(T0 + 2, asset_id="pv", kind="PV", p_max_kw=10, current_kw=1))  # no entity
    assert h.tick(T0 + 1)[0]["export_p50_kw"] == 5.0
    assert not any(
        k.startswith("vf:v\x1fsite-1") or k.startswith("r:v\x1fsite-1") for p in h.parts for k in p.data
    )
    assert all(b"site-1" not in p.data.get("es:site-1", b"") for p in h.parts)


def test_community_forecast_of_the_vpp_is_served_first():
    h = Harness(partitions=4)
    window = T0 + HALF_HOUR
    h.send("forecast.profiles.v1", _forecast("v", "ENERGY_CONSUMPTION", T0, [(window, 15_000.0)]))  # 30 kW
    h.send("vpp.assets.v1", _asset(asset_id="hydro", kind="GENERATOR", p_max_kw=50, current_kw=50))
    h.send("forecast.profiles.v1", _forecast("v", "ENERGY_PRODUCTION", T0, [(window, 5_000.0)]))  # 10 kW
    assert h.tick(T0)[0]["export_p50_kw"] == 30.0  # 50 - (30 - 10)


def test_degradation_derates_nameplate_pv_in_any_order():
    for order in ((0, 1), (1, 0)):
        h = Harness(partitions=4)
        recs = [
            (
                "vpp.assets.v1",
                _asset(
                    asset_id="pv",
                    kind="PV",
                    p_max_kw=10,
                    current_kw=6,
                    commissioned_at=T0 - 5 * 31_557_600_000,
                ),
            ),
            ("vpp.pv.degradation.v1", _degradation("pv", -1.0, T0)),
        ]
        for i in order:
            h.send(*recs[i])
        h.send("vpp.pv.degradation.v1", _degradation("pv", -50.0, T0 - 1))  # an older estimate: ignored
        [rec] = h.tick(T0)
        assert rec["export_p50_kw"] == pytest.approx(6.0 * 0.99**5, rel=1e-3)


# ---- capability ----


def test_capability_answered_once_with_deterministic_id_and_forgotten_after_the_memory():
    h = Harness(partitions=4, config=VppConfig(remember_requests_hours=2))
    bess = dict(
        kind="BESS", p_max_kw=50, energy_kwh=100, soc_pct=60, response_time_s=0.5, directions=["UP", "DOWN"]
    )
    h.send("vpp.assets.v1", _asset(asset_id="bess", **bess))
    h.send("vpp.assets.v1", _asset(asset_id="other", kind="BESS", p_max_kw=70, vpp_id="w"))
    h.send("vpp.capability.requests.v1", _request("req-1"))
    h.send("vpp.capability.requests.v1", _request("req-1"))  # redelivered
    answers = [r for t, _, r in h.out if t == "vpp.capability.v1"]
    assert [(a["event_id"], a["computed_at"], a["capacity_kw"], a["feasible"]) for a in answers] == [
        ("req-1/capability", T0, 50.0, True)
    ]
    h.tick(T0 + 3 * 3_600_000)  # memory of 2 h after the request's record time
    h.send("vpp.capability.requests.v1", _request("req-1"))
    assert len([r for t, _, r in h.out if t == "vpp.capability.v1"]) == 2
    assert not any(k.startswith("qx:") for p in h.parts for k in p.data if k != f"qx:{T0 // 3_600_000}")


# ---- bad input ----


def test_bad_records_raise_with_the_reason_and_leave_no_state():
    h = Harness()
    with pytest.raises(InvalidInput, match="p_min_kw 20.0 is above p_max_kw 10.0"):
        h.send("vpp.assets.v1", _asset(asset_id="g", kind="GENERATOR", p_max_kw=10) | {"p_min_kw": 20.0})
    with pytest.raises(InvalidInput, match="points\\[0\\].value"):
        h.send("forecast.profiles.v1", _forecast("s", "ENERGY_PRODUCTION", T0, [(T0, float("nan"))]))
    with pytest.raises(InvalidInput, match="issued_at"):
        h.send("forecast.profiles.v1", _forecast("s", "ENERGY_PRODUCTION", T0 + 86_400_000, [(T0, 1.0)]))
    with pytest.raises(InvalidInput, match="baseline_kw"):
        h.send("baseline.15m.v1", _baseline("s", T0, float("inf")))
    # forecasts and baselines are routed by their message key: one under another entity's key is refused
    with pytest.raises(InvalidInput, match="must be keyed by entity_id"):
        h.send("forecast.profiles.v1", _forecast("s", "ENERGY_PRODUCTION", T0, [(T0, 1.0)]), key=b"other")
    with pytest.raises(InvalidInput, match="must be keyed by prosumer_id"):
        h.send("baseline.15m.v1", _baseline("s", T0, 1.0), key=b"other")
    with pytest.raises(InvalidInput, match="rd_pct_per_year"):
        h.send("vpp.pv.degradation.v1", _degradation("pv", float("nan"), T0))
    with pytest.raises(InvalidInput, match="window_end"):
        h.send("vpp.capability.requests.v1", _request("bad") | {"window_end": T0})
    assert h.parts[0].data == {}
    stage, state = h.stage, h.parts[0]
    # undecodable: skipped (and counted) on forecasts, dead-lettered on the VPP's own topics
    assert stage.on_record(Record("forecast.profiles.v1", 0, 1, b"x", b"junk", T0), state) == []
    assert stage.skipped == 1
    with pytest.raises(InvalidInput):
        stage.on_record(Record("vpp.links.v1", 0, 2, b"x", b"junk", T0), state)


# ---- partitions and equivalence with the previous processor ----


def _scenario(h: Harness) -> list[dict]:
    _outlook_scenario(h, False)
    h.send(
        "vpp.assets.v1", _asset(asset_id="hydro", kind="GENERATOR", p_max_kw=50, current_kw=40, vpp_id="w")
    )
    h.send(
        "vpp.assets.v1",
        _asset(
            asset_id="bess", kind="BESS", p_max_kw=30, energy_kwh=60, soc_pct=50, directions=["UP", "DOWN"]
        ),
    )
    h.send("vpp.pv.degradation.v1", _degradation("pv", -0.8, T0))
    for vpp in ("v", "w"):
        for service in ("EFR", "STATIC_FFR"):
            h.send("vpp.capability.requests.v1", _request(f"{vpp}-{service}", vpp, service))
    h.tick(T0 + 7 * MIN)
    h.tick(T0 + HALF_HOUR)
    return sorted((rec["event_id"], _canonical(rec)) for _, _, rec in h.out)


def _canonical(rec: dict) -> str:
    """A record as comparable text, without ``solve_ms`` (the measured solver time, not a computed value)."""
    return repr(sorted((k, v) for k, v in rec.items() if k != "solve_ms"))


def test_one_and_four_partitions_give_the_same_records():
    assert _scenario(Harness(1)) == _scenario(Harness(4))


def test_records_equal_those_of_the_previous_processor():
    h = Harness(partitions=4)
    ours = dict(_scenario(h))
    old = VppProcessor(VppConfig())
    window = T0 + HALF_HOUR
    old.on_forecast(_forecast("site-1", "ENERGY_PRODUCTION", T0, [(window, 3000.0)]))
    old.on_forecast(_forecast("site-2", "ENERGY_CONSUMPTION", T0, [(window, 2000.0)]))
    old.on_baseline(_baseline("site-2", window, 8.0))
    old.on_baseline(_baseline("site-2", window + 15 * MIN, 8.0))
    for rec in (
        _asset(
            asset_id="pv",
            kind="PV",
            p_max_kw=10,
            current_kw=0,
            forecast_entity_id="site-1",
            uncertainty_min=0.8,
        ),
        _asset(
            asset_id="load",
            kind="CURTAILABLE_LOAD",
            p_max_kw=20,
            current_kw=1,
            curtailable_share=0.5,
            forecast_entity_id="site-2",
        ),
        _asset(asset_id="hydro", kind="GENERATOR", p_max_kw=50, current_kw=40, vpp_id="w"),
        _asset(
            asset_id="bess", kind="BESS", p_max_kw=30, energy_kwh=60, soc_pct=50, directions=["UP", "DOWN"]
        ),
    ):
        old.on_asset(registered_from_record(rec))
    old.on_degradation(_degradation("pv", -0.8, T0))
    outs = [
        o
        for vpp in ("v", "w")
        for s in ("EFR", "STATIC_FFR")
        for o in old.on_request(_request(f"{vpp}-{s}", vpp, s))
    ]
    outs += old.on_tick(T0 + 7 * MIN) + old.on_tick(T0 + HALF_HOUR)
    theirs = {o.record["event_id"]: _canonical(o.record) for o in outs}
    assert len(theirs) == 8
    assert ours == theirs
