"""Kafka authentication and encryption from the environment, mapped once for every client library.

Settings (environment variables, see :class:`~edream.settings.Settings`): ``KAFKA_SECURITY_PROTOCOL``
(PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; default PLAINTEXT, the embedded broker), ``KAFKA_SASL_MECHANISM``
(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``,
``KAFKA_SSL_CA_LOCATION`` (PEM CA bundle; unset = the system's), ``KAFKA_SSL_CERTIFICATE_LOCATION`` /
``KAFKA_SSL_KEY_LOCATION`` / ``KAFKA_SSL_KEY_PASSWORD`` (client certificate for mutual TLS).

:meth:`KafkaSecurity.librdkafka` gives the confluent-kafka (librdkafka) properties, :meth:`faust_credentials` the
Faust ``broker_credentials`` (which Faust hands to aiokafka). An inconsistent combination (SASL without a
mechanism or credentials, a missing certificate file, TLS files with a plaintext protocol) raises
:class:`KafkaSecurityError` naming the variable, so a misconfigured process fails at start, not at first use.
GSSAPI (Kerberos) and OAUTHBEARER are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaSecurityError(ValueError):
    """Inconsistent Kafka security settings; the message names the environment variable."""


@dataclass(frozen=True)
class KafkaSecurity:
    """Validated Kafka security settings (file locations are paths to PEM files)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise KafkaSecurityError(f"KAFKA_SECURITY_PROTOCOL: {self.protocol!r} is not one of {PROTOCOLS}")
        if self.sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise KafkaSecurityError(
                    f"KAFKA_SASL_MECHANISM: {self.sasl_mechanism!r} is not one of {MECHANISMS} "
                    f"(required with {self.protocol})"
                )
            for var, value in (
                ("KAFKA_SASL_USERNAME", self.sasl_username),
                ("KAFKA_SASL_PASSWORD", self.sasl_password),
            ):
                if not value:
                    raise KafkaSecurityError(f"{var}: required with KAFKA_SECURITY_PROTOCOL={self.protocol}")
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password:
            raise KafkaSecurityError(
                f"KAFKA_SASL_*: set, but KAFKA_SECURITY_PROTOCOL={self.protocol} does not use SASL "
                "(use SASL_SSL or SASL_PLAINTEXT)"
            )
        files = {
            "KAFKA_SSL_CA_LOCATION": self.ssl_ca_location,
            "KAFKA_SSL_CERTIFICATE_LOCATION": self.ssl_certificate_location,
            "KAFKA_SSL_KEY_LOCATION": self.ssl_key_location,
        }
        for var, location in files.items():
            if location is None:
                continue
            if not self.tls:
                raise KafkaSecurityError(
                    f"{var}: set, but KAFKA_SECURITY_PROTOCOL={self.protocol} is not TLS"
                )
            if not Path(location).is_file():
                raise KafkaSecurityError(f"{var}: {location} is not a readable file")
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            raise KafkaSecurityError(
                "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together (client certificate)"
            )

    @classmethod
    def from_settings(cls, settings: Any) -> KafkaSecurity:
        return cls(
            protocol=(settings.kafka_security_protocol or "PLAINTEXT").upper(),
            sasl_mechanism=settings.kafka_sasl_mechanism.upper() if settings.kafka_sasl_mechanism else None,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None,
            ssl_ca_location=settings.kafka_ssl_ca_location,
            ssl_certificate_location=settings.kafka_ssl_certificate_location,
            ssl_key_location=settings.kafka_ssl_key_location,
            ssl_key_password=(
                settings.kafka_ssl_key_password.get_secret_value()
                if settings.kafka_ssl_key_password
                else None
            ),
        )

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def librdkafka(self) -> dict[str, Any]:
        """confluent-kafka properties (empty for PLAINTEXT, so the defaults stay untouched)."""
        if self.protocol == "PLAINTEXT":
            return {}
        conf: dict[str, Any] = {"security.protocol": self.protocol}
        if self.sasl:
            conf |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password,
            }
        optional = {
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": self.ssl_key_password,
        }
        return conf | {k: v for k, v in optional.items() if v is not None}

    def ssl_context(self) -> Any:
        """The client TLS context (aiokafka's helper: CA bundle, optional client certificate), or None."""
        if not self.tls:
            return None
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(
            cafile=self.ssl_ca_location,
            certfile=self.ssl_certificate_location,
            keyfile=self.ssl_key_location,
            password=self.ssl_key_password,
        )

    def faust_credentials(self) -> Any:
        """Faust ``broker_credentials`` (None for PLAINTEXT)."""
        import faust

        if self.sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context(),
            )
        if self.tls:
            return faust.SSLCredentials(self.ssl_context())
        return None
