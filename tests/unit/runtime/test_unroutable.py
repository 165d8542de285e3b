"""A record whose re-keying function fails keeps going under the unreadable key with the function's error, so the
stage dead-letters it with that reason (naming the field) instead of a bare "unreadable"."""

from __future__ import annotations

from edream.runtime.engine import UNREADABLE_KEY, _fan_out, _packed_key, _packed_value, _unroutable


def _fails(_key: bytes | None, value: bytes) -> list[bytes]:
    raise ValueError(f"invalid FlexOrder: allocations[0].kw: inf is not finite ({len(value)} bytes)")


def test_a_failed_rekey_carries_its_reason_to_the_dead_letter():
    [packed] = _fan_out(_fails, b"abc", b"k", 0, None)
    key = _packed_key(packed)
    assert key.startswith(UNREADABLE_KEY) and _packed_value(packed) == b"abc"
    reason = _unroutable(key)
    assert reason is not None and reason.error_type == "ValueError"  # the dead letter's error_type
    assert str(reason) == "invalid FlexOrder: allocations[0].kw: inf is not finite (3 bytes)"


def test_routed_records_are_not_touched():
    packed = _fan_out(lambda _k, v: [b"grid-a", b"grid-b"], b"x", None, 0, None)
    assert [_packed_key(p) for p in packed] == [b"grid-a", b"grid-b"]
    assert _unroutable(b"grid-a") is None and _unroutable(None) is None
    assert str(_unroutable(UNREADABLE_KEY)) == "unreadable"  # a key written before reasons were carried
