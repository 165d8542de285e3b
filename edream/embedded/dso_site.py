"""The demo's DSO side for ``make run``: the platform's USEF/UFTP gateway (``edream uftp serve``, with the demo's
keys) and the simulated DSO talking to it (``edream uftp sim-dso``, :mod:`edream.demo.dso`), both children of
``edream run``, as separate processes as in production (the gateway beside the platform, the DSO elsewhere).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from edream.demo.dso import UFTP_PATH, DemoDsoConfig, gateway_env
from edream.embedded.field_site import holders
from edream.embedded.process import ChildProcess, port_open

log = logging.getLogger(__name__)


class DsoSite:
    """``env``: the platform's settings and broker as environment; ``gateway_port``: where the gateway serves."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str],
        gateway_port: int,
        prosumers: int = 50,
        seed: int = 1,
        cfg: DemoDsoConfig | None = None,
        state_dir: Path | None = None,
    ):
        self.data_dir, self.env, self.gateway_port = data_dir, env, gateway_port
        self.prosumers, self.seed, self.cfg, self.state_dir = (
            prosumers,
            seed,
            cfg or DemoDsoConfig(),
            state_dir,
        )
        self.children: list[ChildProcess] = []

    def start(self) -> bool:
        """Start the gateway, then the DSO; False (logged, with who holds them) when a port is taken."""
        busy = [p for p in (self.gateway_port, self.cfg.port) if port_open("127.0.0.1", p)]
        if busy:
            log.warning("demo DSO not started: port(s) in use: %s", ", ".join(holders(busy)))
            return False
        cli, logs = [sys.executable, "-m", "edream.cli", "uftp"], self.data_dir / "logs"
        agr_url = f"http://127.0.0.1:{self.gateway_port}{UFTP_PATH}"
        self.children = [
            ChildProcess(
                "uftp gateway",
                [*cli, "serve"],
                "127.0.0.1",
                self.gateway_port,
                logs / "uftp-gateway.log",
                {**self.env, **gateway_env(self.seed, self.gateway_port)},
                state_dir=self.state_dir,
            ),
            ChildProcess(
                "demo dso",
                [
                    *cli,
                    "sim-dso",
                    "--agr-url",
                    agr_url,
                    "--port",
                    str(self.cfg.port),
                    "--prosumers",
                    str(self.prosumers),
                    "--seed",
                    str(self.seed),
                ],
                "127.0.0.1",
                self.cfg.port,
                logs / "demo-dso.log",
                self.env,
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
        for child in reversed(self.children):  # the DSO first: nothing more for the gateway to forward
            child.stop(grace=10)
