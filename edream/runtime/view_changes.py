"""What changed in a registry view since a stage last looked: the keys whose bytes changed and the keys removed.

A stage turns a registry view (:class:`~edream.runtime.contract.View`, raw bytes per key) into its own decoded
registry incrementally: :meth:`ViewChanges.poll` reads the view only when its ``version`` moved (a view without
one is compared whole on every poll) and hands back just the differences, so decoding costs nothing per record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edream.runtime.contract import View


@dataclass
class Changes:
    """``changed``: (key, new bytes) of keys added or rewritten; ``removed``: keys tombstoned since the last poll."""

    changed: list[tuple[bytes, bytes]] = field(default_factory=list)
    removed: list[bytes] = field(default_factory=list)


class ViewChanges:
    """``view`` may be None (no view: never any change)."""

    def __init__(self, view: View | None):
        self.view = view
        self._raw: dict[bytes, bytes] = {}
        self._seen_version: object = None

    def poll(self) -> Changes:
        out = Changes()
        view = self.view
        if view is None:
            return out
        version = getattr(view, "version", None)
        if version is not None and version == self._seen_version:
            return out
        current = dict(view.items())
        out.removed = [k for k in self._raw if k not in current]
        for key in out.removed:
            del self._raw[key]
        for key, value in current.items():
            if self._raw.get(key) != value:
                self._raw[key] = value
                out.changed.append((key, value))
        self._seen_version = version
        return out
