"""``edream bench idle``: what an idle ``edream run --no-demo`` costs, minute by minute, on the durable broker.

Starts the platform as an operator does (embedded Tansu on SeaweedFS, anvil, chDB, every stage process; no input),
waits until every stage is UP, then measures for ``--minutes`` (default 12) the CPU seconds each part used in each
minute (object store, broker, stage processes, the platform's own process, anvil) and how many record batches the
broker stores. An idle platform should cost the same in its tenth minute as in its first: Tansu's S3 engine lists
all of a partition's stored batches on every fetch, so a store that only grows makes the broker slower with uptime
(see :mod:`edream.embedded.retention`). ``storage_growth`` is the object store's and broker's CPU in the last
minute over the first; ``rss_mb`` the memory of each part at the end. ``--seconds`` is ignored.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from edream.embedded.retention import FilerBatches
from tools.chaos.platform import Platform

ROLES = ("object store", "broker", "stages", "platform", "anvil")


def role(proc: psutil.Process) -> str:
    """Which part of the platform ``proc`` is (by its command line)."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "platform"
    if cmd and cmd[0].endswith("weed"):
        return "object store"
    if cmd and "tansu" in cmd[0]:
        return "broker"
    if "stage" in cmd:
        return "stages"
    if any("anvil" in c for c in cmd[:2]):
        return "anvil"
    return "platform"


def _tree(root: int) -> list[psutil.Process]:
    """``root`` and all its descendants."""
    top = psutil.Process(root)
    return [top, *top.children(recursive=True)]


def cpu_by_role(root: int) -> dict[int, tuple[str, float]]:
    """pid -> (role, CPU seconds so far) of ``root`` and all its descendants."""
    out = {}
    for p in _tree(root):
        try:
            t = p.cpu_times()
            out[p.pid] = (role(p), t.user + t.system)
        except psutil.Error:
            continue
    return out


def rss_by_role(root: int) -> dict[str, float]:
    """Resident memory (MB) of each part of the platform."""
    out: Counter[str] = Counter()
    for p in _tree(root):
        try:
            out[role(p)] += p.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return {r: round(out[r]) for r in ROLES}


def filer_url(root: int) -> str | None:
    """The embedded object store's filer address, from its ``weed server`` command line."""
    for p in _tree(root):
        try:
            for arg in p.cmdline():
                if arg.startswith("-filer.port="):
                    return f"http://127.0.0.1:{arg.split('=', 1)[1]}"
        except psutil.Error:
            continue
    return None


def stored_batches(filer: str | None) -> int | None:
    """Record batches the broker stores now (all topics and partitions), None without an object store."""
    if filer is None:
        return None
    store = FilerBatches(lambda: filer, "tansu")
    n = 0
    for cluster in store.clusters():
        for topic, meta in store.topics(cluster).items():
            n += sum(sum(1 for _ in store.batches(cluster, topic, p)) for p in range(meta.partitions))
    return n


def run(seconds: float = 0.0, minutes: int = 12) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edream-idle-") as tmp:
        platform = Platform(Path(tmp) / "data", Path(tmp) / "platform.log")
        platform.start()
        try:
            ready_s = platform.wait_ready(timeout=360)
            root = platform.proc.pid
            filer = filer_url(root)
            rows = []
            for minute in range(1, int(minutes) + 1):
                before = cpu_by_role(root)
                time.sleep(60)
                after = cpu_by_role(root)
                used: Counter[str] = Counter()
                for pid, (name, cpu) in after.items():
                    if pid in before:
                        used[name] += cpu - before[pid][1]
                rows.append(
                    {
                        "minute": minute,
                        **{f"{r} cpu_s": round(used[r], 1) for r in ROLES},
                        "stored_batches": stored_batches(filer),
                    }
                )
                print(rows[-1], flush=True)
            rss = rss_by_role(root)
        finally:
            platform.stop()

    def storage(row: dict[str, Any]) -> float:
        return row["object store cpu_s"] + row["broker cpu_s"]

    return {
        "bench": "idle",
        "ready_s": round(ready_s, 1),
        "minutes": rows,
        "storage_growth": round(storage(rows[-1]) / storage(rows[0]), 2) if storage(rows[0]) else None,
        "rss_mb": rss,
    }
