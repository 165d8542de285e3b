"""The forecast entities the vpp stage can use, from the asset registry view (``vpp.assets.v1``).

A VPP subscribes to the forecasts and baselines of the entities its members name (``forecast_entity_id``) and to
its own id (the community PORTFOLIO forecasts). The runtime gives every worker the compacted registry as a
:class:`~edream.runtime.contract.View` (raw VppAsset bytes per asset id), so the stage's re-key function drops the
forecasts and baselines of every other entity before they cross the repartition topic: with 50,000 metered
prosumers and a few VPP assets, almost all of them (measured before: vpp used 19-25 % of a core while a quarter
hour's forecasts and baselines flowed through it).

The set is a superset of what the VPPs need: every asset of the registry counts, active or not, valid or not (the
stage itself decides membership). Decoding is incremental (:class:`~edream.runtime.view_changes.ViewChanges`).
A forecast that arrives before the registry record naming its entity reached the view is dropped; the entity's
next forecast and baseline (every interval) then reach the VPP.
"""

from __future__ import annotations

from collections import Counter

from edream.runtime.contract import View
from edream.runtime.view_changes import ViewChanges
from edream.serde import Serde


class AssetEntities:
    """``view`` may be None (no registry view: every entity counts, as before the view existed)."""

    def __init__(self, view: View | None, serde: Serde):
        self.view, self.serde = view, serde
        self._changes = ViewChanges(view)
        self._named: dict[bytes, tuple[str, ...]] = {}  # asset id -> the entities it names
        self._count: Counter[str] = Counter()

    def _refresh(self) -> None:
        changes = self._changes.poll()
        for key in changes.removed:
            self._forget(key)
        for key, value in changes.changed:
            self._forget(key)
            try:
                _, rec = self.serde.decode(value)
            except Exception:  # noqa: BLE001 - an undecodable registry record names nothing (the stage says why)
                continue
            named = tuple(str(e) for e in (rec.get("forecast_entity_id"), rec.get("vpp_id")) if e)
            self._named[key] = named
            self._count.update(named)

    def _forget(self, key: bytes) -> None:
        self._count.subtract(self._named.pop(key, ()))

    def wanted(self, entity: str) -> bool:
        """Whether some asset of the registry names ``entity`` (as its forecast entity or its VPP)."""
        if self.view is None:
            return True
        self._refresh()
        return self._count[entity] > 0


class StageAssets:
    """The asset entities of one stage process, shared by its re-key functions and its processor: set when the
    runtime builds the processor from the views (before the first record); until then every entity counts."""

    def __init__(self) -> None:
        self.entities: AssetEntities | None = None

    def wanted(self, entity: str) -> bool:
        return True if self.entities is None else self.entities.wanted(entity)
