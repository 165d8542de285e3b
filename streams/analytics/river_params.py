"""The learnt parameters of a River ``BayesianLinearRegression`` as plain data, and the model rebuilt from them.

State of a stream stage must be stored in a format that cannot execute code (no pickle), so the forecasting
stage keeps its online regression as numbers: :func:`blr_params` reads them out of a model and
:func:`blr_from_params` builds a model that predicts, and keeps learning, bit for bit like the original.

What River 0.26 keeps in the model (``river/linear_model/bayesian_lin_reg.py``): the hyper-parameters ``alpha``
(prior precision), ``beta`` (noise precision) and ``smoothing``; the feature index ``_idx`` (feature name ->
row); the posterior precision ``_ss_arr`` and covariance ``_ss_inv_arr`` (``_cap`` x ``_cap``, the covariance in
Fortran order because the Sherman-Morrison update writes it in place with BLAS ``dger``, which would silently
update a copy of a C-ordered array); the natural mean ``_eta_arr``; the cached posterior mean ``_m_arr`` with its
``_m_dirty`` flag; and ``_n``. All of them are stored exactly (floats survive JSON unchanged: shortest repr).

These are private attributes: River is pinned to ``<0.27`` in ``pyproject.toml`` and :func:`blr_params` refuses
a model whose attribute set differs from the one known here, so a River upgrade fails loudly in the tests instead
of silently losing state.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict
from river import linear_model

#: every attribute of a River 0.26 BayesianLinearRegression; a different set means River changed its internals
KNOWN_ATTRIBUTES = frozenset(
    {
        "alpha",
        "beta",
        "smoothing",
        "_idx",
        "_ss_arr",
        "_ss_inv_arr",
        "_eta_arr",
        "_m_arr",
        "_m_dirty",
        "_cap",
        "_n",
    }
)


class BlrParams(BaseModel):
    """Learnt state of one ``BayesianLinearRegression``; ``features`` in row order of the matrices."""

    model_config = ConfigDict(ser_json_inf_nan="constants", frozen=True)

    alpha: float
    beta: float
    smoothing: float | None
    features: list[str]
    precision: list[list[float]]  # _ss_arr, cap x cap
    covariance: list[list[float]]  # _ss_inv_arr, cap x cap
    natural_mean: list[float]  # _eta_arr, cap
    mean: list[float]  # _m_arr (cache of covariance @ natural_mean)
    mean_dirty: bool
    n: int


def blr_params(model: linear_model.BayesianLinearRegression) -> BlrParams:
    """The learnt parameters of ``model`` (raises TypeError if River's internals are not the known ones)."""
    attrs = frozenset(vars(model))
    if attrs != KNOWN_ATTRIBUTES:
        raise TypeError(
            "river BayesianLinearRegression internals changed "
            f"(unknown {sorted(attrs - KNOWN_ATTRIBUTES)}, missing {sorted(KNOWN_ATTRIBUTES - attrs)}): "
            "update streams/analytics/river_params.py"
        )
    order = sorted(model._idx, key=model._idx.__getitem__)  # noqa: SLF001 - see the module docstring
    if any(not isinstance(f, str) for f in order):
        raise TypeError(f"feature names must be strings, got {order!r}")
    return BlrParams(
        alpha=model.alpha,
        beta=model.beta,
        smoothing=model.smoothing,
        features=order,
        precision=model._ss_arr.tolist(),  # noqa: SLF001
        covariance=model._ss_inv_arr.tolist(),  # noqa: SLF001
        natural_mean=model._eta_arr.tolist(),  # noqa: SLF001
        mean=model._m_arr.tolist(),  # noqa: SLF001
        mean_dirty=model._m_dirty,  # noqa: SLF001
        n=model._n,  # noqa: SLF001
    )


def blr_from_params(p: BlrParams) -> linear_model.BayesianLinearRegression:
    """A model in exactly the state ``p`` was read from (raises ValueError on inconsistent shapes)."""
    cap = len(p.natural_mean)
    if len(p.features) > cap or any(
        len(m) != cap or len(r) != cap for m in (p.precision, p.covariance) for r in m
    ):
        raise ValueError(
            f"inconsistent BayesianLinearRegression state: {len(p.features)} features, capacity {cap}"
        )
    if len(p.mean) not in (0, cap):
        raise ValueError(f"posterior mean has {len(p.mean)} entries, capacity is {cap}")
    model = linear_model.BayesianLinearRegression(alpha=p.alpha, beta=p.beta, smoothing=p.smoothing)
    model._idx = {f: i for i, f in enumerate(p.features)}  # noqa: SLF001
    model._cap = cap  # noqa: SLF001
    model._ss_arr = np.array(p.precision, dtype=np.float64).reshape(cap, cap)  # noqa: SLF001
    model._ss_inv_arr = np.asfortranarray(  # noqa: SLF001 - updated in place by BLAS dger
        np.array(p.covariance, dtype=np.float64).reshape(cap, cap)
    )
    model._eta_arr = np.array(p.natural_mean, dtype=np.float64)  # noqa: SLF001
    model._m_arr = np.array(p.mean, dtype=np.float64)  # noqa: SLF001
    model._m_dirty = p.mean_dirty  # noqa: SLF001
    model._n = p.n  # noqa: SLF001
    return model
