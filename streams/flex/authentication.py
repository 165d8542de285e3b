"""Who sent a DSO message: a flexibility request or an acceptance of an offer must be signed
(:mod:`streams.flex.signing`) by the key of the address registered for its ``dso_id`` (:mod:`streams.flex.dsos`).
Pure: checks, never mutates."""

from __future__ import annotations

from streams.flex.acceptance import FlexAcceptance
from streams.flex.dsos import DsoRegistry
from streams.flex.requests import FlexRequest
from streams.flex.signing import signer_of
from streams.flex.validation import Code, Issue


def authenticate(message: FlexRequest | FlexAcceptance, dsos: DsoRegistry) -> Issue | None:
    """None when ``message`` is signed by its DSO's registered key; else the first failure, in this order:
    UNSIGNED_REQUEST (no signature), UNKNOWN_DSO (not registered or revoked), BAD_SIGNATURE (malformed, or it
    recovers to another address: a forged or altered message)."""
    what = (
        f"request {message.request_id}"
        if isinstance(message, FlexRequest)
        else f"acceptance {message.acceptance_id}"
    )
    if not message.signature:
        return Issue(Code.UNSIGNED_REQUEST, f"{what} carries no DSO signature")
    dso = dsos.active(message.dso_id)
    if dso is None:
        return Issue(
            Code.UNKNOWN_DSO, f"DSO {message.dso_id!r} is not registered (or revoked) on flex.dsos.v1"
        )
    signer = signer_of(message)
    if signer is None or signer.lower() != dso.eth_address.lower():
        return Issue(
            Code.BAD_SIGNATURE,
            f"{what} not signed by {dso.eth_address} (the key registered for {message.dso_id}) over these terms",
        )
    return None
