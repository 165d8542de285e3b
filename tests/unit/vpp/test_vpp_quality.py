import numpy as np
import pytest

from streams.vpp.quality import adjusted_rand_index, majority_labels, purity, silhouette


def test_ari_identical_and_permuted_partitions():
    truth = ["a", "a", "b", "b", "c", "c"]
    assert adjusted_rand_index(truth, [0, 0, 1, 1, 2, 2]) == pytest.approx(1.0)
    assert adjusted_rand_index(truth, [2, 2, 0, 0, 1, 1]) == pytest.approx(1.0)


def test_ari_known_value():
    # contingency [[2, 1], [0, 3]]: pair counts index = C(2,2)+C(3,2) = 4, rows a = 3+3 = 6,
    # columns b = C(2,2)+C(4,2) = 7, total C(6,2) = 15 -> ARI = (4 - 42/15) / (6.5 - 42/15) = 0.3243
    truth = [0, 0, 0, 1, 1, 1]
    pred = [0, 0, 1, 1, 1, 1]
    index, a, b, total = 1 + 3, 3 + 3, 1 + 6, 15
    expected = a * b / total
    assert adjusted_rand_index(truth, pred) == pytest.approx((index - expected) / ((a + b) / 2 - expected))
    assert adjusted_rand_index(truth, pred) == pytest.approx(0.3243, abs=1e-4)


def test_ari_one_cluster_is_zero():
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 0, 0]) == pytest.approx(0.0)


def test_purity_and_majority():
    truth = ["h", "h", "h", "c", "c", "a"]
    pred = [0, 0, 1, 1, 1, 1]
    assert purity(truth, pred) == pytest.approx((2 + 2) / 6)
    assert majority_labels(truth, pred) == {0: "h", 1: "c"}


def test_silhouette_separated_vs_mixed():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))])
    good = [0] * 20 + [1] * 20
    assert silhouette(x, good) > 0.9
    assert silhouette(x, rng.permutation(good)) < 0.1
