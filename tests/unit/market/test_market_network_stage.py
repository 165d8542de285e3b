"""The market processor with a network section (on_order/on_tick on MemoryState, no broker): the session clears
within the congestion limits, the ClearingResult reports both welfares and the binding limit, settlement follows the
trades; and the section's validation (errors name the file, the entry and the field)."""

from __future__ import annotations

import fastavro
import pytest
import yaml
from market_fixtures import MemoryState, Q, interval, order, processor

from edream.avro_schemas import load_schema
from streams.market.config import MarketConfig, MarketConfigError
from streams.market.orders import Side
from streams.market.processor import TOPIC_CLEARING, TOPIC_SETTLEMENT, TOPIC_TRADES

SLOT = 1_795_435_200_000
k = 1000
# P1 sells behind the transformer T, whose export headroom is 1.6 kW = 400 Wh per 15-min slot
NETWORK = {
    "congestion_points": [{"id": "T", "import_kw": 4.0, "export_kw": 1.6}],
    "participants": [{"participant_id": "P1", "congestion_points": ["T"]}],
}


def run_session(cfg: MarketConfig):
    p, state = processor(cfg, n=3), MemoryState()
    books = [(1, Side.OFFER, 1000, 50 * k), (0, Side.BID, 1000, 200 * k), (2, Side.OFFER, 300, 150 * k)]
    for i, side, wh, price in books:
        o = order(cfg, i, side, SLOT, SLOT - 2 * Q, quantity_wh=wh, price=price)
        p.on_order(o, SLOT - 2 * Q, state, SLOT - 2 * Q)
    outs = p.on_tick(cfg.gate_closure(SLOT), state)
    return p, state, outs


def test_the_session_clears_within_the_limits_and_reports_the_welfare_difference():
    cfg = MarketConfig(network=NETWORK)
    p, state, outs = run_session(cfg)
    (result,) = [o.record for o in outs if o.topic == TOPIC_CLEARING]
    trades = [o.record for o in outs if o.topic == TOPIC_TRADES]
    fastavro.validation.validate(result, load_schema("ClearingResult"), raise_errors=True)
    assert result["network_status"] == "CONSTRAINED"
    assert result["reference_cleared_wh"] == 1000 and result["cleared_wh"] == 700
    assert (result["reference_welfare_micro"], result["welfare_micro"]) == (150_000, 75_000)
    assert result["binding_limits"] == ["T:EXPORT"]
    assert result["zone_prices"] == {"-": 200 * k, "T": 50 * k}
    assert sum(t["quantity_wh"] for t in trades if t["seller_id"] == "P1") == 400  # the export limit
    assert sorted((t["seller_id"], t["quantity_wh"], t["price_micro_per_kwh"]) for t in trades) == [
        ("P1", 400, 125 * k),
        ("P2", 300, 200 * k),
    ]
    # settlement of the constrained trades: buyer pays what the sellers get, per trade price
    p.on_interval(interval("M1", SLOT, export_wh=400.0), SLOT + Q + 1, state, SLOT + Q + 1)
    p.on_interval(interval("M2", SLOT, export_wh=300.0), SLOT + Q + 1, state, SLOT + Q + 1)
    outs = p.on_interval(interval("M0", SLOT, import_wh=700.0), SLOT + Q + 2, state, SLOT + Q + 2)
    amounts = {o.record["party_id"]: o.record["amount_micro"] for o in outs if o.topic == TOPIC_SETTLEMENT}
    assert amounts == {"P0": -(50_000 + 60_000), "P1": 50_000, "P2": 60_000}


def test_without_a_network_section_the_record_is_as_before():
    _, _, outs = run_session(MarketConfig())
    (result,) = [o.record for o in outs if o.topic == TOPIC_CLEARING]
    assert result["cleared_wh"] == 1000 and result["price_micro_per_kwh"] == 100 * k
    assert result["network_status"] is None and result["welfare_micro"] is None
    assert result["binding_limits"] == [] and result["zone_prices"] == {}


def test_a_roomy_network_gives_the_reference_result():
    roomy = {**NETWORK, "congestion_points": [{"id": "T", "import_kw": 4.0, "export_kw": 4.0}]}
    _, _, outs = run_session(MarketConfig(network=roomy))
    (result,) = [o.record for o in outs if o.topic == TOPIC_CLEARING]
    assert result["network_status"] == "UNCONSTRAINED" and result["binding_limits"] == []
    assert result["cleared_wh"] == result["reference_cleared_wh"] == 1000
    assert result["welfare_micro"] == result["reference_welfare_micro"] == 150_000


@pytest.mark.parametrize(
    ("network", "message"),
    [
        (
            {"congestion_points": [{"id": "T", "import_kw": 1, "export_kw": -1}]},
            "network.congestion_points[0] 'T': field 'export_kw': Input should be greater than or equal to 0",
        ),
        (
            {**NETWORK, "participants": [{"participant_id": "P1", "congestion_points": ["X"]}]},
            "network.participants[0] 'P1': field 'congestion_points': unknown congestion point 'X'",
        ),
        (
            {**NETWORK, "participants": NETWORK["participants"] * 2},
            "network.participants[1] 'P1': field 'participant_id': listed twice",
        ),
        (
            {"congestion_points": [{"id": "T", "import_kw": 1, "export_kw": 1, "extra": 1}]},
            "network.congestion_points[0] 'T': field 'extra': Extra inputs are not permitted",
        ),
    ],
)
def test_an_invalid_network_section_names_file_entry_and_field(tmp_path, network, message):
    path = tmp_path / "market.yaml"
    path.write_text(yaml.safe_dump({"network": network}))
    with pytest.raises(MarketConfigError) as exc:
        MarketConfig.from_yaml(path)
    assert str(exc.value).startswith(f"{path}: {message}")
