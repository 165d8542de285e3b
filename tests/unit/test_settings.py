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
