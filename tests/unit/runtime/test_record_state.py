"""Record-atomic state over a partition store, with the per-transaction read cache."""

from __future__ import annotations

from edream.runtime.state import ReadCache, RecordState


class CountingStore:
    """The partition store's interface (get_bytes / set_bytes / delete), counting reads."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.reads = 0

    def get_bytes(self, key: str) -> bytes | None:
        self.reads += 1
        return self.data.get(key)

    def set_bytes(self, key: str, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def test_a_key_is_read_from_the_store_once_per_transaction():
    store = CountingStore()
    store.data["clock"] = b"1"
    cache = ReadCache(owner="tx1")
    for _ in range(3):  # three records of one checkpoint read the partition's clock
        assert RecordState(store, cache).get("clock") == b"1"
        assert RecordState(store, cache).get("missing") is None
    assert store.reads == 2
    assert RecordState(store).get("clock") == b"1" and store.reads == 3  # without a cache: every read


def test_committed_writes_and_deletes_reach_the_cache_uncommitted_ones_do_not():
    store, cache = CountingStore(), ReadCache(owner="tx1")
    store.data.update({"a": b"old", "b": b"gone"})
    first = RecordState(store, cache)
    assert first.get("a") == b"old" and first.get("b") == b"gone"
    first.set("a", b"new")
    first.delete("b")
    first.set("c", b"made")
    assert first.get("a") == b"new" and first.get("b") is None  # the record sees its own writes
    first.commit()
    failed = RecordState(store, cache)  # a record that raised: its writes are never committed
    failed.set("a", b"poison")
    reads = store.reads
    after = RecordState(store, cache)
    assert (after.get("a"), after.get("b"), after.get("c")) == (b"new", None, b"made")
    assert store.reads == reads  # all from the cache, and the same as the store holds
    assert store.data == {"a": b"new", "c": b"made"}


def test_a_full_cache_starts_over():
    store, cache = CountingStore(), ReadCache(owner="tx1", max_keys=2)
    store.data.update({k: k.encode() for k in "xyz"})
    state = RecordState(store, cache)
    assert [state.get(k) for k in "xyz"] == [b"x", b"y", b"z"]
    assert set(cache.values) == {"z"}
    assert state.get("z") == b"z" and store.reads == 3
