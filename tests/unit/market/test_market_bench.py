"""The clearing benchmark runs and reports its figures (no timing assertions: figures are printed, not judged)."""

from tools.bench.clearing import run, synthetic_book


def test_bench_reports_figures_for_each_size():
    out = run(seconds=0.05, sizes=(200, 400))
    for n in (200, 400):
        assert out[f"n{n}_runs"] >= 1
        assert out[f"n{n}_clear_p50_ms"] <= out[f"n{n}_clear_p99_ms"]
        assert out[f"n{n}_cleared_wh"] > 0 and out[f"n{n}_trades"] > 0
    assert out["goal_100k_under_100ms"] is False  # no 100k size was measured
    assert synthetic_book(50) == synthetic_book(50)
