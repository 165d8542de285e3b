from __future__ import annotations

import pytest

from edream.settings import ConfigFileError, load_settings


def test_env_overrides_and_embedded_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("CLICKHOUSE_DSN", raising=False)
    monkeypatch.setenv("EDREAM_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert s.embedded_broker and s.effective_clickhouse_dsn == f"chdb://{tmp_path}/chdb"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092")
    monkeypatch.setenv("CLICKHOUSE_DSN", "clickhouse://u:p@h:8123/db")
    s = load_settings()
    assert not s.embedded_broker and s.effective_clickhouse_dsn == "clickhouse://u:p@h:8123/db"


def test_stage_configs_come_from_the_data_dir_unless_a_config_dir_is_set(monkeypatch, tmp_path):
    """A worker's stage processes keep state in a per-worker data dir but read the platform's market.yaml."""
    from edream.topology import load_topology
    from streams.agents.market import stage

    monkeypatch.delenv("EDREAM_CONFIG_DIR", raising=False)
    monkeypatch.setenv("EDREAM_DATA_DIR", str(tmp_path / "worker"))
    assert load_settings().config_dir == tmp_path / "worker"
    (tmp_path / "market.yaml").write_text("gate_closure_lead_ms: 60000\n")
    monkeypatch.setenv("EDREAM_CONFIG_DIR", str(tmp_path))
    s = load_settings()
    assert s.config_dir == tmp_path and s.as_env()["EDREAM_CONFIG_DIR"] == str(tmp_path)
    spec = stage(s, load_topology(s.edream_topology))
    processor = spec.make({name: None for name in spec.views}).processor  # no participant needed here
    assert processor.config.gate_closure_lead_ms == 60_000


def test_config_file(monkeypatch, tmp_path):
    cfg = tmp_path / "edream.yaml"
    cfg.write_text("edream_web_port: 9999\n")
    monkeypatch.setenv("EDREAM_CONFIG", str(cfg))
    monkeypatch.delenv("EDREAM_WEB_PORT", raising=False)
    assert load_settings().edream_web_port == 9999
    monkeypatch.setenv("EDREAM_WEB_PORT", "7000")  # env wins over the file
    assert load_settings().edream_web_port == 7000


def test_config_file_errors_name_file_and_field(monkeypatch, tmp_path):
    cfg = tmp_path / "edream.yaml"
    cfg.write_text("edream_web_prot: 9999\n")
    monkeypatch.setenv("EDREAM_CONFIG", str(cfg))
    with pytest.raises(ConfigFileError, match=r"edream.yaml: unknown setting 'edream_web_prot'"):
        load_settings()
    cfg.write_text("edream_web_port: lots\n")
    monkeypatch.delenv("EDREAM_WEB_PORT", raising=False)
    with pytest.raises(ConfigFileError, match="edream_web_port"):
        load_settings()
