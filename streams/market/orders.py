"""The order as the clearing engine sees it: side, quantity (Wh), limit price (micro-units per kWh), priority."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    """BID = buy energy (demand curve), OFFER = sell energy (supply curve)."""

    BID = "BID"
    OFFER = "OFFER"


class EnergyType(StrEnum):
    GREEN = "GREEN"
    GREY = "GREY"
    ANY = "ANY"


@dataclass(frozen=True, slots=True)
class BookOrder:
    """One order in a slot's closed book.

    ``quantity_wh`` is energy in Wh (> 0); ``price`` is the limit price in currency micro-units per kWh (a bid buys
    at or below it, an offer sells at or above it); ``client_ts`` (UTC epoch ms) gives time priority, and
    ``order_id`` (unique in the book) breaks any remaining tie so the result never depends on input order.
    """

    order_id: str
    participant_id: str
    side: Side
    quantity_wh: int
    price: int
    client_ts: int = 0
