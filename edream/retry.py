"""The one retry policy of the platform (tenacity): exponential backoff with jitter, forever or bounded, logged.

Outages (broker, ClickHouse, chain, timeouts) are retried with this; each wait is logged with what failed, so an
operator sees the outage in the logs and in the stage health while it lasts. Three forms of the same policy:
:func:`backoff` (blocking code), :func:`async_backoff` (asyncio code) and :class:`Delays` (code that schedules its
next attempt itself: device polling, command retries, restarts of embedded components and stage processes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import SimpleNamespace

from tenacity import (
    AsyncRetrying,
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


def _log_wait(
    what: str, on_retry: Callable[[BaseException], None] | None = None
) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if on_retry is not None and exc is not None:
            on_retry(exc)
        log.warning(
            "%s failed (attempt %d): %s: %s; retrying in %.1fs",
            what,
            state.attempt_number,
            type(exc).__name__,
            exc,
            state.next_action.sleep if state.next_action else 0.0,
        )

    return before_sleep


def _wait(initial_s: float, max_s: float, jitter: bool):  # noqa: ANN202 - a tenacity wait strategy
    """``initial_s`` doubling per attempt up to ``max_s`` (seconds), plus up to 1 s of random jitter."""
    if jitter:
        return wait_exponential_jitter(initial=initial_s, max=max_s)
    return wait_exponential(multiplier=initial_s, min=initial_s, max=max_s)


def _stop(give_up_after_s: float | None, give_up_after_attempts: int | None):  # noqa: ANN202
    stop = stop_never
    if give_up_after_s is not None:
        stop = stop_after_delay(give_up_after_s)
    if give_up_after_attempts is not None:
        stop = (
            stop | stop_after_attempt(give_up_after_attempts)
            if stop is not stop_never
            else stop_after_attempt(give_up_after_attempts)
        )
    return stop


def _retry_on(retry_on: tuple[type[BaseException], ...], never_retry: tuple[type[BaseException], ...]):  # noqa: ANN202
    retry = retry_if_exception_type(retry_on)
    return retry & retry_if_not_exception_type(never_retry) if never_retry else retry


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
    return Retrying(
        retry=_retry_on(retry_on, never_retry),
        wait=_wait(initial_s, max_s, jitter),
        stop=_stop(give_up_after_s, give_up_after_attempts),
        before_sleep=_log_wait(what),
        reraise=True,
        **kwargs,
    )


def async_backoff(
    what: str,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    initial_s: float = 0.5,
    max_s: float = 30.0,
    jitter: bool = True,
    on_retry: Callable[[BaseException], None] | None = None,
) -> AsyncRetrying:
    """:func:`backoff` for asyncio code (``async for attempt in async_backoff("x"): with attempt: ...``), forever;
    ``on_retry`` is called with each exception that is retried (counters, health)."""
    return AsyncRetrying(
        retry=_retry_on(retry_on, ()),
        wait=_wait(initial_s, max_s, jitter),
        stop=stop_never,
        before_sleep=_log_wait(what, on_retry),
        reraise=True,
    )


class Delays:
    """The delays of the same policy for code that schedules its next attempt itself: :meth:`next` after each
    failure returns the wait (seconds) before the next attempt, :meth:`reset` after a success starts over."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 30.0, jitter: bool = True):
        self._wait = _wait(initial_s, max_s, jitter)
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        return float(self._wait(SimpleNamespace(attempt_number=self.failures)))

    def reset(self) -> None:
        self.failures = 0
