"""The simulated field site for ``make run``: protocol simulators (MQTT SMX gateways, Modbus KiWi gateways,
OPC UA, SpotLink HTTP) and one connector process reading them into Kafka, both children of ``edream run``.

They run as separate processes, as they would in production (``docker/compose.yaml`` profile ``field``), using
``connectors/config/site-terni-sim.yaml``, whose device addresses match the simulators' default ports.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from edream.embedded.process import ChildGroup, ChildProcess, free_port, holders, port_open

log = logging.getLogger(__name__)

SIM_PORTS = {"mqtt": 1883, "modbus": 5020, "opcua": 4840, "http": 8089}


class FieldSite:
    """Start/stop the simulators and the connector; ``start`` returns False (and logs why) if a port is taken."""

    def __init__(self, data_dir: Path, bootstrap: str, prosumers: int = 50, state_dir: Path | None = None):
        self.data_dir, self.bootstrap, self.prosumers = data_dir, bootstrap, prosumers
        self.state_dir = state_dir
        self.children: list[ChildProcess] = []
        self.group = ChildGroup("field site", [], [])

    def start(self, port_wait_s: float = 30.0) -> bool:
        """Start both children; a taken simulator port is waited for up to ``port_wait_s`` (a previous run's
        simulators may still be shutting down), then reported with the process holding it."""
        deadline = time.monotonic() + port_wait_s
        while busy := [port for port in SIM_PORTS.values() if port_open("127.0.0.1", port)]:
            if time.monotonic() > deadline:
                names = {p: n for n, p in SIM_PORTS.items()}
                log.warning(
                    "field simulators not started: port(s) in use: %s", ", ".join(holders(busy, names))
                )
                return False
            time.sleep(1.0)
        cli = [sys.executable, "-m", "edream.cli", "connectors"]
        logs = self.data_dir / "logs"
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=self.bootstrap)
        metrics = free_port()
        self.children = [
            ChildProcess(
                "field simulators",
                [*cli, "sim", "--prosumers", str(self.prosumers)],
                "127.0.0.1",
                SIM_PORTS["mqtt"],
                logs / "field-sim.log",
                env,
                state_dir=self.state_dir,
            ),
            ChildProcess(
                "connector",
                [*cli, "run", "--metrics-port", str(metrics)],
                "127.0.0.1",
                metrics,
                logs / "connector.log",
                env,
                state_dir=self.state_dir,
            ),
        ]
        self.group = ChildGroup("field site", self.children, [], stop_grace=15)
        return self.group.start()  # ports checked above

    def stop(self) -> None:
        self.group.stop()  # the connector first: it flushes what it buffered
