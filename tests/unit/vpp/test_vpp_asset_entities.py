"""The vpp stage drops the forecasts and baselines of entities no VPP asset names before the repartition hop
(streams/vpp/asset_entities.py): the registry view decides, incrementally, as assets come, move and go."""

from __future__ import annotations

from edream.serde import Serde
from streams.vpp.asset_entities import AssetEntities, StageAssets
from streams.vpp.registry import TOPIC_ASSETS, asset_record, validate_spec
from streams.vpp.stage import BASELINE_TOPIC, FORECAST_TOPIC, state_key_of
from tools.sim.flex_scenario import StaticView

SERDE = Serde()


def _asset(asset_id: str, vpp: str, entity: str | None) -> bytes:
    spec = {"asset_id": asset_id, "vpp_id": vpp, "kind": "PV", "p_max_kw": 10, "current_kw": 0}
    if entity:
        spec["forecast_entity_id"] = entity
    return SERDE.encode("VppAsset", asset_record(validate_spec(spec, "test"), 1), TOPIC_ASSETS)


def test_only_the_entities_and_vpps_the_registry_names_are_wanted_and_the_set_follows_the_view():
    view = StaticView({b"pv-1": _asset("pv-1", "vpp-a", "site-1"), b"pv-2": _asset("pv-2", "vpp-a", None)})
    entities = AssetEntities(view, SERDE)
    assert entities.wanted("site-1") and entities.wanted("vpp-a")  # its forecast entity, its VPP's portfolio
    assert not entities.wanted("prosumer-0042")
    view.put(b"pv-1", _asset("pv-1", "vpp-b", "site-9"))  # the asset moved to another VPP and site
    assert entities.wanted("site-9") and entities.wanted("vpp-b") and not entities.wanted("site-1")
    assert entities.wanted("vpp-a")  # pv-2 is still there
    view.put(b"pv-2", None)  # tombstoned
    assert not entities.wanted("vpp-a")
    view.put(b"junk", b"\x00not avro")  # names nothing, breaks nothing
    assert entities.wanted("site-9") and not entities.wanted("junk")
    assert AssetEntities(None, SERDE).wanted("anything")  # no view: every entity, as before


def test_the_rekey_drops_forecasts_and_baselines_of_entities_no_asset_names_without_decoding():
    shared = StageAssets()
    assert shared.wanted("anyone")  # before the runtime built the processor from the views
    shared.entities = AssetEntities(StaticView({b"pv-1": _asset("pv-1", "vpp-a", "site-1")}), SERDE)
    for topic in (FORECAST_TOPIC, BASELINE_TOPIC):
        rekey = state_key_of(SERDE, topic, topic, shared.wanted)
        assert rekey(b"site-1", b"not decoded") == [b"site-1"]
        assert rekey(b"vpp-a", b"not decoded") == [b"vpp-a"]
        assert rekey(b"prosumer-0042", b"not decoded") == []
        assert rekey(None, b"not decoded") == []
