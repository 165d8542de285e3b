"""How the interval stage keeps its state in one partition's key/value store: small keys, no pickle.

Keys (``<dev>``: device id; ``<q>``: quantity; times UTC epoch ms):

* ``partition`` - the partition's event-time clock and index of open windows, JSON
  ``{"watermark", "max_event_ts", "open": {window end: head device}, "tick_ms", "settling": {device: tick}}``
  (:class:`PartitionClock`);
* ``m:<dev>`` - one meter, JSON (:class:`MeterState`): its owner, which sample chunks it has, its open windows,
  its settling corrections and the version and signature of each window emitted within the correction horizon;
* ``s:<dev>:<q>:<window start>`` - the samples of one quantity inside one window, packed little-endian
  ``(int64 ts, float64 value)`` pairs in ascending time (:class:`SampleChunks`). The next reading in time is
  appended to the bytes without decoding them.

Open windows of a partition form one linked list per window end: ``open[end]`` names the first meter, each
meter's ``open[window start]`` the next one (None ends the list). Opening a window is O(1), closing all windows
of an end walks exactly the meters that have one, so neither a reading nor a tick ever scans all state.

Every value is data only (JSON, packed numbers): a corrupt or hostile changelog cannot execute code.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from dataclasses import dataclass, field

import orjson

from edream.runtime.contract import KeyValueState

PARTITION_KEY = "partition"
_PAIR = struct.Struct("<qd")
_NO_TIME = -(2**62)


def meter_key(device_id: str) -> str:
    return f"m:{device_id}"


def chunk_key(device_id: str, quantity: str, start_ms: int) -> str:
    return f"s:{device_id}:{quantity}:{start_ms}"


@dataclass(slots=True)
class PartitionClock:
    """``watermark``: windows ending at or before it are closed (UTC epoch ms); ``max_event_ts``: latest accepted
    event time; ``open``: window end -> first meter of the list of meters with that window open; ``tick_ms``: the
    latest wall-clock tick (UTC epoch ms); ``settling``: the meters with corrections not emitted yet -> ``tick_ms``
    at their last reading that changed a closed window as last looked at (the meter's own ``touched`` is current:
    this key is written when a meter starts or stops settling and by ticks, not at every reading). State written
    before ``tick_ms`` and ``settling`` existed loads with no meter settling."""

    watermark: int = _NO_TIME
    max_event_ts: int = _NO_TIME
    open: dict[int, str] = field(default_factory=dict)
    tick_ms: int = _NO_TIME
    settling: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, state: KeyValueState) -> PartitionClock:
        raw = state.get(PARTITION_KEY)
        if raw is None:
            return cls()
        d = orjson.loads(raw)
        open_ = {int(k): v for k, v in d["open"].items()}
        return cls(
            d["watermark"], d["max_event_ts"], open_, d.get("tick_ms", _NO_TIME), d.get("settling", {})
        )

    def save(self, state: KeyValueState) -> None:
        body = {
            "watermark": self.watermark,
            "max_event_ts": self.max_event_ts,
            "open": self.open,
            "tick_ms": self.tick_ms,
            "settling": self.settling,
        }
        state.set(PARTITION_KEY, orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS))


@dataclass(slots=True)
class MeterState:
    """One meter: ``prosumer_id`` (owner of its intervals); ``chunks``: quantity -> ascending window starts that
    hold samples; ``open``: open window start -> next meter in that window end's list (None: last);
    ``emitted``: window start -> [version, signature] of its last emitted record; ``settling``: starts of closed
    windows changed by readings and not re-emitted yet; ``touched``: the partition's ``tick_ms`` at the last of
    those readings."""

    device_id: str
    prosumer_id: str
    chunks: dict[str, list[int]] = field(default_factory=dict)
    open: dict[int, str | None] = field(default_factory=dict)
    emitted: dict[int, list] = field(default_factory=dict)
    settling: list[int] = field(default_factory=list)
    touched: int = _NO_TIME

    @classmethod
    def load(cls, state: KeyValueState, device_id: str) -> MeterState | None:
        raw = state.get(meter_key(device_id))
        if raw is None:
            return None
        d = orjson.loads(raw)
        return cls(
            device_id,
            d["prosumer_id"],
            d["chunks"],
            {int(k): v for k, v in d["open"].items()},
            {int(k): v for k, v in d["emitted"].items()},
            d.get("settling", []),
            d.get("touched", _NO_TIME),
        )

    def save(self, state: KeyValueState) -> None:
        body = {
            "prosumer_id": self.prosumer_id,
            "chunks": self.chunks,
            "open": self.open,
            "emitted": self.emitted,
            "settling": self.settling,
            "touched": self.touched,
        }
        state.set(meter_key(self.device_id), orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS))


def _unpack(blob: bytes) -> tuple[list[int], list[float]]:
    pairs = list(_PAIR.iter_unpack(blob))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _pack(ts: list[int], vals: list[float]) -> bytes:
    return b"".join(_PAIR.pack(t, v) for t, v in zip(ts, vals, strict=True))


class SampleChunks:
    """The samples of a meter's quantities, one chunk per window (``chunk_ms`` = the interval length)."""

    def __init__(self, state: KeyValueState, chunk_ms: int):
        self.state, self.chunk_ms = state, chunk_ms

    def _last_before(self, meter: MeterState, q: str, starts: list[int], i: int) -> int | None:
        """Time of the last sample of chunk ``starts[i - 1]`` (None when ``i`` is the first chunk)."""
        if i == 0:
            return None
        blob = self.state.get(chunk_key(meter.device_id, q, starts[i - 1])) or b""
        return _PAIR.unpack_from(blob, len(blob) - _PAIR.size)[0]

    def _first_after(self, meter: MeterState, q: str, starts: list[int], i: int) -> int | None:
        """Time of the first sample of chunk ``starts[i + 1]`` (None when ``i`` is the last chunk)."""
        if i + 1 >= len(starts):
            return None
        return _PAIR.unpack_from(self.state.get(chunk_key(meter.device_id, q, starts[i + 1])) or b"", 0)[0]

    def put(self, meter: MeterState, q: str, t: int, v: float) -> tuple[bool, int | None, int | None]:
        """Insert or replace the sample ``(t, v)``; returns (changed, previous ts, next ts). A new chunk changes
        ``meter.chunks`` (the caller saves the meter)."""
        c = t - t % self.chunk_ms
        starts = meter.chunks.setdefault(q, [])
        i = bisect_left(starts, c)
        key = chunk_key(meter.device_id, q, c)
        if i == len(starts) or starts[i] != c:  # the first sample of this chunk
            starts.insert(i, c)
            self.state.set(key, _PAIR.pack(t, v))
            return True, self._last_before(meter, q, starts, i), self._first_after(meter, q, starts, i)
        blob = self.state.get(key) or b""
        last_t = _PAIR.unpack_from(blob, len(blob) - _PAIR.size)[0]
        if t > last_t:  # the next sample in time: append without decoding
            self.state.set(key, blob + _PAIR.pack(t, v))
            return True, last_t, self._first_after(meter, q, starts, i)
        ts, vals = _unpack(blob)
        j = bisect_left(ts, t)
        if j < len(ts) and ts[j] == t:
            if vals[j] == v:
                return False, None, None
            vals[j] = v
        else:
            ts.insert(j, t)
            vals.insert(j, v)
        self.state.set(key, _pack(ts, vals))
        prev = ts[j - 1] if j > 0 else self._last_before(meter, q, starts, i)
        nxt = ts[j + 1] if j + 1 < len(ts) else self._first_after(meter, q, starts, i)
        return True, prev, nxt

    def around(self, meter: MeterState, ws: int) -> dict[str, tuple[list[int], list[float]]]:
        """Per quantity, the samples inside window ``[ws, ws + chunk_ms)`` and the neighbour on each side."""
        out = {}
        for q, starts in meter.chunks.items():
            i = bisect_left(starts, ws)
            inside = i < len(starts) and starts[i] == ws
            ts: list[int] = []
            vals: list[float] = []
            if i > 0:
                blob = self.state.get(chunk_key(meter.device_id, q, starts[i - 1])) or b""
                t, v = _PAIR.unpack_from(blob, len(blob) - _PAIR.size)
                ts.append(t)
                vals.append(v)
            if inside:
                a, b = _unpack(self.state.get(chunk_key(meter.device_id, q, ws)) or b"")
                ts += a
                vals += b
            j = i + 1 if inside else i
            if j < len(starts):
                t, v = _PAIR.unpack_from(self.state.get(chunk_key(meter.device_id, q, starts[j])) or b"", 0)
                ts.append(t)
                vals.append(v)
            if ts:
                out[q] = (ts, vals)
        return out

    def drop_before(self, meter: MeterState, keep_from: int) -> bool:
        """Delete the chunks ending at or before ``keep_from``; True when any was deleted."""
        dropped = False
        for q, starts in meter.chunks.items():
            n = bisect_left(starts, keep_from - self.chunk_ms + 1)
            for c in starts[:n]:
                self.state.delete(chunk_key(meter.device_id, q, c))
            if n:
                del starts[:n]
                dropped = True
        return dropped
