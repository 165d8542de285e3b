"""The market config's optional ``network`` section: congestion points with capacities and the participants' zones.

::

    network:
      congestion_points:
        - {id: demo-community/transformer, import_kw: 40, export_kw: 25}
        - {id: demo-community/feeder-1, import_kw: 15, export_kw: 10}
      participants:
        - {participant_id: P0, congestion_points: [demo-community/transformer, demo-community/feeder-1]}
        - {participant_id: P1, congestion_points: [demo-community/transformer]}

``import_kw``/``export_kw``: the headroom the DSO leaves the P2P market's net flow through the point (kW, held
over the whole slot, so a 15-min slot has ``kW x 250`` Wh); a participant lists every congestion point upstream of
its connection (the point ids of the grid mapping, ``streams/grid/config/*.yaml``); participants not listed are
unconstrained. Zones must be nested or disjoint (a radial grid). Without the section the market clears as before.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.market.network_clearing import CongestionLimit, Network, NetworkClearingError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CongestionPointCapacity(_Strict):
    """A congestion point's capacity for the market's net flow, kW (into its zone: import, out of it: export)."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[^+]+$")
    import_kw: float = Field(ge=0, allow_inf_nan=False)
    export_kw: float = Field(ge=0, allow_inf_nan=False)


class ParticipantZone(_Strict):
    """A market participant and the congestion points upstream of its connection."""

    participant_id: str = Field(min_length=1, max_length=128)
    congestion_points: list[str] = Field(min_length=1)


class NetworkConfig(_Strict):
    """The ``network`` section; validated as a whole (duplicates, unknown points, non-nested zones)."""

    congestion_points: list[CongestionPointCapacity] = Field(min_length=1)
    participants: list[ParticipantZone] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> NetworkConfig:
        seen: dict[str, int] = {}
        for i, cp in enumerate(self.congestion_points):
            if cp.id in seen:
                raise ValueError(
                    f"congestion_points[{i}] {cp.id!r}: field 'id': defined twice (first at [{seen[cp.id]}])"
                )
            seen[cp.id] = i
        owners: dict[str, int] = {}
        for i, p in enumerate(self.participants):
            where = f"participants[{i}] {p.participant_id!r}"
            if p.participant_id in owners:
                raise ValueError(
                    f"{where}: field 'participant_id': listed twice (first at [{owners[p.participant_id]}])"
                )
            owners[p.participant_id] = i
            if unknown := sorted(set(p.congestion_points) - set(seen)):
                raise ValueError(
                    f"{where}: field 'congestion_points': unknown congestion point {unknown[0]!r}"
                )
        try:
            self.for_slot(15 * 60_000)
        except NetworkClearingError as exc:
            raise ValueError(f"congestion_points: {exc}") from None
        return self

    def for_slot(self, slot_ms: int) -> Network:
        """The limits of one slot of ``slot_ms`` (UTC ms): kW held over the slot, floored to whole Wh."""
        return Network(
            tuple(
                CongestionLimit(
                    cp.id, int(cp.import_kw * slot_ms // 3600), int(cp.export_kw * slot_ms // 3600)
                )
                for cp in self.congestion_points
            ),
            {p.participant_id: frozenset(p.congestion_points) for p in self.participants},
        )
