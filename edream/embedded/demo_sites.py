"""The demo's counterparts for ``make run``, children of ``edream run`` and separate processes as in production:

* the DSO side (:func:`dso_site`): the platform's USEF/UFTP gateway (``edream uftp serve``, with the demo's keys)
  and the simulated DSO talking to it (``edream uftp sim-dso``, :mod:`edream.demo.dso`);
* a prosumer site over OpenADR 2.0b (:func:`openadr_site`): the platform's VTN (``edream openadr serve``, its config
  written to the data dir) and one site's VEN (``edream openadr sim-site``, openleadr's client) standing for the
  prosumer with the controllable charger, so its flex orders also reach a real VEN as DR events.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from connectors.openadr.config import DEFAULT_PORT as VTN_PORT
from connectors.openadr.config import write_config
from edream.demo.dso import UFTP_PATH, DemoDsoConfig, gateway_env
from edream.embedded.process import ChildGroup, ChildProcess

log = logging.getLogger(__name__)
CLI = [sys.executable, "-m", "edream.cli"]
#: the demo site's VEN name and id at the VTN
SITE_VEN_NAME, SITE_VEN_ID = "demo-site", "ven-demo-site"


def dso_site(
    data_dir: Path,
    env: dict[str, str],
    gateway_port: int,
    prosumers: int,
    seed: int,
    cfg: DemoDsoConfig,
    state_dir: Path | None = None,
    congestion_points: str = "",
    timelapse: bool = False,
) -> ChildGroup:
    """The gateway on ``gateway_port``, then the demo DSO on ``cfg.port`` (stopped first). With ``congestion_points``
    (``--congestion-points`` of ``edream uftp sim-dso``) it asks for what the grid stage's congestion forecast needs,
    and with ``timelapse`` (DEMO_TIMELAPSE) also sends its timed 1-minute requests; without congestion points it
    has nothing else to ask for and sends the timed ones."""
    logs = data_dir / "logs"
    agr_url = f"http://127.0.0.1:{gateway_port}{UFTP_PATH}"
    dso_args = [
        "--agr-url",
        agr_url,
        "--port",
        str(cfg.port),
        "--prosumers",
        str(prosumers),
        "--seed",
        str(seed),
    ]
    if congestion_points:
        dso_args += ["--congestion-points", congestion_points, *(["--timed"] if timelapse else [])]
    return ChildGroup(
        "demo DSO",
        [
            ChildProcess(
                "uftp gateway",
                [*CLI, "uftp", "serve"],
                "127.0.0.1",
                gateway_port,
                logs / "uftp-gateway.log",
                {**env, **gateway_env(seed, gateway_port)},
                state_dir=state_dir,
            ),
            ChildProcess(
                "demo dso",
                [*CLI, "uftp", "sim-dso", *dso_args],
                "127.0.0.1",
                cfg.port,
                logs / "demo-dso.log",
                env,
                state_dir=state_dir,
            ),
        ],
        [gateway_port, cfg.port],
    )


def openadr_site(
    data_dir: Path, env: dict[str, str], prosumer_id: str, port: int = VTN_PORT, state_dir: Path | None = None
) -> ChildGroup:
    """The VTN on ``port`` with one VEN for ``prosumer_id``, then that site's VEN. The site's power reports are a
    device of their own, not the prosumer's net meter (the community's meter is that), hence ``net_meter=False``."""
    config = write_config(
        data_dir / "openadr-vtn.yaml",
        port=port,
        poll_seconds=5,
        report_seconds=60,
        ven_name=SITE_VEN_NAME,
        ven_id=SITE_VEN_ID,
        prosumer_id=prosumer_id,
        net_meter=False,
    )
    logs, vtn_url = data_dir / "logs", f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    return ChildGroup(
        "demo OpenADR site",
        [
            ChildProcess(
                "openadr vtn",
                [*CLI, "openadr", "serve", "-c", str(data_dir / "openadr-vtn.yaml")],
                "127.0.0.1",
                config.vtn.port,
                logs / "openadr-vtn.log",
                env,
                state_dir=state_dir,
            ),
            ChildProcess(  # no port of its own: ready once started (it registers with the VTN, retrying)
                "openadr site",
                [*CLI, "openadr", "sim-site", "--vtn-url", vtn_url, "--ven-name", SITE_VEN_NAME],
                "127.0.0.1",
                config.vtn.port,
                logs / "openadr-site.log",
                env,
                state_dir=state_dir,
            ),
        ],
        [port],
    )
