"""HL-UC03 LL-UC01 acceptance on the synthetic archetypes, plus online behaviour."""

from datetime import UTC, datetime

import numpy as np
import pytest

from streams.vpp.clustering import ProfileClusterer
from streams.vpp.profiles import FEATURE_DIM, LoadProfiler
from streams.vpp.quality import adjusted_rand_index, majority_labels
from tools.sim.vpp_archetypes import ARCHETYPES, archetype_days

MONDAY_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def portfolio():
    rng = np.random.default_rng(42)
    profiler = LoadProfiler()
    truth = {}
    for kind in ARCHETYPES:
        for i in range(20):
            pid = f"{kind}-{i}"
            truth[pid] = kind
            for d, day in enumerate(archetype_days(kind, 0, 28, rng)):
                profiler.add_day(pid, MONDAY_MS + d * DAY_MS, day)
    feats = {pid: profiler.features(pid) for pid in truth}
    return truth, feats


def test_k3_recovers_archetypes(portfolio):
    truth, feats = portfolio
    c = ProfileClusterer(seed=1)
    assignments = c.build(feats, k=3)
    assert len(c.clusters()) == 3
    ari = adjusted_rand_index(
        [truth[a.prosumer_id] for a in assignments], [a.cluster_id for a in assignments]
    )
    assert ari >= 0.95
    assert all(19 <= info.size <= 21 for info in c.clusters())
    assert sum(info.size for info in c.clusters()) == 60
    assert all(len(info.centroid) == FEATURE_DIM for info in c.clusters())


def test_centroids_are_reported_in_feature_units(portfolio):
    """After the batch build a centroid is the mean of its members' raw feature vectors (shapes, descriptors)."""
    _, feats = portfolio
    c = ProfileClusterer(seed=1)
    assignments = c.build(feats, k=3)
    for info in c.clusters():
        members = [feats[a.prosumer_id] for a in assignments if a.cluster_id == info.cluster_id]
        assert np.asarray(info.centroid) == pytest.approx(np.mean(members, axis=0), abs=1e-9)


def test_standardisation_lets_descriptors_count():
    """Two groups differing only in one small-valued feature are found despite a large noisy feature."""
    rng = np.random.default_rng(0)
    x = {f"p{i}": np.array([rng.normal(0, 100.0), 0.01 * (i % 2) + rng.normal(0, 0.001)]) for i in range(40)}
    scaled = ProfileClusterer(seed=0).build(x, k=2)
    truth = [int(a.prosumer_id[1:]) % 2 for a in scaled]
    assert adjusted_rand_index(truth, [a.cluster_id for a in scaled]) == pytest.approx(1.0)
    # with the noisy feature weighted up 1000-fold it dominates again
    noisy = ProfileClusterer(seed=0, weights=np.array([1000.0, 1.0])).build(x, k=2)
    assert adjusted_rand_index(truth, [a.cluster_id for a in noisy]) < 0.2


def test_wrong_dimension_and_weights_are_rejected(portfolio):
    _, feats = portfolio
    c = ProfileClusterer(seed=1)
    c.build(feats, k=3)
    with pytest.raises(ValueError):
        c.assign("x", np.zeros(192))
    with pytest.raises(ValueError):
        ProfileClusterer(weights=np.array([1.0, 0.0]))


def test_auto_k_picks_three(portfolio):
    _, feats = portfolio
    c = ProfileClusterer(seed=1)
    c.build(feats)
    assert len(c.clusters()) == 3
    assert c.silhouette is not None and c.silhouette > 0.5


def test_new_residential_prosumer_segmented_after_seventh_day(portfolio):
    truth, feats = portfolio
    c = ProfileClusterer(seed=1)
    built = c.build(feats, k=3)
    labels = majority_labels([truth[a.prosumer_id] for a in built], [a.cluster_id for a in built])
    profiler = LoadProfiler()
    days = archetype_days("residential", 0, 7, np.random.default_rng(7))
    for d, day in enumerate(days[:6]):
        profiler.add_day("newcomer", MONDAY_MS + d * DAY_MS, day)
    assert profiler.features("newcomer") is None  # not enough data yet
    profiler.add_day("newcomer", MONDAY_MS + 6 * DAY_MS, days[6])
    a = c.assign("newcomer", profiler.features("newcomer"))
    assert labels[a.cluster_id] == "residential"
    assert a.run_id == c.run_id
    assert c.membership()["newcomer"] == a.cluster_id


def test_online_learning_moves_only_the_nearest_centroid(portfolio):
    _, feats = portfolio
    c = ProfileClusterer(seed=1, halflife=0.5)
    c.build(feats, k=3)
    before = {i.cluster_id: np.asarray(i.centroid) for i in c.clusters()}
    v = feats["commercial-0"] * 1.2
    a = c.learn("commercial-0", v)
    after = {i.cluster_id: np.asarray(i.centroid) for i in c.clusters()}
    assert after[a.cluster_id] == pytest.approx(before[a.cluster_id] + 0.5 * (v - before[a.cluster_id]))
    for cid in before:
        if cid != a.cluster_id:
            assert after[cid] == pytest.approx(before[cid])


def test_assign_before_build_fails():
    with pytest.raises(RuntimeError):
        ProfileClusterer().assign("x", np.zeros(FEATURE_DIM))
