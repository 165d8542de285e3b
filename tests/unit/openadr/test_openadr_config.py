"""The VTN config: valid files load; every error names file, entry and field; written configs load back."""

from __future__ import annotations

import pytest

from connectors.openadr.config import (
    DEFAULT_PORT,
    OpenAdrConfigError,
    load_config,
    parse_config,
    write_config,
)
from edream.paths import REPO_ROOT

VEN = {"ven_id": "ven-1", "ven_name": "site-1", "prosumer_id": "p1"}
TLS = {"cert": "a.crt", "key": "a.key", "ca_file": "ca.crt"}


def test_example_file_loads_and_maps_resources_to_devices():
    cfg = load_config(REPO_ROOT / "connectors/openadr/vtn.example.yaml")
    ven = cfg.by_prosumer("p001")
    assert ven is not None and cfg.by_name("site-p001") is ven and cfg.by_id("ven-p001") is ven
    assert (ven.device_id("main"), ven.device_id("pv")) == ("meter-p001", "ven-p001.pv")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "vtn.yaml: top level must be a mapping"),
        ({"vens": []}, "vtn.yaml: field 'vens': List should have at least 1 item"),
        (
            {"vens": [{**VEN, "ven_id": "ven 1"}]},
            "vtn.yaml: vens[0] 'ven 1': field 'ven_id': Value error, 'ven 1' is not",
        ),
        (
            {"vens": [VEN, {**VEN, "ven_id": "ven-2", "ven_name": "s2"}]},
            "vtn.yaml: vens[1] 'ven-2': field 'prosumer_id': 'p1' is used by more than one VEN",
        ),
        ({"vens": [{**VEN, "colour": "red"}]}, "vtn.yaml: vens[0] 'ven-1': field 'colour': Extra inputs"),
        (
            {"vens": [{**VEN, "fingerprint": "zz"}]},
            "vtn.yaml: vens[0] 'ven-1': field 'fingerprint': Value error, must be 10 hex",
        ),
        (
            {"vtn": {"tls": TLS}, "vens": [VEN]},
            "vtn.yaml: vens[0] 'ven-1': field 'fingerprint': required when the VTN serves TLS",
        ),
        (
            {"vtn": {"vtn_id": "vtn"}, "vens": [VEN]},
            "vtn.yaml: field 'vtn.vtn_id': Value error, must contain an upper-case",
        ),
        (
            {
                "vens": [
                    {**VEN, "vpp_assets": ["chp-1"]},
                    {
                        **VEN,
                        "ven_id": "ven-2",
                        "ven_name": "s2",
                        "prosumer_id": "p2",
                        "vpp_assets": ["chp-1"],
                    },
                ]
            },
            "vtn.yaml: vens[1] 'ven-2': field 'vpp_assets': 'chp-1' is also at VEN 'ven-1'",
        ),
        (
            {"vtn": {"port": 0}, "vens": [VEN]},
            "vtn.yaml: field 'vtn.port': Input should be greater than or equal to 1",
        ),
    ],
)
def test_invalid_configs_name_file_entry_and_field(data, message):
    with pytest.raises(OpenAdrConfigError) as exc:
        parse_config(data, "vtn.yaml")
    assert str(exc.value).startswith(message), str(exc.value)


def test_tls_config_with_fingerprints_is_valid_and_normalised():
    cfg = parse_config(
        {"vtn": {"tls": TLS}, "vens": [{**VEN, "fingerprint": "ab:cd:ef:01:23:45:67:89:ab:cd"}]}
    )
    assert cfg.vens[0].fingerprint == "AB:CD:EF:01:23:45:67:89:AB:CD"


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(OpenAdrConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("vens: [\n")
    with pytest.raises(OpenAdrConfigError, match=f"{bad}: not valid YAML"):
        load_config(bad)


def test_example_file_avoids_the_platforms_ports():
    from edream.settings import Settings

    cfg = load_config(REPO_ROOT / "connectors/openadr/vtn.example.yaml")
    rest = Settings.model_fields["edream_rest_port"].default
    web = Settings.model_fields["edream_web_port"].default
    assert cfg.vtn.port == DEFAULT_PORT and DEFAULT_PORT not in (rest, web)


def test_a_written_config_loads_back_as_written(tmp_path):
    path = tmp_path / "run" / "vtn.yaml"
    cfg = write_config(
        path, port=18096, poll_seconds=2, ven_name="site-7", ven_id="ven-7", prosumer_id="prosumer-007",
        report_seconds=5, net_meter=False,
    )  # fmt: skip
    loaded = load_config(path)
    assert loaded == cfg and [p.name for p in path.parent.iterdir()] == ["vtn.yaml"]  # no temp file left
    assert (loaded.vtn.port, loaded.vtn.poll_seconds, loaded.vtn.report_seconds) == (18096, 2, 5)
    [ven] = loaded.vens
    assert (ven.ven_name, ven.ven_id, ven.prosumer_id, ven.net_meter) == (
        "site-7",
        "ven-7",
        "prosumer-007",
        False,
    )
    assert ven.device_id("site-ems") == "ven-7.site-ems" and loaded.vtn.tls is None


def test_an_invalid_value_is_refused_naming_the_file_and_nothing_is_written(tmp_path):
    path = tmp_path / "vtn.yaml"
    with pytest.raises(OpenAdrConfigError, match=f"{path}: vens\\[0\\] 'ven 7': field 'ven_id'"):
        write_config(path, port=18096, poll_seconds=2, ven_name="s", ven_id="ven 7", prosumer_id="p")
    with pytest.raises(OpenAdrConfigError, match=f"{path}: field 'vtn.poll_seconds'"):
        write_config(path, port=18096, poll_seconds=0, ven_name="s", ven_id="ven-7", prosumer_id="p")
    assert not path.exists() and not list(tmp_path.iterdir())
