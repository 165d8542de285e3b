"""SASL/TLS settings from the environment reach confluent-kafka and Faust/aiokafka as the same security setup."""

from __future__ import annotations

import ssl

import certifi
import pytest
from confluent_kafka import Producer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from edream.kafka import client_config, consumer_config, producer_config
from edream.kafka_security import KafkaSecurity, KafkaSecurityError
from edream.settings import load_settings
from streams.app import create_app

CA = certifi.where()  # a real PEM CA bundle


@pytest.fixture
def env(monkeypatch):
    for var in (
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("EDREAM_CONFIG", raising=False)

    def set_env(**values: str) -> None:
        for k, v in values.items():
            monkeypatch.setenv(k, v)

    return set_env


def test_plaintext_by_default_adds_nothing(env):
    s = load_settings()
    assert KafkaSecurity.from_settings(s).librdkafka() == {}
    assert client_config("b:9092", s) == {"bootstrap.servers": "b:9092"}
    assert create_app(s, "b:9092").conf.broker_credentials is None


def test_sasl_ssl_scram_maps_to_librdkafka_and_aiokafka(env):
    env(
        KAFKA_SECURITY_PROTOCOL="sasl_ssl",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="edream",
        KAFKA_SASL_PASSWORD="s3cret",
        KAFKA_SSL_CA_LOCATION=CA,
    )
    s = load_settings()
    assert "s3cret" not in repr(s)  # the password is a secret in logs and reprs
    expected = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "edream",
        "sasl.password": "s3cret",
        "ssl.ca.location": CA,
    }
    for conf in (producer_config(s, "b:9093"), consumer_config(s, "g", "b:9093"), client_config("b:9093", s)):
        assert {k: conf[k] for k in expected} == expected and conf["bootstrap.servers"] == "b:9093"
    Producer(producer_config(s, "127.0.0.1:1")).flush(0)  # librdkafka accepts every property

    creds = create_app(s, "b:9093").conf.broker_credentials
    auth = credentials_to_aiokafka_auth(creds)
    assert (auth["security_protocol"], auth["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("edream", "s3cret")
    assert (
        isinstance(auth["ssl_context"], ssl.SSLContext)
        and auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    )


def test_sasl_plaintext_plain_has_no_tls(env):
    env(KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", KAFKA_SASL_MECHANISM="PLAIN")
    env(KAFKA_SASL_USERNAME="u", KAFKA_SASL_PASSWORD="p")
    s = load_settings()
    assert KafkaSecurity.from_settings(s).librdkafka() == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "u",
        "sasl.password": "p",
    }
    auth = credentials_to_aiokafka_auth(KafkaSecurity.from_settings(s).faust_credentials())
    assert (auth["security_protocol"], auth["sasl_mechanism"], auth["ssl_context"]) == (
        "SASL_PLAINTEXT",
        "PLAIN",
        None,
    )


def test_tls_only_maps_to_ssl_credentials(env):
    env(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_LOCATION=CA)
    sec = KafkaSecurity.from_settings(load_settings())
    assert sec.librdkafka() == {"security.protocol": "SSL", "ssl.ca.location": CA}
    auth = credentials_to_aiokafka_auth(sec.faust_credentials())
    assert auth["security_protocol"] == "SSL" and isinstance(auth["ssl_context"], ssl.SSLContext)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL"}, "KAFKA_SECURITY_PROTOCOL: 'SASL' is not one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM: None is not one of"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"},
            "KAFKA_SASL_MECHANISM: 'GSSAPI' is not one of",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
            },
            "KAFKA_SASL_PASSWORD: required with KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        ({"KAFKA_SASL_USERNAME": "u"}, "does not use SASL"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": "/no/such.pem"},
            "/no/such.pem is not a readable",
        ),
        (
            {"KAFKA_SSL_CA_LOCATION": CA},
            "KAFKA_SSL_CA_LOCATION: set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT is not TLS",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTIFICATE_LOCATION": CA},
            "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together",
        ),
    ],
)
def test_inconsistent_settings_fail_naming_the_variable(env, values, message):
    env(**values)
    with pytest.raises(KafkaSecurityError, match=message.replace("(", r"\(")):
        producer_config(load_settings(), "b:9092")
