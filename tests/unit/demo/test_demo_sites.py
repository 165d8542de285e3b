"""What the demo DSO is started to ask for: the grid's congestion only, the timed 1-minute requests beside it with
DEMO_TIMELAPSE, and the timed ones alone when the demo grid is not configured (argv of ``edream uftp sim-dso``)."""

from __future__ import annotations

import pytest

from edream.demo.dso import DemoDsoConfig
from edream.embedded.demo_sites import dso_site
from edream.settings import Settings

POINTS = "demo-community/T1=ean.871685900000000001"


def _dso_argv(tmp_path, points: str, timelapse: bool) -> list[str]:
    group = dso_site(tmp_path, {}, 8092, 50, 1, DemoDsoConfig(), None, points, timelapse)
    (dso,) = [c for c in group.children if c.name == "demo dso"]
    return dso.argv


@pytest.mark.parametrize(
    ("points", "timelapse", "feed", "timed"),
    [
        (POINTS, False, True, False),  # make run: only what the congestion forecast needs
        (POINTS, True, True, True),  # DEMO_TIMELAPSE=true: the lifecycle within minutes beside it
        ("", False, False, True),  # GRID_CONFIGS without the demo grid: nothing else to ask for
    ],
)
def test_the_demo_dso_asks_for_the_grids_congestion_and_times_requests_only_in_timelapse(
    tmp_path, points, timelapse, feed, timed
):
    argv = _dso_argv(tmp_path, points, timelapse)
    assert ("--congestion-points" in argv) is feed
    if feed:
        assert argv[argv.index("--congestion-points") + 1] == points
    # sim-dso sends the timed requests without a feed, or with --timed beside one
    assert (not feed or "--timed" in argv) is timed


def test_timelapse_is_off_unless_set(monkeypatch):
    monkeypatch.delenv("DEMO_TIMELAPSE", raising=False)
    assert Settings().demo_timelapse is False
    monkeypatch.setenv("DEMO_TIMELAPSE", "true")
    assert Settings().demo_timelapse is True
