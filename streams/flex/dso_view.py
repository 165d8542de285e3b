"""The DSO registry of a runtime stage, kept in step with the ``flex.dsos.v1`` registry view.

Every worker of the area desk reads the compacted DSO topic whole (:class:`~edream.runtime.contract.View`, raw
FlexDso bytes per dso id). :class:`DsoView` applies each value whose bytes changed to a
:class:`~streams.flex.dsos.DsoRegistry` (so an older record cannot re-activate a revoked DSO, as on the topic), and
only when the view's ``version`` moved. A malformed record registers nobody and is logged with the reason (the
view has no dead-letter path; its DSO stays unknown, so its requests are rejected as UNKNOWN_DSO).
"""

from __future__ import annotations

import logging

from edream.runtime.contract import View
from edream.runtime.view_changes import ViewChanges
from edream.serde import Serde
from streams.flex.dsos import DsoRegistry, DsoRegistryError, dso_from_record

log = logging.getLogger(__name__)


class DsoView:
    """See module doc. ``view`` may be None (no DSO view: every request is from an unknown DSO)."""

    def __init__(self, view: View | None, serde: Serde):
        self.view, self.serde = view, serde
        self.registry = DsoRegistry()
        self._changes = ViewChanges(view)

    def refresh(self) -> DsoRegistry:
        changes = self._changes.poll()
        for key in changes.removed:  # tombstoned: the DSO is gone
            self.registry._by_id.pop(key.decode(), None)  # noqa: SLF001 - the registry's own record
        for key, value in changes.changed:
            try:
                name, rec = self.serde.decode(value)
                if name != "FlexDso":
                    raise DsoRegistryError(f"expected a FlexDso, got {name}")
                self.registry.upsert(dso_from_record(rec))
            except Exception as exc:  # noqa: BLE001 - a bad registry record registers nobody
                log.warning("flex.dsos.v1 %r ignored: %s", key, exc)
        return self.registry
