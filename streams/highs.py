"""The one HiGHS set-up of the platform, shared by the flex optimiser (:mod:`streams.flex.optimiser`) and the VPP
capability solver (:mod:`streams.vpp.capability`), which run in the same worker process.

:func:`new_highs` returns a silent ``highspy.Highs`` (``SHOW_LOG = True`` shows HiGHS's log). The first instance
in a process prints the HiGHS banner on file descriptor 1 (it would end up in front of a CLI's JSON line), so that
one is created with fd 1 pointing to /dev/null. No ``threads`` option is ever set: HiGHS has one process-wide
scheduler, and a run whose ``threads`` differs from the scheduler another instance initialised fails with status
"Not Set" (``tests/unit/flex/test_flex_highs_shared.py``).
"""

from __future__ import annotations

import os
import sys

import highspy

#: set True to see the HiGHS log (also the Pyomo/appsi backends' ``stream_solver``)
SHOW_LOG = False
_banner_shown = False


def new_highs(time_limit_s: float | None = None) -> highspy.Highs:
    """A silent HiGHS instance; ``time_limit_s``: its ``time_limit`` option (seconds), if given."""
    global _banner_shown
    if _banner_shown or SHOW_LOG:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _banner_shown = True
    h.setOptionValue("output_flag", SHOW_LOG)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    return h
