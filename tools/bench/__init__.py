"""Benchmarks: ``tools/bench/<name>.py`` exposes ``run(seconds, **params) -> dict``; ``edream bench <name>``
prints the figures as one JSON object on its last line."""
