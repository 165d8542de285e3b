"""The chaos feed's count of acknowledged records is what the platform must store: distinct ids per kind."""

from __future__ import annotations

from tools.chaos.feed import Feed
from tools.chaos.inputs import Sent


def test_a_record_acknowledged_twice_counts_once():
    feed = Feed()
    first = Sent("good_settlement", "t", b"w", b"v", "chaos-stl-1")
    feed.acked += [first, Sent("good_settlement", "t", b"w", b"v", "chaos-stl-1"), first]
    feed.acked.append(Sent("good_settlement", "t", b"w", b"v", "chaos-stl-2"))
    feed.acked.append(Sent("good_reading", "t", b"m", b"v", "chaos-stl-1"))
    assert feed.counts() == {"good_settlement": 2, "good_reading": 1}
