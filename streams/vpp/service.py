"""Thin request/answer wiring: a VppCapabilityRequest record in, a VppCapability record out.

The handler is pure (portfolio state is passed in), so a Faust agent, a plain consumer loop or the CLI can call
it. The answer's event id derives from the request id, so a redelivered request yields the same answer.
"""

from __future__ import annotations

from typing import Any

from streams.vpp.assets import Asset
from streams.vpp.capability import evaluate_capability
from streams.vpp.events import capability_record, request_from_record


def answer_capability_request(record: dict[str, Any], portfolio: list[Asset]) -> dict[str, Any]:
    """Evaluate one request against the portfolio; ``computed_at`` = the request's ``requested_at`` (event
    time), which keeps the answer deterministic under replays."""
    req = request_from_record(record)
    result = evaluate_capability(portfolio, req)
    return capability_record(result, record["vpp_id"], record["requested_at"])
