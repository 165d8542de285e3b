"""Validation at every door: one module per inbound contract, checked before any state changes.

Each contract module returns the record's :class:`~streams.validation.fields.FieldError` s (field, code, reason;
empty = valid) against :class:`~streams.validation.limits.Limits` (from the ``VALIDATION_*`` settings) and the
wall clock. The processors call them at their entry points: an invalid reading is dead-lettered with the reason,
a refused business request becomes a Rejection event, and neither advances a clock (market gate, flex slot
timer, verification watermark).

- :mod:`~streams.validation.measurement`: ``Measurement`` readings;
- :mod:`~streams.validation.flex`: ``FlexRequest`` and ``FlexEnrolment`` records;
- :mod:`~streams.validation.market`: ``MarketOrder`` and its arrival time;
- :mod:`~streams.validation.vpp`: ``VppCapabilityRequest`` (``VppAsset`` is validated by
  :class:`streams.vpp.registry.AssetSpec`).
"""

from streams.validation.fields import FieldError, describe
from streams.validation.limits import Limits, current_limits

__all__ = ["FieldError", "Limits", "current_limits", "describe"]
