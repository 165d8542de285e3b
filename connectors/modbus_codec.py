"""Modbus register decoding and the contiguous-read planner (pure; no I/O).

Registers are 16-bit words. Multi-word types are assembled with a configurable word order (``big`` = most
significant word first, the Modbus convention; ``little`` = swapped words) and byte order within each word
(``big`` = as transmitted; ``little`` = bytes swapped). The engineering value is ``raw * scale + offset``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"


class Order(StrEnum):
    BIG = "big"
    LITTLE = "little"


class Function(StrEnum):
    HOLDING = "holding"  # function code 3
    INPUT = "input"  # function code 4


WORDS: dict[DataType, int] = {
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
    DataType.FLOAT64: 4,
}
_STRUCT: dict[DataType, str] = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}
MAX_READ_REGISTERS = 125  # Modbus limit for function codes 3/4


class DecodeError(ValueError):
    """Wrong number of registers or a value outside 0..65535."""


def _swap16(w: int) -> int:
    return ((w & 0xFF) << 8) | (w >> 8)


def decode(
    registers: Sequence[int],
    dtype: DataType,
    word_order: Order = Order.BIG,
    byte_order: Order = Order.BIG,
) -> float:
    """Raw numeric value of ``registers`` (exactly ``WORDS[dtype]`` words). NaN/inf floats are returned as is."""
    n = WORDS[dtype]
    if len(registers) != n:
        raise DecodeError(f"{dtype.value} needs {n} registers, got {len(registers)}")
    words = list(registers)
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise DecodeError(f"register value out of 0..65535: {words}")
    if byte_order is Order.LITTLE:
        words = [_swap16(w) for w in words]
    if word_order is Order.LITTLE:
        words.reverse()
    raw = struct.pack(f">{n}H", *words)
    return float(struct.unpack(_STRUCT[dtype], raw)[0])


def encode(
    value: float,
    dtype: DataType,
    word_order: Order = Order.BIG,
    byte_order: Order = Order.BIG,
) -> list[int]:
    """Registers holding raw ``value`` (inverse of :func:`decode`; used by simulators and tests)."""
    n = WORDS[dtype]
    is_int = dtype not in (DataType.FLOAT32, DataType.FLOAT64)
    words = list(struct.unpack(f">{n}H", struct.pack(_STRUCT[dtype], int(round(value)) if is_int else value)))
    if word_order is Order.LITTLE:
        words.reverse()
    if byte_order is Order.LITTLE:
        words = [_swap16(w) for w in words]
    return words


def to_engineering(raw: float, scale: float = 1.0, offset: float = 0.0) -> float | None:
    """``raw * scale + offset``; ``None`` when not finite (e.g. a NaN float register)."""
    if not math.isfinite(raw):
        return None
    value = raw * scale + offset
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class RegisterSpan:
    """Something to read: ``count`` registers from ``address`` with a function code; ``key`` identifies it."""

    key: str
    function: Function
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One Modbus request covering several spans; ``members`` are (span, index of its first word in block)."""

    function: Function
    address: int
    count: int
    members: tuple[tuple[RegisterSpan, int], ...]

    def slice(self, registers: Sequence[int], span: RegisterSpan, start: int) -> Sequence[int]:
        return registers[start : start + span.count]


def plan_reads(
    spans: Iterable[RegisterSpan], max_gap: int = 0, max_count: int = MAX_READ_REGISTERS
) -> list[ReadBlock]:
    """Group spans into as few read requests as possible.

    Spans of the same function are sorted by address and merged while the gap between them is at most
    ``max_gap`` registers (gap registers are read and ignored) and the block stays within ``max_count``
    registers. Overlapping spans share a block. Deterministic: blocks ordered by (function, address).
    """
    by_fn: dict[Function, list[RegisterSpan]] = {}
    for s in spans:
        if s.count < 1 or s.count > max_count:
            raise ValueError(f"span {s.key!r}: count {s.count} not in 1..{max_count}")
        by_fn.setdefault(s.function, []).append(s)
    blocks: list[ReadBlock] = []
    for fn in sorted(by_fn, key=lambda f: f.value):
        group = sorted(by_fn[fn], key=lambda s: (s.address, s.count, s.key))
        cur: list[RegisterSpan] = []
        start = end = 0
        for s in group:
            s_end = s.address + s.count
            if cur and s.address - end <= max_gap and max(end, s_end) - start <= max_count:
                cur.append(s)
                end = max(end, s_end)
                continue
            if cur:
                blocks.append(_block(fn, start, end, cur))
            cur, start, end = [s], s.address, s_end
        if cur:
            blocks.append(_block(fn, start, end, cur))
    return blocks


def _block(fn: Function, start: int, end: int, members: list[RegisterSpan]) -> ReadBlock:
    return ReadBlock(fn, start, end - start, tuple((m, m.address - start) for m in members))
