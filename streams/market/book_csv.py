"""Offline order books as CSV, so anyone can cross-check the clearing rules with ``edream market clear``.

Columns (header required): ``order_id, participant_id, side, quantity_wh, price`` and optional ``client_ts``.
``side`` is BID/OFFER (BUY/SELL accepted); ``price`` is the limit in currency micro-units per kWh; ``quantity_wh``
is Wh; ``client_ts`` is UTC epoch ms (time priority, default 0).
"""

from __future__ import annotations

import csv
from pathlib import Path

from streams.market.orders import BookOrder, Side

REQUIRED = ("order_id", "participant_id", "side", "quantity_wh", "price")
_SIDES = {"BID": Side.BID, "BUY": Side.BID, "OFFER": Side.OFFER, "SELL": Side.OFFER, "ASK": Side.OFFER}


class BookCsvError(ValueError):
    """``file:line: problem``."""


def read_book_csv(path: Path | str) -> list[BookOrder]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise BookCsvError(f"{path}:1: missing column(s) {', '.join(missing)}")
        orders = []
        for row in reader:
            line = reader.line_num
            try:
                side = _SIDES[row["side"].strip().upper()]
                orders.append(
                    BookOrder(
                        row["order_id"].strip(),
                        row["participant_id"].strip(),
                        side,
                        int(row["quantity_wh"]),
                        int(row["price"]),
                        int(row.get("client_ts") or 0),
                    )
                )
            except KeyError:
                raise BookCsvError(f"{path}:{line}: side must be BID or OFFER, got {row['side']!r}") from None
            except (TypeError, ValueError) as exc:
                raise BookCsvError(f"{path}:{line}: {exc}") from None
    return orders
