from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.modbus_codec import (
    DataType,
    DecodeError,
    Function,
    Order,
    RegisterSpan,
    decode,
    encode,
    plan_reads,
    to_engineering,
)


def test_known_vectors() -> None:
    # float32 230.5 = 0x43668000: big/big -> [0x4366, 0x8000]
    assert decode([0x4366, 0x8000], DataType.FLOAT32) == 230.5
    assert decode([0x8000, 0x4366], DataType.FLOAT32, word_order=Order.LITTLE) == 230.5
    assert decode([0x6643, 0x0080], DataType.FLOAT32, byte_order=Order.LITTLE) == 230.5
    assert decode([0x0080, 0x6643], DataType.FLOAT32, Order.LITTLE, Order.LITTLE) == 230.5
    assert decode([0xFFFF], DataType.INT16) == -1
    assert decode([0xFFFF], DataType.UINT16) == 65535
    assert decode([0x0001, 0x0000], DataType.UINT32) == 65536
    assert decode([0x0000, 0x0001], DataType.UINT32, word_order=Order.LITTLE) == 65536
    assert decode([0xFFFF, 0xFFFE], DataType.INT32) == -2
    regs = list(struct.unpack(">4H", struct.pack(">d", -1234.5678)))
    assert decode(regs, DataType.FLOAT64) == -1234.5678
    assert decode(regs[::-1], DataType.FLOAT64, word_order=Order.LITTLE) == -1234.5678


def test_wrong_register_count_and_range() -> None:
    with pytest.raises(DecodeError):
        decode([1], DataType.FLOAT32)
    with pytest.raises(DecodeError):
        decode([70000], DataType.UINT16)


_INT_RANGES = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
}


@given(
    st.sampled_from(list(DataType)),
    st.sampled_from(list(Order)),
    st.sampled_from(list(Order)),
    st.data(),
)
def test_roundtrip(dtype: DataType, wo: Order, bo: Order, data: st.DataObject) -> None:
    if dtype in _INT_RANGES:
        lo, hi = _INT_RANGES[dtype]
        v: float = data.draw(st.integers(lo, hi))
    else:
        width = 32 if dtype is DataType.FLOAT32 else 64
        v = data.draw(st.floats(allow_nan=False, allow_infinity=False, width=width))
    assert decode(encode(v, dtype, wo, bo), dtype, wo, bo) == v


def test_engineering() -> None:
    assert to_engineering(2305, 0.1, 0) == pytest.approx(230.5)
    assert to_engineering(10, 2, -5) == 15
    assert to_engineering(math.nan) is None
    assert to_engineering(math.inf) is None


def _span(k: str, addr: int, n: int, fn: Function = Function.HOLDING) -> RegisterSpan:
    return RegisterSpan(k, fn, addr, n)


def test_planner_merges_contiguous_and_splits_on_gap_function_and_limit() -> None:
    spans = [
        _span("a", 0, 2),
        _span("b", 2, 2),
        _span("c", 4, 1),
        _span("d", 10, 2),
        _span("e", 0, 1, Function.INPUT),
    ]
    blocks = plan_reads(spans)
    assert [(b.function, b.address, b.count) for b in blocks] == [
        (Function.HOLDING, 0, 5),
        (Function.HOLDING, 10, 2),
        (Function.INPUT, 0, 1),
    ]
    assert [(m.key, off) for m, off in blocks[0].members] == [("a", 0), ("b", 2), ("c", 4)]
    # gap tolerated when allowed
    assert [(b.address, b.count) for b in plan_reads(spans[:4], max_gap=5)] == [(0, 12)]
    # the 125-register limit splits long maps
    long = [_span(str(i), i * 2, 2) for i in range(100)]
    blocks = plan_reads(long)
    assert all(b.count <= 125 for b in blocks) and sum(len(b.members) for b in blocks) == 100
    assert len(blocks) == 2


def test_planner_overlap_and_slicing() -> None:
    blocks = plan_reads([_span("f", 0, 2), _span("lo", 1, 1)])
    assert len(blocks) == 1 and blocks[0].count == 2
    regs = [11, 22]
    assert [list(blocks[0].slice(regs, m, off)) for m, off in blocks[0].members] == [[11, 22], [22]]
    with pytest.raises(ValueError):
        plan_reads([_span("x", 0, 0)])


@given(
    st.lists(st.tuples(st.integers(0, 300), st.sampled_from([1, 2, 4])), min_size=1, max_size=40),
    st.integers(0, 3),
)
def test_planner_covers_every_span(spans: list[tuple[int, int]], gap: int) -> None:
    rs = [_span(str(i), a, n) for i, (a, n) in enumerate(spans)]
    blocks = plan_reads(rs, max_gap=gap)
    seen = sorted(m.key for b in blocks for m, _ in b.members)
    assert seen == sorted(r.key for r in rs)
    for b in blocks:
        assert b.count <= 125
        for m, off in b.members:
            assert b.address + off == m.address and off + m.count <= b.count
