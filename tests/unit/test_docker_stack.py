"""docker/compose.yaml is consistent with the code: env vars, endpoints, ports, commands, scrape and dashboards."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from edream.metrics import METRIC_NAMES
from edream.paths import REPO_ROOT
from edream.settings import Settings, load_settings

DOCKER = REPO_ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?]([^}]*))?\}")


def _interpolate(value: Any) -> Any:
    """Compose variable substitution with the defaults written in the file (``${X:-default}``)."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: m.group(2) or "", value)
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _interpolate(yaml.safe_load(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _edream_services(services) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if s.get("build", {}).get("dockerfile") == "docker/Dockerfile"}


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def _container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[-1].split("/")[0]) for p in service.get("ports", [])}


def _code_text() -> str:
    return "\n".join(
        p.read_text() for d in ("edream", "streams", "connectors") for p in (REPO_ROOT / d).rglob("*.py")
    )


def test_every_platform_service_is_built_from_the_one_dockerfile(services):
    platform = _edream_services(services)
    assert {"worker", "topics-init", "connectors"} <= set(platform)
    assert (REPO_ROOT / "docker" / "Dockerfile").is_file()
    assert len({s["image"] for s in platform.values()}) == 1
    for name, s in services.items():
        assert "image" in s, f"{name} has no image"
        for dep in s.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_platform_env_vars_are_settings_or_read_by_the_code(services):
    fields = {f.upper() for f in Settings.model_fields}
    code = _code_text()
    for name, s in _edream_services(services).items():
        for var in _env(s):
            assert var in fields or f'"{var}"' in code, (
                f"{name}: {var} is neither a setting nor read by the code"
            )


def test_platform_env_is_valid_settings(services, monkeypatch):
    for name, s in _edream_services(services).items():
        for k in list(Settings.model_fields):
            monkeypatch.delenv(k.upper(), raising=False)
        for k, v in _env(s).items():
            monkeypatch.setenv(k, v)
        st = load_settings()
        assert not st.embedded_broker, f"{name} must use the compose Kafka, not an embedded broker"
        assert st.clickhouse_dsn and st.eth_rpc_url and st.schema_registry_url, name
        assert st.edream_web_host == "0.0.0.0", f"{name}: web server must listen on all interfaces"


def test_endpoints_point_at_services_listening_there(services):
    env = _env(services["worker"])
    host, port = env["KAFKA_BOOTSTRAP_SERVERS"].split(":")
    kafka = _env(services[host])
    assert f"PLAINTEXT://{host}:{port}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT://:{port}" in kafka["KAFKA_LISTENERS"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft, no ZooKeeper"

    sr = urlparse(env["SCHEMA_REGISTRY_URL"])
    sr_env = _env(services[sr.hostname])
    assert urlparse(sr_env["SCHEMA_REGISTRY_LISTENERS"]).port == sr.port
    assert sr_env["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"].endswith(env["KAFKA_BOOTSTRAP_SERVERS"])

    ch = urlparse(env["CLICKHOUSE_DSN"])
    ch_env = _env(services[ch.hostname])
    assert ch.port == 8123 and 8123 in _container_ports(services[ch.hostname])
    assert (ch.username, ch.password, ch.path.lstrip("/")) == (
        ch_env["CLICKHOUSE_USER"],
        ch_env["CLICKHOUSE_PASSWORD"],
        ch_env["CLICKHOUSE_DB"],
    )

    eth = urlparse(env["ETH_RPC_URL"])
    cmd = services[eth.hostname]["command"]
    assert cmd[cmd.index("--port") + 1] == str(eth.port) and cmd[cmd.index("--host") + 1] == "0.0.0.0"


def test_web_port_is_published_exposed_and_scraped(services):
    port = int(_env(services["worker"])["EDREAM_WEB_PORT"])
    assert port in _container_ports(services["worker"])
    assert f"EXPOSE {port}" in (DOCKER / "Dockerfile").read_text()
    prom = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    sd = jobs["edream-worker"]["dns_sd_configs"][0]
    assert (
        sd["names"] == ["worker"]
        and sd["port"] == port
        and jobs["edream-worker"]["metrics_path"] == "/metrics"
    )
    for job in jobs.values():
        for cfg in job.get("dns_sd_configs", []):
            assert all(n in services for n in cfg["names"]), job["job_name"]


def test_platform_commands_exist_in_the_cli(services):
    from typer.main import get_command

    from edream import cli

    cli._mount_subapps()
    commands = set(get_command(cli.app).commands)  # type: ignore[attr-defined]
    for name, s in _edream_services(services).items():
        if "x-edream-requires" in s:
            continue  # documented as waiting for another area's command
        assert s["command"][0] in commands, f"{name}: `edream {s['command'][0]}` does not exist"


def test_grafana_is_provisioned_with_prometheus_and_the_platform_metrics(services):
    ds = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yaml").read_text())[
        "datasources"
    ][0]
    url = urlparse(ds["url"])
    assert url.hostname in services and url.port in _container_ports(services[url.hostname])
    prov = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/edream.yaml").read_text())["providers"][
        0
    ]
    mounted = dict(v.split(":")[:2][::-1] for v in services["grafana"]["volumes"])
    host_dir = Path(mounted[prov["options"]["path"]])
    dashboards = list((DOCKER / host_dir).glob("*.json"))
    assert dashboards
    from edream.dashboard import console_metrics
    from edream.runtime import health_board as hb

    stage_gauges = (hb.STAGE_UP, hb.STAGE_IN, hb.STAGE_OUT, hb.STAGE_LAG, hb.STAGE_DEAD)
    known = (
        set(METRIC_NAMES)
        | {"edream_counter"}
        | {g._name for g in stage_gauges}
        | set(console_metrics.METRIC_NAMES)
    )
    for path in dashboards:
        d = json.loads(path.read_text())
        exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
        assert exprs
        for e in exprs:
            used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"edream_[a-z_]+", e)}
            assert used and used <= known, f"{path.name}: unknown metric in {e}"
            assert all(t["datasource"]["uid"] == ds["uid"] for p in d["panels"] for t in p["targets"])


def test_mosquitto_config_listens_on_the_published_port(services):
    conf = (DOCKER / "mosquitto" / "mosquitto.conf").read_text()
    port = int(re.search(r"^listener (\d+)", conf, re.M).group(1))
    assert port in _container_ports(services["mosquitto"])


def test_web_api_token_is_set_and_prometheus_scrapes_with_it(services, compose):
    for name, s in _edream_services(services).items():
        assert "EDREAM_API_TOKEN" in _env(s), f"{name}: binds 0.0.0.0, so it needs EDREAM_API_TOKEN"
    assert compose["secrets"]["edream_api_token"] == {"environment": "EDREAM_API_TOKEN"}
    assert "edream_api_token" in services["prometheus"]["secrets"]
    scrape = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    [worker] = [j for j in scrape["scrape_configs"] if j["job_name"] == "edream-worker"]
    assert worker["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/edream_api_token"}


def test_prometheus_loads_alert_rules_on_metrics_the_platform_exports(services):
    from edream.dashboard import alerts, console_metrics
    from edream.runtime import health_board

    prom = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    mounted = {
        v.split(":")[1]: DOCKER / v.split(":")[0]
        for v in services["prometheus"]["volumes"]
        if v.startswith("./")
    }
    (rule_file,) = prom["rule_files"]
    rules = yaml.safe_load(mounted[rule_file].read_text())["groups"][0]["rules"]
    stage_gauges = (
        health_board.STAGE_UP,
        health_board.STAGE_IN,
        health_board.STAGE_LAG,
        health_board.STAGE_DEAD,
    )
    exported = {g._name for g in stage_gauges} | set(console_metrics.METRIC_NAMES)
    for rule in rules:
        used = set(re.findall(r"edream_[a-z_]+", rule["expr"]))
        assert used <= exported, f"{rule['alert']}: {used - exported} is exported by no code"
        assert rule["labels"]["severity"] in {"critical", "warning"} and rule["annotations"]["summary"]
    # every alert the console raises has a Prometheus rule of the same name (RETRYING is edream_stage_up == 0 too)
    console = set(re.findall(r'Alert\(\s*"(Edream[A-Za-z]+)"', Path(alerts.__file__).read_text()))
    assert console - {"EdreamStageRetrying"} <= {r["alert"] for r in rules}, console
