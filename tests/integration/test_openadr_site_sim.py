"""The simulated site (`edream openadr sim-site`, openleadr's VEN client) against the platform's VTN on the real
broker, as a demo would start them: the VTN's config written by ``write_config``, the site as a CLI subprocess.

The site is started before the VTN listens and registers once it does (prints its ready line with the ven_id the
config gave it); a FlexOrder for its prosumer reaches it as a DR event (its log names it), its opt-in is a
DrEventResponse OPT_IN on Kafka, and its power report a valid Measurement of its own device (``<ven_id>.site-ems``,
not the prosumer's meter: ``net_meter: false`` leaves prosumer_id out). SIGTERM stops it cleanly (exit 0)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
from flex_stages import Follower, wait_until
from openadr_support import TOPICS, LoopThread, flex_order, next_day_slot, now_ms, publish_order

from connectors.openadr.config import load_config, write_config
from connectors.openadr.vtn import OpenAdrVtn
from edream.embedded.process import free_port
from edream.serde import Serde

pytestmark = [pytest.mark.integration]


class _Output:
    """A subprocess's merged stdout/stderr lines, read in a thread."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(proc.stdout), daemon=True).start()

    def find(self, pred) -> str | None:
        return next((line for line in list(self.lines) if pred(line)), None)


@pytest.mark.timeout(90)
def test_sim_site_registers_opts_in_and_reports_its_own_device(
    kafka_bootstrap, unique_topic, test_settings, tmp_path
):
    names = {c: unique_topic(c, 2) for c in TOPICS[:3]}
    serde = Serde(test_settings)
    port = free_port()
    path = tmp_path / "vtn.yaml"
    write_config(
        path, port=port, poll_seconds=0.5, report_seconds=1, ven_name="site-7", ven_id="ven-7",
        prosumer_id="prosumer-007", net_meter=False,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    site = subprocess.Popen(
        [sys.executable, "-m", "edream.cli", "openadr", "sim-site", "--vtn-url", url, "--ven-name", "site-7"]
        + ["--base-kw", "1.5", "--evening-kw", "0", "--sampling-seconds", "1", "--register-timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    out = _Output(site)
    follow = {c: Follower(kafka_bootstrap, names[c], serde) for c in TOPICS[1:3]}
    vtn = OpenAdrVtn(load_config(path), {"bootstrap.servers": kafka_bootstrap}, serde, names, now_ms)
    loop = LoopThread()
    slot0 = next_day_slot()
    try:
        wait_until(
            lambda: out.find(lambda line: "Could not connect" in line), 30, "a first, failed registration"
        )
        loop.run(vtn.start())
        wait_until(lambda: out.find(lambda line: line.startswith("{")), 30, "the site's ready line")
        ready = json.loads(out.find(lambda line: line.startswith("{")))
        assert (ready["ven_name"], ready["ven_id"], ready["vtn_url"]) == ("site-7", "ven-7", url)

        order = flex_order("order-7", [("prosumer-007", slot0, 2.0), ("prosumer-008", slot0, 1.0)])
        publish_order(kafka_bootstrap, serde, names["flex.orders.v1"], order)
        [opted] = follow["flex.dr.responses.v1"].wait(1, 20)
        readings = follow["meter.readings.raw.v1"]
        wait_until(lambda: readings.poll() >= 1, 20, "a reading of the site")

        site.send_signal(signal.SIGTERM)
        assert site.wait(15) == 0, "".join(out.lines[-30:])
    finally:
        if site.poll() is None:
            site.kill()
            site.wait(5)
        loop.run(vtn.stop())
        for f in follow.values():
            f.close()

    assert (opted["dr_event_id"], opted["prosumer_id"], opted["party_id"], opted["opt"]) == (
        "order-7~r1~prosumer-007",
        "prosumer-007",
        "ven-7",
        "OPT_IN",
    )
    logged = out.find(lambda line: "event order-7~r1~prosumer-007" in line)
    assert logged is not None and "-> optIn" in logged and "LOAD_DISPATCH/delta -2 kW" in logged, logged
    reading = readings.records[0]
    assert (reading["device_id"], reading["prosumer_id"], reading["quantity"], reading["unit"]) == (
        "ven-7.site-ems",
        None,
        "P_ACTIVE",
        "W",
    )
    assert reading["value"] == 1500.0 and abs(reading["ts"] - now_ms()) < 60_000  # the event is a day ahead
