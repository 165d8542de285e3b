"""The one retry policy of the platform (tenacity): exponential backoff with jitter, forever or bounded, logged.

Outages (broker, ClickHouse, chain, timeouts) are retried with this; each wait is logged with what failed, so an
operator sees the outage in the logs and in the stage health while it lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)


def _log_wait(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed (attempt %d): %s: %s; retrying in %.1fs",
            what,
            state.attempt_number,
            type(exc).__name__,
            exc,
            state.next_action.sleep if state.next_action else 0.0,
        )

    return before_sleep


def backoff(
    what: str,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    initial_s: float = 0.5,
    max_s: float = 30.0,
    give_up_after_s: float | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Retrying:
    """A tenacity ``Retrying``: ``for attempt in backoff("x"): with attempt: ...`` or ``backoff("x")(fn, *args)``.
    Retries ``retry_on`` exceptions with exponential backoff (``initial_s`` doubling, jittered, capped at
    ``max_s``), forever unless ``give_up_after_s``; then the last exception is raised."""
    kwargs = {"sleep": sleep} if sleep is not None else {}
    return Retrying(
        retry=retry_if_exception_type(retry_on),
        wait=wait_exponential_jitter(initial=initial_s, max=max_s),
        stop=stop_never if give_up_after_s is None else stop_after_delay(give_up_after_s),
        before_sleep=_log_wait(what),
        reraise=True,
        **kwargs,
    )
