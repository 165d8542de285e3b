"""One settings object for every process: environment variables, then an optional YAML config file.

Production sets the component endpoints (``KAFKA_BOOTSTRAP_SERVERS``, ``SCHEMA_REGISTRY_URL``,
``CLICKHOUSE_DSN``, ``ETH_RPC_URL``); anything left unset falls back to the embedded default that the
platform starts itself (Tansu broker, chDB on disk, anvil). The same code path serves both.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edream.paths import REPO_ROOT, TOPOLOGY_FILE


class ConfigFileError(ValueError):
    """An invalid settings file: the message names the file and the field."""


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads ``EDREAM_CONFIG`` (a YAML mapping of setting name -> value), lowest priority after env."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        path = os.environ.get("EDREAM_CONFIG")
        self._data: dict[str, Any] = {}
        if path:
            p = Path(path)
            if not p.is_file():
                raise ConfigFileError(f"{path}: settings file does not exist (EDREAM_CONFIG)")
            loaded = yaml.safe_load(p.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ConfigFileError(f"{path}: settings file must be a mapping of setting -> value")
            known = {f.lower() for f in settings_cls.model_fields}
            for key in loaded:
                if str(key).lower() not in known:
                    raise ConfigFileError(f"{path}: unknown setting '{key}'")
            self._data = {str(k).lower(): v for k, v in loaded.items()}

    def get_field_value(self, field, field_name):  # pragma: no cover - required by the ABC
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """Platform settings. Names match the environment variables (case-insensitive)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    kafka_bootstrap_servers: str | None = Field(
        None, description="host:port[,host:port]; unset = start the embedded Tansu broker"
    )
    # Kafka authentication/encryption, mapped for every client in edream/kafka_security.py
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = Field(None, description="PEM CA bundle; unset = the system's")
    kafka_ssl_certificate_location: str | None = Field(
        None, description="PEM client certificate (mutual TLS)"
    )
    kafka_ssl_key_location: str | None = Field(None, description="PEM client key (mutual TLS)")
    kafka_ssl_key_password: SecretStr | None = None
    schema_registry_url: str | None = Field(
        None, description="Confluent schema registry URL; unset = Avro single-object framing"
    )
    clickhouse_dsn: str | None = Field(
        None, description="clickhouse://user:pass@host:8123/db; unset = chDB in <data dir>/chdb"
    )
    eth_rpc_url: str | None = Field(None, description="Ethereum JSON-RPC URL; unset = embedded anvil")
    edream_broker_storage: Literal["s3", "memory"] = Field(
        "s3", description="embedded broker's log: s3 = durable (local SeaweedFS), memory = lost on exit"
    )
    edream_data_dir: Path = Field(REPO_ROOT / "var", description="state of embedded components")
    edream_config_dir: Path | None = Field(
        None, description="where stages read market.yaml and vpp.yaml; unset = EDREAM_DATA_DIR"
    )
    edream_topology: Path = Field(TOPOLOGY_FILE, description="the topology file to load")
    edream_web_port: int = Field(8088, description="dashboard, status API and /metrics")
    edream_web_host: str = Field("127.0.0.1")
    edream_rest_port: int = Field(
        8090,
        ge=0,
        le=65535,
        description="integrators' REST API on EDREAM_WEB_HOST (/api/v1, OpenAPI at /api/v1/openapi.json); 0 = off",
    )
    edream_rest_url: str | None = Field(
        None,
        description="the platform's REST API for its clients (e.g. the UFTP gateway); default "
        "http://127.0.0.1:EDREAM_REST_PORT/api/v1",
    )
    edream_api_token: SecretStr | None = Field(
        None, description="bearer token of /api/* and /metrics; required when EDREAM_WEB_HOST is not loopback"
    )
    edream_api_token_file: Path | None = Field(None, description="or: a file whose first line is the token")
    edream_log_level: str = Field("INFO")
    edream_app_id: str = Field("edream", description="Faust app id = consumer group prefix")
    kafka_session_timeout_s: float = Field(10.0, description="consumer group session timeout")
    anchor_window_minutes: float = Field(
        15.0, gt=0, description="settlement window anchored as one Merkle root"
    )
    anchor_grace_minutes: float = Field(
        15.0,
        ge=0,
        description="wait after a window's end (event time, or wall clock when idle) before anchoring",
    )

    forecast_model: Literal["linear", "ensemble"] = Field(
        "linear",
        description="forecasts stage model: linear = River online regression (forecast.profiles.v1 hour-ahead every "
        "15 min); ensemble = online ensemble with conformal P10/P90 on lower/upper and pinball/coverage on "
        "forecast.accuracy.v1 (streams/analytics/ensemble_stream.py)",
    )

    forecast_weather_location: str | None = Field(
        None,
        description="the weather.hourly.v1 site (location_id of the weather feed) whose temperature and irradiance "
        "the forecasts stage's linear models read; unset = no weather",
    )

    flex_auto_accept: bool = Field(
        False,
        description="demo setting: order every feasible flex offer at once, standing in for the DSO (off: "
        "prosumers are ordered only after the DSO's signed acceptance on flex.acceptances.v1); `edream run` with "
        "the demo turns it on unless set",
    )

    demo_timelapse: bool = Field(
        False,
        description="demo setting: the demo DSO also asks every 10 min for 30 % of the community's curtailable kW "
        "over three 1-minute ISPs, so the whole flex lifecycle (offer, order, dispatch, delivery, shortfall and "
        "penalty, settlement, anchored proof) shows within minutes; off: it asks only for what its grid's congestion "
        "forecast needs (15-min ISPs, often hours ahead)",
    )

    # grid congestion stage (streams/grid, agent `grid`)
    grid_configs: str = Field(
        "",
        description="comma-separated grid mapping files (streams/grid/config/*.yaml); the grid id is the file's "
        "name without .yaml; empty: the grid stage forecasts nothing",
    )
    grid_horizon_slots: int = Field(
        96, ge=1, le=672, description="quarter hours the congestion forecast looks ahead"
    )
    grid_relief: bool = Field(
        True,
        description="proof of relief: with a grid configured, the grid stage also reads flex.orders.v1 and "
        "meter.intervals.15m.v1 and publishes grid.relief.v1 (off: congestion forecast and requests only; every "
        "stage start then assigns 8 partitions fewer)",
    )
    grid_relief_grace_ms: int = Field(
        default=30 * 60_000,
        ge=0,
        description="proof of relief: wait this long after a slot's end for the last meters' intervals before the "
        "slot is measured without them (ms)",
    )
    grid_relief_corrections_ms: int = Field(
        default=2 * 3_600_000,
        ge=0,
        description="proof of relief: until this long after a slot's end, late or corrected intervals re-measure a "
        "measured slot and a changed result is published again as MEASURED with a higher version (ms)",
    )
    grid_dso_id: str | None = Field(
        None,
        description="DSO role of the grid stage: the DSO id its flexibility requests carry (off unless set with GRID_DSO_KEY)",
    )
    grid_dso_key: SecretStr | None = Field(
        None,
        description="0x-hex Ethereum key signing the grid stage's flexibility requests (its DSO on flex.dsos.v1)",
    )

    # USEF/UFTP gateway (`edream uftp serve`, connectors/uftp)
    uftp_domain: str | None = Field(
        None, description="the aggregator's UFTP sender domain, e.g. agr.example.com"
    )
    uftp_signing_key: SecretStr | None = Field(
        None,
        description="base64 Ed25519 secret key (64 bytes) sealing our UFTP messages (`edream uftp keys`)",
    )
    uftp_attest_key: SecretStr | None = Field(
        None,
        description="0x-hex Ethereum key signing what the gateway verified; its address is the eth_address of "
        "UFTP DSOs on flex.dsos.v1",
    )
    uftp_host: str = Field("127.0.0.1", description="UFTP gateway bind address")
    uftp_port: int = Field(
        8092,
        description="UFTP gateway port (path /shapeshifter/api/v3/message; 8089 is the demo site's HTTP simulator)",
    )
    uftp_time_zone: str = Field(
        "Europe/Amsterdam", description="time zone of the ISPs of our FlexOffers and D-Prognoses"
    )
    uftp_prognosis_minutes: float = Field(
        15,
        ge=0,
        description="minutes between the gateway's D-Prognosis rounds to its DSOs (from the platform's forecasts); "
        "0: none sent",
    )

    # OpenADR 2.0b VTN towards prosumer sites (`edream openadr serve`, connectors/openadr)
    openadr_config: Path | None = Field(
        None, description="YAML file of the VTN and its VENs (see connectors/openadr/vtn.example.yaml)"
    )
    openadr_attest_key: SecretStr | None = Field(
        None,
        description="0x-hex Ethereum key signing the flex requests made of a utility's OpenADR events "
        "(`edream openadr ven`); its address is the eth_address of the utility on flex.dsos.v1",
    )

    # bounds of the inbound contracts (streams/validation): anything outside is dead-lettered or rejected
    runtime_commit_interval_s: float = Field(
        1.0,
        description="stream runtime: seconds between checkpoints (state changelog flushed, offsets committed); "
        "5 s makes the interval stage ~1.3x faster on queued input, but a stage killed within this time after a "
        "tick closed a window replays that close after later readings and can emit the window's version 1 again "
        "with other values (README, e2e bench)",
    )
    runtime_hang_after_s: float = Field(
        120.0,
        gt=0,
        description="stream runtime: a stage process whose processing loop handled nothing (no record, no tick) for "
        "this long while its clock ticks reached the broker reports HUNG and exits, so its parent restarts it",
    )
    runtime_start_deadline_s: float = Field(
        600.0,
        gt=0,
        description="stream runtime: a stage run that has handled nothing (no record, no tick, no restored "
        "changelog record) this long after it started, while its clock ticks reached the broker, reports HUNG and "
        "its process exits, so its parent restarts it (a first start beside every other stage on a loaded machine "
        "took over 120 s; a retry once sat silent for good)",
    )
    runtime_trust_local_state: bool = Field(
        False,
        description="stream runtime: reuse a stage's local RocksDB state on start (default false: always restore "
        "it from the changelog; Tansu reports a partition's end as its last batch's base offset + 1, which makes "
        "kept state look ahead of its changelog, and Quix can then hang closing its consumer; true is for Apache "
        "Kafka)",
    )
    runtime_replication_factor: int = Field(
        1,
        description="stream runtime: replication factor of the topics it creates (clock, changelog, repartition)",
    )
    validation_max_future_s: float = Field(
        300.0, ge=0, description="event times may run this far ahead of the wall clock (clock skew), s"
    )
    validation_max_past_days: float = Field(
        31.0, gt=0, description="event times older than this many days before the wall clock are refused"
    )
    validation_horizon_days: float = Field(
        7.0, gt=0, description="flex slots, market slots and VPP windows may start at most this far ahead"
    )
    validation_max_reading_kw: float = Field(
        10_000.0, gt=0, description="largest |active/reactive/apparent power| of one meter reading, kW"
    )
    validation_max_flex_kw: float = Field(
        10_000.0, gt=0, description="largest flexibility one DSO request may ask for in one slot, kW"
    )
    validation_max_order_wh: int = Field(
        10_000_000, gt=0, description="largest quantity of one market order, Wh"
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka_bootstrap_servers

    @property
    def config_dir(self) -> Path:
        """The directory of the stages' configuration files (``market.yaml``, ``vpp.yaml``)."""
        return self.edream_config_dir or self.edream_data_dir

    @property
    def chdb_path(self) -> Path:
        return self.edream_data_dir / "chdb"

    def as_env(self) -> dict[str, str]:
        """The explicitly set settings as environment variables, for child processes (stage processes of
        ``edream run``) that must see exactly this configuration."""
        import json

        from pydantic import SecretStr

        env = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, list | dict | tuple):
                value = json.dumps(value)
            env[name.upper()] = str(value)
        return env

    @property
    def rest_api_url(self) -> str:
        """Where clients reach the platform's REST API (``EDREAM_REST_URL``, else the local platform's port)."""
        return self.edream_rest_url or f"http://127.0.0.1:{self.edream_rest_port}/api/v1"

    @cached_property
    def effective_clickhouse_dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{self.chdb_path}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from env + ``EDREAM_CONFIG``; raise ConfigFileError naming the field on bad values."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigFileError(f"settings: field '{field}': {err['msg']}") from exc
