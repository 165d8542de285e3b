"""What the demo DSO remembers across its restarts, as a DSO's own records would: the FlexOrders it placed that
are not settled yet (their XML) and the end of the last ISP it ordered, so a restarted DSO still settles its orders
and never asks again for ISPs the aggregator already has an order for (OVERLAPPING_ORDER). One JSON file, replaced
atomically; an unreadable one is logged and started afresh."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("edream.demo.dso")


@dataclass
class DsoMemory:
    """``orders``: FlexOrder MessageID -> its XML; ``busy_until``: UTC epoch ms the last ordered ISP ends."""

    path: Path | None = None
    orders: dict[str, str] = field(default_factory=dict)
    busy_until: int = 0

    @classmethod
    def load(cls, path: Path | None) -> DsoMemory:
        if path is None or not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            return cls(path, {str(k): str(v) for k, v in data["orders"].items()}, int(data["busy_until"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("demo dso: %s unreadable (%s); starting afresh", path, exc)
            return cls(path)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as f:
            json.dump({"orders": self.orders, "busy_until": self.busy_until}, f)
        os.replace(tmp, self.path)
