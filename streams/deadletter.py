"""Dead-letter records live in the kernel (:mod:`edream.deadletter`); re-exported for the domain packages."""

from edream.deadletter import DEADLETTER_TOPIC, MAX_ERROR_CHARS, dead_letter, letter_id, sink_letter

__all__ = ["DEADLETTER_TOPIC", "MAX_ERROR_CHARS", "dead_letter", "letter_id", "sink_letter"]
