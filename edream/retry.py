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
    retry_if_not_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_never,
    wait_exponential,
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
    never_retry: tuple[type[BaseException], ...] = (),
    give_up_after_attempts: int | None = None,
    jitter: bool = True,
) -> Retrying:
    """A tenacity ``Retrying``: ``for attempt in backoff("x"): with attempt: ...`` or ``backoff("x")(fn, *args)``.
    Retries ``retry_on`` exceptions (except ``never_retry`` ones, raised at once) with exponential backoff
    (``initial_s`` doubling, jittered, capped at ``max_s``), forever unless ``give_up_after_s`` or
    ``give_up_after_attempts``; then the last exception is raised. ``jitter=False``: exact doubling (a single
    client retrying, where spreading clients apart does not matter)."""
    kwargs = {"sleep": sleep} if sleep is not None else {}
    retry = retry_if_exception_type(retry_on)
    if never_retry:
        retry = retry & retry_if_not_exception_type(never_retry)
    stop = stop_never
    if give_up_after_s is not None:
        stop = stop_after_delay(give_up_after_s)
    if give_up_after_attempts is not None:
        stop = (
            stop | stop_after_attempt(give_up_after_attempts)
            if stop is not stop_never
            else stop_after_attempt(give_up_after_attempts)
        )
    return Retrying(
        retry=retry,
        wait=wait_exponential_jitter(initial=initial_s, max=max_s)
        if jitter
        else wait_exponential(multiplier=initial_s, min=initial_s, max=max_s),
        stop=stop,
        before_sleep=_log_wait(what),
        reraise=True,
        **kwargs,
    )
