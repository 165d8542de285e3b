"""ViewChanges hands back only what changed in a registry view, and reads it only when its version moved."""

from __future__ import annotations

from edream.runtime.view_changes import ViewChanges
from tools.sim.flex_scenario import StaticView


class Versioned(StaticView):
    """The in-memory registry view, counting how often its whole content is read."""

    def __init__(self):
        super().__init__({})
        self.reads = 0

    def items(self):
        self.reads += 1
        return super().items()


def test_changes_since_the_last_poll_and_no_read_while_the_version_stands():
    view = Versioned()
    view.put(b"a", b"1")
    view.put(b"b", b"2")
    changes = ViewChanges(view)
    first = changes.poll()
    assert sorted(first.changed) == [(b"a", b"1"), (b"b", b"2")] and first.removed == []
    assert changes.poll().changed == [] and view.reads == 1  # version unchanged: the view is not read
    view.put(b"a", b"1")  # the same bytes again: a new version, no change
    view.put(b"b", b"3")
    view.put(b"c", b"4")
    view.put(b"a", None)
    second = changes.poll()
    assert sorted(second.changed) == [(b"b", b"3"), (b"c", b"4")] and second.removed == [b"a"]


def test_no_view_never_changes():
    assert ViewChanges(None).poll().changed == []
