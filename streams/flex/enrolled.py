"""The prosumer registry of a runtime stage, kept in step with the ``flex.enrolments.v1`` registry view.

The runtime gives every worker the compacted enrolment topic as a :class:`~edream.runtime.contract.View` (raw
FlexEnrolment bytes per prosumer id). :class:`EnrolledRegistry` turns it into a
:class:`~streams.flex.enrolment.Registry` of *valid* records: a record whose terms hash does not match or whose
values are out of bounds (:func:`streams.validation.flex.check_enrolment`) is not enrolled (the stage that reads
the topic as an input turns it into a Rejection). Decoding is incremental: only values whose bytes changed since
the last look are decoded, and only when the view's ``version`` moved, so a lookup per reading costs a dict get.
"""

from __future__ import annotations

from edream.runtime.contract import View
from edream.runtime.view_changes import ViewChanges
from edream.serde import Serde
from streams.flex.enrolment import EnrolmentError, ProsumerRecord, Registry, record_from_event
from streams.validation.fields import describe
from streams.validation.flex import check_enrolment


def enrolment_from_bytes(value: bytes, serde: Serde) -> ProsumerRecord:
    """The valid ProsumerRecord of a FlexEnrolment message; raises EnrolmentError naming the problem."""
    name, rec = serde.decode(value)
    if name != "FlexEnrolment":
        raise EnrolmentError(f"expected a FlexEnrolment, got {name}")
    record = record_from_event(rec)
    if errors := check_enrolment(record):
        raise EnrolmentError(describe(errors))
    return record


class EnrolledRegistry:
    """See module doc. ``view`` may be None (no enrolment view: nobody is enrolled)."""

    def __init__(self, view: View | None, serde: Serde):
        self.view, self.serde = view, serde
        self.registry = Registry()
        self._changes = ViewChanges(view)

    def refresh(self) -> Registry:
        """The registry as of the view's latest records."""
        changes = self._changes.poll()
        for key in changes.removed:  # tombstoned
            self.registry.records.pop(key.decode(), None)
        for key, value in changes.changed:
            try:
                record = enrolment_from_bytes(value, self.serde)
            except Exception:  # noqa: BLE001 - an invalid enrolment enrols nobody (its Rejection is elsewhere)
                self.registry.records.pop(key.decode(), None)
                continue
            self.registry.upsert(record)
        return self.registry

    def get(self, prosumer_id: str) -> ProsumerRecord | None:
        return self.refresh().get(prosumer_id)


class StageEnrolment:
    """The enrolled registry of one stage process, shared by its re-key functions and its processor: set when the
    runtime builds the processor from the views (before the first record); until then nobody is enrolled."""

    def __init__(self) -> None:
        self.enrolled: EnrolledRegistry | None = None

    def get(self, prosumer_id: str) -> ProsumerRecord | None:
        return None if self.enrolled is None else self.enrolled.get(prosumer_id)

    def area_of(self, prosumer_id: str) -> str | None:
        rec = self.get(prosumer_id)
        return None if rec is None else rec.area_id
