"""What the chaos suite sends: good records (that must all arrive, once) and hostile ones (that must all be refused).

Every record is a :class:`Sent`: its ``kind`` (one of :data:`KINDS`), topic, key, encoded value and the ``ident``
the accounting looks it up by (the event id of a good reading, the settlement id, the order/request id of a
business request, or the SHA-256 of the bytes of a record that must become a dead letter).

"Absurd" is defined here, independently of the platform's validators: each absurd Measurement is valid Avro but
breaks one stated rule (:data:`ABSURDITIES`), so a validator that misses a class of absurdity is caught. "Ghost
devices" are device ids no device can have (whitespace, control characters, emoji, 2,000 characters); readings of
a well-formed id nobody registered are legitimate input (the readings door has no device registry).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak

from edream.avro_samples import sample_value
from edream.measurements import power_reading
from edream.serde import Serde
from streams.flex.dsos import Dso
from streams.flex.model import Direction
from streams.flex.requests import FlexRequest, RequestSlot
from streams.flex.signing import sign_request
from streams.market.config import MarketConfig
from streams.market.market_order import OrderTerms
from streams.market.orders import EnergyType, Side
from streams.market.participants import Participant
from streams.market.signing import sign_order

READINGS = "meter.readings.raw.v1"
SETTLEMENTS = "settlement.flex.v1"
ORDERS = "market.orders.v1"
PARTICIPANTS = "market.participants.v1"
REQUESTS = "flex.requests.v1"
DSOS = "flex.dsos.v1"

GOOD_CONNECTOR = "chaos-good"
ABSURD_CONNECTOR = "chaos-absurd"  # every absurd reading's connector id starts with it
Y2100 = 4_102_444_800_000  # 2100-01-01T00:00Z
Y1900 = -2_208_988_800_000  # 1900-01-01T00:00Z
YEAR_MS = 365 * 86_400_000
QUARTER_MS = 900_000

#: kinds of records; ``good_*`` and ``canary_order`` must arrive exactly once, the others must be refused
KINDS = (
    "good_reading",
    "good_settlement",
    "canary_order",
    "random_bytes",
    "absurd_measurement",
    "wrong_contract",
    "hostile_order",
    "hostile_request",
)
GOOD_KINDS = ("good_reading", "good_settlement", "canary_order")

DSO_KEY = "0x" + keccak(text="edream-chaos/dso-1").hex()
MALLORY_KEY = "0x" + keccak(text="edream-chaos/dso-mallory").hex()
PARTICIPANT_KEYS = ["0x" + keccak(text=f"edream-chaos/participant-{i}").hex() for i in range(2)]


@dataclass(frozen=True)
class Sent:
    kind: str
    topic: str
    key: bytes | None
    value: bytes
    ident: str


def digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


class Inputs:
    """Builds every kind of record against the wall clock ``now_ms`` of the moment they are built."""

    def __init__(self, seed: int, serde: Serde | None = None):
        self.rng = random.Random(seed)
        self.serde = serde or Serde()
        self.market = MarketConfig()
        self._last_ts: dict[str, int] = {}
        self._seq = 0

    # -- good ------------------------------------------------------------------------------------------------
    def good_readings(self, n: int, now_ms: int, meters: int = 200) -> list[Sent]:
        """``n`` P_ACTIVE readings (W) of ``meters`` chaos meters at (about) ``now_ms``; ``ts`` strictly increases
        per meter, so every reading is a distinct (device, ts) and a distinct event id."""
        out = []
        for _ in range(n):
            device = f"chaos-meter-{self.rng.randrange(meters):04d}"
            ts = max(now_ms, self._last_ts.get(device, 0) + 1)
            self._last_ts[device] = ts
            self._seq += 1
            rec = power_reading(
                device,
                ts,
                round(self.rng.uniform(-5000, 9000), 1),
                seq=self._seq,
                connector_id=GOOD_CONNECTOR,
            )
            value = self.serde.encode("Measurement", rec, READINGS)
            out.append(Sent("good_reading", READINGS, device.encode(), value, rec["event_id"]))
        return out

    def good_settlements(self, n: int, window_start_ms: int, tag: str) -> list[Sent]:
        """``n`` FLEX settlements of the one-minute window starting at ``window_start_ms`` (anchored on-chain).
        A settlement's content follows from its id: asked twice for a window, the same records come again (a
        second content under one id would be a conflicting settlement, not a redelivery)."""
        out = []
        for i in range(n):
            sid = f"chaos-stl-{tag}-{window_start_ms}-{i}"
            rng = random.Random(sid)
            rec = {
                "event_id": f"evt-{sid}",
                "settlement_id": sid,
                "kind": "FLEX",
                "window_id": f"chaos-{window_start_ms}",
                "window_start": window_start_ms,
                "window_end": window_start_ms + 60_000,
                "party_id": f"chaos-prosumer-{i}",
                "reference_id": f"chaos-order-{window_start_ms}",
                "quantity_wh": rng.randrange(1, 5000),
                "amount_micro": rng.randrange(-(10**6), 10**6),
                "currency": "EUR",
                "details": json.dumps({"chaos": True, "i": i}),
                "version": 1,
                "computed_at": window_start_ms + 60_000,
            }
            value = self.serde.encode("Settlement", rec, SETTLEMENTS)
            out.append(Sent("good_settlement", SETTLEMENTS, rec["window_id"].encode(), value, sid))
        return out

    # -- registries --------------------------------------------------------------------------------------------
    def registrations(self, now_ms: int) -> list[Sent]:
        """The chaos DSO (``chaos-dso``) and two market participants, registered with their signing addresses."""
        dso = Dso(
            dso_id="chaos-dso", eth_address=Account.from_key(DSO_KEY).address, name="chaos", updated_at=now_ms
        )
        out = [
            Sent("registration", DSOS, b"chaos-dso", self.serde.encode("FlexDso", dso.to_avro(), DSOS), "")
        ]
        for i, key in enumerate(PARTICIPANT_KEYS):
            p = Participant(
                participant_id=f"chaos-P{i}",
                prosumer_id=f"chaos-prosumer-{i}",
                eth_address=Account.from_key(key).address,
                updated_at=now_ms,
            )
            value = self.serde.encode("MarketParticipant", p.to_avro(), PARTICIPANTS)
            out.append(Sent("registration", PARTICIPANTS, p.participant_id.encode(), value, ""))
        return out

    # -- market ---------------------------------------------------------------------------------------------
    def _order(
        self, i: int, now_ms: int, *, slot: int | None = None, quantity_wh: int = 1000, nonce: int = 0
    ):
        slot = slot if slot is not None else now_ms - now_ms % QUARTER_MS + 4 * QUARTER_MS
        terms = OrderTerms(
            f"chaos-P{i}",
            Account.from_key(PARTICIPANT_KEYS[i]).address,
            self.market.session_id(slot),
            Side.BID if i == 0 else Side.OFFER,
            slot,
            15,
            quantity_wh,
            100_000,
            EnergyType.ANY,
            now_ms - 1000,
            nonce,
        )
        return sign_order(terms, PARTICIPANT_KEYS[i], self.market.chain_id)

    def _order_sent(self, kind: str, order: Any) -> Sent:
        value = self.serde.encode("MarketOrder", order.to_avro(), ORDERS)
        return Sent(kind, ORDERS, order.session_id.encode(), value, order.order_id)

    def canary_order(self, now_ms: int, nonce: int) -> Sent:
        """A valid signed order for a slot an hour ahead: accepted only if no hostile order closed its gate."""
        return self._order_sent("canary_order", self._order(0, now_ms, nonce=nonce))

    def hostile_orders(self, now_ms: int) -> list[Sent]:
        """Unsigned, forged, 2100 client time, slot in 2100, 1e15 Wh and 2^63-1 Wh, negative and zero quantity."""
        base = 1_000_000 + self.rng.randrange(10**9)
        orders = [
            replace(self._order(1, now_ms, nonce=base), signature=""),
            replace(self._order(1, now_ms, nonce=base + 1), signature="0x" + "ab" * 65),
            replace(self._order(1, now_ms, nonce=base + 2), client_ts=Y2100),
            self._order(1, now_ms, nonce=base + 3, slot=Y2100),
            self._order(1, now_ms, nonce=base + 4, quantity_wh=10**15),
            self._order(1, now_ms, nonce=base + 5, quantity_wh=2**63 - 1),
            self._order(1, now_ms, nonce=base + 6, quantity_wh=-(2**63) + 1),
            self._order(1, now_ms, nonce=base + 7, quantity_wh=0),
            replace(self._order(1, now_ms, nonce=base + 8), participant_id="dso-mallory"),
        ]
        return [self._order_sent("hostile_order", o) for o in orders]

    # -- flex -----------------------------------------------------------------------------------------------
    def hostile_requests(self, now_ms: int) -> list[Sent]:
        """Unsigned, from dso-mallory (unregistered, signed with its own key), created ten years ahead, a slot
        in 2100, 1e12 kW, NaN kW, deadline in 2100."""
        tag = self.rng.randrange(10**9)
        start = now_ms - now_ms % QUARTER_MS + 2 * QUARTER_MS

        def req(n: int, **change: Any) -> FlexRequest:
            base = FlexRequest(
                request_id=f"chaos-req-{tag}-{n}",
                dso_id="chaos-dso",
                area_id="terni-1",
                direction=Direction.REDUCE,
                slots=tuple(RequestSlot(start + k * QUARTER_MS, 5.0) for k in range(2)),
                reward_micro_per_kwh=250_000,
                deadline=start - 60_000,
                created_at=now_ms - 1000,
            )
            return replace(base, **change)

        signed = [
            sign_request(req(1, dso_id="dso-mallory"), MALLORY_KEY),
            sign_request(req(2, created_at=now_ms + 10 * YEAR_MS), DSO_KEY),
            sign_request(req(3, slots=(RequestSlot(Y2100, 5.0),)), DSO_KEY),
            sign_request(req(4, slots=(RequestSlot(start, 1e12),)), DSO_KEY),
            sign_request(req(5, slots=(RequestSlot(start, math.nan),)), DSO_KEY),
            sign_request(req(6, deadline=Y2100), DSO_KEY),
            sign_request(req(7, dso_id="chaos-dso"), MALLORY_KEY),  # forged: mallory signs as chaos-dso
        ]
        unsigned = [req(0), req(8, dso_id="dso-mallory")]
        return [
            Sent(
                "hostile_request",
                REQUESTS,
                r.area_id.encode(),
                self.serde.encode("FlexRequest", r.to_avro()),
                r.request_id,
            )
            for r in unsigned + signed
        ]

    # -- garbage --------------------------------------------------------------------------------------------
    def random_bytes(self, n: int) -> list[Sent]:
        """``n`` random byte strings of 1..512 bytes on the readings topic (some start with an Avro marker)."""
        out = []
        for i in range(n):
            head = self.rng.choice([b"", b"", b"\xc3\x01", b"\x00\x00\x00\x00\x01"])
            value = head + self.rng.randbytes(self.rng.randrange(1, 512))
            out.append(Sent("random_bytes", READINGS, str(i).encode(), value, digest(value)))
        return out

    def absurd_measurements(self, n: int, now_ms: int) -> list[Sent]:
        """``n`` valid-Avro Measurements, each breaking one rule of :data:`ABSURDITIES` (round robin)."""
        out = []
        for i in range(n):
            name, spoil = ABSURDITIES[i % len(ABSURDITIES)]
            rec = power_reading(
                f"chaos-ghost-{i}", now_ms - self.rng.randrange(60_000), 1000.0, connector_id=ABSURD_CONNECTOR
            )
            rec["event_id"] = f"{ABSURD_CONNECTOR}/{i}/{name}"
            rec = spoil(rec, self.rng)
            value = self.serde.encode("Measurement", rec, READINGS)
            out.append(Sent("absurd_measurement", READINGS, None, value, digest(value)))
        return out

    def wrong_contract(self, n: int, avro_dir: Path) -> list[Sent]:
        """``n`` valid records of other contracts (every schema in ``avro_dir`` but Measurement) on the readings
        topic, each distinct (sample values with a different seed)."""
        names = sorted(p.stem for p in avro_dir.glob("*.avsc") if p.stem != "Measurement")
        schemas = {name: json.loads((avro_dir / f"{name}.avsc").read_text()) for name in names}
        out = []
        for i in range(n):
            name = names[i % len(names)]
            rec = sample_value(schemas[name], seed=i)
            value = self.serde.encode(name, rec, READINGS)
            out.append(Sent("wrong_contract", READINGS, None, value, digest(value)))
        return out


def _set(**fields: Any) -> Callable[[dict, random.Random], dict]:
    def spoil(rec: dict, rng: random.Random) -> dict:
        return {**rec, **fields}

    return spoil


def _ghost_id(rec: dict, rng: random.Random) -> dict:
    return {**rec, "device_id": rng.choice(["ghost device", "ghost\x00dev", "\U0001f47b", "g\nhost", " "])}


#: (name, how to spoil a good P_ACTIVE reading) - every one breaks a rule any reading of a real device keeps
ABSURDITIES: tuple[tuple[str, Callable[[dict, random.Random], dict]], ...] = (
    ("nan", _set(value=math.nan)),
    ("inf", _set(value=math.inf)),
    ("neg-inf", _set(value=-math.inf)),
    ("ts-2100", _set(ts=Y2100)),
    ("ts-1900", _set(ts=Y1900)),
    ("ts-10y-ahead", lambda r, rng: {**r, "ts": r["ts"] + 10 * YEAR_MS}),
    ("furlongs", _set(unit="furlongs")),
    ("huge-device-id", _set(device_id="d" * 2000)),
    ("huge-event-id", lambda r, rng: {**r, "event_id": r["event_id"] + "e" * 2000}),
    ("huge-connector-id", _set(connector_id=ABSURD_CONNECTOR + "c" * 2000)),
    ("ghost-device", _ghost_id),
    ("1e300-watts", _set(value=1e300)),
    ("1e12-watts", _set(value=1e12)),
    ("null-value", _set(value=None)),
    ("empty-device", _set(device_id="")),
    ("frequency-1e9", _set(quantity="FREQUENCY", unit="Hz", value=1e9)),
    ("soc-250", _set(quantity="SOC", unit="%", value=250.0)),
    ("negative-apparent", _set(quantity="S_APPARENT", unit="VA", value=-5000.0)),
    ("voltage-in-watts", _set(quantity="VOLTAGE_LN", unit="W", value=230.0)),
    ("huge-prosumer-id", _set(prosumer_id="p" * 2000)),
)


def chunks(items: list[Sent], size: int) -> Iterator[list[Sent]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
