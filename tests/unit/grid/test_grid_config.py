"""Grid mapping files: valid ones build a model, bad ones fail naming the file, the entry and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streams.grid.config import GridConfigError, load_grid_config
from streams.grid.model import build_grid_model


@pytest.fixture(scope="module")
def nets(tmp_path_factory, tiny_net) -> dict[bool, Path]:
    """The tiny network as JSON, whole (False) and with its last line cut (True)."""
    d = tmp_path_factory.mktemp("nets")
    return {cut: tiny_net(d / f"net-{cut}.json", cut) for cut in (False, True)}


def write(tmp_path: Path, nets: dict[bool, Path], doc: dict, cut_line: bool = False) -> Path:
    f = tmp_path / "grid.yaml"
    f.write_text(
        yaml.safe_dump(
            {**doc, "network": str(nets[cut_line]) if doc["network"] == "net.json" else doc["network"]}
        )
    )
    return f


def doc(**over) -> dict:
    base = {
        "network": "net.json",
        "congestion_points": [
            {"id": "cp-trafo", "area_id": "area-1", "asset": {"kind": "trafo", "index": "T1"}},
            {"id": "cp-l2", "area_id": "area-2", "asset": {"kind": "line", "index": "L2"}},
        ],
        "prosumers": [{"prosumer_id": "p1", "bus": "LV1"}, {"prosumer_id": "p2", "bus": 3}],
    }
    return {**base, **over}


def test_valid_mapping_builds_the_model(tmp_path, nets):
    m = build_grid_model(load_grid_config(write(tmp_path, nets, doc())))
    assert m.prosumer_ids == ("p1", "p2")
    assert list(m.net.load.loc[m.prosumer_loads, "name"]) == ["p1", "p2"]
    trafo, l2 = m.congestion_points
    assert trafo.rated_kva == pytest.approx(250.0)
    assert l2.rated_kva == pytest.approx(3**0.5 * 0.4 * 0.27 * 1000)  # NAYY 4x150: 270 A
    assert [m.prosumer_ids[i] for i in m.zone_prosumers(trafo)] == ["p1", "p2"]
    assert [m.prosumer_ids[i] for i in m.zone_prosumers(l2)] == ["p2"]
    assert len(m.background_loads) == 0  # background: none takes the grid's own load out


@pytest.mark.parametrize(
    ("change", "cut", "message"),
    [
        (
            {"prosumers": [{"prosumer_id": "p1", "bus": "LV9"}]},
            False,
            "prosumers[0] 'p1': field 'bus': unknown bus 'LV9'",
        ),
        (
            {"prosumers": [{"prosumer_id": "p1", "bus": "LV1"}, {"prosumer_id": "p1", "bus": "LV2"}]},
            False,
            "prosumers[1] 'p1': field 'prosumer_id': prosumer mapped twice (first at prosumers[0])",
        ),
        ({}, True, "field 'network' ("),
        (
            {"congestion_points": [{"id": "cp", "area_id": "a", "asset": {"kind": "trafo", "index": 7}}]},
            False,
            "congestion_points[0] 'cp': field 'asset': unknown trafo 7",
        ),
        (
            {
                "congestion_points": [
                    {
                        "id": "cp",
                        "area_id": "a",
                        "asset": {"kind": "trafo", "index": 0},
                        "max_loading_percent": -5,
                    }
                ]
            },
            False,
            "congestion_points[0] 'cp': field 'max_loading_percent': Input should be greater than 0",
        ),
        ({"prosumers": [{"prosumer_id": "p1", "bus_id": 1}]}, False, "prosumers[0] 'p1': field 'bus'"),
    ],
)
def test_bad_mapping_names_file_entry_and_field(tmp_path, nets, change, cut, message):
    f = write(tmp_path, nets, doc(**change), cut_line=cut)
    with pytest.raises(GridConfigError) as err:
        build_grid_model(load_grid_config(f))
    assert str(err.value).startswith(str(f))
    assert message in str(err.value)
    if cut:
        assert "disconnected network: bus(es) LV2 (3) not supplied" in str(err.value)


def test_missing_network_file_is_named(tmp_path):
    f = tmp_path / "grid.yaml"
    f.write_text(yaml.safe_dump(doc(network="nowhere.json")))
    with pytest.raises(GridConfigError, match=r"grid.yaml: field 'network': no such pandapower JSON file"):
        build_grid_model(load_grid_config(f))
