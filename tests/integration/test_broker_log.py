"""The embedded broker writes its warnings and errors to ``<data dir>/logs/tansu.log``: when its object store
goes away, the failed storage requests are there in plain text (an operator's first clue when produce stalls)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from confluent_kafka import Producer

from edream.embedded.broker import EmbeddedBroker, broker_log_env
from edream.embedded.object_store import EmbeddedObjectStore

pytestmark = pytest.mark.integration


def test_log_env_defaults_to_warnings_and_keeps_an_operators_choice():
    assert broker_log_env({}) == {"RUST_LOG": "warn", "NO_COLOR": "1"}
    assert broker_log_env({"RUST_LOG": "debug"})["RUST_LOG"] == "debug"


def test_a_lost_object_store_shows_in_the_broker_log(tmp_path):
    store = EmbeddedObjectStore(tmp_path).start()
    broker = EmbeddedBroker(tmp_path, object_store=store)
    broker.start()
    try:
        os.kill(store.process.proc.pid, signal.SIGKILL)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 20_000})
        producer.produce("broker.log.test", b"x")
        log_path = tmp_path / "logs" / "tansu.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "ERROR" not in log_path.read_text():
            producer.poll(0.5)
        text = log_path.read_text()
        assert "ERROR" in text and "ObjectStore" in text, text[-2000:]
        assert "\x1b[" not in text  # plain text, no colour codes
    finally:
        broker.stop()
        store.stop()
