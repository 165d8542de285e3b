"""Which stored batches the embedded broker's retention janitor deletes (pure rules)."""

from __future__ import annotations

import pytest

from edream.embedded.retention import DEFAULT_RETENTION_MS, Batch, _epoch_ms, retention_ms, split_expired


def _batches(*appended_ms: int) -> list[Batch]:
    return [Batch(f"{i:020}.batch", t) for i, t in enumerate(appended_ms)]


@pytest.mark.parametrize(
    ("configs", "expected"),
    [
        ({}, DEFAULT_RETENTION_MS),
        ({"retention.ms": "120000"}, 120_000),
        ({"cleanup.policy": "delete", "retention.ms": "-1"}, None),
        ({"cleanup.policy": "compact", "retention.ms": "1000"}, None),
        ({"cleanup.policy": "compact,delete", "retention.ms": "600000"}, 600_000),
        ({"cleanup.policy": "delete, compact", "retention.ms": "5"}, 5),
    ],
)
def test_retention_follows_the_topic_policy(configs, expected):
    assert retention_ms(configs) == expected


def test_leading_expired_batches_go_and_the_first_young_one_stays():
    gone, first_kept = split_expired(_batches(100, 200, 300, 400), cutoff_ms=250)
    assert [b.name for b in gone] == [f"{0:020}.batch", f"{1:020}.batch"]
    assert first_kept == Batch(f"{2:020}.batch", 300)


def test_the_newest_batch_stays_even_when_expired():
    gone, first_kept = split_expired(_batches(100, 200, 300), cutoff_ms=10_000)
    assert len(gone) == 2 and first_kept == Batch(f"{2:020}.batch", 300)
    assert split_expired(_batches(100), cutoff_ms=10_000) == ([], Batch(f"{0:020}.batch", 100))
    assert split_expired([], cutoff_ms=10_000) == ([], None)


def test_reading_stops_one_past_the_last_expired_batch():
    read = []

    def listing():
        for b in _batches(100, 200, 300, 400, 500):
            read.append(b.appended_ms)
            yield b

    split_expired(listing(), cutoff_ms=150)
    assert read == [100, 200, 300]  # the first kept one and its follower (to know it is not the newest)


def test_filer_times_are_utc_epoch_ms():
    assert _epoch_ms("2026-12-07T15:37:56Z") == 1_796_657_876_000
    assert _epoch_ms("2026-12-07T15:37:56.194262925Z") == 1_796_657_876_194
