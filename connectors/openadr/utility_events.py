"""A utility VTN's DR event -> a ``FlexRequest`` for the flex desk (pure): the platform as VEN of a utility.

Signals understood: ``LOAD_DISPATCH`` of type ``delta`` (the change of net consumption asked for, in the signal's
``powerReal`` unit and scale, kW when it gives none; negative = consume less) and ``SIMPLE`` levels (0-3; level
``n`` asks a reduction of ``simple_levels_kw[n-1]`` kW, level 0 nothing). Each interval must last a whole number of
``slot_minutes`` and becomes that many slots of the same kW; 0 kW slots are left out. Every non-zero slot of an
event must point the same way (all reductions or all increases), else the event is refused.

``request_id`` is deterministic, ``oadr~<dso_id>~<event_id>~m<modification_number>`` (the utility's id on
``flex.dsos.v1``): a repeated event gives the
same request (the desk refuses the replay), a modified one a new request. The offer deadline is the event's start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.openadr.telemetry import SCALES
from streams.flex.model import Direction
from streams.flex.requests import FlexRequest, RequestSlot


class EventRefused(ValueError):
    """An event the platform cannot turn into a flex request; the message says why."""


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _kw_factor(signal: Mapping[str, Any]) -> float:
    measurement = signal.get("measurement") or {}
    unit, scale = measurement.get("unit"), measurement.get("scale")
    if not measurement:
        return 1.0
    if unit != "W" or scale not in SCALES:
        raise EventRefused(f"LOAD_DISPATCH in {unit!r} (scale {scale!r}) is not a power in W")
    return SCALES[scale] / 1000.0


def _signal_kw(
    signal: Mapping[str, Any], simple_levels_kw: Sequence[float]
) -> list[tuple[datetime, timedelta, float]]:
    """(start, duration, kW change) per interval of one understood signal."""
    name, kind = signal.get("signal_name"), signal.get("signal_type")
    out = []
    for i in signal.get("intervals") or []:
        payload = float(i["signal_payload"])
        if name == "LOAD_DISPATCH" and kind == "delta":
            kw = payload * _kw_factor(signal)
        elif name == "SIMPLE" and kind == "level":
            level = int(payload)
            if level != payload or not 0 <= level <= len(simple_levels_kw):
                raise EventRefused(f"SIMPLE level {payload} is not one of 0..{len(simple_levels_kw)}")
            kw = -simple_levels_kw[level - 1] if level else 0.0
        else:
            raise EventRefused(
                f"signal {name} ({kind}) is not understood: LOAD_DISPATCH delta or SIMPLE level"
            )
        out.append((i["dtstart"], i["duration"], kw))
    return out


def request_from_event(
    event: Mapping[str, Any],
    dso_id: str,
    area_id: str,
    now_ms: int,
    slot_minutes: int = 15,
    simple_levels_kw: Sequence[float] = (),
    reward_micro_per_kwh: int = 0,
) -> FlexRequest:
    """The unsigned FlexRequest of an event as openleadr's VEN hands it over (a dict). ``now_ms``: UTC epoch ms,
    its ``created_at``. Raises :class:`EventRefused`."""
    descriptor = event["event_descriptor"]
    signals = [
        s for s in event.get("event_signals") or [] if s.get("signal_name") in ("LOAD_DISPATCH", "SIMPLE")
    ]
    if len(signals) != 1:
        raise EventRefused(f"needs exactly one LOAD_DISPATCH or SIMPLE signal, has {len(signals)}")
    step = timedelta(minutes=slot_minutes)
    slots: list[RequestSlot] = []
    for start, duration, kw in _signal_kw(signals[0], simple_levels_kw):
        if duration <= timedelta(0) or duration % step:
            raise EventRefused(f"interval of {duration} is not a whole number of {slot_minutes}-minute slots")
        if kw != 0.0:
            slots += [RequestSlot(_ms(start + n * step), kw) for n in range(duration // step)]
    if not slots:
        raise EventRefused("no interval asks for a change")
    if len({s.kw > 0 for s in slots}) > 1:
        raise EventRefused("mixes reductions and increases")
    return FlexRequest(
        request_id=f"oadr~{dso_id}~{descriptor['event_id']}~m{int(descriptor.get('modification_number') or 0)}",
        dso_id=dso_id,
        area_id=area_id,
        direction=Direction.INCREASE if slots[0].kw > 0 else Direction.REDUCE,
        slots=tuple(RequestSlot(s.slot_start, round(abs(s.kw), 6)) for s in slots),
        reward_micro_per_kwh=reward_micro_per_kwh,
        deadline=min(s.slot_start for s in slots),
        created_at=now_ms,
        slot_minutes=slot_minutes,
    )
