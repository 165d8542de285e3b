"""Every module `edream bench` lists is runnable by it: a ``run(seconds=..., **options)`` returning the figures (the
CLI prints them as one JSON object). Two benchmarks had only a script ``main()`` and failed under `edream bench`."""

from __future__ import annotations

import importlib
import inspect

import pytest

from edream.cli import _bench_names


@pytest.mark.parametrize("name", _bench_names())
def test_benchmark_has_the_run_entry_point(name):
    run = getattr(importlib.import_module(f"tools.bench.{name}"), "run", None)
    assert callable(run), f"tools/bench/{name}.py has no run(); `edream bench {name}` cannot start it"
    params = inspect.signature(run).parameters
    assert "seconds" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()), name
