"""USEF/UFTP (Shapeshifter 3.x) gateway, aggregator role, on ``shapeshifter-uftp``: DSOs send FlexRequest and
FlexOrder messages signed with their Ed25519 keys; the gateway verifies them against the DSO registry
(``flex.dsos.v1``), turns them into signed ``FlexRequest``/``FlexAcceptance`` events for the flex desk, and answers
with FlexRequestResponse, FlexOffer and FlexOrderResponse from what the desk decided; it checks their
FlexSettlements and sends them D-Prognoses of the platform's forecasts.

Modules: :mod:`~connectors.uftp.isp` (ISP numbers <-> UTC epoch ms), :mod:`~connectors.uftp.mapping` (UFTP messages <->
contracts, pure), :mod:`~connectors.uftp.settlement` and :mod:`~connectors.uftp.prognosis` (FlexSettlement checks,
D-Prognosis from forecasts, pure), :mod:`~connectors.uftp.ledger` (the platform's REST API as the gateway reads it),
:mod:`~connectors.uftp.gateway` (the HTTP service and its Kafka side).
"""

import logging
import threading

from shapeshifter_uftp import transport as _transport
from xsdata.formats.dataclass.context import XmlContext

# The library logs every message whole (XML, keys looked up) at DEBUG/INFO on its own handler: warnings and errors only.
logging.getLogger("shapeshifter-uftp").setLevel(logging.WARNING)

# The library parses a message by looking its root element (FlexRequest, FlexOffer, FlexOrder...) up among *every*
# imported dataclass; ours carry the same names (streams.flex.requests.FlexRequest...) and would be picked. xsdata's
# ``models_package`` restricts the lookup to the library's own models.
_transport._context.models_package = "shapeshifter_uftp"  # noqa: SLF001 - the library's one XML context
_transport._context.reset()  # noqa: SLF001


class _LockedLookups(XmlContext):
    """xsdata's context rebuilds its index of root elements *in place* (cleared, then filled) whenever
    ``sys.modules`` has grown since the last lookup; a message parsed meanwhile on another thread finds no class
    for its root ("No class found matching root: FlexRequestResponse", seen when the gateway's FlexRequestResponse
    and FlexOffer arrived together). Lookups are serialised here; parsing itself still runs in parallel."""

    __slots__ = ()
    _lock = threading.RLock()

    def find_types(self, qname: str) -> list[type]:
        with self._lock:
            return super().find_types(qname)


_transport._context.__class__ = _LockedLookups  # noqa: SLF001
