"""The network-aware clearing benchmark runs, its limits bind and it reports its figures (no timing assertions)."""

from tools.bench.market_network import run, session


def test_bench_reports_figures_for_each_size():
    out = run(sizes=(30,), sessions=3)
    assert out["n30_sessions"] == 3 and out["n30_failed"] == 0
    assert out["n30_constrained_share"] > 0 and out["n30_mean_welfare_loss_pct"] > 0
    assert out["n30_network_clear_p50_ms"] <= out["n30_network_clear_max_ms"]
    assert session(30, 1)[0] == session(30, 1)[0]
