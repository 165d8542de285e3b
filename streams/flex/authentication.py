"""Who sent a DSO flexibility request: the request must be signed (:mod:`streams.flex.signing`) by the key of
the address registered for its ``dso_id`` (:mod:`streams.flex.dsos`). Pure: checks, never mutates."""

from __future__ import annotations

from streams.flex.dsos import DsoRegistry
from streams.flex.requests import FlexRequest
from streams.flex.signing import request_signer
from streams.flex.validation import Code, Issue


def authenticate(req: FlexRequest, dsos: DsoRegistry) -> Issue | None:
    """None when ``req`` is signed by its DSO's registered key; else the first failure, in this order:
    UNSIGNED_REQUEST (no signature), UNKNOWN_DSO (not registered or revoked), BAD_SIGNATURE (malformed, or it
    recovers to another address: a forged or altered request)."""
    if not req.signature:
        return Issue(Code.UNSIGNED_REQUEST, f"request {req.request_id} carries no DSO signature")
    dso = dsos.active(req.dso_id)
    if dso is None:
        return Issue(Code.UNKNOWN_DSO, f"DSO {req.dso_id!r} is not registered (or revoked) on flex.dsos.v1")
    signer = request_signer(req)
    if signer is None or signer.lower() != dso.eth_address.lower():
        return Issue(
            Code.BAD_SIGNATURE,
            f"not signed by {dso.eth_address} (the key registered for {req.dso_id}) over these terms",
        )
    return None
