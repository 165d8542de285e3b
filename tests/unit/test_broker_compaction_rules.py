"""Which stored batches of a compacted topic the embedded broker's janitor deletes (pure rules, real batch bytes
built by aiokafka's record builder, lz4 as our producers write them)."""

from __future__ import annotations

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from edream.embedded.compaction import batch_keys, superseded


def _stored(records: list[tuple[bytes | None, bytes | None]], codec: int = 0x03) -> bytes:
    b = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i, (k, v) in enumerate(records):
        b.append(i, timestamp=1_796_000_000_000 + i, key=k, value=v, headers=[])
    return bytes(b.build())


def test_keys_are_read_from_compressed_and_plain_batches():
    a = batch_keys(_stored([(b"m-1", b"x"), (b"m-2", b"y"), (b"m-1", None)]))
    assert a is not None and len(a) == 2
    assert batch_keys(_stored([(b"m-1", b"x")], codec=0x00)) == batch_keys(_stored([(b"m-1", b"z")]))


def test_batches_that_cannot_be_compacted_have_no_keys():
    assert batch_keys(_stored([(b"k", b"v"), (None, b"no key")])) is None
    assert batch_keys(b"not a record batch at all, but long enough to look like a header...........") is None


def test_a_batch_goes_when_later_batches_have_all_its_keys():
    k = {
        name: batch_keys(_stored([(key, b"v") for key in keys]))
        for name, keys in {
            "b0": [b"a", b"b"],
            "b1": [b"a"],
            "b2": [b"b", b"c"],
            "b3": [b"c"],
            "b4": [b"a"],
        }.items()
    }
    order = ["b0", "b1", "b2", "b3", "b4"]
    # b0 (a by b1/b4, b by b2), b1 (a by b4), b2 (b? only in b2 itself: stays); b3 and b4 hold the latest c and a
    assert superseded([(n, k[n]) for n in order]) == ["b0", "b1"]


def test_the_newest_and_unknown_batches_always_stay():
    same = batch_keys(_stored([(b"a", b"v")]))
    assert superseded([("only", same)]) == []
    assert superseded([("old", same), ("unknown", None), ("new", same)]) == ["old"]
    # an unknown batch does not count as superseding: its keys are not known
    assert superseded([("old", same), ("unknown", None)]) == []
