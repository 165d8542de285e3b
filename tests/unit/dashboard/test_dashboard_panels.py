"""Dashboard panels against real chDB tables built from the Avro contracts (unique table names per test)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edream.avro_samples import sample_value
from edream.avro_schemas import contract
from edream.clickhouse import RowEncoder, ensure_table, insert_rows
from edream.dashboard.panels.anchoring import verify_link
from edream.dashboard.registry import Panel, PanelSource, discover, snapshot
from edream.dashboard.tables import DEFAULT_TABLES
from edream.topology import Sink

NOW = 1_800_000_000_000  # UTC epoch ms
MIN = 60_000


@pytest.fixture
def tables(unique_table) -> dict[str, str]:
    return {k: unique_table(f"dash_{k}") for k in DEFAULT_TABLES}


def _fill(
    client: Any, table: str, schema: str, order_by: list[str], records: list[dict[str, Any]], version=None
):
    c = contract(schema)
    ensure_table(client, Sink(name=table, topic="t", table=table, order_by=order_by, version=version), c)
    enc = RowEncoder(c)
    base = sample_value(c.raw)
    insert_rows(client, table, enc.columns, [enc.row({**base, **r}) for r in records])


def _src(client: Any, tables: dict[str, str], **kw: Any) -> PanelSource:
    return PanelSource(client=client, now_ms=NOW, tables=tables, **kw)


def _panel(client: Any, tables: dict[str, str], panel_id: str, **kw: Any) -> dict[str, Any]:
    panels = [p for p in discover() if p.id == panel_id]
    return snapshot(panels, _src(client, tables, **kw))["panels"][panel_id]


def _blocks(p: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in p["blocks"] if b["kind"] == kind]


def test_registry_discovers_every_panel_in_display_order():
    ids = [p.id for p in discover()]
    assert ids == ["health", "pipeline", "load", "flex", "grid", "market", "anchoring", "vpp"]
    assert all(p.description and "  " not in p.description for p in discover())


def test_missing_tables_give_empty_panels_with_a_note_not_errors(chdb_client, tables):
    snap = snapshot(discover(), _src(chdb_client, tables))
    for pid in ("flex", "grid", "market", "anchoring", "vpp"):
        p = snap["panels"][pid]
        assert p["empty"] and "not exist" in p["note"] and "error" not in p, p
    assert "not exist" in snap["panels"]["load"]["note"]
    json.dumps(snap)  # what /api/stream pushes must be JSON


def test_a_failing_panel_reports_its_error_and_the_others_still_render(chdb_client, tables):
    broken = Panel("broken", "Broken", 0, lambda src: {"x": 1 // 0})
    snap = snapshot([broken, *discover()], _src(chdb_client, tables))
    assert snap["panels"]["broken"]["error"] == "ZeroDivisionError: integer division or modulo by zero"
    assert "error" not in snap["panels"]["market"]


def _meas(prosumer: str, device: str, ts: int, value: float, unit: str = "W", seq: int = 1) -> dict[str, Any]:
    return dict(
        event_id=f"{device}/{ts}",
        device_id=device,
        prosumer_id=prosumer,
        quantity="P_ACTIVE",
        phase="TOTAL",
        value=value,
        unit=unit,
        ts=ts,
        seq=seq,
        connector_id="c1",
    )


def test_load_panel_holds_each_meter_on_a_common_grid_and_counts_enrolled_prosumers(chdb_client, tables):
    t0 = NOW - 10 * MIN  # on the 15-s grid
    _fill(
        chdb_client,
        tables["measurements"],
        "Measurement",
        ["device_id", "quantity", "phase", "ts"],
        [
            _meas("p1", "m1", t0 - 20_000, 1000),
            _meas("p1", "m1", t0, 2000),  # newest reading at t0 wins: 2 kW
            _meas("p1", "m1", t0 + 30_000, 3000),  # every 30 s: held (not 0 kW) at t0 + 15 s
            _meas("p1", "m2", t0, 0.5, unit="kW"),  # second meter of p1, then silent: stale after 90 s
            _meas("p2", "m3", t0, 4000),
            _meas("p2", "m3", t0 + 30_000, 4000),
            _meas("p3", "m4", t0, 7000),  # p3 is not enrolled: not in the portfolio
            _meas("p2", "m3", t0 - 3 * 3_600_000, 9999),  # outside the 2 h window
        ],
        version="seq",
    )
    _fill(
        chdb_client,
        tables["flex_enrolments"],
        "FlexEnrolment",
        ["prosumer_id"],
        [
            dict(event_id="e1", prosumer_id="p1", active=True),
            dict(event_id="e2", prosumer_id="p2", active=True),
            dict(event_id="e4", prosumer_id="p4", active=True),  # enrolled, no meter yet
            dict(event_id="e5", prosumer_id="p5", active=False),
        ],
        version="updated_at",
    )
    pts = [{"ts": t0, "value": 250.0, "lower": None, "upper": None}]  # 250 Wh in 15 min = 1 kW
    _fill(
        chdb_client,
        tables["forecasts"],
        "Forecast",
        ["entity_id", "property", "prediction_granularity", "issued_at"],  # the sink's key (topology.yaml)
        [  # the newer issue wins, also over an older profile of another granularity sharing t0 (one point, never
            # two, so the portfolio counts it once); the meters measure net power: consumption minus production
            dict(
                event_id=f"f{k}",
                entity_id="p1",
                property=prop,
                prediction_granularity=horizon,
                profile_granularity_minutes=minutes,
                issued_at=issued,
                points=[dict(pts[0], value=wh)],
            )
            for k, (prop, horizon, minutes, issued, wh) in enumerate(
                [
                    ("ENERGY_CONSUMPTION", "ONE_HOUR_AHEAD", 15, t0 - MIN, 100.0),
                    ("ENERGY_CONSUMPTION", "ONE_HOUR_AHEAD", 15, t0, 250.0),
                    ("ENERGY_CONSUMPTION", "DAYAHEAD", 60, t0 - 2 * MIN, 4000.0),  # 4 kW
                    ("ENERGY_PRODUCTION", "ONE_HOUR_AHEAD", 15, t0 - MIN, 200.0),
                    ("ENERGY_PRODUCTION", "ONE_HOUR_AHEAD", 15, t0, 50.0),
                ]
            )
        ],
    )
    _fill(
        chdb_client,
        tables["baselines"],
        "Baseline",
        ["prosumer_id", "isp_start", "version"],
        [
            dict(
                event_id="b1", prosumer_id="p2", isp_start=t0, baseline_kw=3.0, adjustment_kw=0.0, version=1
            ),
            dict(
                event_id="b2", prosumer_id="p2", isp_start=t0, baseline_kw=3.0, adjustment_kw=0.5, version=2
            ),
        ],
    )
    p = _panel(chdb_client, tables, "load")
    charts = {b["title"]: {s["name"]: s["points"] for s in b["series"]} for b in _blocks(p, "series")}
    at = {t: kw for t, kw in charts["p1"]["measured"]}
    assert (at[t0 - 15_000], at[t0], at[t0 + 15_000], at[t0 + 30_000]) == (1.0, 2.5, 2.5, 3.5)
    assert at[t0 + 90_000] == 3.5 and at[t0 + 105_000] == 3.0  # m2 stale after 90 s, m1 held from t0 + 30 s
    assert at[t0 + 135_000] is None  # no meter of p1 has reported within 90 s
    assert {t: kw for t, kw in charts["p2"]["measured"]}[t0 + 15_000] == 4.0
    assert charts["p1"]["forecast"] == [[t0, 0.8]]
    assert charts["p2"]["baseline"] == [[t0, 3.5]]
    assert set(charts) == {"Portfolio: 3 prosumers, 0 of 3 meters reporting", "p1", "p2", "p4"}
    (portfolio_block,) = [b for b in _blocks(p, "series") if b["title"].startswith("Portfolio")]
    portfolio = {s["name"]: s["points"] for s in portfolio_block["series"]}
    measured = {t: kw for t, kw in portfolio["measured"]}
    assert measured[t0] == 6.5 and measured[t0 + 15_000] == 6.5 and measured[t0 + 30_000] == 7.5
    reporting = dict(zip([t for t, _ in portfolio["measured"]], portfolio_block["reporting"], strict=True))
    assert (reporting[t0 - 15_000], reporting[t0], reporting[t0 + 105_000]) == (1, 3, 2)
    assert portfolio["forecast"] == [[t0, 0.8]]
    assert _stats(p)["prosumers enrolled"] == 3 and _stats(p)["meters reporting"] == "0 of 3"
    assert p["note"] is None


def _stats(p: dict[str, Any]) -> dict[str, Any]:
    return {s["label"]: s["value"] for b in _blocks(p, "stats") for s in b["stats"]}


def test_pipeline_panel_rates_lag_dead_letters_and_stale_connectors(chdb_client, tables):
    _fill(
        chdb_client,
        tables["measurements"],
        "Measurement",
        ["device_id", "quantity", "phase", "ts"],
        [_meas("p1", "fresh", NOW - 5000, 1.0), _meas("p1", "old", NOW - 10 * MIN, 1.0)],
        version="seq",
    )
    _fill(
        chdb_client,
        tables["deadletters"],
        "DeadLetter",
        ["source_topic", "partition", "offset"],
        [dict(source_topic="a", partition=0, offset=i, stage="sink:x", failed_at=NOW) for i in range(3)],
    )
    counters = {"sink.measurements.rows": 120, "dlq.measurements": 2}
    p = _panel(
        chdb_client,
        tables,
        "pipeline",
        counters=counters,
        rates={"sink.measurements.rows": 12.5},
        lag={"total": 7, "by_topic": {"meter.readings.raw.v1": 7}},
    )
    stats = {s["label"]: s["value"] for s in _blocks(p, "stats")[0]["stats"]}
    assert stats == {
        "rows sunk": 120,
        "events/s": 12.5,
        "consumer lag": 7,
        "dead letters": 2,
        "devices reporting": 1,
    }
    tbl = {b["title"]: b for b in _blocks(p, "table")}
    assert tbl["Connectors"]["rows"][0]["status"] == "PARTIAL"
    assert tbl["Connectors"]["rows"][0]["devices"] == 2
    assert tbl["Dead letters"]["rows"][0]["letters"] == 3
    assert tbl["Consumer lag"]["rows"] == [{"topic": "meter.readings.raw.v1", "lag": 7}]


def test_flex_panel_uses_the_latest_revision_and_final_verdicts_for_progress(chdb_client, tables):
    slots = [NOW + i * 15 * MIN for i in range(4)]

    def alloc(kw: float) -> list[dict[str, Any]]:
        return [dict(prosumer_id="p1", slot_start=s, kw=kw, baseline_kw=3.0) for s in slots]

    _fill(
        chdb_client,
        tables["flex_orders"],
        "FlexOrder",
        ["order_id", "revision"],
        [
            dict(
                event_id="o1r0",
                order_id="o1",
                revision=0,
                status="ACTIVE",
                allocations=alloc(1.0),
                created_at=NOW,
            ),
            dict(
                event_id="o1r1",
                order_id="o1",
                revision=1,
                status="AMENDED",
                allocations=alloc(0.5),
                created_at=NOW,
            ),
        ],
    )
    devs = [
        dict(
            event_id="d1",
            order_id="o1",
            prosumer_id="p1",
            slot_start=slots[0],
            ts=slots[0] + 60_000,
            kind="PROJECTED",
            target_kw=0.5,
            delivered_kw=0.1,
            verdict="SHORTFALL",
        ),
        dict(
            event_id="d2",
            order_id="o1",
            prosumer_id="p1",
            slot_start=slots[0],
            ts=slots[1],
            kind="FINAL",
            target_kw=0.5,
            delivered_kw=0.45,
            verdict="WITHIN",
        ),
        dict(
            event_id="d3",
            order_id="o1",
            prosumer_id="p1",
            slot_start=slots[1],
            ts=slots[2],
            kind="FINAL",
            target_kw=0.5,
            delivered_kw=0.2,
            verdict="SHORTFALL",
        ),
    ]
    _fill(
        chdb_client,
        tables["flex_deviations"],
        "Deviation",
        ["order_id", "prosumer_id", "slot_start", "kind", "ts"],
        devs,
    )
    p = _panel(chdb_client, tables, "flex")
    (order,) = _blocks(p, "table")[0]["rows"]
    assert (order["revision"], order["status"], order["slots"]) == (1, "AMENDED", 4)
    assert order["ordered_kw_slots"] == 2.0
    assert (order["slots_final"], order["within"], order["shortfall"], order["projected_alerts"]) == (
        2,
        1,
        1,
        1,
    )
    assert order["progress_pct"] == 50.0
    series = {s["name"]: s["points"] for s in _blocks(p, "series")[0]["series"]}
    assert series["delivered"] == [[slots[0], 0.45], [slots[1], 0.2]]  # FINAL beats the earlier projection


def test_market_panel_prices_in_eur_and_volumes_per_slot(chdb_client, tables):
    _fill(
        chdb_client,
        tables["market_clearing"],
        "ClearingResult",
        ["session_id"],
        [
            dict(
                event_id=f"c{i}",
                session_id=f"s{i}",
                slot_start=NOW + i * 15 * MIN,
                price_micro_per_kwh=None if i == 2 else 150_000 + i,
                cleared_wh=100 * i,
                bid_wh=500,
                offer_wh=400,
            )
            for i in range(3)
        ],
    )
    p = _panel(chdb_client, tables, "market")
    stats = {s["label"]: s["value"] for s in _blocks(p, "stats")[0]["stats"]}
    assert stats == {"slots cleared": 3, "last price": 0.150001, "volume": 300}
    price = _blocks(p, "series")[0]["series"][0]["points"]
    assert price == [[NOW, 0.15], [NOW + 15 * MIN, 0.150001]]  # the unpriced slot is not plotted
    latest = _blocks(p, "table")[0]["rows"]
    assert latest[0]["session_id"] == {"href": "/page/slot/s2", "text": "s2"}


def test_anchoring_panel_links_each_window_to_verification(chdb_client, tables):
    _fill(
        chdb_client,
        tables["chain_anchors"],
        "AnchorReceipt",
        ["kind", "window_id"],
        [
            dict(
                event_id="a1",
                kind="FLEX",
                window_id="2026-11-23T10:15Z/15m",
                block_number=42,
                record_count=9,
                anchored_at=NOW,
            )
        ],
    )
    p = _panel(chdb_client, tables, "anchoring")
    (row,) = _blocks(p, "table")[0]["rows"]
    assert row["verify"]["href"] == "/api/verify?kind=FLEX&window=2026-11-23T10%3A15Z%2F15m"
    assert row["window_id"]["href"] == "/page/anchor/FLEX%2F2026-11-23T10%3A15Z%2F15m"
    assert row["cli"] == "edream verify window FLEX 2026-11-23T10:15Z/15m"
    assert {s["label"]: s["value"] for s in _blocks(p, "stats")[0]["stats"]}["last block"] == 42


def test_verify_link_escapes_the_window_id():
    assert verify_link("MARKET", "a b/c") == "/api/verify?kind=MARKET&window=a%20b%2Fc"


def test_vpp_panel_plots_the_latest_evaluation_per_window_and_lists_answers(chdb_client, tables):
    slot = NOW // (30 * MIN) * (30 * MIN)
    evals = [  # (slot, evaluated_at, offered kW); the window at `slot` was evaluated twice: the later wins
        (slot, NOW - 40 * MIN, 30.0),
        (slot, NOW - 10 * MIN, 42.5),
        (slot + 30 * MIN, NOW, 18.0),
    ]
    _fill(
        chdb_client,
        tables["vpp_export"],
        "VppExportCapacity",
        ["vpp_id", "market", "slot_start", "evaluated_at"],
        [
            {
                "event_id": f"v/{s}/{e}",
                "vpp_id": "vpp-demo",
                "market": "INTRADAY",
                "slot_start": s,
                "slot_end": s + 30 * MIN,
                "evaluated_at": e,
                "offered_kw": kw,
                "export_p50_kw": kw + 10,
                "export_p10_kw": kw,
                "decision": "OFFER",
                "price_forecast_micro": 150_000,
                "threshold_micro": 100_000,
            }
            for s, e, kw in evals
        ],
    )
    _fill(
        chdb_client,
        tables["vpp_capability"],
        "VppCapability",
        ["vpp_id", "request_id"],
        [
            {
                "event_id": "r1/capability",
                "request_id": "r1",
                "vpp_id": "vpp-demo",
                "service": "STATIC_FFR",
                "feasible": True,
                "capacity_kw": 210.0,
                "computed_at": NOW - MIN,
            },
        ],
        version="computed_at",
    )
    p = _panel(chdb_client, tables, "vpp")
    stats = {s["label"]: s["value"] for s in _blocks(p, "stats")[0]["stats"]}
    assert stats["windows evaluated"] == 2 and stats["next window offered"] == 18.0
    assert stats["price threshold"] == 0.1 and stats["capability answers"] == 1
    (series,) = _blocks(p, "series")
    lines = {s["name"]: s["points"] for s in series["series"]}
    assert lines["offered"] == [[slot, 42.5], [slot + 30 * MIN, 18.0]]
    assert lines["P50"] == [[slot, 52.5], [slot + 30 * MIN, 28.0]]
    windows, answers = _blocks(p, "table")
    assert windows["rows"][0]["slot_ms"] == slot + 30 * MIN
    assert answers["rows"][0]["request_id"] == "r1" and answers["rows"][0]["capacity_kw"] == 210.0


def _order_with_a_shortfall(client: Any, tables: dict[str, str]) -> list[int]:
    """Order o1 re-dispatched (revision 1), p1 short by 0.8 kW in slot 0, within in slot 1, settled."""
    slots = [NOW - 60 * MIN + i * 15 * MIN for i in range(2)]
    allocs = [dict(prosumer_id="p1", slot_start=s, kw=1.0, baseline_kw=3.0) for s in slots]
    _fill(
        client,
        tables["flex_orders"],
        "FlexOrder",
        ["order_id", "revision"],
        [
            dict(
                event_id="r0", order_id="o1", revision=0, status="ACTIVE", allocations=allocs, created_at=NOW
            ),
            dict(
                event_id="r1", order_id="o1", revision=1, status="AMENDED", allocations=allocs, created_at=NOW
            ),
        ],
    )
    devs = [
        dict(
            order_id="o1",
            prosumer_id="p1",
            slot_start=slots[0],
            ts=slots[0] + MIN,
            kind="PROJECTED",
            target_kw=1.0,
            delivered_kw=0.5,
            verdict="SHORTFALL",
        ),
        dict(
            order_id="o1",
            prosumer_id="p1",
            slot_start=slots[0],
            ts=slots[1],
            kind="FINAL",
            target_kw=1.0,
            delivered_kw=0.2,
            verdict="SHORTFALL",
        ),
        dict(
            order_id="o1",
            prosumer_id="p1",
            slot_start=slots[1],
            ts=slots[1] + 15 * MIN,
            kind="FINAL",
            target_kw=1.0,
            delivered_kw=1.0,
            verdict="WITHIN",
        ),
    ]
    _fill(
        client,
        tables["flex_deviations"],
        "Deviation",
        ["order_id", "prosumer_id", "slot_start", "kind", "ts"],
        [dict(d, event_id=f"d{i}") for i, d in enumerate(devs)],
    )
    _fill(
        client,
        tables["settlement_flex"],
        "Settlement",
        ["settlement_id"],
        [
            dict(
                event_id=f"s{i}",
                settlement_id=f"s{i}",
                kind="FLEX",
                window_id=f"w{i}",
                window_start=s,
                window_end=s + 15 * MIN,
                party_id="p1",
                reference_id="o1",
                quantity_wh=q,
                amount_micro=amt,
                currency="EUR",
                details=json.dumps({"verdict": v}),
                version=1,
            )
            for i, (s, q, amt, v) in enumerate(
                [(slots[0], 50, -240_000, "SHORTFALL"), (slots[1], 250, 25_000, "WITHIN")]
            )
        ],
        version="version",
    )
    _fill(
        client,
        tables["chain_anchors"],
        "AnchorReceipt",
        ["kind", "window_id"],
        [
            dict(
                event_id="a1",
                kind="FLEX",
                window_id="aw1",
                window_start=slots[0],
                window_end=slots[0] + 15 * MIN,
                record_count=1,
                block_number=7,
            )
        ],
    )
    return slots


def test_health_panel_lists_stages_in_red_and_alerts_for_shortfall_anchoring_and_dependencies(
    chdb_client, tables
):
    slots = _order_with_a_shortfall(chdb_client, tables)
    stages = [
        {
            "stage": "intervals",
            "worker_id": "h:1",
            "status": "DOWN",
            "last_error": None,
            "in_per_s": 0.0,
            "out_per_s": 0.0,
            "lag": 5,
            "dead_letters": 0,
            "restarts": 0,
            "updated_at": NOW - 20_000,
        },
        {
            "stage": "vpp",
            "worker_id": "h:2",
            "status": "UP",
            "last_error": None,
            "in_per_s": 3.5,
            "out_per_s": 1.0,
            "lag": 900,
            "dead_letters": 1,
            "restarts": 2,
            "updated_at": NOW - 1_000,
        },
    ]
    deps = {"chain": {"up": False, "detail": "ConnectError"}, "clickhouse": {"up": True, "detail": "ok"}}
    p = _panel(
        chdb_client,
        tables,
        "health",
        stages=stages,
        deps=deps,
        lag_growing=frozenset({"vpp@h:2"}),
        anchor_allowed_ms=10 * MIN,
    )
    (alerts,) = _blocks(p, "alerts")
    got = {(a["name"], a["subject"]) for a in alerts["alerts"]}
    assert got == {
        ("EdreamDependencyDown", "chain"),
        ("EdreamStageDown", "intervals@h:1"),
        ("EdreamStageLagGrowing", "vpp@h:2"),
        ("EdreamFlexShortfall", "o1"),
        (
            "EdreamAnchoringBehind",
            "anchoring",
        ),  # the second slot's settlement (ended 30 min ago) is unanchored
    }
    assert p["metrics"]["shortfall_kw"] == {"o1": 0.8}
    assert p["metrics"]["anchoring_behind_s"] == (NOW - slots[1] - 15 * MIN) / 1000
    tbl = {b["title"]: b["rows"] for b in _blocks(p, "table")}
    assert [r["status"] for r in tbl["Stages"]] == ["DOWN", "UP"]
    assert tbl["Dependencies"][0] == {"dependency": "chain", "status": "DOWN", "detail": "ConnectError"}
    assert _stats(p)["stages up"] == "1 of 2" and _stats(p)["alerts"] == 5


def test_order_page_shows_slots_revisions_settlements_penalty_and_the_covering_anchor(chdb_client, tables):
    from edream.dashboard.pages import NotFound, discover_pages

    slots = _order_with_a_shortfall(chdb_client, tables)
    order_page = discover_pages()["order"]
    p = order_page(_src(chdb_client, tables), "o1")
    assert p["title"] == "Order o1"
    stats = {s["label"]: s["value"] for b in p["blocks"] if b["kind"] == "stats" for s in b["stats"]}
    assert stats["status"] == "AMENDED" and stats["revisions"] == 2 and stats["slots evaluated"] == 2
    assert (
        stats["shortfalls (prosumer-slots)"] == 1
        and stats["penalties"] == 0.24
        and stats["incentives"] == 0.025  # to the micro-unit, never rounded to cents
    )
    tbl = {b["title"].split(" (")[0]: b["rows"] for b in p["blocks"] if b["kind"] == "table"}
    per_slot = tbl["Per prosumer and slot"]
    assert [(r["slot_ms"], r["evaluation"], r["verdict"], r["short_kw"]) for r in per_slot] == [
        (slots[0], "FINAL", "SHORTFALL", 0.8),
        (slots[1], "FINAL", "WITHIN", 0.0),
    ]
    assert [r["status"] for r in tbl["Revisions"]] == ["ACTIVE", "AMENDED"]
    assert [r["kind"] for r in tbl["Settlements"]] == ["PENALTY", "INCENTIVE"]
    (anchor,) = tbl["Anchors"]
    assert anchor["window_id"] == {"href": "/page/anchor/FLEX%2Faw1", "text": "aw1"}  # the window's page
    assert anchor["verify"]["href"] == verify_link("FLEX", "aw1")
    assert per_slot[0]["prosumer_id"] == {"href": "/page/prosumer/p1", "text": "p1"}
    assert [b["url"] for b in p["blocks"] if b["kind"] == "verify"] == [verify_link("FLEX", "aw1")]
    assert len(tbl["Deviation events"]) == 3
    with pytest.raises(NotFound):
        order_page(_src(chdb_client, tables), "nope")


def test_grid_panel_maps_the_latest_forecast_loading_per_point_and_slot(chdb_client, tables):
    first = NOW - NOW % (15 * MIN)
    rows = [  # (point, slot, issued_at, loading %, converged, missing prosumers)
        ("feeder/T1", first - 15 * MIN, NOW - MIN, 50.0, True, 0),  # past slot: not shown
        ("feeder/T1", first, NOW - 20 * MIN, 130.0, True, 0),  # superseded by the later forecast below
        ("feeder/T1", first, NOW - MIN, 90.0, True, 0),
        ("feeder/T1", first + 15 * MIN, NOW - MIN, 112.5, True, 1),
        ("feeder/L2", first, NOW - MIN, None, False, 0),
        ("feeder/L2", first + 15 * MIN, NOW - MIN, 40.0, True, 0),
    ]
    _fill(
        chdb_client,
        tables["grid_congestion"],
        "GridCongestion",
        ["congestion_point_id", "slot_start"],
        [
            {
                "event_id": f"{cp}/{t}/{issued}",
                "congestion_point_id": cp,
                "slot_start": t,
                "slot_end": t + 15 * MIN,
                "forecast_issued_at": issued,
                "loading_percent": loading,
                "max_loading_percent": 100.0,
                "overload_kw": max(0.0, (loading or 0) - 100) * 2.5,
                "converged": ok,
                "missing_forecasts": missing,
            }
            for cp, t, issued, loading, ok, missing in rows
        ],
        version="forecast_issued_at",
    )
    p = _panel(chdb_client, tables, "grid")
    (hm,) = _blocks(p, "heatmap")
    assert hm["rows"] == ["feeder/L2", "feeder/T1"] and hm["cols"] == [first, first + 15 * MIN]
    assert hm["values"] == [[None, 40.0], [90.0, 112.5]] and hm["limits"] == [100.0, 100.0]
    stats = {s["label"]: s["value"] for s in _blocks(p, "stats")[0]["stats"]}
    assert stats == {"congestion points": 2, "overloaded slots": 1, "peak loading": 112.5}
    flagged = {(r["point"], r["slot_ms"]): r for r in _blocks(p, "table")[0]["rows"]}
    assert flagged[("feeder/L2", first)]["flag"] == "NOT CONVERGED"
    hot = flagged[("feeder/T1", first + 15 * MIN)]
    assert hot["flag"] == "OVERLOAD" and hot["overload_kw"] == 31.2 and hot["missing_forecasts"] == 1
    assert len(flagged) == 2


def test_grid_panel_shows_the_proof_of_relief_of_the_ordered_slots(chdb_client, tables):
    first = NOW - NOW % (15 * MIN)
    rows = [  # (point, slot, version, phase, verdict, before, expected, measured)
        (
            "feeder/T1",
            first - 30 * MIN,
            NOW - 40 * MIN,
            "EXPECTED",
            "PENDING",
            130.0,
            95.0,
            None,
        ),  # superseded
        ("feeder/T1", first - 30 * MIN, NOW - 5 * MIN, "MEASURED", "RELIEVED", 130.0, 95.0, 97.0),
        ("feeder/L2", first - 30 * MIN, NOW - 5 * MIN, "MEASURED", "PARTIALLY_RELIEVED", 85.0, 55.0, 70.0),
        ("feeder/T1", first + 15 * MIN, NOW - MIN, "EXPECTED", "PENDING", 120.0, 90.0, None),
        (
            "feeder/T1",
            first - 26 * 60 * MIN,
            NOW - 25 * 60 * MIN,
            "MEASURED",
            "NOT_RELIEVED",
            120,
            90,
            121,
        ),  # old
    ]
    _fill(
        chdb_client,
        tables["grid_relief"],
        "GridRelief",
        ["congestion_point_id", "slot_start"],
        [
            {
                "event_id": f"{cp}/{t}/{version}",
                "congestion_point_id": cp,
                "slot_start": t,
                "slot_end": t + 15 * MIN,
                "version": version,
                "phase": phase,
                "verdict": verdict,
                "loading_before_percent": before,
                "loading_expected_percent": expected,
                "loading_measured_percent": measured,
                "max_loading_percent": 60.0 if cp == "feeder/L2" else 100.0,
                "ordered_kw": -60.0,
                "orders": 1,
                "missing_meters": 0,
            }
            for cp, t, version, phase, verdict, before, expected, measured in rows
        ],
        version="version",
    )
    _fill(chdb_client, tables["grid_congestion"], "GridCongestion", ["congestion_point_id", "slot_start"], [])
    p = _panel(chdb_client, tables, "grid")
    stats = {s["label"]: s["value"] for s in _blocks(p, "stats")[0]["stats"]}
    assert {k: v for k, v in stats.items() if k.startswith("slots ")} == {
        "slots relieved": 1,
        "slots partially relieved": 1,
        "slots not relieved": 0,  # the only NOT_RELIEVED slot is older than a day
        "slots pending": 1,
    }
    (relief,) = [b for b in _blocks(p, "table") if b["title"].startswith("Proof of relief")]
    got = [
        (r["point"], r["slot_ms"], r["verdict"], r["before_pct"], r["measured_pct"]) for r in relief["rows"]
    ]
    assert got == [
        ("feeder/T1", first + 15 * MIN, "PENDING", 120.0, None),
        ("feeder/L2", first - 30 * MIN, "PARTIALLY_RELIEVED", 85.0, 70.0),
        ("feeder/T1", first - 30 * MIN, "RELIEVED", 130.0, 97.0),
    ]
    assert relief["rows"][1]["limit_pct"] == 60.0 and relief["rows"][1]["ordered_kw"] == -60.0
