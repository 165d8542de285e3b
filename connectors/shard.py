"""Sharding a device fleet over several connector processes: ``edream connectors run --shard i/N``.

Every process loads the same config; shard ``i`` of ``N`` runs the devices whose CRC-32 of the device id
(UTF-8) modulo ``N`` is ``i`` (stable across processes, hosts and Python versions, unlike :func:`hash`), and
executes only the commands for those devices. An MQTT config that serves a fleet (``device_id_level``) is
subscribed by every shard; each keeps only the messages whose device id (the topic level) it owns.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SHARD_ENV = "EDREAM_CONNECTOR_SHARD"
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardSpecError(ValueError):
    """A shard spec that is not ``i/N`` with ``0 <= i < N``; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``); ``Shard(0, 1)`` owns every device."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ShardSpecError(f"shard count must be at least 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ShardSpecError(f"shard index must be in 0..{self.count - 1}, got {self.index}")

    def owns(self, device_id: str) -> bool:
        """Whether this shard runs ``device_id``."""
        return self.count == 1 or zlib.crc32(device_id.encode()) % self.count == self.index

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def suffix(self) -> str:
        """Appended to per-process names (MQTT client id, command consumer group); empty when unsharded, so an
        unsharded connector keeps its existing session and group."""
        return "" if self.count == 1 else f"-shard-{self.index}-of-{self.count}"


ALL_DEVICES = Shard()


def parse_shard(spec: str | None, source: str = "--shard") -> Shard:
    """``"i/N"`` -> :class:`Shard`; ``None`` or ``""`` -> :data:`ALL_DEVICES`. ``source`` names where the spec came
    from in the error (the option or the environment variable)."""
    if spec is None or not spec.strip():
        return ALL_DEVICES
    m = _SPEC.match(spec)
    if m is None:
        raise ShardSpecError(f"{source} {spec!r}: expected i/N, e.g. 0/2 (shard i of N, counting from 0)")
    try:
        return Shard(int(m.group(1)), int(m.group(2)))
    except ShardSpecError as exc:
        raise ShardSpecError(f"{source} {spec!r}: {exc}") from None


def is_fleet(device: Any) -> bool:
    """A config entry that serves many devices, their ids taken from the MQTT topic (``device_id_level``)."""
    return getattr(device, "device_id_level", None) is not None


def shard_devices(devices: Iterable[Any], shard: Shard) -> list[Any]:
    """The device configs ``shard`` runs: those it owns by id, plus every fleet entry (filtered per message)."""
    return [d for d in devices if is_fleet(d) or shard.owns(d.id)]
