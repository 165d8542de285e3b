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

import psutil

from edream.embedded.process import ChildProcess, free_port, port_open

log = logging.getLogger(__name__)

SIM_PORTS = {"mqtt": 1883, "modbus": 5020, "opcua": 4840, "http": 8089}


def holders(ports: list[int]) -> list[str]:
    """``"<port> (pid <pid>: <command line>)"`` for each listening port (the pid is unknown without permission)."""
    names = {p: n for n, p in SIM_PORTS.items()}
    out = []
    for port in ports:
        who = "unknown process"
        try:
            for c in psutil.net_connections(kind="tcp"):
                if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
                    who = f"pid {c.pid}: {' '.join(psutil.Process(c.pid).cmdline())[:200]}"
                    break
        except (psutil.Error, OSError):
            pass
        out.append(f"{names.get(port, '')} {port} ({who})")
    return out


class FieldSite:
    """Start/stop the simulators and the connector; ``start`` returns False (and logs why) if a port is taken."""

    def __init__(self, data_dir: Path, bootstrap: str, prosumers: int = 50, state_dir: Path | None = None):
        self.data_dir, self.bootstrap, self.prosumers = data_dir, bootstrap, prosumers
        self.state_dir = state_dir
        self.children: list[ChildProcess] = []

    def start(self, port_wait_s: float = 30.0) -> bool:
        """Start both children; a taken simulator port is waited for up to ``port_wait_s`` (a previous run's
        simulators may still be shutting down), then reported with the process holding it."""
        deadline = time.monotonic() + port_wait_s
        while busy := [port for port in SIM_PORTS.values() if port_open("127.0.0.1", port)]:
            if time.monotonic() > deadline:
                log.warning("field simulators not started: port(s) in use: %s", ", ".join(holders(busy)))
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
        try:
            for child in self.children:
                child.start(ready_timeout=60)
        except RuntimeError:
            self.stop()
            raise
        return True

    def stop(self) -> None:
        for child in reversed(self.children):  # the connector first: it flushes what it buffered
            child.stop(grace=15)
