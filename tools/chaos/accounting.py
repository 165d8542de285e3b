"""Where every record the suite sent ended up, read from ClickHouse: business tables, dead letters, rejections.

:func:`account` takes a ClickHouse client and the :class:`Manifest` of acknowledged records and returns one
:class:`KindAccount` per kind:

- good records (readings, settlements, canary orders): ``accounted`` = found in their table; ``lost`` = sent but
  not found; ``duplicated`` = rows beyond one per id (``count() FINAL`` minus distinct ids, and ids found twice);
- refused records: ``accounted`` = a dead letter carrying their bytes (random bytes, absurd or wrong-contract
  records on the readings topic) or a Rejection of their id (hostile orders and requests); ``lost`` = neither;
  ``wrongly_accepted`` = what reached a business table: readings from no good meter in ``measurements``/
  ``intervals``, hostile orders in the accepted book or a trade, hostile requests in an offer or order, any device
  command (the suite enrols no prosumer, so nothing may be dispatched).

A record dead-lettered again at the same (stage, source position) after a restart is shown as ``re-lettered``,
not as a duplicate: dead letters are keyed by stage + position + run (issue 14), and a replay is a new run.

With the embedded chDB only one process may open the data dir: run ``python -m tools.chaos.accounting DATA_DIR
MANIFEST.json`` after the platform stopped; it prints the accounts as one JSON object.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.chaos.inputs import ABSURD_CONNECTOR, GOOD_CONNECTOR, READINGS

DEADLETTER_KINDS = ("random_bytes", "absurd_measurement", "wrong_contract")
REJECTED_KINDS = ("hostile_order", "hostile_request")


@dataclass
class Manifest:
    """Acknowledged records: ids per kind (see :class:`tools.chaos.inputs.Sent`)."""

    ids: dict[str, list[str]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.ids))

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls(json.loads(path.read_text()))


@dataclass
class KindAccount:
    kind: str
    sent: int
    accounted: int = 0
    lost: int = 0
    duplicated: int = 0
    wrongly_accepted: int = 0
    where: dict[str, int] = field(default_factory=dict)  # e.g. dead letters per stage, rejection codes
    examples: list[str] = field(default_factory=list)  # a few lost / wrongly accepted ids, for the report


def _rows(client: Any, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    return list(client.query(sql, parameters=params or {}).result_rows)


def _scalar(client: Any, sql: str, params: dict[str, Any] | None = None) -> int:
    return int(_rows(client, sql, params)[0][0])


def _good(client: Any, kind: str, sent: list[str], table: str, id_col: str, where: str) -> KindAccount:
    acc = KindAccount(kind, len(set(sent)))
    found = Counter(
        dict(_rows(client, f"SELECT {id_col}, count() FROM {table} FINAL WHERE {where} GROUP BY {id_col}"))
    )
    final_rows = _scalar(client, f"SELECT count() FROM {table} FINAL WHERE {where}")
    raw_rows = _scalar(client, f"SELECT count() FROM {table} WHERE {where}")
    sent_set = set(sent)
    acc.accounted = len(sent_set & set(found))
    missing = sorted(sent_set - set(found))
    acc.lost = len(missing)
    acc.duplicated = (final_rows - len(found)) + sum(c - 1 for c in found.values() if c > 1)
    acc.where = {
        f"{table} FINAL": final_rows,
        f"{table} unmerged": raw_rows,
        "never sent": len(set(found) - sent_set),
    }
    acc.examples = missing[:5]
    return acc


def _dead_letters(client: Any) -> tuple[dict[str, set[str]], Counter[str]]:
    """Hash of the original bytes -> stages that dead-lettered it; duplicated letters per hash."""
    by_hash: dict[str, set[str]] = defaultdict(set)
    dup: Counter[str] = Counter()
    rows = _rows(
        client,
        "SELECT lower(hex(SHA256(original))), stage, partition, offset, count() FROM deadletters FINAL "
        "WHERE source_topic = {t:String} GROUP BY 1, 2, 3, 4",
        {"t": READINGS},
    )
    for h, stage, _p, _o, n in rows:
        by_hash[h].add(stage)
        if n > 1:
            dup[h] += n - 1
    return by_hash, dup


def _refused(kind: str, sent: list[str], found: dict[str, set[str]], dup: Counter[str]) -> KindAccount:
    acc = KindAccount(kind, len(set(sent)))
    stages: Counter[str] = Counter()
    missing = []
    relettered = 0
    for ident in set(sent):
        where = found.get(ident)
        if where:
            acc.accounted += 1
            stages.update(where)
            relettered += dup.get(ident, 0)
        else:
            missing.append(ident)
    acc.lost = len(missing)
    acc.where = {f"dead letter {s}": n for s, n in sorted(stages.items())}
    acc.where["re-lettered after a restart"] = relettered
    acc.examples = sorted(missing)[:5]
    return acc


def _rejections(client: Any, ids: list[str]) -> tuple[dict[str, set[str]], int]:
    """Rejection codes per subject id, and the rejections beyond one per (subject, code): duplicates (a replay
    after a restart must not reject the same request again under a new id)."""
    out: dict[str, set[str]] = defaultdict(set)
    dup = 0
    if ids:
        for sid, code, n in _rows(
            client,
            "SELECT subject_id, code, count() FROM rejections FINAL WHERE subject_id IN {ids:Array(String)} "
            "GROUP BY subject_id, code",
            {"ids": sorted(set(ids))},
        ):
            out[sid].add(code)
            dup += n - 1
    return out, dup


def _in(client: Any, table: str, col: str, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = _rows(
        client,
        f"SELECT DISTINCT {col} FROM {table} FINAL WHERE {col} IN {{ids:Array(String)}}",
        {"ids": sorted(set(ids))},
    )
    return {r[0] for r in rows}


def account(client: Any, manifest: Manifest) -> list[KindAccount]:
    ids = manifest.ids
    out = [
        _good(
            client,
            "good_reading",
            ids.get("good_reading", []),
            "measurements",
            "event_id",
            f"connector_id = '{GOOD_CONNECTOR}'",
        ),
        _good(
            client,
            "good_settlement",
            ids.get("good_settlement", []),
            "settlement_flex",
            "settlement_id",
            "startsWith(settlement_id, 'chaos-stl-')",
        ),
    ]
    canaries = ids.get("canary_order", [])
    accepted = _in(client, "market_orders_accepted", "order_id", canaries)
    canary = KindAccount("canary_order", len(set(canaries)), accounted=len(accepted))
    canary.lost = canary.sent - canary.accounted
    canary.examples = sorted(set(canaries) - accepted)[:5]
    out.append(canary)

    found, dup = _dead_letters(client)
    for kind in DEADLETTER_KINDS:
        out.append(_refused(kind, ids.get(kind, []), found, dup))
    for acc in out:
        if acc.kind == "absurd_measurement":
            stored = _scalar(
                client,
                f"SELECT count() FROM measurements FINAL WHERE startsWith(connector_id, '{ABSURD_CONNECTOR}')",
            )
            foreign = _scalar(
                client, f"SELECT count() FROM measurements FINAL WHERE connector_id != '{GOOD_CONNECTOR}'"
            )
            ghost_intervals = _scalar(
                client, "SELECT count() FROM intervals FINAL WHERE NOT startsWith(device_id, 'chaos-meter-')"
            )
            acc.wrongly_accepted = max(stored, foreign) + ghost_intervals
            acc.where.update(
                {"in measurements": max(stored, foreign), "in intervals (not a chaos meter)": ghost_intervals}
            )

    for kind in REJECTED_KINDS:
        sent = ids.get(kind, [])
        rejected, dup = _rejections(client, sent)
        acc = KindAccount(kind, len(set(sent)), accounted=len(rejected), duplicated=dup)
        acc.lost = acc.sent - acc.accounted
        acc.where = dict(Counter(f"rejection {c}" for codes in rejected.values() for c in codes))
        acc.examples = sorted(set(sent) - set(rejected))[:5]
        if kind == "hostile_order":
            wrong = _in(client, "market_orders_accepted", "order_id", sent)
            wrong |= _in(client, "market_trades", "buy_order_id", sent)
            wrong |= _in(client, "market_trades", "sell_order_id", sent)
        else:
            wrong = _in(client, "flex_offers", "request_id", sent) | _in(
                client, "flex_orders", "request_id", sent
            )
            commands = _scalar(client, "SELECT count() FROM device_commands FINAL")
            acc.where["device commands"] = commands
            wrong |= {f"device-command-{i}" for i in range(commands)}
        acc.wrongly_accepted = len(wrong)
        acc.examples += sorted(wrong)[:5]
        out.append(acc)
    return out


def main(argv: list[str]) -> None:
    """``python -m tools.chaos.accounting DATA_DIR MANIFEST.json``: the accounts as one JSON line."""
    import clickhouse_connect

    data_dir, manifest = Path(argv[0]), Manifest.load(Path(argv[1]))
    client = clickhouse_connect.get_client(dsn=f"chdb://{data_dir / 'chdb'}")
    print(json.dumps([asdict(a) for a in account(client, manifest)]))


if __name__ == "__main__":
    main(sys.argv[1:])
