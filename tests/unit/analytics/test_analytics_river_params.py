"""River BayesianLinearRegression rebuilt from its learnt parameters (JSON) predicts and learns bit for bit."""

from __future__ import annotations

import random

import pytest
from river import linear_model

from streams.analytics.river_params import BlrParams, blr_from_params, blr_params

FEATURES = ("d1", "d7", "prof", "wk")


def rows(n: int, seed: int) -> list[tuple[dict[str, float], float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {f: rng.uniform(0, 3) for f in FEATURES}
        out.append((x, 0.6 * x["d1"] + 0.3 * x["wk"] + 0.1 * x["prof"] + rng.gauss(0, 0.05)))
    return out


def round_trip(model: linear_model.BayesianLinearRegression) -> linear_model.BayesianLinearRegression:
    blob = blr_params(model).model_dump_json()
    return blr_from_params(BlrParams.model_validate_json(blob))


@pytest.mark.parametrize("smoothing", [None, 0.9])
def test_rebuilt_model_predicts_and_keeps_learning_exactly_like_the_original(smoothing):
    original = linear_model.BayesianLinearRegression(alpha=1.0, beta=1.0, smoothing=smoothing)
    for x, y in rows(500, 1):
        original.learn_one(x, y)
    probe = [x for x, _ in rows(200, 2)]
    original.predict_one(probe[0])  # the cached posterior mean is part of the state too
    rebuilt = round_trip(original)
    assert [rebuilt.predict_one(x) for x in probe] == [original.predict_one(x) for x in probe]
    dist_a, dist_b = (
        original.predict_one(probe[1], with_dist=True),
        rebuilt.predict_one(probe[1], with_dist=True),
    )
    assert (dist_a.mu, dist_a.sigma) == (dist_b.mu, dist_b.sigma)
    # both keep learning the same data: still identical (the covariance is updated in place, Fortran order)
    for x, y in rows(300, 3):
        original.learn_one(x, y)
        rebuilt.learn_one(x, y)
        assert rebuilt.predict_one(x) == original.predict_one(x)
    assert blr_params(rebuilt) == blr_params(original)


def test_untrained_model_and_new_features_after_rebuild():
    fresh = round_trip(linear_model.BayesianLinearRegression())
    assert fresh.predict_one({"d1": 1.0}) == 0.0
    original = linear_model.BayesianLinearRegression()
    for x, y in rows(20, 4):
        original.learn_one({"d1": x["d1"]}, y)
    rebuilt = round_trip(original)
    for x, y in rows(20, 5):  # features the model has not seen yet grow its matrices identically
        original.learn_one(x, y)
        rebuilt.learn_one(x, y)
    assert blr_params(rebuilt) == blr_params(original)


def test_unknown_river_internals_and_inconsistent_state_are_refused():
    model = linear_model.BayesianLinearRegression()
    model.learn_one({"d1": 1.0}, 1.0)
    model._extra = 1  # noqa: SLF001 - stands for a River upgrade that adds state
    with pytest.raises(TypeError, match="internals changed"):
        blr_params(model)
    del model._extra  # noqa: SLF001
    bad = blr_params(model).model_copy(update={"covariance": [[1.0]]})
    with pytest.raises(ValueError, match="inconsistent"):
        blr_from_params(bad)
