"""A fleet of simulated SMX gateways publishing Wally-A readings on MQTT (QoS 1) in the T77 payload format:
topic ``<gateway id>/SMX/``, zero-padded string values with ``k`` suffixes, energies in kWh, ``.SERVER_TIME``
in UTC and ``.REQUEST_TIME`` in local time, every ``interval_s`` (5 s, as the SMX transmits)."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from connectors.models import Phase, Quantity, now_ms
from tools.sim.devices import household_values
from tools.sim.profiles import Household

EXAMPLE = Path(__file__).parent / "spec_examples" / "smx_t77.json"
ROME = ZoneInfo("Europe/Rome")


@cache
def example_payload() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def fmt(value: float, width: int = 7, decimals: int = 3) -> str:
    """SMX style: zero-padded, ``k`` suffix from 1000 (``4280`` -> ``"004.280k"``)."""
    if abs(value) >= 1000:
        return f"{value / 1000:0{width}.{decimals}f}k"
    return f"{value:0{width}.{decimals}f}"


def gateway_id(i: int) -> str:
    return f"BBB{6038 + i:04d}"


def smx_payload(h: Household, t_ms: int) -> dict[str, Any]:
    """The T77 example payload with this household's values at ``t_ms`` in place of the example's."""
    v = household_values(h, t_ms)
    p = copy.deepcopy(example_payload())
    net = v[(Quantity.P_ACTIVE, Phase.TOTAL)]
    q = v[(Quantity.Q_REACTIVE, Phase.TOTAL)]
    volt = v[(Quantity.VOLTAGE_LN, Phase.L1)]
    split = (0.4, 0.25, 0.35)
    dt = datetime.fromtimestamp(t_ms / 1000, UTC)
    p[".SERVER_TIME"]["value"] = dt.strftime("%Y-%m-%d %H:%M:%S")
    p[".REQUEST_TIME"]["value"] = dt.astimezone(ROME).strftime("%Y-%m-%d %H:%M:%S")
    for k, (ph, share) in enumerate(zip(("L1", "L2", "L3"), split, strict=True)):
        s_ph = abs(complex(net * share, q * share))
        p[f"Active Power Phase {ph}"]["value"] = fmt(net * share)
        p[f"Apparent Power Phase {ph}"]["value"] = fmt(s_ph)
        p[f"Fundamental Reactive Power Phase {ph}"]["value"] = fmt(q * share)
        p[f"Rms Voltage {ph}-N"]["value"] = fmt(volt + k * 0.4)
        p[f"Rms Current {ph}-N"]["value"] = fmt(s_ph / (volt + k * 0.4))
    p["Active Power 3-Phase"]["value"] = fmt(net)
    p["Apparent Power 3-Phase"]["value"] = fmt(abs(complex(net, q)))
    p["Fundamental Reactive Power 3-Phase"]["value"] = fmt(q)
    p["PF 3-Phase"]["value"] = f"{abs(net) / max(abs(complex(net, q)), 1e-9):.3f}"
    p["Frequency"]["value"] = fmt(v[(Quantity.FREQUENCY, Phase.TOTAL)])
    p["Received Active Energy"]["value"] = f"{v[(Quantity.E_IMPORT, Phase.TOTAL)] / 1000:011.4f}"
    p["Delivered Active Energy"]["value"] = f"{v[(Quantity.E_EXPORT, Phase.TOTAL)] / 1000:011.4f}"
    for ll, (a, b) in {"L1-L2": (0, 1), "L2-L3": (1, 2), "L3-L1": (2, 0)}.items():
        p[f"Rms Voltage {ll}"]["value"] = fmt((volt + 0.2 * (a + b)) * 3**0.5)
    return p


class SmxPublisherFleet:
    """``n`` gateways on one paho client; ``start()`` publishes every ``interval_s`` on a thread."""

    def __init__(self, host: str, port: int, n: int, interval_s: float = 5.0, seed: int = 0, qos: int = 1):
        self.n, self.interval_s, self.qos = n, interval_s, qos
        self.homes = [Household.make(i, seed) for i in range(n)]
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"smx-fleet-{seed}-{time.time_ns()}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()
        self.published = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish_round(self, t_ms: int | None = None) -> None:
        t = now_ms() if t_ms is None else t_ms
        for i, h in enumerate(self.homes):
            body = json.dumps(smx_payload(h, t)).encode()
            self.client.publish(f"{gateway_id(i)}/SMX/", body, qos=self.qos)
            self.published += 1

    def publish_raw(self, topic: str, payload: bytes | str) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=self.qos)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.publish_round()
            next_t += self.interval_s
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def start(self) -> SmxPublisherFleet:
        self._thread = threading.Thread(target=self._run, name="smx-fleet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.client.loop_stop()
        self.client.disconnect()
