"""The runtime's RocksDB point read answers exactly as quixstreams' own: a stored value, or Marker.UNDEFINED."""

from __future__ import annotations

from quixstreams.state.metadata import Marker
from quixstreams.state.rocksdb.partition import RocksDBStorePartition

from edream.runtime import quix_fast_get


def test_the_fast_read_answers_as_quixstreams_does(tmp_path, monkeypatch):
    monkeypatch.setattr(RocksDBStorePartition, "get", RocksDBStorePartition.get)  # restored after the test
    original = quix_fast_get.QUIX_GET
    part = RocksDBStorePartition(str(tmp_path / "p0"))
    try:
        part.get_or_create_column_family("default")[b"k"] = b"v"
        before = (original(part, b"k"), original(part, b"missing"))
        quix_fast_get.install()
        assert RocksDBStorePartition.get is quix_fast_get._get
        after = (part.get(b"k"), part.get(b"missing"))
        assert before == after == (b"v", Marker.UNDEFINED)
    finally:
        part.close()
